// What the channel mosaic and the filter grid share: cells of a payload laid out in a near-square grid,
// painted once into a native-size sheet (cell k is the tile at (k % cols, k / cols), no gaps) that is
// re-composited onto the canvas when the selection moves, the selected cell outlined, a click reporting
// the cell it hit and a hover tooltip with the value under the pointer.

import type { Payload } from "./decode";
import { sizeCanvas } from "./heatmap";
import { cellOrigin, mosaicHit, mosaicLayout, type MosaicLayout } from "./layout";
import { Tooltip } from "./tooltip";

/** Outline of the selected cell: orange reads on light and dark themes and on every colour map. */
const SELECTION_COLOR = "#ff9800";

export abstract class CellSheet {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  /** Called with the index of a clicked cell. */
  onPick: ((cell: number) => void) | null = null;
  protected readonly sheet: HTMLCanvasElement;
  protected readonly tooltip: Tooltip;
  protected layout: MosaicLayout = mosaicLayout(0, 0, 0, 0);
  protected payload: Payload | null = null;
  /** Cells, rows and columns of one cell. */
  protected dims: [number, number, number] = [0, 0, 0];
  protected selected = -1;

  constructor() {
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

  /** The tooltip text of the value at (row, col) of a cell. */
  protected abstract describeCell(cell: number, row: number, col: number): string;

  /** Moves the outline without repainting the cells. */
  select(cell: number): void {
    if (cell === this.selected) return;
    this.selected = cell;
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

  /** Takes a payload of `dims` cells: lays them out within `maxWidth` and selects `selected`. */
  protected setCells(payload: Payload, dims: [number, number, number], maxWidth: number, selected: number): void {
    this.payload = payload;
    this.dims = dims;
    this.layout = mosaicLayout(dims[0], dims[1], dims[2], maxWidth);
    this.selected = selected;
  }

  /** Sizes the sheet for the current cells and returns a blank image of it (null when there is none). */
  protected blankSheet(): { context: CanvasRenderingContext2D; image: ImageData } | null {
    const [count, h, w] = this.dims;
    const { cols, rows } = this.layout;
    if (count === 0) return null;
    this.sheet.width = cols * w;
    this.sheet.height = rows * h;
    const context = this.sheet.getContext("2d");
    if (context === null) return null;
    return { context, image: context.createImageData(cols * w, rows * h) };
  }

  protected composite(): void {
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
    this.tooltip.show(
      this.describeCell(hit.channel, row, col),
      this.canvas.offsetLeft + point.x,
      this.canvas.offsetTop + point.y,
    );
  };

  private readonly onPointerLeave = (): void => {
    this.tooltip.hide();
  };
}
