// ActivationFunctions core view (anywidget AFM module): the function, derivative and layer controls and the
// summary line. The curves and the pre-activation histogram are bqplot figures the kernel draws below it;
// after each redraw the kernel bumps `seq`, which becomes data-mv-seq.

import type { RenderProps } from "@anywidget/types";
import { bindTrait, createSelect, type SelectOption } from "./lib/controls";
import { createCheckbox, createCoreView } from "./lib/core_view";

interface LayerOption {
  name: string;
  module_type: string;
  function: string;
}

interface Model {
  function: string;
  show_derivative: boolean;
  layer: string;
  layer_options: LayerOption[];
  summary: string;
  seq: number;
  error: string;
}

const FUNCTIONS: SelectOption[] = [
  { value: "sigmoid", label: "sigmoid" },
  { value: "tanh", label: "tanh" },
  { value: "relu", label: "ReLU" },
  { value: "leaky_relu", label: "Leaky ReLU" },
  { value: "gelu", label: "GELU" },
  { value: "silu", label: "SiLU" },
];

function layerChoices(options: LayerOption[] | undefined): SelectOption[] {
  return (options ?? []).map((option) => ({ value: option.name, label: `${option.name} — ${option.module_type}` }));
}

function render({ model, el }: RenderProps<Model>): () => void {
  const view = createCoreView(model, "ActivationFunctions", el);
  const onWrite = (): void => view.markPending();
  const functionSelect = createSelect(bindTrait(model, "function", onWrite), "function", FUNCTIONS);
  const derivative = createCheckbox(bindTrait(model, "show_derivative", onWrite), "derivative");
  const layerSelect = createSelect(
    bindTrait(model, "layer", onWrite),
    "layer",
    layerChoices(model.get("layer_options")),
  );
  const controls = [layerSelect, functionSelect, derivative];
  view.header.append(...controls.map((control) => control.el));

  const showLayers = (): void => {
    const options = model.get("layer_options") ?? [];
    layerSelect.setOptions(layerChoices(options));
    layerSelect.el.hidden = options.length === 0;
  };
  model.on("change:layer_options", showLayers);
  showLayers();
  view.refresh();

  return () => {
    model.off("change:layer_options", showLayers);
    for (const control of controls) control.destroy();
    view.destroy();
  };
}

export default { render };
