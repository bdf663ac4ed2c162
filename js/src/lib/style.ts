// Styles shared by the views, injected as one <style> element inside each view root. Class names are
// prefixed (.mvz-*) so nothing leaks into the notebook. Colours come from JupyterLab's theme variables with
// fallbacks (system colours, currentColor), so the views read in light and dark themes and outside Lab.

const CSS = `
.mvz-root {
  font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, currentColor);
  display: flex;
  flex-direction: column;
  gap: 8px;
  padding: 4px 0;
}
.mvz-root [hidden] { display: none !important; }
.mvz-header { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; }
.mvz-control { display: inline-flex; align-items: center; gap: 6px; }
.mvz-label { color: var(--jp-ui-font-color2, inherit); }
.mvz-root select, .mvz-root input {
  font: inherit;
  color: var(--jp-ui-font-color1, CanvasText);
  background: var(--jp-layout-color1, Canvas);
}
.mvz-root select {
  max-width: 28em;
  border: 1px solid var(--jp-border-color1, rgba(128, 128, 128, 0.6));
  border-radius: 2px;
  padding: 1px 4px;
}
.mvz-root input[type="range"] { width: 11em; accent-color: var(--jp-brand-color1, #1976d2); }
.mvz-readout { min-width: 3ch; font-variant-numeric: tabular-nums; }
.mvz-error {
  color: var(--jp-error-color1, #d32f2f);
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
.mvz-kernel-gone {
  color: var(--jp-error-color1, #d32f2f);
  font-weight: 600;
  white-space: pre-wrap;
}
.mvz-note { color: var(--jp-ui-font-color2, inherit); font-style: italic; }
.mvz-body { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 12px 20px; }
.mvz-panel { display: flex; flex-direction: column; gap: 4px; min-width: 0; }
.mvz-title { font-weight: 600; }
.mvz-heatmap, .mvz-mosaic {
  position: relative;
  display: inline-flex;
  flex-direction: column;
  align-items: flex-start;
  gap: 4px;
}
.mvz-canvas {
  display: block;
  image-rendering: pixelated;
  outline: 1px solid var(--jp-border-color2, rgba(128, 128, 128, 0.35));
}
.mvz-clickable { cursor: pointer; }
.mvz-colorbar { display: flex; flex-direction: column; gap: 1px; font-size: 11px; }
.mvz-colorbar canvas { display: block; height: 10px; }
.mvz-colorbar-labels { display: flex; justify-content: space-between; font-variant-numeric: tabular-nums; }
.mvz-nonfinite::before {
  content: "";
  display: inline-block;
  width: 8px;
  height: 8px;
  margin-right: 4px;
  background: rgb(255, 0, 255);
}
.mvz-tooltip {
  position: absolute;
  z-index: 10;
  pointer-events: none;
  white-space: nowrap;
  padding: 2px 6px;
  border-radius: 3px;
  font-size: 11px;
  font-variant-numeric: tabular-nums;
  color: var(--jp-ui-font-color0, CanvasText);
  background: var(--jp-layout-color0, Canvas);
  border: 1px solid var(--jp-border-color1, rgba(128, 128, 128, 0.6));
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.3);
}
`;

/** A <style> element for one view root (a view may be shown several times, each root carries its own). */
export function createStyle(): HTMLStyleElement {
  const style = document.createElement("style");
  style.textContent = CSS;
  return style;
}
