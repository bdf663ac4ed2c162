import { describe, expect, it } from "vitest";
import { base64ToBytes, decodeState, frameKey } from "./export_state";

describe("base64ToBytes", () => {
  it("decodes every byte value", () => {
    // "AAH+/w==" is base64 of 0, 1, 254, 255 (written by hand).
    expect([...base64ToBytes("AAH+/w==")]).toEqual([0, 1, 254, 255]);
    expect(base64ToBytes("").length).toBe(0);
  });
});

describe("decodeState", () => {
  it("puts each buffer at its path as a DataView and leaves the embedded state as it was", () => {
    const embedded = {
      state: { channel: 3, grid_data: null, nested: { parts: [null, null] } },
      buffers: [
        { path: ["grid_data"], data: "AQID" },
        { path: ["nested", "parts", 1], data: "/w==" },
      ],
    };
    const state = decodeState(embedded);
    expect(state.channel).toBe(3);
    const grid = state.grid_data as DataView;
    expect(grid).toBeInstanceOf(DataView);
    expect([grid.getUint8(0), grid.getUint8(1), grid.getUint8(2)]).toEqual([1, 2, 3]);
    const part = (state.nested as { parts: unknown[] }).parts[1] as DataView;
    expect(part.byteLength).toBe(1);
    expect(part.getUint8(0)).toBe(255);
    expect(embedded.state.grid_data).toBeNull();
  });

  it("names a path that does not fit the state", () => {
    expect(() => decodeState({ state: {}, buffers: [{ path: ["a", "b"], data: "" }] })).toThrow(/does not match/);
  });
});

describe("frameKey", () => {
  it("writes values as Python's json.dumps(separators=(',', ':')) does", () => {
    expect(frameKey(3)).toBe("3");
    expect(frameKey("features.0")).toBe('"features.0"');
    expect(frameKey(true)).toBe("true");
    expect(frameKey(null)).toBe("null");
    expect(frameKey({ type: "sync" })).toBe('{"type":"sync"}');
  });
});
