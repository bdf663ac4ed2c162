// LayerProbe core view (anywidget AFM module): layer, estimator and projection controls, the fitting
// progress bar and the summary line. The accuracy bars and the scatter are bqplot figures the kernel draws
// below it; after each redraw the kernel bumps `seq`, which becomes data-mv-seq. While probes are still
// being fitted the view reads data-mv-state="loading".

import type { RenderProps } from "@anywidget/types";
import { bindTrait, createSelect, type SelectOption } from "./lib/controls";
import { createCoreView } from "./lib/core_view";
import { listen } from "./lib/view";

interface Model {
  layer: string;
  layers: string[];
  estimator: string;
  estimator_options: string[];
  projection: string;
  progress: number;
  summary: string;
  seq: number;
  error: string;
}

const ESTIMATOR_LABELS: Record<string, string> = {
  logistic: "logistic regression",
  svm: "linear SVM",
  tree: "decision tree",
  custom: "custom estimator",
};

const PROJECTIONS: SelectOption[] = [
  { value: "pca", label: "PCA" },
  { value: "tsne", label: "t-SNE" },
];

function choices(values: string[] | undefined, labels: Record<string, string> = {}): SelectOption[] {
  return (values ?? []).map((value) => ({ value, label: labels[value] ?? value }));
}

function render({ model, el }: RenderProps<Model>): () => void {
  const view = createCoreView(model, "LayerProbe", el);
  const onWrite = (): void => view.markPending();
  const layerSelect = createSelect(bindTrait(model, "layer", onWrite), "layer", choices(model.get("layers")));
  const estimatorSelect = createSelect(
    bindTrait(model, "estimator", onWrite),
    "probe",
    choices(model.get("estimator_options"), ESTIMATOR_LABELS),
  );
  const projectionSelect = createSelect(bindTrait(model, "projection", onWrite), "projection", PROJECTIONS);
  const controls = [layerSelect, estimatorSelect, projectionSelect];

  const progress = document.createElement("progress");
  progress.className = "mvz-progress";
  progress.max = 1;
  progress.dataset.mvProgress = "";
  const progressLabel = document.createElement("span");
  progressLabel.className = "mvz-readout";
  const progressBox = document.createElement("span");
  progressBox.className = "mvz-control";
  progressBox.append(progress, progressLabel);
  view.header.append(...controls.map((control) => control.el), progressBox);

  const showProgress = (): void => {
    const value = Math.min(1, Math.max(0, Number(model.get("progress")) || 0));
    progress.value = value;
    progress.dataset.mvProgress = String(value);
    progressLabel.textContent = value < 1 ? `fitting ${Math.round(value * 100)}%` : "fitted";
    view.setBusy(value < 1);
  };
  const showOptions = (): void => {
    layerSelect.setOptions(choices(model.get("layers")));
    estimatorSelect.setOptions(choices(model.get("estimator_options"), ESTIMATOR_LABELS));
  };
  const handlers: Array<[keyof Model, () => void]> = [
    ["progress", showProgress],
    ["layers", showOptions],
    ["estimator_options", showOptions],
  ];
  const unlisten = listen(model, handlers);
  showProgress();

  return () => {
    unlisten();
    for (const control of controls) control.destroy();
    view.destroy();
  };
}

export default { render };
