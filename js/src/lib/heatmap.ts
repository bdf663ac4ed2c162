// Heatmap canvas component: a [H, W] payload painted through a colour lookup table at its native size,
// scaled up without smoothing (each data pixel stays a crisp square), with a colorbar and a tooltip that
// reads the value under the mouse. Also draws [3, H, W] payloads as colour images.

import { lutWords, NON_FINITE_RGB } from "./colormap";
import {
  as2d,
  describeValue,
  formatNumber,
  MAX_CODE,
  NON_FINITE_CODE,
  toCodes,
  type Meta,
  type Payload,
} from "./decode";
import { fitSize, type Size } from "./layout";
import { Tooltip } from "./tooltip";

/** Sizes a canvas's backing store for the screen's pixel ratio; setting width/height clears it. */
export function sizeCanvas(canvas: HTMLCanvasElement, css: Size): void {
  const ratio = globalThis.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(css.width * ratio));
  const height = Math.max(1, Math.round(css.height * ratio));
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  canvas.style.width = `${css.width}px`;
  canvas.style.height = `${css.height}px`;
}

/** Writes one RGBA pixel per code: a single 32-bit store per element. */
export function paintCodes(target: Uint8ClampedArray, codes: Uint8Array, lut: Uint8ClampedArray): void {
  const words = lutWords(lut);
  const pixels = new Uint32Array(target.buffer, target.byteOffset, codes.length);
  for (let i = 0; i < codes.length; i++) pixels[i] = words[codes[i]];
}

/**
 * Screen intensity (0..255) of each code of an RGB payload. Values already in [0, 1] or [0, 255] are shown
 * as they are, like matplotlib's imshow; anything else (a normalized network input) is stretched from
 * vmin..vmax over all three channels together, which keeps the colour balance.
 */
export function rgbIntensities(meta: Meta): Uint8ClampedArray {
  const { vmin, vmax } = meta;
  let low = vmin;
  let high = vmax;
  if (vmin >= 0 && vmax <= 1) [low, high] = [0, 1];
  else if (vmin >= 0 && vmax <= 255) [low, high] = [0, 255];
  const table = new Uint8ClampedArray(256);
  const step = (vmax - vmin) / MAX_CODE;
  for (let code = 0; code <= MAX_CODE; code++) {
    const value = vmin + code * step;
    table[code] = high > low ? Math.round(((value - low) / (high - low)) * 255) : 0;
  }
  return table;
}

/** Paints a [3, H, W] payload (channel-first) into RGBA pixels; a non-finite channel makes the pixel magenta. */
export function paintRgb(target: Uint8ClampedArray, codes: Uint8Array, plane: number, meta: Meta): void {
  const intensity = rgbIntensities(meta);
  const [nr, ng, nb] = NON_FINITE_RGB;
  for (let i = 0, j = 0; i < plane; i++, j += 4) {
    const r = codes[i];
    const g = codes[i + plane];
    const b = codes[i + 2 * plane];
    const bad = r === NON_FINITE_CODE || g === NON_FINITE_CODE || b === NON_FINITE_CODE;
    target[j] = bad ? nr : intensity[r];
    target[j + 1] = bad ? ng : intensity[g];
    target[j + 2] = bad ? nb : intensity[b];
    target[j + 3] = 255;
  }
}

/** The "NaN: n, +Inf: n, -Inf: n" line, or "" when everything was finite. */
export function nonFiniteSummary(meta: Meta): string {
  if (meta.nan_count + meta.posinf_count + meta.neginf_count === 0) return "";
  return `NaN: ${meta.nan_count}, +Inf: ${meta.posinf_count}, -Inf: ${meta.neginf_count}`;
}

/** A horizontal colour scale with vmin / vmax labels (and 0 in the middle for symmetric data). */
export class Colorbar {
  readonly el: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly low: HTMLSpanElement;
  private readonly middle: HTMLSpanElement;
  private readonly high: HTMLSpanElement;
  private readonly nonFinite: HTMLDivElement;
  private drawnLut: Uint8ClampedArray | null = null;

  constructor() {
    this.el = document.createElement("div");
    this.el.className = "mvz-colorbar";
    this.canvas = document.createElement("canvas");
    this.canvas.width = MAX_CODE + 1;
    this.canvas.height = 1;
    const labels = document.createElement("div");
    labels.className = "mvz-colorbar-labels";
    this.low = document.createElement("span");
    this.middle = document.createElement("span");
    this.high = document.createElement("span");
    labels.append(this.low, this.middle, this.high);
    this.nonFinite = document.createElement("div");
    this.nonFinite.className = "mvz-nonfinite";
    this.nonFinite.hidden = true;
    this.el.append(this.canvas, labels, this.nonFinite);
  }

  update(meta: Meta, lut: Uint8ClampedArray, width: number): void {
    this.canvas.style.width = `${width}px`;
    this.el.style.width = `${width}px`;
    if (this.drawnLut !== lut) {
      const context = this.canvas.getContext("2d");
      if (context !== null) {
        const image = context.createImageData(MAX_CODE + 1, 1);
        const ramp = new Uint8Array(MAX_CODE + 1).map((_, code) => code);
        paintCodes(image.data, ramp, lut);
        context.putImageData(image, 0, 0);
        this.drawnLut = lut;
      }
    }
    this.low.textContent = formatNumber(meta.vmin);
    this.high.textContent = formatNumber(meta.vmax);
    this.middle.textContent = meta.scale === "symmetric" ? "0" : "";
    const summary = nonFiniteSummary(meta);
    this.nonFinite.textContent = summary;
    this.nonFinite.hidden = summary === "";
  }
}

