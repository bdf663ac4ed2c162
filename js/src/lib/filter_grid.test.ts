import { describe, expect, it } from "vitest";
import { cellDims } from "./filter_grid";

describe("cellDims", () => {
  it("reads [N, h, w] single-channel grids", () => {
    expect(cellDims([16, 3, 3], false)).toEqual([16, 3, 3]);
  });
  it("skips the colour axis of [N, 3, h, w] RGB grids", () => {
    expect(cellDims([12, 3, 5, 7], true)).toEqual([12, 5, 7]);
  });
  it("draws 1-D filters [N, 1, k] and [N, k] as one-row strips", () => {
    expect(cellDims([5, 1, 7], false)).toEqual([5, 1, 7]);
    expect(cellDims([5, 7], false)).toEqual([5, 1, 7]);
  });
  it("stacks leading kernel axes as rows", () => {
    expect(cellDims([4, 2, 3, 3], false)).toEqual([4, 6, 3]);
  });
  it("is empty for an empty shape", () => {
    expect(cellDims([], false)).toEqual([0, 1, 0]);
  });
});
