// Channel grid ("mosaic"): every channel of a [C, h, w] payload in a near-square grid of cells, the
// selected one outlined, a click reporting the channel it hit. All channels are painted once into a
// native-size sheet; moving the selection only re-composites the sheet (C drawImage calls), so a channel
// change never re-decodes or re-paints the grid.

import { lutWords } from "./colormap";
import { describeValue, toCodes, type Payload } from "./decode";
import { Colorbar, sizeCanvas } from "./heatmap";
import { cellOrigin, mosaicHit, mosaicLayout, type MosaicLayout } from "./layout";
import { Tooltip } from "./tooltip";

/** Outline of the selected cell: orange reads on light and dark themes and on every colour map. */
const SELECTION_COLOR = "#ff9800";

/** [C, h, w] of a grid payload; [C, L] is C flat maps, a 1-D [L] payload one flat map. */
export function gridDims(shape: readonly number[]): [number, number, number] {
  if (shape.length === 0) return [1, 1, 1];
  if (shape.length === 1) return [1, 1, shape[0]];
  const channels = shape[0];
  const width = shape[shape.length - 1];
  let height = 1;
  for (let i = 1; i < shape.length - 1; i++) height *= shape[i];
  return [channels, height, width];
}

export interface MosaicOptions {
  maxWidth: number;
  colorbar?: boolean;
}

export class Mosaic {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  /** Called with the channel index of a clicked cell. */
  onPick: ((channel: number) => void) | null = null;
  private readonly options: MosaicOptions;
  private readonly sheet: HTMLCanvasElement;
  private readonly tooltip: Tooltip;
  private readonly colorbar: Colorbar | null;
  private layout: MosaicLayout = mosaicLayout(0, 0, 0, 0);
  private payload: Payload | null = null;
  private dims: [number, number, number] = [0, 0, 0];
  private selected = -1;

  constructor(options: MosaicOptions) {
    this.options = options;
    this.el = document.createElement("div");
    this.el.className = "mvz-mosaic";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mvz-canvas mvz-clickable";
    this.sheet = document.createElement("canvas");
    this.el.appendChild(this.canvas);
    this.colorbar = options.colorbar ? new Colorbar() : null;
    if (this.colorbar) this.el.appendChild(this.colorbar.el);
    this.tooltip = new Tooltip(this.el);
    this.canvas.addEventListener("click", this.onClick);
    this.canvas.addEventListener("pointermove", this.onPointerMove);
    this.canvas.addEventListener("pointerleave", this.onPointerLeave);
  }

  get currentLayout(): MosaicLayout {
    return this.layout;
  }

  /** Paints every channel and outlines `selected`. */
  draw(payload: Payload, lut: Uint8ClampedArray, selected: number): void {
    const [count, h, w] = gridDims(payload.shape);
    this.payload = payload;
    this.dims = [count, h, w];
    this.layout = mosaicLayout(count, h, w, this.options.maxWidth);
    this.paintSheet(toCodes(payload), lut);
    this.colorbar?.update(payload.meta, lut, this.layout.width);
    this.selected = selected;
    this.composite();
  }

  /** Moves the outline without repainting the channels. */
  select(channel: number): void {
    if (channel === this.selected) return;
    this.selected = channel;
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

  // Channel c occupies the tile at (c % cols, c / cols) of a gap-free sheet of native-size tiles.
  private paintSheet(codes: Uint8Array, lut: Uint8ClampedArray): void {
    const [count, h, w] = this.dims;
    const { cols, rows } = this.layout;
    if (count === 0) return;
    const sheetWidth = cols * w;
    this.sheet.width = sheetWidth;
    this.sheet.height = rows * h;
    const context = this.sheet.getContext("2d");
    if (context === null) return;
    const image = context.createImageData(sheetWidth, rows * h);
    const pixels = new Uint32Array(image.data.buffer);
    const words = lutWords(lut);
    for (let channel = 0; channel < count; channel++) {
      const left = (channel % cols) * w;
      const top = Math.floor(channel / cols) * h;
      let source = channel * h * w;
      for (let y = 0; y < h; y++) {
        let target = (top + y) * sheetWidth + left;
        for (let x = 0; x < w; x++) pixels[target++] = words[codes[source++]];
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
    for (let channel = 0; channel < count; channel++) {
      const { x, y } = cellOrigin(layout, channel);
      const sx = (channel % layout.cols) * w;
      const sy = Math.floor(channel / layout.cols) * h;
      context.drawImage(this.sheet, sx, sy, w, h, x, y, layout.cellWidth, layout.cellHeight);
    }
    if (this.selected >= 0 && this.selected < count) {
      const { x, y } = cellOrigin(layout, this.selected);
      context.strokeStyle = SELECTION_COLOR;
      context.lineWidth = 2;
      // Drawn in the gap around the cell so the outline never hides data.
      context.strokeRect(x - 1.5, y - 1.5, layout.cellWidth + 3, layout.cellHeight + 3);
    }
  }

  private pointAt(event: MouseEvent): { x: number; y: number } | null {
    const rect = this.canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return null;
    // Back to layout units, in case CSS scales the canvas.
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
    const value = describeValue(this.payload, hit.channel * h * w + row * w + col);
    this.tooltip.show(
      `channel ${hit.channel} · row ${row}, col ${col}: ${value}`,
      this.canvas.offsetLeft + point.x,
      this.canvas.offsetTop + point.y,
    );
  };

  private readonly onPointerLeave = (): void => {
    this.tooltip.hide();
  };
}