export interface HeatmapOptions {
  /** Largest display size in CSS pixels. */
  maxWidth: number;
  maxHeight: number;
  /** Flat maps ([1, L]) are stretched to at least this many CSS pixels high. */
  minHeight?: number;
  colorbar?: boolean;
  /** Hover text of a map cell from its value's text (default "row r, col c: value"). */
  describe?: (row: number, col: number, value: string) => string;
}

/** One payload drawn large, with hover readout and an optional colorbar. */
export class Heatmap {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly options: HeatmapOptions;
  private readonly source: HTMLCanvasElement;
  private readonly tooltip: Tooltip;
  private readonly colorbar: Colorbar | null;
  private image: ImageData | null = null;
  private payload: Payload | null = null;
  private rgb = false;
  private rows = 0;
  private cols = 0;
  // Last pointer position: CSS pixels for placing the tooltip, fractions of the canvas for the lookup.
  private pointer: { x: number; y: number; fx: number; fy: number } | null = null;

  constructor(options: HeatmapOptions) {
    this.options = options;
    this.el = document.createElement("div");
    this.el.className = "mvz-heatmap";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mvz-canvas";
    // Native-size picture, never attached: the visible canvas is a scaled copy of it.
    this.source = document.createElement("canvas");
    this.el.appendChild(this.canvas);
    this.colorbar = options.colorbar ? new Colorbar() : null;
    if (this.colorbar) this.el.appendChild(this.colorbar.el);
    this.tooltip = new Tooltip(this.el);
    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
  }

  /** Draws a map through a colour table; [H, W], with leading dimensions stacked as rows. */
  drawMap(payload: Payload, lut: Uint8ClampedArray): void {
    const [rows, cols] = as2d(payload.shape);
    const pixels = this.prepare(rows, cols);
    if (pixels !== null) paintCodes(pixels.data, toCodes(payload), lut);
    this.finish(payload, false);
    this.colorbar?.update(payload.meta, lut, this.displayWidth());
  }

  /** Draws a [3, H, W] payload as a colour image. */
  drawRgb(payload: Payload): void {
    const [, rows, cols] = payload.shape;
    const pixels = this.prepare(rows, cols);
    if (pixels !== null) paintRgb(pixels.data, toCodes(payload), rows * cols, payload.meta);
    this.finish(payload, true);
  }

  clear(): void {
    this.payload = null;
    this.canvas.getContext("2d")?.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.tooltip.hide();
  }

  destroy(): void {
    this.canvas.removeEventListener("pointermove", this.onPointerMove);
    this.canvas.removeEventListener("pointerleave", this.onPointerLeave);
    this.payload = null;
    this.image = null;
  }

  private displayWidth(): number {
    return parseFloat(this.canvas.style.width) || 0;
  }

  // Returns the reusable native-size ImageData, reallocated only when the shape changes.
  private prepare(rows: number, cols: number): ImageData | null {
    this.rows = rows;
    this.cols = cols;
    if (rows === 0 || cols === 0) return null;
    if (this.image === null || this.image.width !== cols || this.image.height !== rows) {
      this.source.width = cols;
      this.source.height = rows;
      this.image = new ImageData(cols, rows);
    }
    return this.image;
  }

  private finish(payload: Payload, rgb: boolean): void {
    this.payload = payload;
    this.rgb = rgb;
    const { maxWidth, maxHeight, minHeight = 0 } = this.options;
    const size = fitSize(this.rows, this.cols, maxWidth, maxHeight, minHeight);
    sizeCanvas(this.canvas, size);
    const context = this.canvas.getContext("2d");
    if (context === null || this.image === null || this.rows === 0 || this.cols === 0) return;
    this.source.getContext("2d")?.putImageData(this.image, 0, 0);
    // Nearest-neighbour when enlarging keeps data pixels square; smoothing only helps when shrinking.
    context.imageSmoothingEnabled = size.width < this.cols;
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.drawImage(this.source, 0, 0, this.canvas.width, this.canvas.height);
    if (this.pointer !== null) this.showValue();
  }

  private showValue(): void {
    const payload = this.payload;
    const pointer = this.pointer;
    if (payload === null || pointer === null || this.rows === 0 || this.cols === 0) {
      this.tooltip.hide();
      return;
    }
    const col = Math.min(this.cols - 1, Math.max(0, Math.floor(pointer.fx * this.cols)));
    const row = Math.min(this.rows - 1, Math.max(0, Math.floor(pointer.fy * this.rows)));
    const index = row * this.cols + col;
    let value: string;
    if (this.rgb) {
      const plane = this.rows * this.cols;
      const [r, g, b] = [0, 1, 2].map((channel) => describeValue(payload, index + channel * plane));
      value = `R ${r}, G ${g}, B ${b}`;
    } else {
      value = describeValue(payload, index);
    }
    const describe = this.rgb ? undefined : this.options.describe;
    this.tooltip.show(
      describe ? describe(row, col, value) : `row ${row}, col ${col}: ${value}`,
      this.canvas.offsetLeft + pointer.x,
      this.canvas.offsetTop + pointer.y,
    );
  }

  private readonly onPointerMove = (event: PointerEvent): void => {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    this.pointer = { x, y, fx: x / rect.width, fy: y / rect.height };
    this.showValue();
  };

  private readonly onPointerLeave = (): void => {
    this.pointer = null;
    this.tooltip.hide();
  };
}
