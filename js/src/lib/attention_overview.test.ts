import { describe, expect, it } from "vitest";
import {
  normalisingTable,
  overviewLayout,
  paintThumbnails,
  selectionRect,
  thumbnailAt,
  thumbnailOrigin,
} from "./attention_overview";
import { buildLut } from "./colormap";

// A grey ramp: code c is drawn as (c, c, c), so the painted pixels read back as codes.
const RAMP = buildLut([
  [0, 0, 0, 0],
  [1, 254, 254, 254],
]);

describe("overviewLayout", () => {
  it("fits the heads into the width with whole-number enlargement", () => {
    const layout = overviewLayout(12, 12, 16, 640, { gap: 4, left: 30, top: 16 });
    // (640 - 30 - 48) / 12 = 46.8 -> 46, enlarged 16 x 2 = 32.
    expect(layout.cell).toBe(32);
    expect(layout.width).toBe(30 + 12 * 36);
    expect(layout.height).toBe(16 + 12 * 36);
    expect(layout.width).toBeLessThanOrEqual(640);
  });

  it("caps small models at maxCell and shrinks thumbnails larger than the room", () => {
    expect(overviewLayout(2, 2, 8, 640, { maxCell: 64 }).cell).toBe(64);
    const wide = overviewLayout(4, 40, 32, 640, { minCell: 12 });
    expect(wide.cell).toBe(12);
  });

  it("is empty for an empty payload", () => {
    const layout = overviewLayout(0, 12, 16, 640);
    expect(layout.width).toBe(0);
    expect(thumbnailAt(layout, 50, 50)).toBeNull();
  });
});

describe("thumbnailAt", () => {
  const layout = overviewLayout(3, 4, 8, 400, { gap: 4, left: 30, top: 16, maxCell: 40 });

  it("finds the layer (row) and head (column) under a point", () => {
    // stride 44: head 2 spans x in [30 + 88, 30 + 132), layer 1 spans y in [16 + 44, 16 + 88).
    expect(thumbnailAt(layout, 30 + 88 + 1, 16 + 44 + 1)).toEqual({ layer: 1, head: 2 });
    expect(thumbnailAt(layout, 30 + 132 - 1, 16 + 88 - 1)).toEqual({ layer: 1, head: 2 });
    expect(thumbnailAt(layout, 30 + 132, 16)).toEqual({ layer: 0, head: 3 });
  });

  it("agrees with the thumbnail origins", () => {
    for (let layer = 0; layer < 3; layer++) {
      for (let head = 0; head < 4; head++) {
        const { x, y } = thumbnailOrigin(layout, layer, head);
        expect(thumbnailAt(layout, x + layout.cell / 2, y + layout.cell / 2)).toEqual({ layer, head });
      }
    }
  });

  it("is null over the labels and past the grid", () => {
    expect(thumbnailAt(layout, 10, 40)).toBeNull();
    expect(thumbnailAt(layout, 60, 5)).toBeNull();
    expect(thumbnailAt(layout, layout.width + 1, 20)).toBeNull();
    expect(thumbnailAt(layout, 40, layout.height + 1)).toBeNull();
  });
});

describe("selectionRect", () => {
  const layout = overviewLayout(3, 4, 8, 400, { gap: 4, left: 30, top: 16, maxCell: 40 });
  it("outlines one thumbnail, a layer's row, or the rows of a rollout", () => {
    expect(selectionRect(layout, 1, 2, "head")).toEqual({ x: 30 + 88, y: 16 + 44, width: 44, height: 44 });
    expect(selectionRect(layout, 1, 2, "mean")).toEqual({ x: 30, y: 16 + 44, width: 176, height: 44 });
    expect(selectionRect(layout, 2, 0, "rollout")).toEqual({ x: 30, y: 16, width: 176, height: 132 });
    expect(selectionRect(layout, 3, 0, "head")).toBeNull();
    expect(selectionRect(layout, 0, 4, "head")).toBeNull();
  });
});

