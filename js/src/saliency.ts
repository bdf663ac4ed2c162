// Saliency view (anywidget AFM module): the input, the attribution in red (raises the target score) and
// blue (lowers it) on a symmetric scale, the two blended with an opacity set here in the browser, the
// most probable classes as rows that pick the target, progress of a running computation and its cost.

import type { RenderProps } from "@anywidget/types";
import { getLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider, type SelectOption } from "./lib/controls";
import { formatNumber, readPayload, type Meta } from "./lib/decode";
import { Heatmap } from "./lib/heatmap";
import { Overlay } from "./lib/overlay";
import { createRedraw, createShell, listen, panel } from "./lib/view";

type MetaTrait = Meta | Record<string, never>;

interface Prediction {
  class: number;
  probability: number;
}

interface Model {
  method: string;
  method_options: string[];
  target: number | null;
  explained_target: number;
  n_classes: number;
  layer: string;
  layer_options: string[];
  sample: number;
  n_samples: number;
  blend: number;
  top_k: number;
  predictions: Prediction[];
  input_data: DataView;
  input_meta: MetaTrait;
  attribution_data: DataView;
  attribution_meta: MetaTrait;
  busy: boolean;
  progress: number;
  cost: { seconds?: number; forward_samples?: number };
  error: string;
}

const METHOD_LABELS: Record<string, string> = {
  saliency: "gradient (saliency)",
  grad_x_input: "gradient × input",
  smoothgrad: "SmoothGrad",
  integrated_gradients: "Integrated Gradients",
  grad_cam: "Grad-CAM",
  guided_backprop: "guided backprop",
  occlusion: "occlusion",
};

// The one part redrawn through the scheduler: input, attribution and overlay together.
const PICTURES = 1;

