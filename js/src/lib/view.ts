// Scaffolding shared by the widget views: the root with the DOM contract (data-mv-widget, data-mv-state),
// header, error and note lines, titled panels, trait listeners, and the redraw scheduler that collects the
// traits of one kernel message and draws each part once after it, keeping data-mv-state up to date.

import type { AnyModel } from "@anywidget/types";
import type { Payload } from "./decode";
import { type ConnectionSource, kernelGone, showKernelGone, watchConnection } from "./connection";
import { createStyle } from "./style";

export interface Shell {
  readonly root: HTMLElement;
  readonly header: HTMLElement;
  readonly errorLine: HTMLElement;
  readonly noteLine: HTMLElement;
  /** Says that the kernel behind the view is gone (see ./connection); hidden while it is there. */
  readonly kernelLine: HTMLElement;
  /** Appends `parts` to the root and the root to `el`. */
  mount(...parts: HTMLElement[]): void;
}

/**
 * The root of a view (state "loading", the shared style plus `css`) and its header, error and note lines.
 * Given the view's `model`, it also watches the model's connection: when the kernel is gone (restarted or
 * stopped) the root shows the kernel line, reads data-mv-state="error" and data-mv-kernel="gone", and its
 * controls are disabled.
 */
export function createShell(widget: string, el: HTMLElement, css = "", model?: ConnectionSource): Shell {
  const root = document.createElement("div");
  root.className = "mvz-root";
  root.dataset.mvWidget = widget;
  root.dataset.mvState = "loading";
  root.appendChild(createStyle());
  if (css) {
    const own = document.createElement("style");
    own.textContent = css;
    root.appendChild(own);
  }
  const header = document.createElement("div");
  header.className = "mvz-header";
  const errorLine = document.createElement("div");
  errorLine.className = "mvz-error";
  errorLine.setAttribute("role", "alert");
  errorLine.hidden = true;
  const noteLine = document.createElement("div");
  noteLine.className = "mvz-note";
  noteLine.hidden = true;
  const kernelLine = document.createElement("div");
  kernelLine.className = "mvz-kernel-gone"; // not .mvz-error: that stays the one error line
  kernelLine.setAttribute("role", "alert");
  kernelLine.hidden = true;
  root.appendChild(kernelLine);
  // The listener is registered through anywidget's model proxy, which removes it with the view.
  if (model) watchConnection(model, { root, line: kernelLine });
  const mount = (...parts: HTMLElement[]): void => {
    root.append(...parts);
    el.appendChild(root);
    if (kernelGone(root)) showKernelGone({ root, line: kernelLine }, true); // disables the new controls
  };
  return { root, header, errorLine, noteLine, kernelLine, mount };
}

/** A titled section of the body; the title can be rewritten later. */
export function panel(title: string, ...content: HTMLElement[]): { el: HTMLElement; title: HTMLElement } {
  const el = document.createElement("section");
  el.className = "mvz-panel";
  const heading = document.createElement("div");
  heading.className = "mvz-title";
  heading.textContent = title;
  el.append(heading, ...content);
  return { el, title: heading };
}

/** A size from a synced trait: at least 1 (a missing or zero value counts as 1). */
export function count(value: unknown): number {
  return Math.max(1, Number(value) || 1);
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Shows the notes of the downsampled payloads among `payloads` (each distinct note once). */
export function showNotes(noteLine: HTMLElement, payloads: ReadonlyArray<Payload | null>): void {
  const notes = new Set<string>();
  for (const payload of payloads) {
    if (payload?.meta.downsampled && payload.meta.note) notes.add(payload.meta.note);
  }
  const text = [...notes].join(" ");
  noteLine.textContent = text;
  noteLine.hidden = text === "";
}

/** Registers `change:<trait>` handlers; returns the function that removes them. */
export function listen<T extends object>(
  model: AnyModel<T>,
  handlers: ReadonlyArray<readonly [keyof T & string, () => void]>,
): () => void {
  for (const [name, handler] of handlers) model.on(`change:${name}`, handler);
  return () => {
    for (const [name, handler] of handlers) model.off(`change:${name}`, handler);
  };
}

export interface RedrawOptions {
  root: HTMLElement;
  errorLine: HTMLElement;
  /** The kernel's error message ("" when none). */
  error: () => string;
  /** Draws the parts whose bits are set (guarding each with `guarded`). */
  draw: (parts: number) => void;
  /** Extra condition that keeps the state at "loading"; evaluated at each status update. */
  loading?: () => boolean;
}

export interface Redraw {
  /** Marks parts to redraw after the current kernel message; `answer` ends a pending selection. */
  invalidate(parts: number, answer?: boolean): void;
  /** Draws the marked parts (and `parts`) now. */
  flush(parts?: number): void;
  /** Call when this view sent a selection: the state reads "loading" until the kernel answers. */
  markPending(): void;
  /** Runs one part's draw; a failure is shown like a kernel error ("cannot draw the <what>: ..."). */
  guarded(what: string, draw: () => void): void;
  /** Re-reads the errors and sets data-mv-state. */
  updateStatus(): void;
  dispose(): void;
}

export function createRedraw(options: RedrawOptions): Redraw {
  const { root, errorLine } = options;
  // Decode or draw failures by part, shown like kernel errors instead of only in the console.
  const partErrors = new Map<string, string>();
  // A selection this view sent and the kernel has not answered yet.
  let pending = false;
  let dirty = 0;
  let answered = false;
  let scheduled = false;
  let disposed = false;

  function updateStatus(): void {
    const message = options.error() || [...partErrors.values()].join("\n");
    errorLine.textContent = message;
    errorLine.hidden = message === "";
    const loading = options.loading?.() ?? false; // always evaluated: it may also show data-mv-seq
    const gone = kernelGone(root); // no answer can come: see ./connection
    root.dataset.mvState = message || gone ? "error" : pending || loading ? "loading" : "ready";
  }

  function flush(parts = 0): void {
    scheduled = false;
    if (disposed) return;
    const marked = dirty | parts;
    dirty = 0;
    options.draw(marked);
    if (answered) pending = false;
    answered = false;
    updateStatus();
  }

  return {
    invalidate(parts, answer = false) {
      dirty |= parts;
      answered ||= answer;
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(() => flush());
      }
    },
    flush,
    markPending() {
      pending = true;
      updateStatus();
    },
    guarded(what, draw) {
      try {
        draw();
        partErrors.delete(what);
      } catch (error) {
        partErrors.set(what, `cannot draw the ${what}: ${messageOf(error)}`);
      }
    },
    updateStatus,
    dispose() {
      disposed = true;
    },
  };
}
