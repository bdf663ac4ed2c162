// Pure pieces of the Attention head view (no DOM): one colour per head, the key indices of the top-k
// lines payload (uint16 little-endian), and the lines to draw, batched by head and opacity so that the
// canvas draws them in one pass with one stroke per batch.

import type { Payload } from "./decode";

export type Rgb = readonly [number, number, number];

// Categorical colours that stay apart from each other on light and dark backgrounds.
const PALETTE: readonly Rgb[] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
  [0, 0, 128],
  [128, 128, 0],
];

function hslToRgb(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** The colour of head `head`: a fixed palette for the first twelve, golden-angle hues after them. */
export function headColor(head: number): Rgb {
  if (head >= 0 && head < PALETTE.length) return PALETTE[head];
  return hslToRgb((Math.max(0, head) * 137.508) % 360, 0.65, 0.45);
}

export function cssColor(rgb: Rgb, alpha = 1): string {
  return alpha >= 1 ? `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})` : `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})`;
}

/** Reads `size` uint16 little-endian key indices (any byte offset, any host byte order). */
export function readKeys(data: unknown, size: number): Uint16Array | null {
  if (!ArrayBuffer.isView(data)) return null;
  if (data.byteLength !== size * 2) {
    throw new Error(`lines_keys has ${data.byteLength} bytes; ${size * 2} expected (uint16 per line)`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const keys = new Uint16Array(size);
  for (let i = 0; i < size; i++) keys[i] = view.getUint16(i * 2, true);
  return keys;
}

export interface LineBatch {
  head: number;
  /** Opacity of every line of the batch, in (0, 1]. */
  alpha: number;
  /** Pairs of (query, key) token indices. */
  pairs: number[];
}

export interface LineOptions {
  /** Heads to draw. */
  shown: readonly number[];
  /** Only the lines of this query (hover); null for all. */
  query?: number | null;
  /** Opacity levels: lines are grouped by head and by their opacity rounded to one of these levels. */
  levels?: number;
  /** Lines fainter than this are left out. */
  minAlpha?: number;
  /** Only lines with an end in these rows (inclusive), the rows scrolled into view; null for all. */
  rows?: readonly [number, number] | null;
}

/**
 * Lines of a [heads, length, k] top-k payload with its key indices. A line's opacity is its weight over
 * the largest weight of the payload (so the strongest line of the layer is opaque). Batches come out by
 * head, faint before strong, so strong lines are drawn on top. With `rows`, a line whose two ends are
 * both outside those rows is left out: in a long scrolled sequence only what touches the view is drawn.
 */
export function lineBatches(weights: Payload, keys: Uint16Array, options: LineOptions): LineBatch[] {
  const [heads, length, k] = weights.shape.length === 3 ? weights.shape : [0, 0, 0];
  const levels = Math.max(1, options.levels ?? 16);
  const minAlpha = options.minAlpha ?? 0.02;
  const peak = weights.meta.vmax;
  const query = options.query ?? null;
  const [low, high] = options.rows ?? [0, Infinity];
  const batches: LineBatch[] = [];
  if (!(peak > 0) || keys.length < heads * length * k) return batches;
  const shown = [...new Set(options.shown)].filter((h) => h >= 0 && h < heads).sort((a, b) => a - b);
  for (const head of shown) {
    const byLevel: number[][] = Array.from({ length: levels }, () => []);
    const first = query === null ? 0 : Math.max(0, Math.min(length, query));
    const last = query === null ? length : Math.min(length, first + 1);
    for (let q = first; q < last; q++) {
      for (let j = 0; j < k; j++) {
        const index = (head * length + q) * k + j;
        const value = weights.value(index);
        if (!(value > 0)) continue;
        const alpha = Math.min(1, value / peak);
        if (alpha < minAlpha) continue;
        const key = keys[index];
        if (key >= length) continue;
        if ((q < low || q > high) && (key < low || key > high)) continue;
        byLevel[Math.min(levels - 1, Math.floor(alpha * levels))].push(q, key);
      }
    }
    byLevel.forEach((pairs, level) => {
      if (pairs.length > 0) batches.push({ head, alpha: (level + 1) / levels, pairs });
    });
  }
  return batches;
}

/** Number of lines in a list of batches. */
export function lineCount(batches: readonly LineBatch[]): number {
  return batches.reduce((sum, batch) => sum + batch.pairs.length / 2, 0);
}

/** Vertical centre of token row `index` (CSS pixels), rows of `rowHeight` from `top`. */
export function rowCenter(index: number, rowHeight: number, top = 0): number {
  return top + (index + 0.5) * rowHeight;
}

/** Token row under a y position, or -1 outside the `length` rows. */
export function rowAt(y: number, rowHeight: number, length: number): number {
  if (rowHeight <= 0 || y < 0) return -1;
  const row = Math.floor(y / rowHeight);
  return row < length ? row : -1;
}

/** Toggles `head` in a list of shown heads; the result is sorted and has no repeats. */
export function toggleHead(shown: readonly number[], head: number): number[] {
  const set = new Set(shown);
  if (set.has(head)) set.delete(head);
  else set.add(head);
  return [...set].sort((a, b) => a - b);
}