const EXTRA_CSS = `
.mvz-progress { width: 16em; height: 6px; background: var(--jp-layout-color3, rgba(128,128,128,0.3)); }
.mvz-progress > div { height: 100%; width: 0; background: var(--jp-brand-color1, #1976d2); }
.mvz-classes { display: flex; flex-direction: column; gap: 2px; min-width: 12em; }
.mvz-class { display: flex; gap: 8px; align-items: center; font: inherit; text-align: left; cursor: pointer;
  color: inherit; background: transparent; border: 1px solid transparent; border-radius: 2px; padding: 1px 4px; }
.mvz-class:hover { border-color: var(--jp-border-color1, rgba(128,128,128,0.6)); }
.mvz-class[aria-pressed="true"] { border-color: var(--jp-brand-color1, #1976d2); font-weight: 600; }
.mvz-class-bar { height: 8px; background: var(--jp-brand-color2, #64b5f6); }
.mvz-class-text { min-width: 8em; font-variant-numeric: tabular-nums; }
.mvz-cost { color: var(--jp-ui-font-color2, inherit); font-variant-numeric: tabular-nums; }
`;

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, mount } = createShell("Saliency", el, EXTRA_CSS, model);
  const redraw = createRedraw({
    root,
    errorLine,
    error: () => model.get("error"),
    draw: (parts) => {
      if (parts & PICTURES) redraw.guarded("attribution", drawPictures);
    },
    loading: () => model.get("busy"),
  });
  const onWrite = (name: keyof Model): void => {
    if (name !== "blend") redraw.markPending(); // the blend is applied here, nothing to wait for
  };

  const methodChoices = (): SelectOption[] =>
    (model.get("method_options") ?? []).map((m) => ({ value: m, label: METHOD_LABELS[m] ?? m }));
  const layerChoices = (): SelectOption[] =>
    (model.get("layer_options") ?? []).map((name) => ({ value: name, label: name }));
  const methodSelect = createSelect(bindTrait(model, "method", onWrite), "method", methodChoices());
  const layerSelect = createSelect(bindTrait(model, "layer", onWrite), "layer", layerChoices());
  const sampleSlider = createSlider(bindTrait(model, "sample", onWrite), { label: "sample", min: 0, max: 0 });
  const blendSlider = createSlider(bindTrait(model, "blend", onWrite), {
    label: "blend",
    min: 0,
    max: 1,
    step: 0.05,
  });
  const target = bindTrait(model, "target", onWrite);
  const controls = [methodSelect, layerSelect, sampleSlider, blendSlider];
  header.append(...controls.map((control) => control.el));

  const statusLine = document.createElement("div");
  statusLine.className = "mvz-header";
  const progressBar = document.createElement("div");
  progressBar.className = "mvz-progress";
  progressBar.setAttribute("role", "progressbar");
  progressBar.dataset.mvPart = "progress";
  const progressFill = document.createElement("div");
  progressBar.appendChild(progressFill);
  progressBar.hidden = true;
  const costLine = document.createElement("span");
  costLine.className = "mvz-cost";
  costLine.dataset.mvPart = "cost";
  statusLine.append(costLine, progressBar);

  const inputView = new Heatmap({ maxWidth: 200, maxHeight: 200, minHeight: 16 });
  const attributionView = new Heatmap({ maxWidth: 200, maxHeight: 200, minHeight: 16, colorbar: true });
  const overlay = new Overlay({ maxWidth: 200, maxHeight: 200, minHeight: 16 });
  // The browser tests tell the canvases apart by data-mv-part.
  inputView.canvas.dataset.mvPart = "input";
  attributionView.canvas.dataset.mvPart = "attribution";
  overlay.canvas.dataset.mvPart = "overlay";
  const classList = document.createElement("div");
  classList.className = "mvz-classes";
  const predictedButton = document.createElement("button");
  predictedButton.className = "mvz-class";
  predictedButton.textContent = "explain the predicted class";
  predictedButton.dataset.mvControl = "target";
  predictedButton.dataset.mvClass = "";
  predictedButton.dataset.lmSuppressShortcuts = "true";
  const onPredicted = (): void => target.set(null);
  predictedButton.addEventListener("click", onPredicted);

  const inputPanel = panel("input", inputView.el);
  const attributionPanel = panel("attribution", attributionView.el);
  const overlayPanel = panel("over the input", overlay.el);
  const classPanel = panel("top classes (softmax)", classList, predictedButton);
  const body = document.createElement("div");
  body.className = "mvz-body";
  body.append(inputPanel.el, attributionPanel.el, overlayPanel.el, classPanel.el);
  mount(header, statusLine, errorLine, body);

  function drawPictures(): void {
    const input = readPayload(model.get("input_data"), model.get("input_meta"));
    const map = readPayload(model.get("attribution_data"), model.get("attribution_meta"));
    if (input === null) inputView.clear();
    else if (input.meta.rgb === true && input.shape.length === 3 && input.shape[0] === 3) inputView.drawRgb(input);
    else inputView.drawMap(input, getLut("gray"));
    if (map === null) attributionView.clear();
    else {
      attributionView.drawMap(map, getLut("rdbu"));
      // The method and target ride in the raw metadata (readPayload keeps only the codec's keys).
      const raw = (model.get("attribution_meta") ?? {}) as { method?: unknown; target?: unknown };
      const method = typeof raw.method === "string" ? (METHOD_LABELS[raw.method] ?? raw.method) : "attribution";
      attributionPanel.title.textContent =
        typeof raw.target === "number" ? `${method} · class ${raw.target}` : method;
      root.dataset.mvSeq = String(map.meta.seq);
    }
    overlay.draw(input, map, Number(model.get("blend")));
  }

  const rowHandlers: Array<[HTMLButtonElement, () => void]> = [];
  function drawClasses(): void {
    for (const [row, handler] of rowHandlers) row.removeEventListener("click", handler);
    rowHandlers.length = 0;
    const explained = model.get("explained_target");
    const rows = (model.get("predictions") ?? []).map((prediction) => {
      const row = document.createElement("button");
      row.className = "mvz-class";
      row.dataset.mvControl = "target";
      row.dataset.mvClass = String(prediction.class);
      row.dataset.lmSuppressShortcuts = "true";
      row.setAttribute("aria-pressed", String(prediction.class === explained));
      const text = document.createElement("span");
      text.className = "mvz-class-text";
      text.textContent = `class ${prediction.class}: ${(prediction.probability * 100).toFixed(1)} %`;
      const bar = document.createElement("span");
      bar.className = "mvz-class-bar";
      bar.style.width = `${Math.round(prediction.probability * 80)}px`;
      row.append(text, bar);
      const handler = (): void => target.set(prediction.class);
      row.addEventListener("click", handler);
      rowHandlers.push([row, handler]);
      return row;
    });
    classList.replaceChildren(...rows);
    predictedButton.setAttribute("aria-pressed", String(model.get("target") === null));
  }

  function updateProgress(): void {
    const fraction = Number(model.get("progress")) || 0;
    progressBar.hidden = !(model.get("busy") && fraction > 0);
    progressFill.style.width = `${Math.round(fraction * 100)}%`;
    progressBar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  }

  function updateCost(): void {
    const cost = model.get("cost") ?? {};
    if (typeof cost.seconds !== "number") {
      costLine.textContent = "";
      return;
    }
    const passes = typeof cost.forward_samples === "number" ? `, ${cost.forward_samples} samples through the model` : "";
    costLine.textContent = `last computation: ${formatNumber(cost.seconds)} s${passes}`;
  }

  function updateRanges(): void {
    const samples = Number(model.get("n_samples")) || 1;
    sampleSlider.setRange(0, samples - 1);
    sampleSlider.el.hidden = !(samples > 1);
    layerSelect.el.hidden = model.get("method") !== "grad_cam";
  }

  const handlers: Array<[keyof Model, () => void]> = [
    ["input_data", () => redraw.invalidate(PICTURES)],
    ["input_meta", () => redraw.invalidate(PICTURES)],
    ["attribution_data", () => redraw.invalidate(PICTURES, true)],
    ["attribution_meta", () => redraw.invalidate(PICTURES, true)],
    ["error", () => redraw.invalidate(0, true)],
    ["busy", () => (updateProgress(), redraw.invalidate(0, !model.get("busy")))],
    ["progress", updateProgress],
    ["cost", updateCost],
    ["blend", () => overlay.setBlend(Number(model.get("blend")))],
    ["predictions", drawClasses],
    ["explained_target", drawClasses],
    ["target", drawClasses],
    ["method", updateRanges],
    ["n_samples", updateRanges],
    ["method_options", () => methodSelect.setOptions(methodChoices())],
    ["layer_options", () => layerSelect.setOptions(layerChoices())],
  ];
  const unlisten = listen(model, handlers);

  updateRanges();
  updateCost();
  updateProgress();
  drawClasses();
  redraw.flush(PICTURES);

  return () => {
    redraw.dispose();
    unlisten();
    for (const [row, handler] of rowHandlers) row.removeEventListener("click", handler);
    predictedButton.removeEventListener("click", onPredicted);
    for (const control of controls) control.destroy();
    inputView.destroy();
    attributionView.destroy();
    root.remove();
  };
}

export default { render };
