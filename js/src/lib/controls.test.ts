import { describe, expect, it, vi } from "vitest";
import type { AnyModel } from "@anywidget/types";
import { bindTrait, FrameThrottle, type FrameScheduler } from "./controls";

/** Frames run only when the test says so. */
function manualFrames(): FrameScheduler & { run(): void; count(): number } {
  let next = 1;
  const callbacks = new Map<number, () => void>();
  return {
    request: (callback) => {
      callbacks.set(next, callback);
      return next++;
    },
    cancel: (handle) => void callbacks.delete(handle),
    run: () => {
      const due = [...callbacks.values()];
      callbacks.clear();
      for (const callback of due) callback();
    },
    count: () => callbacks.size,
  };
}

describe("FrameThrottle", () => {
  it("sends the first value at once and at most one more per frame, the latest", () => {
    const frames = manualFrames();
    const sent: number[] = [];
    const throttle = new FrameThrottle<number>((v) => sent.push(v), frames);
    throttle.push(1);
    throttle.push(2);
    throttle.push(3);
    expect(sent).toEqual([1]);
    frames.run();
    expect(sent).toEqual([1, 3]);
    throttle.push(4);
    throttle.push(5);
    expect(sent).toEqual([1, 3]);
    frames.run();
    expect(sent).toEqual([1, 3, 5]);
    frames.run(); // nothing pending: the window closes without a send
    expect(sent).toEqual([1, 3, 5]);
    expect(frames.count()).toBe(0);
    throttle.push(6); // a new drag after a quiet frame goes at once again
    expect(sent).toEqual([1, 3, 5, 6]);
  });

  it("always sends the final value, immediately, and drops what was pending", () => {
    const frames = manualFrames();
    const sent: number[] = [];
    const throttle = new FrameThrottle<number>((v) => sent.push(v), frames);
    throttle.push(1);
    throttle.push(2);
    throttle.flush(7);
    expect(sent).toEqual([1, 7]);
    expect(frames.count()).toBe(0);
    frames.run();
    expect(sent).toEqual([1, 7]);
  });

  it("sends nothing after cancel", () => {
    const frames = manualFrames();
    const sent: number[] = [];
    const throttle = new FrameThrottle<number>((v) => sent.push(v), frames);
    throttle.push(1);
    throttle.push(2);
    throttle.cancel();
    frames.run();
    expect(sent).toEqual([1]);
  });

  it("falls back to timers without requestAnimationFrame", () => {
    vi.useFakeTimers();
    try {
      const sent: number[] = [];
      const throttle = new FrameThrottle<number>((v) => sent.push(v));
      throttle.push(1);
      throttle.push(2);
      throttle.push(3);
      expect(sent).toEqual([1]);
      vi.advanceTimersByTime(16);
      expect(sent).toEqual([1, 3]);
    } finally {
      vi.useRealTimers();
    }
  });
});

interface Traits {
  channel: number;
  layer: string;
}

/** The part of an anywidget model the bindings use, recording what was sent to the kernel. */
function fakeModel(initial: Traits) {
  const state: Traits = { ...initial };
  const handlers = new Map<string, Set<() => void>>();
  const saved: Array<Partial<Traits>> = [];
  let unsaved: Partial<Traits> = {};
  const model = {
    get: <K extends keyof Traits>(key: K) => state[key],
    set: <K extends keyof Traits>(key: K, value: Traits[K]) => {
      if (state[key] === value) return;
      state[key] = value;
      unsaved[key] = value;
      handlers.get(`change:${key}`)?.forEach((h) => h());
    },
    save_changes: () => {
      saved.push(unsaved);
      unsaved = {};
    },
    on: (event: string, handler: () => void) => {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event)!.add(handler);
    },
    off: (event: string, handler: () => void) => void handlers.get(event)?.delete(handler),
  };
  const listeners = () => [...handlers.values()].reduce((n, set) => n + set.size, 0);
  return { model: model as unknown as AnyModel<Traits>, saved, listeners, state };
}

describe("bindTrait", () => {
  it("sets and saves a changed value and reports the write", () => {
    const { model, saved } = fakeModel({ channel: 0, layer: "conv1" });
    const writes: Array<[string, unknown]> = [];
    const channel = bindTrait(model, "channel", (name, value) => writes.push([name, value]));
    channel.set(3);
    expect(saved).toEqual([{ channel: 3 }]);
    expect(writes).toEqual([["channel", 3]]);
    expect(channel.get()).toBe(3);
  });

  it("sends nothing when the trait already holds the value", () => {
    const { model, saved } = fakeModel({ channel: 2, layer: "conv1" });
    bindTrait(model, "channel").set(2);
    expect(saved).toEqual([]);
  });

  it("throttled slider writes reach the model at most once per frame, ending on the final value", () => {
    const { model, saved } = fakeModel({ channel: 0, layer: "conv1" });
    const frames = manualFrames();
    const channel = bindTrait(model, "channel");
    const throttle = new FrameThrottle<number>((v) => channel.set(v), frames);
    for (const v of [1, 2, 3, 4]) throttle.push(v);
    frames.run();
    for (const v of [5, 6]) throttle.push(v);
    throttle.flush(6);
    expect(saved).toEqual([{ channel: 1 }, { channel: 4 }, { channel: 6 }]);
  });

  it("watch follows kernel changes and its stop function removes the handler", () => {
    const { model, listeners } = fakeModel({ channel: 0, layer: "conv1" });
    const seen: string[] = [];
    const stop = bindTrait(model, "layer").watch((value) => seen.push(value));
    expect(listeners()).toBe(1);
    model.set("layer", "conv2");
    stop();
    expect(listeners()).toBe(0);
    model.set("layer", "conv3");
    expect(seen).toEqual(["conv2"]);
  });
});
