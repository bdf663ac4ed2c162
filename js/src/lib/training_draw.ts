// Canvas painting of the training monitor: the heat strips of one layer (geometry in training_strips.ts)
// and the small log-scale curves of its gradient norm and update-to-weight ratio, one colour per run.
// Canvas pixels are CSS pixels; the text drawn here is numbers and fixed titles (layer names stay in DOM).

import { lutWords } from "./colormap";
import type { RunHistory } from "./training_history";
import {
  axisFor,
  axisKindOf,
  columnSamples,
  sampleX,
  stripIntensities,
  stripQuantities,
  toUnit,
  type ValueAxis,
} from "./training_strips";
import { formatStat } from "./training_table";

export const STRIP_WIDTH = 520;
export const STRIP_GUTTER = 56;
export const STRIP_HEIGHT = 60;
const STRIP_TITLE = 14;
const QUANTITY_TITLES = ["weight", "bias", "weight gradient", "bias gradient"];

export const RUN_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];

// The theme's text colour, read at most every two seconds per canvas (reading it forces a style recalc).
const inks = new WeakMap<HTMLCanvasElement, { colour: string; at: number }>();
function textColour(canvas: HTMLCanvasElement): string {
  const now = Date.now();
  const cached = inks.get(canvas);
  if (cached && now - cached.at < 2000) return cached.colour;
  const colour = (typeof getComputedStyle === "function" ? getComputedStyle(canvas).color : "") || "#444";
  inks.set(canvas, { colour, at: now });
  return colour;
}

function sized(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx?.clearRect(0, 0, width, height);
  return ctx;
}

/** Value labels at the top, middle and bottom of a strip. */
function axisLabels(ctx: CanvasRenderingContext2D, axis: ValueAxis, top: number, height: number): void {
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const x = STRIP_GUTTER - 4;
  ctx.fillText(formatStat(axis.max), x, top + 5);
  ctx.fillText("0", x, top + height / 2);
  ctx.fillText(formatStat(-axis.max), x, top + height - 5);
  if (axis.kind === "symlog") {
    // One more tick on each side, where a mid magnitude (geometric mean of floor and max) falls.
    const mid = Math.sqrt(axis.floor * axis.max);
    const y = ((1 - toUnit(axis, mid)) / 2) * height;
    if (y > 14 && y < height / 2 - 10) {
      ctx.fillText(formatStat(mid), x, top + y);
      ctx.fillText(formatStat(-mid), x, top + height - y);
    }
  }
}

/**
 * Paints the strips of layer `l` of `history` (samples oldest left) and a vertical line at held sample
 * `marked`. Returns the quantities drawn (none: the layer has no weights or biases).
 */
export function drawStrips(
  canvas: HTMLCanvasElement,
  history: RunHistory | undefined,
  l: number,
  marked: number,
  lut: Uint8ClampedArray,
): number[] {
  const quantities = history && l >= 0 ? stripQuantities(history, l) : [];
  const rows = Math.max(quantities.length, 1);
  const height = rows * (STRIP_HEIGHT + STRIP_TITLE);
  const ctx = sized(canvas, STRIP_WIDTH, height);
  if (ctx === null) return quantities;
  const ink = textColour(canvas);
  ctx.font = "10px sans-serif";
  ctx.fillStyle = ink;
  if (history === undefined || quantities.length === 0) {
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const what = history === undefined || history.sampleCount === 0 ? "no sampled steps yet" : "no weights or biases in this layer";
    ctx.fillText(what, STRIP_GUTTER, STRIP_TITLE + STRIP_HEIGHT / 2);
    return quantities;
  }
  const plotWidth = STRIP_WIDTH - STRIP_GUTTER;
  const count = history.sampleCount;
  const columns = columnSamples(count, plotWidth);
  const words = lutWords(lut);
  quantities.forEach((q, row) => {
    const top = row * (STRIP_HEIGHT + STRIP_TITLE) + STRIP_TITLE;
    const scales: number[] = [];
    for (let i = 0; i < count; i++) scales.push(history.scale(i, l, q));
    const kind = axisKindOf(q);
    const axis = axisFor(scales, kind);
    ctx.fillStyle = ink;
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText(`${QUANTITY_TITLES[q]}${kind === "symlog" ? " (symlog axis)" : ""}`, STRIP_GUTTER, top - 3);
    if (axis === null) return;
    const values = stripIntensities(axis, columns, STRIP_HEIGHT, (i) => history.counts(i, l, q), (i) => history.scale(i, l, q));
    const image = ctx.createImageData(plotWidth, STRIP_HEIGHT);
    const pixels = new Uint32Array(image.data.buffer);
    for (let p = 0; p < values.length; p++) {
      const v = values[p];
      // Empty bins stay transparent, so the strip's shape reads against the notebook background.
      pixels[p] = Number.isNaN(v) || v <= 0 ? 0 : words[Math.max(1, Math.min(254, Math.round(v * 254)))];
    }
    ctx.putImageData(image, STRIP_GUTTER, top);
    ctx.strokeStyle = "rgba(128, 128, 128, 0.5)";
    ctx.strokeRect(STRIP_GUTTER - 0.5, top - 0.5, plotWidth + 1, STRIP_HEIGHT + 1);
    ctx.fillStyle = ink;
    axisLabels(ctx, axis, top, STRIP_HEIGHT);
    if (marked >= 0 && marked < count) {
      const x = STRIP_GUTTER + sampleX(marked, count, plotWidth) + 0.5;
      ctx.strokeStyle = "#e53935";
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + STRIP_HEIGHT);
      ctx.stroke();
    }
  });
  return quantities;
}

