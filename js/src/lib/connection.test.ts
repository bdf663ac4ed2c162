import { describe, expect, it } from "vitest";
import { KERNEL_GONE_TEXT, type ConnectionSource, kernelGone, watchConnection } from "./connection";
import { createRedraw } from "./view";

/** A model with events and, optionally, a readable `comm_live` (a full ipywidgets WidgetModel has one). */
class FakeModel implements ConnectionSource {
  private readonly handlers = new Map<string, Set<() => void>>();
  comm_live?: boolean;
  on(event: string, callback: () => void): void {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event)?.add(callback);
  }
  off(event?: string | null, callback?: (() => void) | null): void {
    if (event && callback) this.handlers.get(event)?.delete(callback);
  }
  trigger(event: string): void {
    for (const callback of this.handlers.get(event) ?? []) callback();
  }
  count(event: string): number {
    return this.handlers.get(event)?.size ?? 0;
  }
}

/** A control stand-in with `disabled` and the aria attribute. */
function fakeControl(): HTMLElement & { disabled: boolean } {
  const attributes = new Map<string, string>();
  return {
    disabled: false,
    setAttribute: (name: string, value: string) => attributes.set(name, value),
    removeAttribute: (name: string) => attributes.delete(name),
    getAttribute: (name: string) => attributes.get(name) ?? null,
  } as unknown as HTMLElement & { disabled: boolean };
}

function fakeParts(controls: HTMLElement[] = []) {
  const root = {
    dataset: {} as DOMStringMap,
    querySelectorAll: (selector: string) => (selector === "[data-mv-control]" ? controls : []),
  } as unknown as HTMLElement;
  const line = { textContent: "", hidden: true } as unknown as HTMLElement;
  const errorLine = { textContent: "", hidden: true } as unknown as HTMLElement;
  return { root, line, errorLine };
}

const tick = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));

describe("watchConnection", () => {
  it("says the kernel is gone when the model is disconnected after the view is up", () => {
    const model = new FakeModel(); // anywidget's proxy: no readable comm_live
    const control = fakeControl();
    const { root, line } = fakeParts([control]);
    root.dataset.mvState = "ready";
    watchConnection(model, { root, line });
    expect(line.hidden).toBe(true);
    expect(kernelGone(root)).toBe(false);

    model.trigger("comm_live_update"); // what the widget manager does on a kernel restart

    expect(line.hidden).toBe(false);
    expect(line.textContent).toBe(KERNEL_GONE_TEXT);
    expect(line.textContent).toMatch(/re-run the cell/);
    expect(root.dataset.mvKernel).toBe("gone");
    expect(root.dataset.mvState).toBe("error");
    expect(control.disabled).toBe(true);
    expect(control.getAttribute("aria-disabled")).toBe("true");
  });

  it("uses comm_live when the model exposes it, and shows a model that is already disconnected", () => {
    const live = new FakeModel();
    live.comm_live = true;
    const first = fakeParts();
    watchConnection(live, { root: first.root, line: first.line });
    live.trigger("comm_live_update");
    expect(kernelGone(first.root)).toBe(false); // still connected: nothing to say

    const dead = new FakeModel();
    dead.comm_live = false; // e.g. restored from saved widget state, no kernel behind it
    const second = fakeParts();
    watchConnection(dead, { root: second.root, line: second.line });
    expect(second.line.hidden).toBe(false);
    expect(kernelGone(second.root)).toBe(true);
  });

  it("keeps data-mv-state at error afterwards, even when a control is moved", async () => {
    const model = new FakeModel();
    const { root, line, errorLine } = fakeParts();
    const redraw = createRedraw({ root, errorLine, error: () => "", draw: () => {} });
    watchConnection(model, { root, line });
    redraw.flush();
    expect(root.dataset.mvState).toBe("ready");
    model.trigger("comm_live_update");
    redraw.markPending(); // a selection that no kernel will ever answer
    expect(root.dataset.mvState).toBe("error");
    redraw.invalidate(1, true);
    await tick();
    expect(root.dataset.mvState).toBe("error");
  });

  it("stops listening when disposed", () => {
    const model = new FakeModel();
    const stop = watchConnection(model, fakeParts());
    expect(model.count("comm_live_update")).toBe(1);
    stop();
    expect(model.count("comm_live_update")).toBe(0);
  });
});
