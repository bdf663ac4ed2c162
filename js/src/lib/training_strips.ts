// Heat strips of a layer's distributions over time, like TensorBoard's distributions: x is the sample
// (one column per sampled step, oldest left), y the value, colour the count of a bin divided by the largest
// count of its column. Each sample's 32 bins span [-scale, scale] with its own (power-of-two) scale, so
// every bin is mapped onto one value axis shared by the strip:
//   - weights and biases: a linear axis over [-max scale, max scale];
//   - gradients, which span decades while training: a symmetric log axis (symlog), linear within
//     `floor` of zero and logarithmic beyond, `floor` being the narrowest bin held (smallest scale / 16),
//     so a column of small gradients stays readable next to one of large gradients.
// The geometry here is pure (tested in training_strips.test.ts); `drawStrips` paints it.

import { BINS, type RunHistory } from "./training_history";

export type AxisKind = "linear" | "symlog";

export interface ValueAxis {
  kind: AxisKind;
  /** Largest magnitude shown (top +max, bottom -max). */
  max: number;
  /** symlog: the half-width of the linear band around zero. */
  floor: number;
}

/** The axis for a set of histogram scales (NaN and non-positive ones skipped); null when none is finite. */
export function axisFor(scales: Iterable<number>, kind: AxisKind): ValueAxis | null {
  let max = 0;
  let min = Infinity;
  for (const s of scales) {
    if (!(s > 0) || !Number.isFinite(s)) continue;
    if (s > max) max = s;
    if (s < min) min = s;
  }
  if (max === 0) return null;
  return { kind, max, floor: min / (BINS / 2) };
}

/** Position of value `v` on the axis: -1 (bottom, -max) .. 1 (top, +max). */
export function toUnit(axis: ValueAxis, v: number): number {
  if (axis.kind === "linear") return Math.max(-1, Math.min(1, v / axis.max));
  const f = (x: number): number => Math.log1p(x / axis.floor);
  const u = f(Math.min(Math.abs(v), axis.max)) / f(axis.max);
  return v < 0 ? -u : u;
}

/** Pixel rows (0 = top) of the `BINS + 1` bin edges of a histogram of half-width `scale`, `height` tall. */
export function binEdgeRows(axis: ValueAxis, scale: number, height: number): Float64Array {
  const rows = new Float64Array(BINS + 1);
  for (let e = 0; e <= BINS; e++) {
    const value = -scale + (2 * scale * e) / BINS;
    rows[e] = ((1 - toUnit(axis, value)) / 2) * height;
  }
  return rows;
}

/**
 * For each of `width` pixel columns, the sample drawn there (-1: none). Samples get equal columns of at
 * most `maxColumn` pixels, oldest left; with more samples than pixels they are thinned evenly, keeping the
 * first and the newest.
 */
export function columnSamples(count: number, width: number, maxColumn = 24): Int32Array {
  const columns = new Int32Array(width).fill(-1);
  if (count <= 0 || width <= 0) return columns;
  if (count > width) {
    for (let x = 0; x < width; x++) columns[x] = width === 1 ? count - 1 : Math.round((x * (count - 1)) / (width - 1));
    return columns;
  }
  const perSample = Math.min(maxColumn, width / count);
  for (let x = 0; x < width; x++) {
    const i = Math.floor(x / perSample);
    columns[x] = i < count ? i : -1;
  }
  return columns;
}

/** The pixel column at the centre of sample `i` (the inverse of `columnSamples`). */
export function sampleX(i: number, count: number, width: number, maxColumn = 24): number {
  if (count > width) return width === 1 ? 0 : Math.round((i * (width - 1)) / (count - 1));
  const perSample = Math.min(maxColumn, width / Math.max(count, 1));
  return Math.min(width - 1, Math.floor((i + 0.5) * perSample));
}

/**
 * Intensities of one strip, `width * height` row-major, in [0, 1] (NaN: nothing there). Each column shows
 * the sample `columns[x]`; a bin covers the pixel rows between its edges, at least one row.
 */
export function stripIntensities(
  axis: ValueAxis,
  columns: Int32Array,
  height: number,
  countsOf: (sample: number) => ArrayLike<number>,
  scaleOf: (sample: number) => number,
): Float32Array {
  const width = columns.length;
  const out = new Float32Array(width * height).fill(NaN);
  let cachedSample = -2;
  const column = new Float32Array(height);
  for (let x = 0; x < width; x++) {
    const sample = columns[x];
    if (sample < 0) continue;
    if (sample !== cachedSample) {
      cachedSample = sample;
      column.fill(NaN);
      const scale = scaleOf(sample);
      if (scale > 0 && Number.isFinite(scale)) {
        const counts = countsOf(sample);
        let peak = 0;
        for (let b = 0; b < BINS; b++) peak = Math.max(peak, counts[b]);
        const edges = binEdgeRows(axis, scale, height);
        for (let b = 0; b < BINS; b++) {
          const value = peak > 0 ? counts[b] / peak : 0;
          // Bin b runs from value edge b (lower) to b + 1 (upper): rows edges[b + 1] .. edges[b].
          const top = Math.max(0, Math.min(height - 1, Math.floor(edges[b + 1])));
          const bottom = Math.max(top + 1, Math.min(height, Math.ceil(edges[b])));
          for (let y = top; y < bottom; y++) column[y] = Number.isNaN(column[y]) ? value : Math.max(column[y], value);
        }
      }
    }
    for (let y = 0; y < height; y++) out[y * width + x] = column[y];
  }
  return out;
}

/** The strips of one layer: the quantities present (finite scale in some sample), in display order. */
export function stripQuantities(history: RunHistory, layer: number): number[] {
  // Display order: weight, weight_grad, bias, bias_grad (sample order is weight, bias, weight_grad, bias_grad).
  return [0, 2, 1, 3].filter((q) => {
    for (let i = 0; i < history.sampleCount; i++) if (history.scale(i, layer, q) > 0) return true;
    return false;
  });
}

/** Gradients (quantities 2 and 3) get the symlog axis. */
export function axisKindOf(quantity: number): AxisKind {
  return quantity >= 2 ? "symlog" : "linear";
}
