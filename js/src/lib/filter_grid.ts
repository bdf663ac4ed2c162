// Grid of small pictures in a given display order: a [N, h, w] payload through a colour table, or a
// [N, 3, h, w] payload as colour images. Like the channel mosaic, but cells can be RGB and each cell has
// a caller-supplied label (a filter's index and norm when the grid is sorted), shown on hover.

import { lutWords, NON_FINITE_RGB } from "./colormap";
import { describeValue, NON_FINITE_CODE, toCodes, type Payload } from "./decode";
import { rgbIntensities, sizeCanvas } from "./heatmap";
import { cellOrigin, mosaicHit, mosaicLayout, type MosaicLayout } from "./layout";
import { Tooltip } from "./tooltip";

const SELECTION_COLOR = "#ff9800";

/** Cells, rows and columns of a grid payload: [N, h, w], [N, 3, h, w] (rgb) or [N, L]. */
export function cellDims(shape: readonly number[], rgb: boolean): [number, number, number] {
  const count = shape[0] ?? 0;
  const w = shape[shape.length - 1] ?? 0;
  const first = rgb ? 2 : 1;
  let h = 1;
  for (let i = first; i < shape.length - 1; i++) h *= shape[i];
  return [count, h, w];
}

export interface FilterGridOptions {
  maxWidth: number;
}

export class FilterGrid {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  /** Called with the display position of a clicked cell. */
  onPick: ((position: number) => void) | null = null;
  /** Text naming the cell at a display position, for the tooltip. */
  label: (position: number) => string = (position) => `cell ${position}`;
  private readonly options: FilterGridOptions;
  private readonly sheet: HTMLCanvasElement;
  private readonly tooltip: Tooltip;
  private layout: MosaicLayout = mosaicLayout(0, 0, 0, 0);
  private payload: Payload | null = null;
  private rgb = false;
  private dims: [number, number, number] = [0, 0, 0];
  private selected = -1;

  constructor(options: FilterGridOptions) {
    this.options = options;
    this.el = document.createElement("div");
    this.el.className = "mvz-mosaic";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mvz-canvas mvz-clickable";
    this.sheet = document.createElement("canvas");
    this.el.appendChild(this.canvas);
    this.tooltip = new Tooltip(this.el);
    this.canvas.addEventListener("click", this.onClick);
    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
  }

  /** Paints every cell (through `lut`, or as colour when `lut` is null) and outlines `selected`. */
  draw(payload: Payload, lut: Uint8ClampedArray | null, selected: number): void {
    this.rgb = lut === null;
    this.payload = payload;
    this.dims = cellDims(payload.shape, this.rgb);
    const [count, h, w] = this.dims;
    this.layout = mosaicLayout(count, h, w, this.options.maxWidth);
    this.paintSheet(toCodes(payload), lut);
    this.selected = selected;
    this.composite();
  }

  /** Moves the outline to a display position without repainting. */
  select(position: number): void {
    if (position === this.selected) return;
    this.selected = position;
    this.composite();
  }

  clear(): void {
    this.payload = null;
    this.layout = mosaicLayout(0, 0, 0, 0);
    this.canvas.getContext("2d")?.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.tooltip.hide();
  }

  destroy(): void {
    this.canvas.removeEventListener("click", this.onClick);
    this.canvas.removeEventListener("pointermove", this.onPointerMove);
    this.canvas.removeEventListener("pointerleave", this.onPointerLeave);
    this.onPick = null;
    this.payload = null;
  }

