// The Explorer view's drawing pieces: its style, an input thumbnail from the strip payload, and one
// distribution of the layer panel as a bar chart.

import { getLut } from "./colormap";
import { toCodes, type Payload } from "./decode";
import { paintCodes, paintRgb } from "./heatmap";

export const HIST_WIDTH = 200;
export const HIST_HEIGHT = 48;

export const EXPLORER_CSS = `
.mvz-explorer-core { min-width: 300px; max-width: 460px; }
.mvz-row-line { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
.mvz-button {
  font: inherit; cursor: pointer; padding: 1px 8px; border-radius: 3px;
  color: var(--jp-ui-font-color1, CanvasText); background: var(--jp-layout-color2, ButtonFace);
  border: 1px solid var(--jp-border-color1, rgba(128,128,128,0.6));
}
.mvz-button[aria-pressed="true"] { background: var(--jp-brand-color1, #1976d2); color: white; }
.mvz-pred { display: flex; gap: 6px; align-items: center; min-width: 14em; text-align: left; }
.mvz-pred-bar { height: 6px; background: var(--jp-brand-color1, #1976d2); }
.mvz-strip { display: flex; flex-wrap: wrap; gap: 3px; max-height: 130px; overflow: auto; }
.mvz-thumb { display: flex; flex-direction: column; align-items: center; font-size: 10px; cursor: pointer; }
.mvz-thumb canvas { image-rendering: pixelated; outline: 1px solid transparent; }
.mvz-thumb[aria-selected="true"] canvas { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.mvz-text-input { cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 440px; }
.mvz-text-input[aria-selected="true"] { font-weight: 600; }
.mvz-tree { max-height: 420px; overflow: auto; font-size: 12px; border: 1px solid var(--jp-border-color2, rgba(128,128,128,0.35)); }
.mvz-node { display: flex; gap: 6px; align-items: center; padding: 1px 4px; cursor: pointer; white-space: nowrap; }
.mvz-node:hover { background: var(--jp-layout-color2, rgba(128,128,128,0.15)); }
.mvz-node[aria-selected="true"] { background: var(--jp-brand-color3, rgba(25,118,210,0.2)); }
.mvz-caret { width: 1em; text-align: center; color: var(--jp-ui-font-color2, inherit); }
.mvz-node-type { color: var(--jp-ui-font-color2, inherit); }
.mvz-node-shape { color: var(--jp-ui-font-color2, inherit); font-variant-numeric: tabular-nums; }
.mvz-mag { width: 40px; height: 6px; background: var(--jp-layout-color3, rgba(128,128,128,0.25)); flex: none; }
.mvz-mag > div { height: 100%; background: var(--jp-ui-font-color2, #777); }
.mvz-badge { font-size: 10px; padding: 0 4px; border-radius: 6px; color: white; background: #e69f00; }
.mvz-badge[data-level="error"] { background: #d32f2f; }
.mvz-reuse { font-size: 10px; padding: 0 4px; border-radius: 6px; border: 1px solid currentColor; }
.mvz-hists { display: flex; flex-wrap: wrap; gap: 8px; }
.mvz-hist { display: flex; flex-direction: column; font-size: 11px; }
`;

/** Input `index` of a strip payload ([N, h, w] grey or [N, 3, h, w] colour) on its own canvas. */
export function thumbnail(payload: Payload, index: number, rgb: boolean): HTMLCanvasElement {
  const shape = payload.shape;
  const [height, width] = rgb ? [shape[2], shape[3]] : [shape[1], shape[2]];
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, width);
  canvas.height = Math.max(1, height);
  const scale = Math.max(1, Math.floor(32 / Math.max(1, height, width)));
  canvas.style.width = `${width * scale}px`;
  canvas.style.height = `${height * scale}px`;
  const context = canvas.getContext("2d");
  if (context === null) return canvas;
  const image = context.createImageData(canvas.width, canvas.height);
  const plane = height * width;
  const codes = toCodes(payload);
  if (rgb) paintRgb(image.data, codes.subarray(index * 3 * plane, (index + 1) * 3 * plane), plane, payload.meta);
  else paintCodes(image.data, codes.subarray(index * plane, (index + 1) * plane), getLut("gray"));
  context.putImageData(image, 0, 0);
  return canvas;
}

/** Row `row` of a [rows, bins] float32 counts payload as bars scaled to the row's peak. */
export function histogramCanvas(payload: Payload, row: number, color: string): HTMLCanvasElement {
  const bins = payload.shape[1] ?? 0;
  const canvas = document.createElement("canvas");
  canvas.width = HIST_WIDTH;
  canvas.height = HIST_HEIGHT;
  const context = canvas.getContext("2d");
  let peak = 0;
  for (let b = 0; b < bins; b++) peak = Math.max(peak, payload.value(row * bins + b));
  if (context !== null && peak > 0) {
    context.fillStyle = color;
    const width = HIST_WIDTH / bins;
    for (let b = 0; b < bins; b++) {
      const height = (HIST_HEIGHT * payload.value(row * bins + b)) / peak;
      context.fillRect(b * width, HIST_HEIGHT - height, Math.max(1, width - 1), height);
    }
  }
  return canvas;
}
