// The top part of a composite view (a core widget with bqplot figures below it): the root with the DOM
// contract, a header for controls, an error line, a summary line, and the bookkeeping of data-mv-state and
// data-mv-seq. The kernel answers each selection by redrawing the figures and then bumping the `seq` trait.

import type { AnyModel } from "@anywidget/types";
import type { TraitBinding } from "./controls";
import { kernelGone } from "./connection";
import { createShell } from "./view";

/** Traits every core model has. */
export interface CoreTraits {
  error: string;
  summary: string;
  seq: number;
}

export interface CoreView {
  readonly root: HTMLElement;
  readonly header: HTMLElement;
  readonly summary: HTMLElement;
  /** Call when this view sent a selection: the state reads "loading" until the kernel answers. */
  markPending(): void;
  /** Extra condition that keeps the state at "loading" (e.g. fitting still running). */
  setBusy(busy: boolean): void;
  /** Re-read error, summary and seq; set data-mv-state. */
  refresh(): void;
  destroy(): void;
}

/** A checkbox bound to a boolean trait, labelled like the other controls. */
export function createCheckbox(
  binding: TraitBinding<boolean>,
  label: string,
): { el: HTMLElement; input: HTMLInputElement; destroy(): void } {
  const input = document.createElement("input");
  input.type = "checkbox";
  input.dataset.mvControl = binding.name;
  input.dataset.lmSuppressShortcuts = "true";
  input.checked = Boolean(binding.get());
  const el = document.createElement("label");
  el.className = "mvz-control";
  const text = document.createElement("span");
  text.className = "mvz-label";
  text.textContent = label;
  el.append(input, text);
  const onChange = (): void => binding.set(input.checked);
  input.addEventListener("change", onChange);
  const unwatch = binding.watch((value) => {
    input.checked = Boolean(value);
  });
  return {
    el,
    input,
    destroy: () => {
      unwatch();
      input.removeEventListener("change", onChange);
    },
  };
}

export function createCoreView<T extends CoreTraits>(model: AnyModel<T>, widget: string, el: HTMLElement): CoreView {
  const { root, header, errorLine, mount } = createShell(widget, el, "", model);
  const summary = document.createElement("div");
  summary.className = "mvz-summary";
  mount(header, errorLine, summary);

  let pending = false;
  let busy = false;
  let lastSeq = -1;

  function refresh(): void {
    const seq = Number(model.get("seq")) || 0;
    const message = String(model.get("error") ?? "");
    // A new seq or an error is the kernel's answer to a pending selection.
    if (seq !== lastSeq || message) pending = false;
    lastSeq = seq;
    if (seq > 0) root.dataset.mvSeq = String(seq);
    summary.textContent = String(model.get("summary") ?? "");
    errorLine.textContent = message;
    errorLine.hidden = message === "";
    const gone = kernelGone(root); // no answer can come: see ./connection
    root.dataset.mvState = message || gone ? "error" : pending || busy || seq === 0 ? "loading" : "ready";
  }

  const names = ["seq", "error", "summary"] as const;
  for (const name of names) model.on(`change:${name}`, refresh);
  refresh();

  return {
    root,
    header,
    summary,
    markPending: () => {
      // Cleared by the next new seq (the kernel's answer) or an error.
      pending = true;
      refresh();
    },
    setBusy: (value) => {
      busy = value;
      refresh();
    },
    refresh,
    destroy: () => {
      for (const name of names) model.off(`change:${name}`, refresh);
      root.remove();
    },
  };
}