  // Cell k occupies the native-size tile at (k % cols, k / cols) of a gap-free sheet.
  private paintSheet(codes: Uint8Array, lut: Uint8ClampedArray | null): void {
    const [count, h, w] = this.dims;
    const { cols, rows } = this.layout;
    if (count === 0 || h === 0 || w === 0) return;
    const sheetWidth = cols * w;
    this.sheet.width = sheetWidth;
    this.sheet.height = rows * h;
    const context = this.sheet.getContext("2d");
    if (context === null) return;
    const image = context.createImageData(sheetWidth, rows * h);
    const plane = h * w;
    const words = lut === null ? null : lutWords(lut);
    const pixels = new Uint32Array(image.data.buffer);
    const intensity = this.payload === null ? new Uint8ClampedArray(256) : rgbIntensities(this.payload.meta);
    const [nr, ng, nb] = NON_FINITE_RGB;
    for (let cell = 0; cell < count; cell++) {
      const left = (cell % cols) * w;
      const top = Math.floor(cell / cols) * h;
      const start = cell * plane * (words === null ? 3 : 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const target = (top + y) * sheetWidth + left + x;
          const source = start + y * w + x;
          if (words !== null) {
            pixels[target] = words[codes[source]];
            continue;
          }
          const r = codes[source];
          const g = codes[source + plane];
          const b = codes[source + 2 * plane];
          const bad = r === NON_FINITE_CODE || g === NON_FINITE_CODE || b === NON_FINITE_CODE;
          const j = target * 4;
          image.data[j] = bad ? nr : intensity[r];
          image.data[j + 1] = bad ? ng : intensity[g];
          image.data[j + 2] = bad ? nb : intensity[b];
          image.data[j + 3] = 255;
        }
      }
    }
    context.putImageData(image, 0, 0);
  }

  private composite(): void {
    const layout = this.layout;
    sizeCanvas(this.canvas, { width: layout.width, height: layout.height });
    const context = this.canvas.getContext("2d");
    if (context === null) return;
    const ratio = this.canvas.width / Math.max(1, layout.width);
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, layout.width, layout.height);
    const [count, h, w] = this.dims;
    if (this.payload === null || count === 0) return;
    context.imageSmoothingEnabled = layout.cellWidth < w;
    for (let cell = 0; cell < count; cell++) {
      const { x, y } = cellOrigin(layout, cell);
      const sx = (cell % layout.cols) * w;
      const sy = Math.floor(cell / layout.cols) * h;
      context.drawImage(this.sheet, sx, sy, w, h, x, y, layout.cellWidth, layout.cellHeight);
    }
    if (this.selected >= 0 && this.selected < count) {
      const { x, y } = cellOrigin(layout, this.selected);
      context.strokeStyle = SELECTION_COLOR;
      context.lineWidth = 2;
      context.strokeRect(x - 1.5, y - 1.5, layout.cellWidth + 3, layout.cellHeight + 3);
    }
  }

  private pointAt(event: MouseEvent): { x: number; y: number } | null {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return null;
    return {
      x: ((event.clientX - rect.left) / rect.width) * this.layout.width,
      y: ((event.clientY - rect.top) / rect.height) * this.layout.height,
    };
  }

  private readonly onClick = (event: MouseEvent): void => {
    const point = this.pointAt(event);
    const hit = point && mosaicHit(this.layout, point.x, point.y);
    if (hit && this.onPick) this.onPick(hit.channel);
  };

  private readonly onPointerMove = (event: PointerEvent): void => {
    const point = this.pointAt(event);
    const hit = point && mosaicHit(this.layout, point.x, point.y);
    if (!point || !hit || this.payload === null) {
      this.tooltip.hide();
      return;
    }
    const [, h, w] = this.dims;
    const row = Math.min(h - 1, Math.floor(hit.v * h));
    const col = Math.min(w - 1, Math.floor(hit.u * w));
    const plane = h * w;
    let value: string;
    if (this.rgb) {
      const base = hit.channel * 3 * plane + row * w + col;
      const [r, g, b] = [0, 1, 2].map((c) => describeValue(this.payload as Payload, base + c * plane));
      value = `R ${r}, G ${g}, B ${b}`;
    } else {
      value = describeValue(this.payload, hit.channel * plane + row * w + col);
    }
    this.tooltip.show(
      `${this.label(hit.channel)} · row ${row}, col ${col}: ${value}`,
      this.canvas.offsetLeft + point.x,
      this.canvas.offsetTop + point.y,
    );
  };

  private readonly onPointerLeave = (): void => {
    this.tooltip.hide();
  };
}
