// What a view shows when the kernel behind it is gone. On a kernel restart JupyterLab's widget manager marks
// every model as no longer connected (`comm_live = false`) and the model fires "comm_live_update"; the old
// kernel, with the Python widget and its hooks, no longer exists, so the view's controls can never be answered.
// The view then says so in a line of its own, disables its controls and reads data-mv-state="error" with
// data-mv-kernel="gone", instead of a box that silently stops reacting.
//
// anywidget hands views a proxy of the model (get/set/on/off/send/save_changes/widget_manager): `on` reaches
// the real model, so the event arrives, but `comm_live` itself is not readable through the proxy. ipywidgets
// sets `comm_live` to true only when a model is created with a comm, and the manager only ever sets it to false
// afterwards (on "restarting"), so an update after the view is up means "disconnected" when the flag cannot be
// read. Where the flag is readable (a full WidgetModel), it is used as it is, and a model that is already
// disconnected when the view is drawn shows the line at once.

/** The part of a model this needs: events, and the connection flag where the model exposes it. */
export interface ConnectionSource {
  on(event: string, callback: () => void): void;
  off(event?: string | null, callback?: (() => void) | null): void;
  comm_live?: unknown;
}

/** The elements it touches: dataset, querySelectorAll for the controls; the line's text and hidden. */
export interface ConnectionParts {
  root: Pick<HTMLElement, "dataset" | "querySelectorAll">;
  line: Pick<HTMLElement, "textContent" | "hidden">;
}

export const KERNEL_GONE_TEXT =
  "The kernel this view belonged to has stopped or restarted: re-run the cell to see the model again.";

/** True when the view's kernel is gone (set on the root by `watchConnection`). */
export function kernelGone(root: Pick<HTMLElement, "dataset">): boolean {
  return root.dataset.mvKernel === "gone";
}

/** The model's `comm_live` when it exposes one, else `undefined`. */
export function commLive(model: ConnectionSource): boolean | undefined {
  const live = model.comm_live;
  return typeof live === "boolean" ? live : undefined;
}

function setControlsDisabled(root: ConnectionParts["root"], disabled: boolean): void {
  for (const control of Array.from(root.querySelectorAll("[data-mv-control]"))) {
    const element = control as HTMLElement & { disabled?: boolean };
    if (typeof element.disabled === "boolean") element.disabled = disabled;
    if (disabled) element.setAttribute("aria-disabled", "true");
    else element.removeAttribute("aria-disabled");
  }
}

/** Shows (or hides) the kernel line and sets the root's attributes and controls accordingly. */
export function showKernelGone(parts: ConnectionParts, gone: boolean): void {
  const { root, line } = parts;
  if (gone) {
    root.dataset.mvKernel = "gone";
    root.dataset.mvState = "error";
    line.textContent = KERNEL_GONE_TEXT;
    line.hidden = false;
  } else {
    delete root.dataset.mvKernel;
    line.textContent = "";
    line.hidden = true;
  }
  setControlsDisabled(root, gone);
}

/**
 * Shows `KERNEL_GONE_TEXT` in `parts.line` once the model loses its kernel; returns the function that stops
 * watching. Views keep their last picture (it is still what the model showed) but their state reads "error".
 */
export function watchConnection(model: ConnectionSource, parts: ConnectionParts): () => void {
  const onUpdate = (): void => showKernelGone(parts, commLive(model) !== true);
  model.on("comm_live_update", onUpdate);
  if (commLive(model) === false) showKernelGone(parts, true);
  return () => model.off("comm_live_update", onUpdate);
}
