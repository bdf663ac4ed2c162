// FeatureMaps view (anywidget AFM module): the input, one channel of the selected layer large, and every
// channel in a grid. Selections (layer, channel, sample, colormap) are synced traits the kernel answers
// with new payloads; see docs/wire-and-dom.md for the traits and the DOM contract.

import type { RenderProps } from "@anywidget/types";
import { COLORMAP_CHOICES, getLut, pickLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider, type SelectOption } from "./lib/controls";
import { readPayload, type Meta, type Payload } from "./lib/decode";
import { Heatmap } from "./lib/heatmap";
import { Mosaic } from "./lib/mosaic";
import { createStyle } from "./lib/style";

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

function panel(title: string, ...content: HTMLElement[]): { el: HTMLElement; title: HTMLElement } {
  const el = document.createElement("section");
  el.className = "mvz-panel";
  const heading = document.createElement("div");
  heading.className = "mvz-title";
  heading.textContent = title;
  el.append(heading, ...content);
  return { el, title: heading };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function render({ model, el }: RenderProps<Model>): () => void {
  const root = document.createElement("div");
  root.className = "mvz-root";
  root.dataset.mvWidget = "FeatureMaps";
  root.dataset.mvState = "loading";
  root.appendChild(createStyle());

  // A selection this view sent and the kernel has not answered yet (with a channel payload or an error).
  let pending = false;
  const onWrite = (name: keyof Model): void => {
    // The colour map is applied here, in the browser: nothing to wait for.
    if (name === "colormap") return;
    pending = true;
    updateStatus();
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
  const header = document.createElement("div");
  header.className = "mvz-header";
  header.append(...controls.map((control) => control.el));

  const errorLine = document.createElement("div");
  errorLine.className = "mvz-error";
  errorLine.setAttribute("role", "alert");
  errorLine.hidden = true;
  const noteLine = document.createElement("div");
  noteLine.className = "mvz-note";
  noteLine.hidden = true;

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

  root.append(header, errorLine, noteLine, body);
  el.appendChild(root);

  // Decode or draw failures of one part, shown like kernel errors instead of only in the console.
  const partErrors = new Map<number, string>();
  const drawn: { input: Payload | null; channel: Payload | null; grid: Payload | null } = {
    input: null,
    channel: null,
    grid: null,
  };

  function guarded(part: number, what: string, draw: () => void): void {
    try {
      draw();
      partErrors.delete(part);
    } catch (error) {
      partErrors.set(part, `cannot draw the ${what}: ${messageOf(error)}`);
    }
  }

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

  function updateNote(): void {
    const notes = new Set<string>();
    for (const payload of [drawn.input, drawn.channel, drawn.grid]) {
      if (payload?.meta.downsampled && payload.meta.note) notes.add(payload.meta.note);
    }
    const text = [...notes].join(" ");
    noteLine.textContent = text;
    noteLine.hidden = text === "";
  }

  function updateStatus(): void {
    const message = model.get("error") || [...partErrors.values()].join("\n");
    errorLine.textContent = message;
    errorLine.hidden = message === "";
    root.dataset.mvState = message ? "error" : pending ? "loading" : "ready";
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
  let dirty = 0;
  let answered = false;
  let scheduled = false;
  let disposed = false;

  function flush(): void {
    scheduled = false;
    if (disposed) return;
    const parts = dirty;
    dirty = 0;
    if (parts & INPUT) guarded(INPUT, "input", drawInput);
    if (parts & CHANNEL) guarded(CHANNEL, "channel", drawChannel);
    if (parts & GRID) guarded(GRID, "channel grid", drawGrid);
    else if (parts & SELECTION) gridView.select(model.get("channel"));
    if (answered) pending = false;
    answered = false;
    updateNote();
    updateStatus();
  }

  function invalidate(parts: number, answer = false): void {
    dirty |= parts;
    answered ||= answer;
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  }

  const handlers: Array<[keyof Model, () => void]> = [
    ["input_data", () => invalidate(INPUT)],
    ["input_meta", () => invalidate(INPUT)],
    ["channel_data", () => invalidate(CHANNEL, true)],
    ["channel_meta", () => invalidate(CHANNEL, true)],
    ["grid_data", () => invalidate(GRID)],
    ["grid_meta", () => invalidate(GRID)],
    ["channel", () => invalidate(SELECTION)],
    ["colormap", () => invalidate(CHANNEL | GRID)],
    ["error", () => invalidate(0, true)],
    ["n_channels", updateRanges],
    ["n_samples", updateRanges],
    ["layer_options", () => layerSelect.setOptions(layerChoices(model.get("layer_options")))],
  ];
  for (const [name, handler] of handlers) model.on(`change:${name}`, handler);

  updateRanges();
  dirty = INPUT | CHANNEL | GRID;
  flush();

  return () => {
    disposed = true;
    for (const [name, handler] of handlers) model.off(`change:${name}`, handler);
    for (const control of controls) control.destroy();
    inputView.destroy();
    channelView.destroy();
    gridView.destroy();
    root.remove();
  };
}

export default { render };
