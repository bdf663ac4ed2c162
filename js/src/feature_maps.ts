// FeatureMaps view (anywidget AFM module): the input, one channel of the selected layer large, and every
// channel in a grid. Selections (layer, channel, sample, colormap) are synced traits the kernel answers
// with new payloads; see docs/wire-and-dom.md for the traits and the DOM contract.

import type { RenderProps } from "@anywidget/types";
import { COLORMAP_CHOICES, getLut, pickLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider, type SelectOption } from "./lib/controls";
import { readPayload, type Meta, type Payload } from "./lib/decode";
import { Heatmap } from "./lib/heatmap";
import { Mosaic } from "./lib/mosaic";
import { createRedraw, createShell, listen, panel, showNotes } from "./lib/view";

interface LayerOption {
  name: string;
  kind: string;
  module_type: string;
  output_shape: number[];
}

/** Payload metadata as synced: `{}` until the kernel has drawn something. */
type MetaTrait = Meta | Record<string, never>;

interface Model {
  layer: string;
  layer_options: LayerOption[];
  channel: number;
  n_channels: number;
  sample: number;
  n_samples: number;
  grid_data: DataView;
  grid_meta: MetaTrait;
  channel_data: DataView;
  channel_meta: MetaTrait;
  input_data: DataView;
  input_meta: MetaTrait;
  colormap: string;
  error: string;
}

// Parts of the view that can be redrawn on their own.
const INPUT = 1;
const CHANNEL = 2;
const GRID = 4;
const SELECTION = 8;

/** "features.3 — Conv2d [1, 16, 28, 28]"; the shape is written like a Python list. */
function layerLabel(option: LayerOption): string {
  const shape = Array.isArray(option.output_shape) ? ` [${option.output_shape.join(", ")}]` : "";
  return `${option.name} — ${option.module_type}${shape}`;
}

function layerChoices(options: LayerOption[] | undefined): SelectOption[] {
  return (options ?? []).map((option) => ({ value: option.name, label: layerLabel(option) }));
}

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, noteLine, mount } = createShell("FeatureMaps", el, "", model);
  const redraw = createRedraw({ root, errorLine, error: () => model.get("error"), draw });
  const onWrite = (name: keyof Model): void => {
    // The colour map is applied here, in the browser: nothing to wait for.
    if (name !== "colormap") redraw.markPending();
  };

  const layerSelect = createSelect(
    bindTrait(model, "layer", onWrite),
    "layer",
    layerChoices(model.get("layer_options")),
  );
  const channel = bindTrait(model, "channel", onWrite);
  const channelSlider = createSlider(channel, { label: "channel", min: 0, max: 0 });
  const sampleSlider = createSlider(bindTrait(model, "sample", onWrite), { label: "sample", min: 0, max: 0 });
  const colormapSelect = createSelect(
    bindTrait(model, "colormap", onWrite),
    "colormap",
    COLORMAP_CHOICES.map((choice) => ({ value: choice, label: choice })),
  );
  const controls = [layerSelect, channelSlider, sampleSlider, colormapSelect];
  header.append(...controls.map((control) => control.el));

  const inputView = new Heatmap({ maxWidth: 224, maxHeight: 224, minHeight: 16 });
  const channelView = new Heatmap({ maxWidth: 320, maxHeight: 320, minHeight: 24, colorbar: true });
  const gridView = new Mosaic({ maxWidth: 360, colorbar: true });
  gridView.onPick = (picked) => channel.set(picked);
  const inputPanel = panel("input", inputView.el);
  const channelPanel = panel("channel", channelView.el);
  const gridPanel = panel("all channels", gridView.el);
  const body = document.createElement("div");
  body.className = "mvz-body";
  body.append(inputPanel.el, channelPanel.el, gridPanel.el);

  mount(header, errorLine, noteLine, body);

  const drawn: { input: Payload | null; channel: Payload | null; grid: Payload | null } = {
    input: null,
    channel: null,
    grid: null,
  };

  function drawInput(): void {
    const payload = readPayload(model.get("input_data"), model.get("input_meta"));
    drawn.input = payload;
    inputPanel.el.hidden = payload === null;
    if (payload === null) return inputView.clear();
    const { shape, meta } = payload;
    if (meta.rgb === true && shape.length === 3 && shape[0] === 3) inputView.drawRgb(payload);
    else inputView.drawMap(payload, getLut("gray"));
  }

  function drawChannel(): void {
    const payload = readPayload(model.get("channel_data"), model.get("channel_meta"));
    drawn.channel = payload;
    if (payload === null) return channelView.clear();
    channelView.drawMap(payload, pickLut(model.get("colormap"), payload.meta.scale));
    channelPanel.title.textContent = `channel ${model.get("channel")}`;
    root.dataset.mvSeq = String(payload.meta.seq);
  }

  function drawGrid(): void {
    const payload = readPayload(model.get("grid_data"), model.get("grid_meta"));
    drawn.grid = payload;
    if (payload === null) return gridView.clear();
    gridView.draw(payload, pickLut(model.get("colormap"), payload.meta.scale), model.get("channel"));
    gridPanel.title.textContent = `all channels (${payload.shape[0] ?? 0})`;
  }

  function updateRanges(): void {
    // A missing count (an older or partial state) reads as 1: the slider hides instead of showing NaN.
    const channels = Number(model.get("n_channels")) || 1;
    channelSlider.setRange(0, channels - 1);
    channelSlider.el.hidden = !(channels > 1);
    const samples = Number(model.get("n_samples")) || 1;
    sampleSlider.setRange(0, samples - 1);
    sampleSlider.el.hidden = !(samples > 1);
  }

  // Changes arrive one trait at a time; one kernel message sets several, so they are collected and drawn
  // together after the message has been applied (a microtask), each part at most once.
  function draw(parts: number): void {
    if (parts & INPUT) redraw.guarded("input", drawInput);
    if (parts & CHANNEL) redraw.guarded("channel", drawChannel);
    if (parts & GRID) redraw.guarded("channel grid", drawGrid);
    else if (parts & SELECTION) gridView.select(model.get("channel"));
    showNotes(noteLine, [drawn.input, drawn.channel, drawn.grid]);
  }

  const handlers: Array<[keyof Model, () => void]> = [
    ["input_data", () => redraw.invalidate(INPUT)],
    ["input_meta", () => redraw.invalidate(INPUT)],
    ["channel_data", () => redraw.invalidate(CHANNEL, true)],
    ["channel_meta", () => redraw.invalidate(CHANNEL, true)],
    ["grid_data", () => redraw.invalidate(GRID)],
    ["grid_meta", () => redraw.invalidate(GRID)],
    ["channel", () => redraw.invalidate(SELECTION)],
    ["colormap", () => redraw.invalidate(CHANNEL | GRID)],
    ["error", () => redraw.invalidate(0, true)],
    ["n_channels", updateRanges],
    ["n_samples", updateRanges],
    ["layer_options", () => layerSelect.setOptions(layerChoices(model.get("layer_options")))],
  ];
  const unlisten = listen(model, handlers);

  updateRanges();
  redraw.flush(INPUT | CHANNEL | GRID);

  return () => {
    redraw.dispose();
    unlisten();
    for (const control of controls) control.destroy();
    inputView.destroy();
    channelView.destroy();
    gridView.destroy();
    root.remove();
  };
}

export default { render };