export interface Series {
  xs: number[];
  ys: number[];
  colour: string;
}

/** Powers of ten around the finite positive values of `series` ([lo, hi] exponents), null when none. */
export function logExtent(series: readonly Series[]): [number, number] | null {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of series) {
    for (const y of s.ys) {
      if (!(y > 0) || !Number.isFinite(y)) continue;
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
  }
  if (lo === Infinity) return null;
  const a = Math.floor(Math.log10(lo));
  const b = Math.max(a + 1, Math.ceil(Math.log10(hi)));
  return [a + 0, b + 0]; // never -0
}

/** Vertical pixel of `y` in a plot `height` tall over decades [lo, hi] (top: hi); NaN for y <= 0. */
export function logRow(y: number, extent: [number, number], height: number): number {
  if (!(y > 0)) return NaN;
  const [lo, hi] = extent;
  return height * (1 - (Math.log10(y) - lo) / (hi - lo));
}

export const CURVE_WIDTH = 250;
export const CURVE_HEIGHT = 110;
const CURVE_GUTTER = 44;
const CURVE_TOP = 14;
const CURVE_BOTTOM = 14;

/** One small log-y plot at `left`; x runs over steps [x0, x1]; a dashed line marks step `mark`. */
export function drawCurvePlot(
  ctx: CanvasRenderingContext2D,
  left: number,
  title: string,
  series: readonly Series[],
  x0: number,
  x1: number,
  mark: number,
  ink: string,
): void {
  const width = CURVE_WIDTH - CURVE_GUTTER - 6;
  const height = CURVE_HEIGHT - CURVE_TOP - CURVE_BOTTOM;
  const px = left + CURVE_GUTTER;
  ctx.fillStyle = ink;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText(title, px, CURVE_TOP - 3);
  ctx.strokeStyle = "rgba(128, 128, 128, 0.5)";
  ctx.strokeRect(px - 0.5, CURVE_TOP - 0.5, width + 1, height + 1);
  const extent = logExtent(series);
  if (extent === null) {
    ctx.fillText("not measured", px + 6, CURVE_TOP + height / 2);
    return;
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(`1e${extent[1]}`, px - 4, CURVE_TOP + 4);
  ctx.fillText(`1e${extent[0]}`, px - 4, CURVE_TOP + height - 4);
  ctx.textBaseline = "top";
  ctx.fillText(String(x1), px + width, CURVE_TOP + height + 2);
  ctx.textAlign = "left";
  ctx.fillText(String(x0), px, CURVE_TOP + height + 2);
  const span = x1 > x0 ? x1 - x0 : 1;
  const xOf = (x: number): number => px + ((x - x0) / span) * width;
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < s.xs.length; i++) {
      const y = logRow(s.ys[i], extent, height);
      if (Number.isNaN(y)) {
        pen = false;
        continue;
      }
      const x = xOf(s.xs[i]);
      if (pen) ctx.lineTo(x, CURVE_TOP + y);
      else ctx.moveTo(x, CURVE_TOP + y);
      pen = true;
    }
    if (s.xs.length === 1 && pen) ctx.arc(xOf(s.xs[0]), CURVE_TOP + logRow(s.ys[0], extent, height), 1.5, 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.lineWidth = 1;
  if (mark >= x0 && mark <= x1) {
    const x = Math.round(xOf(mark)) + 0.5;
    ctx.strokeStyle = "#e53935";
    ctx.setLineDash([3, 2]);
    ctx.beginPath();
    ctx.moveTo(x, CURVE_TOP);
    ctx.lineTo(x, CURVE_TOP + height);
    ctx.stroke();
    ctx.setLineDash([]);
  }
}

/** Gradient norm and update ratio of the layer named `layer` in every run that has it. */
export function drawNorms(
  canvas: HTMLCanvasElement,
  runs: ReadonlyArray<{ history: RunHistory | undefined; layers: readonly string[] }>,
  layer: string,
  markStep: number,
): void {
  const ctx = sized(canvas, 2 * CURVE_WIDTH, CURVE_HEIGHT);
  if (ctx === null) return;
  const grads: Series[] = [];
  const ratios: Series[] = [];
  let x0 = Infinity;
  let x1 = -Infinity;
  runs.forEach(({ history, layers }, r) => {
    const l = layers.indexOf(layer);
    if (history === undefined || l < 0) return;
    const colour = RUN_COLOURS[r % RUN_COLOURS.length];
    const grad: Series = { xs: [], ys: [], colour };
    const ratio: Series = { xs: [], ys: [], colour };
    for (let i = 0; i < history.sampleCount; i++) {
      const step = history.sampleStep(i);
      x0 = Math.min(x0, step);
      x1 = Math.max(x1, step);
      grad.xs.push(step);
      grad.ys.push(history.norm(i, l, 2));
      ratio.xs.push(step);
      ratio.ys.push(history.updateRatio(i, l));
    }
    grads.push(grad);
    ratios.push(ratio);
  });
  if (x0 === Infinity) [x0, x1] = [0, 1];
  const ink = textColour(canvas);
  drawCurvePlot(ctx, 0, "gradient norm ‖∇W‖ (log)", grads, x0, x1, markStep, ink);
  drawCurvePlot(ctx, CURVE_WIDTH, "update / weight ‖ΔW‖/‖W‖ (log)", ratios, x0, x1, markStep, ink);
}
