// Pure geometry of the canvases (no DOM), so sizes and hit tests are unit-testable in node.

export interface Size {
  width: number;
  height: number;
}

/**
 * Display size for a rows x cols picture that fits in maxWidth x maxHeight CSS pixels. Upscaling uses a
 * whole-number factor so every data pixel covers the same number of screen pixels; a very flat picture
 * (a 1-D layer drawn as [1, L]) keeps at least minHeight so it can still be hovered.
 */
export function fitSize(
  rows: number,
  cols: number,
  maxWidth: number,
  maxHeight: number,
  minHeight = 0,
): Size {
  if (rows <= 0 || cols <= 0) return { width: 0, height: 0 };
  let scale = Math.min(maxWidth / cols, maxHeight / rows);
  if (scale >= 1) scale = Math.floor(scale);
  const width = Math.max(1, Math.round(cols * scale));
  const height = Math.max(1, Math.round(rows * scale), Math.min(minHeight, maxHeight));
  return { width, height };
}

export interface MosaicLayout {
  /** Number of channels laid out. */
  count: number;
  cols: number;
  rows: number;
  /** Size of one channel's cell in CSS pixels. */
  cellWidth: number;
  cellHeight: number;
  /** Space between cells, wide enough for the selection outline. */
  gap: number;
  /** Margin around the grid so the outline of an edge cell is not clipped. */
  pad: number;
  width: number;
  height: number;
}

export interface MosaicOptions {
  gap?: number;
  pad?: number;
  /** Cells of flat maps (h much smaller than w) are stretched to at least this height. */
  minCellHeight?: number;
}

/**
 * Near-square grid for `count` channels of h x w: ceil(sqrt(count)) columns, as many rows as needed,
 * cells scaled to fill maxWidth (whole-number factor when enlarging).
 */
export function mosaicLayout(
  count: number,
  h: number,
  w: number,
  maxWidth: number,
  options: MosaicOptions = {},
): MosaicLayout {
  const gap = options.gap ?? 4;
  const pad = options.pad ?? 3;
  const minCellHeight = options.minCellHeight ?? 12;
  if (count <= 0 || h <= 0 || w <= 0) {
    return { count: 0, cols: 0, rows: 0, cellWidth: 0, cellHeight: 0, gap, pad, width: 0, height: 0 };
  }
  const cols = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / cols);
  const available = Math.max(cols, maxWidth - 2 * pad - gap * (cols - 1));
  let scale = available / (cols * w);
  if (scale >= 1) scale = Math.floor(scale);
  // Rounded down: rounding up could push the grid past maxWidth.
  const cellWidth = Math.max(1, Math.floor(w * scale));
  let cellHeight = Math.max(1, Math.floor(h * scale));
  if (cellHeight < minCellHeight && h < w) cellHeight = Math.min(minCellHeight, cellWidth);
  return {
    count,
    cols,
    rows,
    cellWidth,
    cellHeight,
    gap,
    pad,
    width: 2 * pad + cols * cellWidth + (cols - 1) * gap,
    height: 2 * pad + rows * cellHeight + (rows - 1) * gap,
  };
}

/** Top-left corner of a channel's cell in CSS pixels. */
export function cellOrigin(layout: MosaicLayout, channel: number): { x: number; y: number } {
  const col = channel % layout.cols;
  const row = Math.floor(channel / layout.cols);
  return {
    x: layout.pad + col * (layout.cellWidth + layout.gap),
    y: layout.pad + row * (layout.cellHeight + layout.gap),
  };
}

export interface MosaicHit {
  channel: number;
  /** Position inside the cell as fractions in [0, 1). */
  u: number;
  v: number;
}

/** The channel under a point (CSS pixels from the grid's top-left), or null over gaps and empty cells. */
export function mosaicHit(layout: MosaicLayout, x: number, y: number): MosaicHit | null {
  if (layout.count === 0) return null;
  const strideX = layout.cellWidth + layout.gap;
  const strideY = layout.cellHeight + layout.gap;
  const gx = x - layout.pad;
  const gy = y - layout.pad;
  if (gx < 0 || gy < 0) return null;
  const col = Math.floor(gx / strideX);
  const row = Math.floor(gy / strideY);
  if (col >= layout.cols || row >= layout.rows) return null;
  const inX = gx - col * strideX;
  const inY = gy - row * strideY;
  if (inX >= layout.cellWidth || inY >= layout.cellHeight) return null;
  const channel = row * layout.cols + col;
  if (channel >= layout.count) return null;
  return { channel, u: inX / layout.cellWidth, v: inY / layout.cellHeight };
}

/** Convenience for clicks: the channel index under a point, or -1. */
export function mosaicHitTest(layout: MosaicLayout, x: number, y: number): number {
  return mosaicHit(layout, x, y)?.channel ?? -1;
}
