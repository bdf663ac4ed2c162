// Channel grid ("mosaic"): every channel of a [C, h, w] payload in a near-square grid of cells, the
// selected one outlined, a click reporting the channel it hit. All channels are painted once into a
// native-size sheet (lib/cell_sheet.ts); moving the selection only re-composites the sheet (C drawImage
// calls), so a channel change never re-decodes or re-paints the grid.

import { lutWords } from "./colormap";
import { describeValue, toCodes, type Payload } from "./decode";
import { CellSheet } from "./cell_sheet";
import { Colorbar } from "./heatmap";
import type { MosaicLayout } from "./layout";

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

export class Mosaic extends CellSheet {
  private readonly maxWidth: number;
  private readonly colorbar: Colorbar | null;

  constructor(options: MosaicOptions) {
    super();
    this.maxWidth = options.maxWidth;
    this.colorbar = options.colorbar ? new Colorbar() : null;
    if (this.colorbar) this.canvas.after(this.colorbar.el);
  }

  get currentLayout(): MosaicLayout {
    return this.layout;
  }

  /** Paints every channel and outlines `selected`. */
  draw(payload: Payload, lut: Uint8ClampedArray, selected: number): void {
    this.setCells(payload, gridDims(payload.shape), this.maxWidth, selected);
    this.paintSheet(toCodes(payload), lut);
    this.colorbar?.update(payload.meta, lut, this.layout.width);
    this.composite();
  }

  protected describeCell(channel: number, row: number, col: number): string {
    const [, h, w] = this.dims;
    const value = this.payload === null ? "" : describeValue(this.payload, channel * h * w + row * w + col);
    return `channel ${channel} · row ${row}, col ${col}: ${value}`;
  }

  private paintSheet(codes: Uint8Array, lut: Uint8ClampedArray): void {
    const sheet = this.blankSheet();
    if (sheet === null) return;
    const [count, h, w] = this.dims;
    const { image, context } = sheet;
    const cols = this.layout.cols;
    const sheetWidth = image.width;
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
}
