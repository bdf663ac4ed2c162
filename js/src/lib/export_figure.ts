// A static picture of a bqplot Figure for the static export: the snapshot modelviz_widgets/export.py takes
// of its marks, scales and axes, laid out as plain SVG shapes. Pure data in, shapes out (no DOM here); the
// export runtime turns the shapes into elements with createElementNS and textContent.

import { getLut } from "./colormap";
import { formatNumber } from "./decode";

export interface ScaleSpec {
  type: string;
  min?: number | null;
  max?: number | null;
  domain?: Array<string | number>;
  scheme?: string;
  colors?: string[];
}

export interface AxisSpec {
  scale: string;
  side?: string;
  label?: string;
  num_ticks?: number | null;
  tick_rotate?: number;
  color_axis?: boolean;
}

export interface MarkSpec {
  type: string;
  visible?: boolean;
  x?: unknown[];
  y?: unknown[];
  color?: Array<number | null> | null;
  colors?: string[];
  opacities?: number[];
  labels?: string[];
  display_legend?: boolean;
  line_style?: string;
  stroke_width?: number;
  default_size?: number;
  selected?: number[] | null;
  scales: Record<string, string>;
  padding?: number;
}

export interface FigureSpec {
  title?: string;
  width?: number;
  height?: number;
  margin?: Partial<Record<"top" | "bottom" | "left" | "right", number>>;
  legend_location?: string;
  scales: Record<string, ScaleSpec>;
  axes: AxisSpec[];
  marks: MarkSpec[];
}

/** One SVG element: its tag, attributes, and text (set with textContent). */
export interface Shape {
  tag: "rect" | "line" | "path" | "circle" | "text" | "g";
  attrs: Record<string, string | number>;
  text?: string;
  children?: Shape[];
  /** What the shape shows, for tests and the DOM: "mark", "axis", "title", "legend", "note". */
  role?: string;
}

export interface FigureLayout {
  width: number;
  height: number;
  shapes: Shape[];
}

const DEFAULT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
const FALLBACK = { top: 60, bottom: 60, left: 60, right: 60 };

function finite(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** Numbers of a possibly nested list, flattened. */
export function flatNumbers(values: unknown): number[] {
  if (!Array.isArray(values)) return [];
  const out: number[] = [];
  for (const value of values) {
    if (Array.isArray(value)) out.push(...flatNumbers(value));
    else if (finite(value)) out.push(value);
  }
  return out;
}

/** Rows of a Lines mark's y: one row per curve. */
function rows(values: unknown): unknown[][] {
  if (!Array.isArray(values) || values.length === 0) return [];
  return Array.isArray(values[0]) ? (values as unknown[][]) : [values];
}

/** Round tick values inside [lo, hi] (about `count` of them, steps of 1, 2 or 5 times a power of 10). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo) || !Number.isFinite(lo) || !Number.isFinite(hi)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  // The step nearest the raw one (on a log scale) among 1, 2, 5 and 10 times the power.
  const e = raw / power;
  const step = (e >= Math.sqrt(50) ? 10 : e >= Math.sqrt(10) ? 5 : e >= Math.sqrt(2) ? 2 : 1) * power;
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step); i * step <= hi + step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** The [min, max] a linear scale spans: its fixed ends, else the data's range (never empty). */
export function linearDomain(scale: ScaleSpec, values: number[], includeZero = false): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (includeZero) {
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  if (finite(scale.min)) lo = scale.min;
  if (finite(scale.max)) hi = scale.max;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi <= lo) return [lo - 0.5, hi + 0.5];
  return [lo, hi];
}

