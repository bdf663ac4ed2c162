// Colour lookup tables: 256 RGBA entries indexed by payload code. Codes 0..254 span [vmin, vmax];
// entry 255 is the colour of non-finite values. Tables are built once from a few control points.

import { MAX_CODE, NON_FINITE_CODE, type Scale } from "./decode";

export type ColormapName = "viridis" | "rdbu" | "gray";
/** The `colormap` trait: a table name, or "auto" to choose from the payload's scale. */
export type ColormapChoice = "auto" | ColormapName;

export const COLORMAP_CHOICES: readonly ColormapChoice[] = ["auto", "viridis", "rdbu", "gray"];

/** Non-finite values are magenta: absent from every map, so a NaN never passes for data. */
export const NON_FINITE_RGB: readonly [number, number, number] = [255, 0, 255];

type ControlPoint = readonly [position: number, r: number, g: number, b: number];

// Sequential, dark purple -> blue -> green -> yellow, lightness rising monotonically so that order reads
// the same in grayscale and for colour-blind readers (the property that makes viridis a good default).
const SEQUENTIAL: readonly ControlPoint[] = [
  [0.0, 68, 1, 84],
  [0.125, 71, 40, 120],
  [0.25, 62, 74, 137],
  [0.375, 49, 104, 142],
  [0.5, 38, 130, 142],
  [0.625, 31, 158, 137],
  [0.75, 53, 183, 121],
  [0.875, 110, 206, 88],
  [1.0, 253, 231, 37],
];

// Diverging: blue below zero, white at zero (code 127 = position 0.5), red above. For attributions red
// therefore means "pushes the target up", the convention of saliency tools.
const DIVERGING: readonly ControlPoint[] = [
  [0.0, 5, 48, 97],
  [0.2, 33, 102, 172],
  [0.35, 103, 169, 207],
  [0.45, 209, 229, 240],
  [0.5, 255, 255, 255],
  [0.55, 253, 219, 199],
  [0.65, 239, 138, 98],
  [0.8, 178, 24, 43],
  [1.0, 103, 0, 31],
];

const GRAY: readonly ControlPoint[] = [
  [0.0, 0, 0, 0],
  [1.0, 255, 255, 255],
];

const CONTROL_POINTS: Record<ColormapName, readonly ControlPoint[]> = {
  viridis: SEQUENTIAL,
  rdbu: DIVERGING,
  gray: GRAY,
};

/** Piecewise-linear interpolation between control points; t in [0, 1]. */
function sample(points: readonly ControlPoint[], t: number): [number, number, number] {
  let upper = 1;
  while (upper < points.length - 1 && points[upper][0] < t) upper++;
  const a = points[upper - 1];
  const b = points[upper];
  const f = b[0] > a[0] ? Math.min(1, Math.max(0, (t - a[0]) / (b[0] - a[0]))) : 0;
  return [a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f, a[3] + (b[3] - a[3]) * f];
}

function linearLight(channel: number): number {
  const s = channel / 255;
  return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
}

/** Relative luminance of an sRGB colour; CIE L* is an increasing function of it. */
function luminance(r: number, g: number, b: number): number {
  return 0.2126 * linearLight(r) + 0.7152 * linearLight(g) + 0.0722 * linearLight(b);
}

/**
 * Rounds an interpolated colour to 8 bits. With `floor` set, picks among the 8 neighbouring integer
 * colours the nearest one at least as light as `floor`: plain rounding of a segment where one channel
 * falls while another rises can make lightness dip by a hair, which breaks "lighter means larger".
 */
function quantize(color: [number, number, number], floor: number | null): [number, number, number] {
  const rounded = color.map(Math.round) as [number, number, number];
  if (floor === null || luminance(...rounded) >= floor) return rounded;
  let best: [number, number, number] | null = null;
  let bestDistance = Infinity;
  for (let corner = 0; corner < 8; corner++) {
    const candidate = color.map((c, i) => ((corner >> i) & 1 ? Math.ceil(c) : Math.floor(c))) as [
      number,
      number,
      number,
    ];
    if (luminance(...candidate) < floor) continue;
    const distance = candidate.reduce((sum, c, i) => sum + (c - color[i]) ** 2, 0);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best ?? rounded;
}

/**
 * Builds a 256-entry RGBA table (1024 bytes) from control points. `monotonic` keeps lightness
 * non-decreasing from code to code (for sequential maps whose control points already rise in lightness).
 */
export function buildLut(points: readonly ControlPoint[], monotonic = false): Uint8ClampedArray {
  const table = new Uint8ClampedArray(256 * 4);
  let previous: number | null = null;
  for (let code = 0; code <= MAX_CODE; code++) {
    const [r, g, b] = quantize(sample(points, code / MAX_CODE), monotonic ? previous : null);
    if (monotonic) previous = luminance(r, g, b);
    table.set([r, g, b, 255], code * 4);
  }
  table.set([...NON_FINITE_RGB, 255], NON_FINITE_CODE * 4);
  return table;
}

const cache = new Map<ColormapName, Uint8ClampedArray>();

/** The lookup table of a named map, built on first use and shared afterwards (treat as read-only). */
export function getLut(name: ColormapName): Uint8ClampedArray {
  let table = cache.get(name);
  if (table === undefined) {
    table = buildLut(CONTROL_POINTS[name], name !== "rdbu");
    cache.set(name, table);
  }
  return table;
}

/** Resolves the `colormap` trait for a payload: "auto" is red/blue for symmetric data, else viridis. */
export function resolveColormap(choice: string, scale: Scale): ColormapName {
  if (choice === "viridis" || choice === "rdbu" || choice === "gray") return choice;
  return scale === "symmetric" ? "rdbu" : "viridis";
}

export function pickLut(choice: string, scale: Scale): Uint8ClampedArray {
  return getLut(resolveColormap(choice, scale));
}

// Same bytes seen as one 32-bit word per entry, so a pixel is written with a single store. Reading and
// writing through host-order words keeps the RGBA byte order on any host.
const wordCache = new WeakMap<Uint8ClampedArray, Uint32Array>();

export function lutWords(table: Uint8ClampedArray): Uint32Array {
  let words = wordCache.get(table);
  if (words === undefined) {
    words = new Uint32Array(table.buffer, table.byteOffset, 256);
    wordCache.set(table, words);
  }
  return words;
}
