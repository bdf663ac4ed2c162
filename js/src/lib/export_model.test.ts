import { describe, expect, it } from "vitest";
import { ExportModel, frameTargets, pendingUpdates } from "./export_model";

describe("ExportModel", () => {
  it("reads, sets and saves like an anywidget model, reporting the traits set", () => {
    const saved: string[][] = [];
    const model = new ExportModel({ channel: 0, layer: "a" }, { onSave: (names) => saved.push(names) });
    const heard: unknown[] = [];
    const handler = (_model: unknown, value: unknown): number => heard.push(value);
    model.on("change:channel", handler);
    model.set("channel", 2);
    expect(model.get("channel")).toBe(2);
    expect(heard).toEqual([2]);
    model.save_changes();
    model.save_changes(); // nothing new: not reported again
    expect(saved).toEqual([["channel"]]);
    model.off("change:channel", handler);
    model.set("channel", 3);
    expect(heard).toEqual([2]);
  });

  it("applies several traits before telling anyone, then one event per trait and one change", () => {
    const model = new ExportModel({ a: 0, b: 0 });
    const seen: string[] = [];
    model.on("change:a", () => seen.push(`a saw b=${model.get("b")}`));
    model.on("change:b", () => seen.push("b"));
    model.on("change", () => seen.push("change"));
    model.apply({ a: 1, b: 2 });
    expect(seen).toEqual(["a saw b=2", "b", "change"]);
  });

  it("passes sends to the runtime and delivers custom messages with their buffers", () => {
    const sent: unknown[] = [];
    const model = new ExportModel({}, { onSend: (content) => sent.push(content) });
    model.send({ type: "sync" });
    expect(sent).toEqual([{ type: "sync" }]);
    const got: unknown[] = [];
    model.on("msg:custom", (content: unknown, buffers: unknown) => got.push(content, buffers));
    const buffer = new DataView(new ArrayBuffer(2));
    model.deliver({ type: "chunk" }, [buffer]);
    expect(got).toEqual([{ type: "chunk" }, [buffer]]);
    model.off();
    expect(model.listenerCount("msg:custom")).toBe(0);
  });

  it("has a widget manager that refuses politely", async () => {
    await expect(new ExportModel({}).widget_manager.get_model()).rejects.toThrow(/static export/);
  });
});

describe("frameTargets", () => {
  const base = { v: { channel: 0, data: "base", sample: 0, error: "" }, w: { x: 1 } };
  const touched = { v: ["channel", "data", "sample"] };

  it("takes the frame's values and the base values for the other touched traits", () => {
    const targets = frameTargets(base, touched, { v: { channel: 3, data: "three" } }, ["error"]);
    expect(targets.v).toEqual({ channel: 3, data: "three", sample: 0, error: "" });
    expect(targets.w).toEqual({});
  });

  it("goes back to the base state for an empty frame", () => {
    expect(frameTargets(base, touched, {}).v).toEqual({ channel: 0, data: "base", sample: 0 });
  });
});

describe("pendingUpdates", () => {
  it("keeps only values the model does not already hold", () => {
    const same = new DataView(new ArrayBuffer(1));
    const model = new ExportModel({ a: 1, b: same, c: "x" });
    const other = new DataView(new ArrayBuffer(1));
    expect(pendingUpdates(model, { a: 1, b: same, c: "y" })).toEqual({ c: "y" });
    expect(Object.keys(pendingUpdates(model, { b: other }))).toEqual(["b"]);
  });
});
