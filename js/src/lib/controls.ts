// Controls bound to synced traits. Each control element carries data-mv-control="<trait name>" (the
// browser tests find controls by it), writes `model.set(name, value); model.save_changes()`, and follows
// the trait when the kernel changes it. Labels and options go in with textContent.

import type { AnyModel } from "@anywidget/types";

/** A place to schedule work once per frame; injectable so tests can drive frames by hand. */
export interface FrameScheduler {
  request(callback: () => void): number;
  cancel(handle: number): void;
}

/** requestAnimationFrame where there is one (browsers), a 16 ms timer otherwise. */
export const animationFrames: FrameScheduler = {
  request: (callback) =>
    typeof globalThis.requestAnimationFrame === "function"
      ? globalThis.requestAnimationFrame(() => callback())
      : (setTimeout(callback, 16) as unknown as number),
  cancel: (handle) =>
    typeof globalThis.cancelAnimationFrame === "function"
      ? globalThis.cancelAnimationFrame(handle)
      : clearTimeout(handle),
};

/**
 * At most one send per animation frame while a slider is dragged, so a fast drag cannot flood the kernel
 * with re-runs: the first value goes at once, later ones within the frame wait and only the latest is sent
 * when the frame comes. `flush` sends the final value immediately and drops anything pending.
 */
export class FrameThrottle<V> {
  private frame: number | null = null;
  private pending: { value: V } | null = null;

  constructor(
    private readonly send: (value: V) => void,
    private readonly scheduler: FrameScheduler = animationFrames,
  ) {}

  push(value: V): void {
    if (this.frame === null) {
      this.send(value);
      this.frame = this.scheduler.request(this.tick);
    } else {
      this.pending = { value };
    }
  }

  flush(value: V): void {
    this.cancel();
    this.send(value);
  }

  cancel(): void {
    if (this.frame !== null) this.scheduler.cancel(this.frame);
    this.frame = null;
    this.pending = null;
  }

  private readonly tick = (): void => {
    this.frame = null;
    const pending = this.pending;
    if (pending === null) return;
    this.pending = null;
    this.send(pending.value);
    // Keep the window open: the next value again waits for a frame.
    this.frame = this.scheduler.request(this.tick);
  };
}

/** Read, write and watch one synced trait. */
export interface TraitBinding<V> {
  readonly name: string;
  get(): V;
  /** Sets and saves the trait; does nothing when it already holds `value` (no empty comm message). */
  set(value: V): void;
  /** Calls `callback` on every change of the trait; returns the function that stops it. */
  watch(callback: (value: V) => void): () => void;
}

export function bindTrait<T extends Record<string, any>, K extends keyof T & string>(
  model: AnyModel<T>,
  name: K,
  onWrite?: (name: K, value: T[K]) => void,
): TraitBinding<T[K]> {
  return {
    name,
    get: () => model.get(name),
    set: (value) => {
      if (model.get(name) === value) return;
      onWrite?.(name, value);
      model.set(name, value);
      model.save_changes();
    },
    watch: (callback) => {
      const handler = (): void => callback(model.get(name));
      model.on(`change:${name}`, handler);
      return () => model.off(`change:${name}`, handler);
    },
  };
}

export interface Control {
  /** Wrapper with the label; hide it to hide the control. */
  readonly el: HTMLElement;
  destroy(): void;
}

export interface SliderControl extends Control {
  readonly input: HTMLInputElement;
  setRange(min: number, max: number): void;
}

export interface SliderOptions {
  label: string;
  min: number;
  max: number;
  step?: number;
  scheduler?: FrameScheduler;
}

function labeled(label: string, control: HTMLElement, name: string): HTMLLabelElement {
  const wrapper = document.createElement("label");
  wrapper.className = "mvz-control";
  const text = document.createElement("span");
  text.className = "mvz-label";
  text.textContent = label;
  control.dataset.mvControl = name;
  // JupyterLab's notebook shortcuts take arrow keys from focused controls that are not text fields
  // (ArrowUp/Down move between cells); Lumino leaves keys alone inside this attribute.
  control.dataset.lmSuppressShortcuts = "true";
  wrapper.append(text, control);
  return wrapper;
}

/** A range slider with a numeric readout, bound to an integer trait. */
export function createSlider(binding: TraitBinding<number>, options: SliderOptions): SliderControl {
  const input = document.createElement("input");
  input.type = "range";
  input.step = String(options.step ?? 1);
  const readout = document.createElement("output");
  readout.className = "mvz-readout";
  const el = labeled(options.label, input, binding.name);
  el.appendChild(readout);

  const show = (value: number): void => {
    input.value = String(value);
    readout.textContent = input.value;
  };
  const setRange = (min: number, max: number): void => {
    input.min = String(min);
    input.max = String(Math.max(min, max));
    show(binding.get());
  };
  setRange(options.min, options.max);

  // While the user drags, the kernel's answers to earlier positions must not pull the thumb back.
  let dragging = false;
  const throttle = new FrameThrottle<number>((value) => binding.set(value), options.scheduler);
  const onInput = (): void => {
    dragging = true;
    readout.textContent = input.value;
    throttle.push(Number(input.value));
  };
  const onChange = (): void => {
    dragging = false;
    throttle.flush(Number(input.value));
    show(binding.get());
  };
  input.addEventListener("input", onInput);
  input.addEventListener("change", onChange);
  const unwatch = binding.watch((value) => {
    if (!dragging) show(value);
  });
  return {
    el,
    input,
    setRange,
    destroy: () => {
      throttle.cancel();
      unwatch();
      input.removeEventListener("input", onInput);
      input.removeEventListener("change", onChange);
    },
  };
}

export interface SelectOption {
  value: string;
  label: string;
}

export interface SelectControl extends Control {
  readonly select: HTMLSelectElement;
  setOptions(options: readonly SelectOption[]): void;
}

/** A drop-down bound to a string trait. */
export function createSelect(
  binding: TraitBinding<string>,
  label: string,
  options: readonly SelectOption[],
): SelectControl {
  const select = document.createElement("select");
  const el = labeled(label, select, binding.name);
  let current: readonly SelectOption[] = [];

  const render = (): void => {
    const value = binding.get();
    // The trait's value is always shown, even if the option list does not (yet) contain it.
    const list = current.some((option) => option.value === value)
      ? current
      : [...current, { value, label: value }];
    select.replaceChildren(
      ...list.map((option) => {
        const element = document.createElement("option");
        element.value = option.value;
        element.textContent = option.label;
        return element;
      }),
    );
    select.value = value;
  };
  const setOptions = (next: readonly SelectOption[]): void => {
    current = next;
    render();
  };
  setOptions(options);

  const onChange = (): void => binding.set(select.value);
  select.addEventListener("change", onChange);
  const unwatch = binding.watch((value) => {
    if (current.some((option) => option.value === value)) select.value = value;
    else render();
  });
  return {
    el,
    select,
    setOptions,
    destroy: () => {
      unwatch();
      select.removeEventListener("change", onChange);
    },
  };
}