function parseHex(color: string): [number, number, number] | null {
  const match = /^#([0-9a-f]{6})$/i.exec(color.trim());
  if (match === null) return null;
  const n = parseInt(match[1], 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function hex(rgb: readonly number[]): string {
  return `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, "0")).join("")}`;
}

/** The colour of `value` on a colour scale spanning `domain`: its colour list interpolated, else viridis. */
export function colorOf(scale: ScaleSpec, domain: [number, number], value: number): string {
  const span = domain[1] - domain[0];
  const t = Math.min(1, Math.max(0, span > 0 ? (value - domain[0]) / span : 0));
  const stops = (scale.colors ?? []).map(parseHex);
  if (stops.length > 0 && stops.every((s) => s !== null)) {
    const list = stops as Array<[number, number, number]>;
    if (list.length === 1) return hex(list[0]);
    const at = t * (list.length - 1);
    const i = Math.min(list.length - 2, Math.floor(at));
    const f = at - i;
    return hex(list[i].map((c, k) => c + (list[i + 1][k] - c) * f));
  }
  const lut = getLut("viridis");
  const code = Math.round(t * 254) * 4;
  return hex([lut[code], lut[code + 1], lut[code + 2]]);
}

interface Axis1d {
  /** Pixel of a data value (number, or category for ordinal scales). */
  at(value: unknown): number;
  /** Width of one category band (ordinal), else 0. */
  band: number;
  ticks: Array<{ value: unknown; label: string }>;
}

function makeAxis(
  scale: ScaleSpec | undefined,
  values: unknown[],
  range: [number, number],
  ticks: number,
  zero = false,
): Axis1d {
  if (scale?.type === "ordinal") {
    const domain = scale.domain && scale.domain.length > 0 ? scale.domain : [...new Set(values.map(String))];
    const band = (range[1] - range[0]) / Math.max(1, domain.length);
    const index = new Map(domain.map((d, i) => [String(d), i]));
    return {
      at: (v) => range[0] + ((index.get(String(v)) ?? 0) + 0.5) * band,
      band: Math.abs(band),
      ticks: domain.map((d) => ({ value: d, label: String(d) })),
    };
  }
  const [lo, hi] = linearDomain(scale ?? { type: "linear" }, flatNumbers(values), zero);
  const at = (v: unknown): number => range[0] + ((Number(v) - lo) / (hi - lo)) * (range[1] - range[0]);
  return { at, band: 0, ticks: niceTicks(lo, hi, ticks).map((t) => ({ value: t, label: formatNumber(t) })) };
}

/** The shapes of a figure snapshot. Unknown mark types are named in a note instead of left out. */
export function layoutFigure(spec: FigureSpec): FigureLayout {
  const width = finite(spec.width) && spec.width > 0 ? spec.width : 480;
  const height = finite(spec.height) && spec.height > 0 ? spec.height : 360;
  const m = { ...FALLBACK, ...(spec.margin ?? {}) };
  const plot = { left: m.left, right: width - m.right, top: m.top, bottom: height - m.bottom };
  const shapes: Shape[] = [];
  const marks = (spec.marks ?? []).filter((mark) => mark.visible !== false);

  // Every value each scale sees across the marks, so shared scales span all of them.
  const seen = new Map<string, unknown[]>();
  const zero = new Set<string>();
  for (const mark of marks) {
    for (const dim of ["x", "y", "color"] as const) {
      const key = mark.scales?.[dim];
      if (key === undefined) continue;
      const list = seen.get(key) ?? [];
      const values = dim === "color" ? (mark.color ?? []) : (mark[dim] ?? []);
      list.push(...(Array.isArray(values) ? values.flat() : []));
      seen.set(key, list);
      if (mark.type === "Bars" && dim === "y") zero.add(key);
    }
  }
  const axesX = new Map<string, Axis1d>();
  const axesY = new Map<string, Axis1d>();
  const ticksOf = (key: string): number => spec.axes.find((a) => a.scale === key)?.num_ticks ?? 5;
  const xAxis = (key: string): Axis1d => {
    let axis = axesX.get(key);
    if (axis === undefined) {
      axis = makeAxis(spec.scales[key], seen.get(key) ?? [], [plot.left, plot.right], ticksOf(key));
      axesX.set(key, axis);
    }
    return axis;
  };
  const yAxis = (key: string): Axis1d => {
    let axis = axesY.get(key);
    if (axis === undefined) {
      axis = makeAxis(spec.scales[key], seen.get(key) ?? [], [plot.bottom, plot.top], ticksOf(key), zero.has(key));
      axesY.set(key, axis);
    }
    return axis;
  };
  const colorDomain = (key: string): [number, number] =>
    linearDomain(spec.scales[key] ?? { type: "color" }, flatNumbers(seen.get(key) ?? []));

  shapes.push({ tag: "rect", attrs: { x: 0, y: 0, width, height, fill: "white" } });
  const legend: Array<{ label: string; color: string; dashed: boolean }> = [];
  const unknown: string[] = [];

  for (const [index, mark] of marks.entries()) {
    const xs = mark.x ?? [];
    const x = xAxis(mark.scales.x ?? "");
    const y = yAxis(mark.scales.y ?? "");
    const colors = mark.colors && mark.colors.length > 0 ? mark.colors : [DEFAULT_COLORS[index % DEFAULT_COLORS.length]];
    const opacity = mark.opacities?.[0] ?? 1;
    const children: Shape[] = [];
    if (mark.type === "Lines") {
      for (const [row, ys] of rows(mark.y).entries()) {
        let d = "";
        let pen = "M";
        for (let i = 0; i < ys.length && i < xs.length; i++) {
          if (!finite(ys[i]) || !finite(xs[i])) {
            pen = "M";
            continue;
          }
          d += `${pen}${x.at(xs[i]).toFixed(1)},${y.at(ys[i]).toFixed(1)}`;
          pen = "L";
        }
        const color = colors[row % colors.length];
        const alpha = mark.opacities && mark.opacities.length > 0 ? mark.opacities[row % mark.opacities.length] : 1;
        const attrs: Record<string, string | number> = {
          d,
          fill: "none",
          stroke: color,
          "stroke-width": mark.stroke_width ?? 2,
          opacity: alpha,
        };
        if (mark.line_style === "dashed") attrs["stroke-dasharray"] = "6,4";
        if (mark.line_style === "dotted") attrs["stroke-dasharray"] = "2,3";
        children.push({ tag: "path", attrs });
        const label = mark.labels?.[row];
        if (mark.display_legend && label) legend.push({ label, color, dashed: mark.line_style === "dashed" });
      }
    } else if (mark.type === "Bars") {
      const ys = mark.y ?? [];
      const base = y.at(0);
      const numeric = flatNumbers(xs);
      const step = numeric.length > 1 ? Math.abs(x.at(numeric[1]) - x.at(numeric[0])) : (plot.right - plot.left) / 10;
      const spacing = x.band || step;
      const barWidth = Math.max(1, spacing * (1 - (mark.padding ?? 0.05)));
      const selected = new Set(mark.selected ?? []);
      for (let i = 0; i < xs.length && i < ys.length; i++) {
        if (!finite(ys[i])) continue;
        const top = y.at(ys[i]);
        const attrs: Record<string, string | number> = {
          x: (x.at(xs[i]) - barWidth / 2).toFixed(1),
          y: Math.min(top, base).toFixed(1),
          width: barWidth.toFixed(1),
          height: Math.abs(base - top).toFixed(1),
          fill: colors[colors.length === ys.length ? i : 0],
          opacity: selected.size > 0 && !selected.has(i) ? opacity * 0.55 : opacity,
        };
        if (selected.has(i)) Object.assign(attrs, { stroke: "black", "stroke-width": 2 });
        children.push({ tag: "rect", attrs });
      }
    } else if (mark.type === "Scatter") {
      const ys = mark.y ?? [];
      const radius = Math.sqrt((mark.default_size ?? 64) / Math.PI);
      const key = mark.scales.color;
      const domain = key ? colorDomain(key) : ([0, 1] as [number, number]);
      const selected = new Set(mark.selected ?? []);
      for (let i = 0; i < xs.length && i < ys.length; i++) {
        if (!finite(xs[i]) || !finite(ys[i])) continue;
        const value = mark.color?.[i];
        const fill = key && finite(value) ? colorOf(spec.scales[key], domain, value) : colors[0];
        const attrs: Record<string, string | number> = {
          cx: x.at(xs[i]).toFixed(1),
          cy: y.at(ys[i]).toFixed(1),
          r: radius.toFixed(1),
          fill,
          opacity,
        };
        if (selected.has(i)) Object.assign(attrs, { stroke: "#ff9800", "stroke-width": 3 });
        children.push({ tag: "circle", attrs });
      }
    } else {
      unknown.push(mark.type);
      continue;
    }
    shapes.push({ tag: "g", attrs: { "data-mv-mark": mark.type }, children, role: "mark" });
  }

  for (const axis of spec.axes ?? []) {
    if (axis.color_axis) continue;
    const side = axis.side ?? "bottom";
    const horizontal = side === "bottom" || side === "top";
    const scale = horizontal ? xAxis(axis.scale) : yAxis(axis.scale);
    const children: Shape[] = [];
    const pos = side === "bottom" ? plot.bottom : side === "top" ? plot.top : side === "left" ? plot.left : plot.right;
    children.push({
      tag: "line",
      attrs: horizontal
        ? { x1: plot.left, x2: plot.right, y1: pos, y2: pos, stroke: "#444" }
        : { x1: pos, x2: pos, y1: plot.top, y2: plot.bottom, stroke: "#444" },
    });
    const out = side === "bottom" || side === "right" ? 1 : -1;
    for (const tick of scale.ticks) {
      const p = scale.at(tick.value);
      const attrs: Record<string, string | number> = horizontal
        ? { x: p.toFixed(1), y: pos + out * 16, "text-anchor": "middle", "dominant-baseline": "middle" }
        : { x: pos + out * 6, y: p.toFixed(1), "text-anchor": out > 0 ? "start" : "end", "dominant-baseline": "middle" };
      if (horizontal && axis.tick_rotate) {
        Object.assign(attrs, { transform: `rotate(${axis.tick_rotate} ${attrs.x} ${attrs.y})`, "text-anchor": "end" });
      }
      children.push({ tag: "text", attrs: { ...attrs, "font-size": 10, fill: "#444" }, text: tick.label });
      children.push({
        tag: "line",
        attrs: horizontal
          ? { x1: p.toFixed(1), x2: p.toFixed(1), y1: pos, y2: pos + out * 5, stroke: "#444" }
          : { x1: pos, x2: pos + out * 5, y1: p.toFixed(1), y2: p.toFixed(1), stroke: "#444" },
      });
    }
    if (axis.label) {
      const attrs: Record<string, string | number> = horizontal
        ? { x: (plot.left + plot.right) / 2, y: pos + out * (axis.tick_rotate ? 62 : 34), "text-anchor": "middle" }
        : {
            x: 0,
            y: 0,
            "text-anchor": "middle",
            transform: `translate(${pos + out * 42} ${(plot.top + plot.bottom) / 2}) rotate(-90)`,
          };
      children.push({ tag: "text", attrs: { ...attrs, "font-size": 11, fill: "#222" }, text: axis.label });
    }
    shapes.push({ tag: "g", attrs: { "data-mv-axis": side }, children, role: "axis" });
  }

  if (spec.title) {
    const attrs = { x: width / 2, y: Math.max(14, m.top / 2), "text-anchor": "middle", "font-size": 13 };
    shapes.push({ tag: "text", attrs, text: spec.title, role: "title" });
  }
  if (legend.length > 0) {
    const right = (spec.legend_location ?? "top-right").includes("right");
    const x0 = right ? plot.right - 150 : plot.left + 8;
    const children: Shape[] = legend.flatMap((entry, i) => {
      const yy = plot.top + 12 + i * 16;
      const stroke = { stroke: entry.color, "stroke-width": 2.5 };
      const line: Shape = { tag: "line", attrs: { x1: x0, x2: x0 + 18, y1: yy, y2: yy, ...stroke } };
      if (entry.dashed) line.attrs["stroke-dasharray"] = "6,4";
      const attrs = { x: x0 + 24, y: yy, "dominant-baseline": "middle", "font-size": 11 };
      return [line, { tag: "text", attrs, text: entry.label } as Shape];
    });
    shapes.push({ tag: "g", attrs: { "data-mv-legend": "" }, children, role: "legend" });
  }
  if (unknown.length > 0) {
    const text = `static export: ${[...new Set(unknown)].join(", ")} marks are not drawn`;
    shapes.push({ tag: "text", attrs: { x: plot.left, y: height - 4, "font-size": 11, fill: "#b00" }, text, role: "note" });
  }
  return { width, height, shapes };
}
