// A [rows, time] grid of values drawn column by column (a recurrent layer's units over timesteps), with
// one highlighted column and an optional shaded range of columns. Geometry is pure and unit-tested; the
// class paints codes through a lookup table and redraws the highlight without re-decoding.

import { paintCodes, sizeCanvas } from "./heatmap";

export interface TimeGridLayout {
  rows: number;
  cols: number;
  /** CSS pixels per column and per row. */
  cellWidth: number;
  cellHeight: number;
  width: number;
  height: number;
}

/** Whole-pixel cells that fit maxWidth x maxHeight, at least 1 px, columns at most `maxCell` wide. */
export function timeGridLayout(
  rows: number,
  cols: number,
  maxWidth: number,
  maxHeight: number,
  maxCell = 40,
): TimeGridLayout {
  const cellWidth = cols > 0 ? Math.max(1, Math.min(maxCell, Math.floor(maxWidth / cols))) : 0;
  const cellHeight = rows > 0 ? Math.max(1, Math.min(maxCell, Math.floor(maxHeight / rows))) : 0;
  return { rows, cols, cellWidth, cellHeight, width: cols * cellWidth, height: rows * cellHeight };
}

/** Column under x (CSS pixels from the left edge), clamped to the grid; -1 for an empty grid. */
export function columnAt(layout: TimeGridLayout, x: number): number {
  if (layout.cols === 0 || layout.cellWidth === 0) return -1;
  return Math.min(layout.cols - 1, Math.max(0, Math.floor(x / layout.cellWidth)));
}

/** Range of the threshold slider: the data's range rounded outward to 1/100 of it, and the value. */
export function thresholdRange(vmin: number, vmax: number, value: number): [number, number, number] {
  const span = vmax - vmin;
  const step = span > 0 ? Number((10 ** Math.floor(Math.log10(span / 100))).toPrecision(1)) : 0.01;
  const low = Math.floor(Math.min(vmin, value) / step) * step;
  const high = Math.ceil(Math.max(vmax, value) / step) * step;
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  return [Number(low.toFixed(digits)), Number(high.toFixed(digits)), step];
}

export interface Highlight {
  column: number;
  /** Inclusive range of shaded columns; null for none. */
  range: [number, number] | null;
}

/** One [rows, time] picture; `draw` paints codes, `highlight` redraws the overlays only. */
export class TimeGrid {
  readonly canvas: HTMLCanvasElement;
  private readonly source: HTMLCanvasElement;
  layout: TimeGridLayout = timeGridLayout(0, 0, 0, 0);
  private marks: Highlight = { column: -1, range: null };

  constructor(
    private readonly maxWidth: number,
    private readonly maxHeight: number,
  ) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "mvz-canvas";
    this.source = document.createElement("canvas");
  }

  draw(codes: Uint8Array, rows: number, cols: number, lut: Uint8ClampedArray): void {
    this.layout = timeGridLayout(rows, cols, this.maxWidth, this.maxHeight);
    sizeCanvas(this.canvas, { width: this.layout.width, height: this.layout.height });
    if (rows === 0 || cols === 0) return;
    this.source.width = cols;
    this.source.height = rows;
    const image = new ImageData(cols, rows);
    paintCodes(image.data, codes, lut);
    this.source.getContext("2d")?.putImageData(image, 0, 0);
    this.repaint();
  }

  highlight(marks: Highlight): void {
    this.marks = marks;
    this.repaint();
  }

  clear(): void {
    this.layout = timeGridLayout(0, 0, 0, 0);
    sizeCanvas(this.canvas, { width: 0, height: 0 });
  }

  private repaint(): void {
    const context = this.canvas.getContext("2d");
    const { cols, rows } = this.layout;
    if (context === null || cols === 0 || rows === 0) return;
    const ratio = this.canvas.width / this.layout.width;
    const cell = this.layout.cellWidth * ratio;
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.drawImage(this.source, 0, 0, this.canvas.width, this.canvas.height);
    const { column, range } = this.marks;
    if (range !== null) {
      const [start, end] = range;
      // Bands above and below the selected columns, and an outline: the values stay readable.
      const band = Math.max(3, 3 * ratio);
      const width = (end - start + 1) * cell;
      context.fillStyle = "rgb(255, 160, 0)";
      context.fillRect(start * cell, 0, width, band);
      context.fillRect(start * cell, this.canvas.height - band, width, band);
      context.strokeStyle = "rgb(255, 160, 0)";
      context.lineWidth = Math.max(1, ratio);
      context.strokeRect(start * cell, 0, width, this.canvas.height);
    }
    if (column >= 0 && column < cols) {
      const line = Math.max(2, 2 * ratio);
      context.lineWidth = line;
      context.strokeStyle = "rgb(0, 0, 0)";
      context.strokeRect(column * cell + line / 2, line / 2, cell - line, this.canvas.height - line);
      context.strokeStyle = "rgb(255, 255, 255)";
      context.lineWidth = line / 2;
      context.strokeRect(column * cell + line / 2, line / 2, cell - line, this.canvas.height - line);
    }
  }
}
