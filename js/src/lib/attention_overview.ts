// Pure pieces of the Attention overview (no DOM): the layout of every layer x head thumbnail in one
// canvas (rows are layers, columns heads, labels on the left and on top), the hit test of a point, the
// outline of the selection, and the painting of all thumbnails into one RGBA buffer, each thumbnail
// normalised by its own maximum so that a faint head stays as readable as a sharp one.

import { lutWords } from "./colormap";
import { MAX_CODE, NON_FINITE_CODE, type Meta } from "./decode";

export interface OverviewLayout {
  layers: number;
  heads: number;
  /** Side of a thumbnail in data cells (the payload's last two dimensions). */
  side: number;
  /** Side of a thumbnail in CSS pixels. */
  cell: number;
  /** Space between thumbnails, wide enough for the selection outline. */
  gap: number;
  /** Room for the layer labels (left) and the head labels (top). */
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface OverviewOptions {
  gap?: number;
  left?: number;
  top?: number;
  /** Thumbnails are never drawn larger than this (CSS pixels). */
  maxCell?: number;
  /** Nor smaller than this: a very wide model scrolls sideways instead. */
  minCell?: number;
}

/**
 * Thumbnails of `side` data cells for `layers` x `heads`, fitting `maxWidth` CSS pixels. Enlarging uses a
 * whole-number factor so every data cell covers the same number of pixels.
 */
export function overviewLayout(
  layers: number,
  heads: number,
  side: number,
  maxWidth: number,
  options: OverviewOptions = {},
): OverviewLayout {
  const gap = options.gap ?? 4;
  const left = options.left ?? 30;
  const top = options.top ?? 16;
  const maxCell = options.maxCell ?? 64;
  const minCell = options.minCell ?? 12;
  if (layers <= 0 || heads <= 0 || side <= 0) {
    return { layers: 0, heads: 0, side: 0, cell: 0, gap, left, top, width: 0, height: 0 };
  }
  const room = Math.floor((maxWidth - left - gap * heads) / heads);
  let cell = Math.max(minCell, Math.min(maxCell, room));
  if (cell >= side) cell = side * Math.floor(cell / side);
  return {
    layers,
    heads,
    side,
    cell,
    gap,
    left,
    top,
    width: left + heads * (cell + gap),
    height: top + layers * (cell + gap),
  };
}

/** Top-left corner (CSS pixels) of the thumbnail of (layer, head). */
export function thumbnailOrigin(layout: OverviewLayout, layer: number, head: number): { x: number; y: number } {
  return {
    x: layout.left + head * (layout.cell + layout.gap) + layout.gap / 2,
    y: layout.top + layer * (layout.cell + layout.gap) + layout.gap / 2,
  };
}

/** The thumbnail under a point (CSS pixels from the canvas's top-left; a gap belongs to its thumbnail). */
export function thumbnailAt(layout: OverviewLayout, x: number, y: number): { layer: number; head: number } | null {
  if (layout.layers === 0) return null;
  const stride = layout.cell + layout.gap;
  const gx = x - layout.left;
  const gy = y - layout.top;
  if (gx < 0 || gy < 0) return null;
  const head = Math.floor(gx / stride);
  const layer = Math.floor(gy / stride);
  if (head >= layout.heads || layer >= layout.layers) return null;
  return { layer, head };
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * The outline of what the matrix shows: one thumbnail for a head, the layer's row for the mean of its
 * heads, rows 0..layer for the rollout through `layer`. Null when the selection is outside the grid.
 */
export function selectionRect(layout: OverviewLayout, layer: number, head: number, mode: string): Rect | null {
  if (layout.layers === 0 || layer < 0 || layer >= layout.layers) return null;
  const stride = layout.cell + layout.gap;
  const pad = layout.gap / 2;
  if (mode === "head") {
    if (head < 0 || head >= layout.heads) return null;
    const { x, y } = thumbnailOrigin(layout, layer, head);
    return { x: x - pad, y: y - pad, width: stride, height: stride };
  }
  const first = mode === "rollout" ? 0 : layer;
  return {
    x: layout.left,
    y: layout.top + first * stride,
    width: layout.heads * stride,
    height: (layer - first + 1) * stride,
  };
}

/**
 * Code remap of one thumbnail: 256 entries taking a payload code to the code of value / (the thumbnail's
 * largest value), so the thumbnail's maximum is the top of the colour map. Non-finite stays non-finite;
 * a thumbnail whose maximum is not positive maps everything to 0.
 */
export function normalisingTable(codes: Uint8Array, meta: Pick<Meta, "vmin" | "vmax">): Uint8Array {
  let top = -1;
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code !== NON_FINITE_CODE && code > top) top = code;
  }
  const table = new Uint8Array(256);
  table[NON_FINITE_CODE] = NON_FINITE_CODE;
  const step = (meta.vmax - meta.vmin) / MAX_CODE;
  const peak = meta.vmin + top * step;
  if (top < 0 || !(peak > 0)) return table;
  for (let code = 0; code <= MAX_CODE; code++) {
    const ratio = Math.max(0, (meta.vmin + code * step) / peak);
    table[code] = Math.min(MAX_CODE, Math.round(ratio * MAX_CODE));
  }
  return table;
}

/**
 * Paints every thumbnail of a [layers, heads, side, side] code array into `pixels` (RGBA, `pixelWidth` x
 * `pixelHeight`, `ratio` device pixels per CSS pixel), nearest-neighbour, each normalised by its own
 * maximum. Gaps and label margins stay transparent. Returns the number of thumbnails painted.
 */
export function paintThumbnails(
  pixels: Uint8ClampedArray,
  pixelWidth: number,
  pixelHeight: number,
  ratio: number,
  layout: OverviewLayout,
  codes: Uint8Array,
  meta: Pick<Meta, "vmin" | "vmax">,
  lut: Uint8ClampedArray,
): number {
  const { layers, heads, side, cell } = layout;
  const plane = side * side;
  if (layers === 0 || codes.length < layers * heads * plane) return 0;
  const words = lutWords(lut);
  const out = new Uint32Array(pixels.buffer, pixels.byteOffset, pixelWidth * pixelHeight);
  out.fill(0);
  const colour = new Uint32Array(256);
  let painted = 0;
  for (let layer = 0; layer < layers; layer++) {
    for (let head = 0; head < heads; head++) {
      const start = (layer * heads + head) * plane;
      const thumb = codes.subarray(start, start + plane);
      const table = normalisingTable(thumb, meta);
      for (let code = 0; code < 256; code++) colour[code] = words[table[code]];
      const { x, y } = thumbnailOrigin(layout, layer, head);
      const x0 = Math.round(x * ratio);
      const y0 = Math.round(y * ratio);
      const x1 = Math.min(pixelWidth, Math.round((x + cell) * ratio));
      const y1 = Math.min(pixelHeight, Math.round((y + cell) * ratio));
      const w = x1 - x0;
      const h = y1 - y0;
      if (w <= 0 || h <= 0) continue;
      // Source column of each device column, computed once per thumbnail.
      const columns = new Int32Array(w);
      for (let px = 0; px < w; px++) columns[px] = Math.min(side - 1, Math.floor((px * side) / w));
      for (let py = 0; py < h; py++) {
        const row = Math.min(side - 1, Math.floor((py * side) / h)) * side;
        const base = (y0 + py) * pixelWidth + x0;
        for (let px = 0; px < w; px++) out[base + px] = colour[thumb[row + columns[px]]];
      }
      painted++;
    }
  }
  return painted;
}
