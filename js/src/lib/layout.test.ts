import { describe, expect, it } from "vitest";
import { cellOrigin, fitSize, mosaicHit, mosaicHitTest, mosaicLayout } from "./layout";
import { gridDims } from "./mosaic";

describe("mosaic layout", () => {
  it("lays 64 channels out 8 x 8 with gaps and padding", () => {
    const layout = mosaicLayout(64, 7, 7, 360, { gap: 4, pad: 3 });
    expect(layout.cols).toBe(8);
    expect(layout.rows).toBe(8);
    // (360 - 2*3 - 7*4) / (8*7) = 5.8 -> whole-number factor 5
    expect(layout.cellWidth).toBe(35);
    expect(layout.cellHeight).toBe(35);
    expect(layout.width).toBe(2 * 3 + 8 * 35 + 7 * 4);
    expect(layout.height).toBe(layout.width);
  });

  it("uses as few rows as needed for a count that is not square", () => {
    const layout = mosaicLayout(10, 4, 4, 200);
    expect(layout.cols).toBe(4);
    expect(layout.rows).toBe(3);
  });

  it("finds the channel under a point and nothing over gaps, padding or empty cells", () => {
    const layout = mosaicLayout(10, 4, 4, 200, { gap: 4, pad: 3 });
    const cell = layout.cellWidth;
    expect(mosaicHitTest(layout, 3, 3)).toBe(0);
    expect(mosaicHitTest(layout, 3 + cell - 0.5, 3 + cell - 0.5)).toBe(0);
    expect(mosaicHitTest(layout, 3 + cell + 1, 10)).toBe(-1); // gap between columns 0 and 1
    expect(mosaicHitTest(layout, 1, 10)).toBe(-1); // padding
    const origin = cellOrigin(layout, 6);
    expect(origin).toEqual({ x: 3 + 2 * (cell + 4), y: 3 + 1 * (cell + 4) });
    expect(mosaicHitTest(layout, origin.x + 1, origin.y + 1)).toBe(6);
    const empty = cellOrigin(layout, 11); // row 2 has channels 8 and 9 only
    expect(mosaicHitTest(layout, empty.x + 1, empty.y + 1)).toBe(-1);
    expect(mosaicHitTest(layout, layout.width + 5, 5)).toBe(-1);
  });

  it("reports the position inside the hit cell", () => {
    const layout = mosaicLayout(4, 10, 10, 100, { gap: 4, pad: 0 });
    const origin = cellOrigin(layout, 3);
    const hit = mosaicHit(layout, origin.x + layout.cellWidth / 2, origin.y + layout.cellHeight / 4)!;
    expect(hit.channel).toBe(3);
    expect(hit.u).toBeCloseTo(0.5);
    expect(hit.v).toBeCloseTo(0.25);
  });

  it("shrinks cells that do not fit and stretches flat maps", () => {
    const big = mosaicLayout(64, 56, 56, 360);
    expect(big.width).toBeLessThanOrEqual(360);
    const flat = mosaicLayout(1, 1, 128, 360);
    expect(flat.cellHeight).toBe(12);
  });

  it("is empty for an empty payload", () => {
    const layout = mosaicLayout(0, 5, 5, 100);
    expect(layout.width).toBe(0);
    expect(mosaicHitTest(layout, 1, 1)).toBe(-1);
  });

  it("reads [C, h, w] from grid shapes", () => {
    expect(gridDims([64, 7, 7])).toEqual([64, 7, 7]);
    expect(gridDims([8, 128])).toEqual([8, 1, 128]);
    expect(gridDims([128])).toEqual([1, 1, 128]);
  });
});

describe("fitSize", () => {
  it("enlarges by a whole-number factor", () => {
    expect(fitSize(56, 56, 320, 320)).toEqual({ width: 280, height: 280 });
    expect(fitSize(28, 14, 320, 320)).toEqual({ width: 154, height: 308 });
  });

  it("shrinks pictures larger than the box, keeping the aspect ratio", () => {
    expect(fitSize(448, 640, 320, 320)).toEqual({ width: 320, height: 224 });
  });

  it("keeps a flat 1-D map tall enough to hover", () => {
    expect(fitSize(1, 128, 320, 320, 24)).toEqual({ width: 256, height: 24 });
  });
});
