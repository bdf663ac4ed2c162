import { describe, expect, it } from "vitest";
import { createRedraw } from "./view";

/** Stand-ins for the root and the error line: the scheduler only touches dataset, textContent and hidden. */
function fakeParts(): { root: HTMLElement; errorLine: HTMLElement } {
  const root = { dataset: {} } as unknown as HTMLElement;
  const errorLine = { textContent: "", hidden: true } as unknown as HTMLElement;
  return { root, errorLine };
}

const tick = (): Promise<void> => new Promise((resolve) => queueMicrotask(resolve));

describe("createRedraw", () => {
  it("draws the parts of one message once, after it", async () => {
    const { root, errorLine } = fakeParts();
    const drawn: number[] = [];
    const redraw = createRedraw({ root, errorLine, error: () => "", draw: (parts) => drawn.push(parts) });
    redraw.invalidate(1);
    redraw.invalidate(4);
    redraw.invalidate(1);
    expect(drawn).toEqual([]);
    await tick();
    expect(drawn).toEqual([5]);
    expect(root.dataset.mvState).toBe("ready");
  });

  it("stays loading after a selection until the kernel answers", async () => {
    const { root, errorLine } = fakeParts();
    const redraw = createRedraw({ root, errorLine, error: () => "", draw: () => {} });
    redraw.flush();
    redraw.markPending();
    expect(root.dataset.mvState).toBe("loading");
    redraw.invalidate(1);
    await tick();
    expect(root.dataset.mvState).toBe("loading");
    redraw.invalidate(1, true);
    await tick();
    expect(root.dataset.mvState).toBe("ready");
  });

  it("shows a failed draw like a kernel error and clears it when the part draws again", () => {
    const { root, errorLine } = fakeParts();
    let fail = true;
    const redraw = createRedraw({
      root,
      errorLine,
      error: () => "",
      draw: () =>
        redraw.guarded("grid", () => {
          if (fail) throw new Error("bad shape");
        }),
    });
    redraw.flush(1);
    expect(root.dataset.mvState).toBe("error");
    expect(errorLine.textContent).toBe("cannot draw the grid: bad shape");
    expect(errorLine.hidden).toBe(false);
    fail = false;
    redraw.flush(1);
    expect(root.dataset.mvState).toBe("ready");
    expect(errorLine.hidden).toBe(true);
  });

  it("prefers the kernel's error and honours the extra loading condition", () => {
    const { root, errorLine } = fakeParts();
    let error = "";
    let busy = true;
    const redraw = createRedraw({ root, errorLine, error: () => error, draw: () => {}, loading: () => busy });
    redraw.flush();
    expect(root.dataset.mvState).toBe("loading");
    busy = false;
    redraw.updateStatus();
    expect(root.dataset.mvState).toBe("ready");
    error = "no layer 'x'";
    redraw.updateStatus();
    expect(root.dataset.mvState).toBe("error");
    expect(errorLine.textContent).toBe("no layer 'x'");
  });

  it("draws nothing once disposed", async () => {
    const { root, errorLine } = fakeParts();
    const drawn: number[] = [];
    const redraw = createRedraw({ root, errorLine, error: () => "", draw: (parts) => drawn.push(parts) });
    redraw.invalidate(2);
    redraw.dispose();
    await tick();
    expect(drawn).toEqual([]);
  });
});
