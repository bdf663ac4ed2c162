// Grid of small pictures in a given display order: a [N, h, w] payload through a colour table, or a
// [N, 3, h, w] payload as colour images. A CellSheet like the channel mosaic, but cells can be RGB and
// each cell has a caller-supplied label (a filter's index and norm when the grid is sorted), shown on hover.

import { lutWords, NON_FINITE_RGB } from "./colormap";
import { describeValue, NON_FINITE_CODE, toCodes, type Payload } from "./decode";
import { CellSheet } from "./cell_sheet";
import { rgbIntensities } from "./heatmap";

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

export class FilterGrid extends CellSheet {
  /** Text naming the cell at a display position, for the tooltip. */
  label: (position: number) => string = (position) => `cell ${position}`;
  private readonly maxWidth: number;
  private rgb = false;

  constructor(options: FilterGridOptions) {
    super();
    this.maxWidth = options.maxWidth;
  }

  /** Paints every cell (through `lut`, or as colour when `lut` is null) and outlines `selected`. */
  draw(payload: Payload, lut: Uint8ClampedArray | null, selected: number): void {
    this.rgb = lut === null;
    this.setCells(payload, cellDims(payload.shape, this.rgb), this.maxWidth, selected);
    this.paintSheet(toCodes(payload), lut);
    this.composite();
  }

  protected describeCell(position: number, row: number, col: number): string {
    const payload = this.payload;
    const [, h, w] = this.dims;
    const plane = h * w;
    let value = "";
    if (payload !== null && this.rgb) {
      const base = position * 3 * plane + row * w + col;
      const [r, g, b] = [0, 1, 2].map((c) => describeValue(payload, base + c * plane));
      value = `R ${r}, G ${g}, B ${b}`;
    } else if (payload !== null) {
      value = describeValue(payload, position * plane + row * w + col);
    }
    return `${this.label(position)} · row ${row}, col ${col}: ${value}`;
  }

  private paintSheet(codes: Uint8Array, lut: Uint8ClampedArray | null): void {
    const [count, h, w] = this.dims;
    if (h === 0 || w === 0) return;
    const sheet = this.blankSheet();
    if (sheet === null) return;
    const { image, context } = sheet;
    const cols = this.layout.cols;
    const sheetWidth = image.width;
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
}
