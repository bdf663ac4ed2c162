import { describe, expect, it } from "vitest";
import { columnAt, thresholdRange, timeGridLayout } from "./timeline";

describe("timeGridLayout", () => {
  it("uses whole-pixel cells capped at maxCell", () => {
    expect(timeGridLayout(4, 9, 600, 200)).toEqual({
      rows: 4, cols: 9, cellWidth: 40, cellHeight: 40, width: 360, height: 160,
    });
    const many = timeGridLayout(128, 300, 600, 256);
    expect(many.cellWidth).toBe(2);
    expect(many.cellHeight).toBe(2);
    expect(many.width).toBe(600);
  });

  it("keeps at least one pixel per cell and handles empty grids", () => {
    expect(timeGridLayout(1000, 5000, 600, 200).cellWidth).toBe(1);
    expect(timeGridLayout(0, 0, 600, 200)).toMatchObject({ width: 0, height: 0 });
  });
});

describe("columnAt", () => {
  it("maps x to the column under it, clamped", () => {
    const layout = timeGridLayout(3, 5, 100, 30); // 20 px columns
    expect(columnAt(layout, 0)).toBe(0);
    expect(columnAt(layout, 19.9)).toBe(0);
    expect(columnAt(layout, 20)).toBe(1);
    expect(columnAt(layout, 99)).toBe(4);
    expect(columnAt(layout, 500)).toBe(4);
    expect(columnAt(layout, -3)).toBe(0);
    expect(columnAt(timeGridLayout(0, 0, 10, 10), 3)).toBe(-1);
  });
});

describe("thresholdRange", () => {
  it("rounds the data range outward to a step near 1/100 of it", () => {
    expect(thresholdRange(-0.3833, 0.3833, 0.2)).toEqual([-0.384, 0.384, 0.001]);
    expect(thresholdRange(0, 1, 0.5)).toEqual([0, 1, 0.01]);
    expect(thresholdRange(-15.33, 15.33, 0.3)).toEqual([-15.4, 15.4, 0.1]);
  });

  it("always contains the current value", () => {
    const [low, high] = thresholdRange(-0.38, 0.38, 0.5);
    expect(low).toBeLessThanOrEqual(-0.38);
    expect(high).toBeGreaterThanOrEqual(0.5);
  });
});
