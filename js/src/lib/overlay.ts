// Overlay canvas: a signed map (attribution) drawn in the diverging colours over a picture (the input),
// with an opacity the user sets in the browser. Each pixel of the map is as opaque as its magnitude is
// large, so the input shows through where the map is near zero and red / blue cover it where it is strong.

import { getLut } from "./colormap";
import { MAX_CODE, MIDDLE_CODE, NON_FINITE_CODE, as2d, toCodes, type Payload } from "./decode";
import { paintCodes, paintRgb, sizeCanvas } from "./heatmap";
import { fitSize } from "./layout";

/** Alpha (0..255) of each code of a symmetric map: the square root of |value| / max, so weak values show. */
export function magnitudeAlpha(): Uint8ClampedArray {
  const table = new Uint8ClampedArray(256);
  const half = MAX_CODE - MIDDLE_CODE;
  for (let code = 0; code <= MAX_CODE; code++) {
    table[code] = Math.round(Math.sqrt(Math.min(1, Math.abs(code - MIDDLE_CODE) / half)) * 255);
  }
  table[NON_FINITE_CODE] = 255;
  return table;
}

const ALPHA = magnitudeAlpha();

/** Paints a symmetric map's codes through the red/blue table, with the magnitude as alpha. */
export function paintSigned(target: Uint8ClampedArray, codes: Uint8Array): void {
  paintCodes(target, codes, getLut("rdbu"));
  for (let i = 0, j = 3; i < codes.length; i++, j += 4) target[j] = ALPHA[codes[i]];
}

function imageOf(canvas: HTMLCanvasElement, rows: number, cols: number): ImageData {
  canvas.width = cols;
  canvas.height = rows;
  return new ImageData(cols, rows);
}

export interface OverlayOptions {
  maxWidth: number;
  maxHeight: number;
  minHeight?: number;
}

/** The input with the attribution blended over it; `setBlend` recomposes without decoding again. */
export class Overlay {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly base: HTMLCanvasElement;
  private readonly layer: HTMLCanvasElement;
  private hasBase = false;
  private hasLayer = false;
  private blend = 0.6;

  constructor(private readonly options: OverlayOptions) {
    this.el = document.createElement("div");
    this.el.className = "mvz-heatmap mvz-overlay";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mvz-canvas";
    this.el.appendChild(this.canvas);
    this.base = document.createElement("canvas");
    this.layer = document.createElement("canvas");
  }

  /** Draws `input` (gray, or RGB when its meta says so) and the signed `map` over it. */
  draw(input: Payload | null, map: Payload | null, blend: number): void {
    this.hasBase = false;
    if (input !== null) {
      const rgb = input.meta.rgb === true && input.shape.length === 3 && input.shape[0] === 3;
      const [rows, cols] = rgb ? [input.shape[1], input.shape[2]] : as2d(input.shape);
      if (rows > 0 && cols > 0) {
        const image = imageOf(this.base, rows, cols);
        if (rgb) paintRgb(image.data, toCodes(input), rows * cols, input.meta);
        else paintCodes(image.data, toCodes(input), getLut("gray"));
        this.base.getContext("2d")?.putImageData(image, 0, 0);
        this.hasBase = true;
      }
    }
    this.hasLayer = false;
    if (map !== null) {
      const [rows, cols] = as2d(map.shape);
      if (rows > 0 && cols > 0) {
        const image = imageOf(this.layer, rows, cols);
        paintSigned(image.data, toCodes(map));
        this.layer.getContext("2d")?.putImageData(image, 0, 0);
        this.hasLayer = true;
      }
    }
    this.setBlend(blend);
  }

  setBlend(blend: number): void {
    this.blend = Number.isFinite(blend) ? Math.min(1, Math.max(0, blend)) : 0.6;
    const source = this.hasLayer ? this.layer : this.hasBase ? this.base : null;
    if (source === null) return this.clear();
    const { maxWidth, maxHeight, minHeight = 0 } = this.options;
    const size = fitSize(source.height, source.width, maxWidth, maxHeight, minHeight);
    sizeCanvas(this.canvas, size);
    const context = this.canvas.getContext("2d");
    if (context === null) return;
    context.imageSmoothingEnabled = false;
    context.globalAlpha = 1;
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (this.hasBase) context.drawImage(this.base, 0, 0, this.canvas.width, this.canvas.height);
    if (this.hasLayer) {
      context.globalAlpha = this.blend;
      context.drawImage(this.layer, 0, 0, this.canvas.width, this.canvas.height);
      context.globalAlpha = 1;
    }
  }

  clear(): void {
    this.hasBase = false;
    this.hasLayer = false;
    this.canvas.getContext("2d")?.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }
}