describe("normalisingTable", () => {
  it("maps each thumbnail's largest value to the top code", () => {
    // vmin 0, vmax 1: code 127 is 0.5; a thumbnail whose maximum is 0.5 must reach code 254.
    const table = normalisingTable(new Uint8Array([0, 64, 127]), { vmin: 0, vmax: 1 });
    expect(table[127]).toBe(254);
    expect(table[64]).toBe(Math.round((64 / 127) * 254));
    expect(table[0]).toBe(0);
    expect(table[255]).toBe(255);
  });

  it("divides values, not codes, when vmin is above zero", () => {
    // vmin 0.2, vmax 1.2: code 254 is 1.2, code 0 is 0.2 -> 0.2 / 1.2 of the top.
    const table = normalisingTable(new Uint8Array([0, 254]), { vmin: 0.2, vmax: 1.2 });
    expect(table[254]).toBe(254);
    expect(table[0]).toBe(Math.round((0.2 / 1.2) * 254));
  });

  it("leaves non-finite cells and all-zero thumbnails alone", () => {
    const zeros = normalisingTable(new Uint8Array([0, 0, 255]), { vmin: 0, vmax: 1 });
    expect(zeros[0]).toBe(0);
    expect(zeros[255]).toBe(255);
  });
});

describe("paintThumbnails", () => {
  it("paints every thumbnail in place, each normalised on its own", () => {
    const layout = overviewLayout(2, 3, 2, 200, { gap: 2, left: 4, top: 4, maxCell: 4, minCell: 1 });
    expect(layout.cell).toBe(4);
    const plane = 4;
    const codes = new Uint8Array(2 * 3 * plane);
    for (let t = 0; t < 6; t++) codes.set([10 * (t + 1), 0, 0, 5 * (t + 1)], t * plane);
    const pixels = new Uint8ClampedArray(layout.width * layout.height * 4);
    const painted = paintThumbnails(pixels, layout.width, layout.height, 1, layout, codes, { vmin: 0, vmax: 1 }, RAMP);
    expect(painted).toBe(6);
    const red = (x: number, y: number): number => pixels[(y * layout.width + x) * 4];
    const alpha = (x: number, y: number): number => pixels[(y * layout.width + x) * 4 + 3];
    for (let layer = 0; layer < 2; layer++) {
      for (let head = 0; head < 3; head++) {
        const { x, y } = thumbnailOrigin(layout, layer, head);
        // Top-left data cell is the thumbnail's maximum: full brightness whatever its raw code.
        expect(red(x, y)).toBe(254);
        expect(red(x + 1, y + 1)).toBe(254);
        // Bottom-right cell holds half of the maximum.
        expect(red(x + 3, y + 3)).toBe(127);
        expect(red(x + 2, y)).toBe(0);
      }
    }
    // Label margin stays transparent.
    expect(alpha(0, 0)).toBe(0);
  });

  it("scales into device pixels", () => {
    const layout = overviewLayout(1, 1, 2, 100, { gap: 2, left: 4, top: 4, maxCell: 4, minCell: 1 });
    const ratio = 2;
    const w = layout.width * ratio;
    const h = layout.height * ratio;
    const pixels = new Uint8ClampedArray(w * h * 4);
    paintThumbnails(pixels, w, h, ratio, layout, new Uint8Array([254, 0, 0, 0]), { vmin: 0, vmax: 1 }, RAMP);
    const { x, y } = thumbnailOrigin(layout, 0, 0);
    const red = (px: number, py: number): number => pixels[(py * w + px) * 4];
    // The first data cell covers 4 x 4 device pixels.
    expect(red(x * 2 + 3, y * 2 + 3)).toBe(254);
    expect(red(x * 2 + 4, y * 2)).toBe(0);
  });

  it("paints nothing when the codes are shorter than the shape", () => {
    const layout = overviewLayout(2, 2, 2, 100);
    const pixels = new Uint8ClampedArray(layout.width * layout.height * 4);
    expect(paintThumbnails(pixels, layout.width, layout.height, 1, layout, new Uint8Array(3), { vmin: 0, vmax: 1 }, RAMP)).toBe(0);
  });
});
