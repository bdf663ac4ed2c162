// Filters view (anywidget AFM module), the core of modelviz_widgets.Filters: every filter of a convolution
// layer in a grid (colour images for 3 input channels, otherwise one input channel at a time), sorted by
// index or norm, and the selected filter large with values on hover. The projection scatter and the
// histograms are bqplot figures composed beside this view in Python.

import type { RenderProps } from "@anywidget/types";
import { COLORMAP_CHOICES, pickLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider, type SelectOption } from "./lib/controls";
import { formatNumber, readPayload, type Meta, type Payload } from "./lib/decode";
import { FilterGrid } from "./lib/filter_grid";
import { Heatmap } from "./lib/heatmap";
import { createRedraw, createShell, listen, panel, showNotes } from "./lib/view";

interface LayerOption {
  name: string;
  module_type: string;
  weight_shape: number[];
}

type MetaTrait = Meta | Record<string, never>;

interface Model {
  layer: string;
  layer_options: LayerOption[];
  filter: number;
  n_filters: number;
  input_channel: number;
  n_input_channels: number;
  rgb: boolean;
  sort: string;
  projection: string;
  colormap: string;
  grid_data: DataView;
  grid_meta: MetaTrait;
  filter_data: DataView;
  filter_meta: MetaTrait;
  norms_data: DataView;
  norms_meta: MetaTrait;
  order_data: DataView;
  order_meta: MetaTrait;
  error: string;
}

const FILTER = 1;
const GRID = 2;
const SELECTION = 4;

function layerChoices(options: LayerOption[] | undefined): SelectOption[] {
  return (options ?? []).map((option) => ({
    value: option.name,
    label: `${option.name} — ${option.module_type} [${(option.weight_shape ?? []).join(", ")}]`,
  }));
}

function choices(values: readonly string[]): SelectOption[] {
  return values.map((value) => ({ value, label: value }));
}

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, noteLine, mount } = createShell("Filters", el, "", model);
  const redraw = createRedraw({ root, errorLine, error: () => model.get("error"), draw });
  const onWrite = (name: keyof Model): void => {
    // Colours are applied here; the projection is answered by the bqplot scatter, not this view.
    if (name !== "colormap" && name !== "projection") redraw.markPending();
  };

  const layerSelect = createSelect(bindTrait(model, "layer", onWrite), "layer", layerChoices(model.get("layer_options")));
  const filter = bindTrait(model, "filter", onWrite);
  const filterSlider = createSlider(filter, { label: "filter", min: 0, max: 0 });
  const channelSlider = createSlider(bindTrait(model, "input_channel", onWrite), {
    label: "input channel",
    min: 0,
    max: 0,
  });
  const sortSelect = createSelect(bindTrait(model, "sort", onWrite), "sort", choices(["index", "norm"]));
  const projectionSelect = createSelect(bindTrait(model, "projection", onWrite), "projection", choices(["pca", "tsne"]));
  const colormapSelect = createSelect(bindTrait(model, "colormap", onWrite), "colormap", choices(COLORMAP_CHOICES));
  const controls = [layerSelect, filterSlider, channelSlider, sortSelect, projectionSelect, colormapSelect];
  header.append(...controls.map((control) => control.el));

  const filterView = new Heatmap({ maxWidth: 240, maxHeight: 240, minHeight: 24, colorbar: true });
  const gridView = new FilterGrid({ maxWidth: 360 });
  const filterPanel = panel("filter", filterView.el);
  const gridPanel = panel("all filters", gridView.el);
  const body = document.createElement("div");
  body.className = "mvz-body";
  body.append(filterPanel.el, gridPanel.el);
  mount(header, errorLine, noteLine, body);

  const drawn: { filter: Payload | null; grid: Payload | null } = { filter: null, grid: null };
  // Display order (filter index per grid cell) and norms by filter index.
  let order: number[] = [];
  let norms: number[] = [];

  const positionOf = (index: number): number => order.indexOf(index);
  gridView.onPick = (position) => {
    const index = order[position];
    if (index !== undefined) filter.set(index);
  };
  gridView.label = (position) => {
    const index = order[position] ?? position;
    const norm = norms[index];
    return norm === undefined ? `filter ${index}` : `filter ${index} · norm ${formatNumber(norm)}`;
  };

  function readVector(data: keyof Model, meta: keyof Model): number[] {
    const payload = readPayload(model.get(data), model.get(meta));
    if (payload === null) return [];
    return Array.from({ length: payload.size }, (_, i) => payload.value(i));
  }

  function showSeq(): void {
    const seqs = [drawn.filter, drawn.grid].map((payload) => payload?.meta.seq ?? 0);
    const seq = Math.max(...seqs);
    if (seq > 0) root.dataset.mvSeq = String(seq);
  }

  function drawFilter(): void {
    const payload = readPayload(model.get("filter_data"), model.get("filter_meta"));
    drawn.filter = payload;
    if (payload === null) return filterView.clear();
    const { meta, shape } = payload;
    const rgb = meta.rgb === true && shape.length === 3 && shape[0] === 3;
    if (rgb) filterView.drawRgb(payload);
    else filterView.drawMap(payload, pickLut(model.get("colormap"), meta.scale));
    // A colour image has no colour scale: hide the one left from a single-channel layer.
    const colorbar = filterView.el.querySelector<HTMLElement>(".mvz-colorbar");
    if (colorbar !== null) colorbar.hidden = rgb;
    const extra = meta as Meta & { filter?: number; norm?: number; input_channel?: number };
    const channel = meta.rgb === true ? "RGB" : `input channel ${extra.input_channel ?? 0}`;
    const norm = typeof extra.norm === "number" ? ` · norm ${formatNumber(extra.norm)}` : "";
    filterPanel.title.textContent = `filter ${extra.filter ?? model.get("filter")} · ${channel}${norm}`;
  }

  function drawGrid(): void {
    order = readVector("order_data", "order_meta").map((value) => Math.round(value));
    norms = readVector("norms_data", "norms_meta");
    const payload = readPayload(model.get("grid_data"), model.get("grid_meta"));
    drawn.grid = payload;
    if (payload === null) return gridView.clear();
    const rgb = payload.meta.rgb === true;
    const lut = rgb ? null : pickLut(model.get("colormap"), payload.meta.scale);
    gridView.draw(payload, lut, positionOf(model.get("filter")));
    const sorted = model.get("sort") === "norm" ? ", largest norm first" : "";
    gridPanel.title.textContent = `all filters (${payload.shape[0] ?? 0}${sorted})`;
  }

  function updateRanges(): void {
    const filters = Number(model.get("n_filters")) || 1;
    filterSlider.setRange(0, filters - 1);
    const channels = Number(model.get("n_input_channels")) || 1;
    channelSlider.setRange(0, channels - 1);
    channelSlider.el.hidden = model.get("rgb") === true || !(channels > 1);
  }

  // The traits of one kernel message are drawn together after it, each part at most once.
  function draw(parts: number): void {
    if (parts & FILTER) redraw.guarded("filter", drawFilter);
    if (parts & GRID) redraw.guarded("filter grid", drawGrid);
    else if (parts & SELECTION) gridView.select(positionOf(model.get("filter")));
    showSeq();
    showNotes(noteLine, [drawn.filter, drawn.grid]);
  }

  const handlers: Array<[keyof Model, () => void]> = [
    ["filter_data", () => redraw.invalidate(FILTER, true)],
    ["filter_meta", () => redraw.invalidate(FILTER, true)],
    ["grid_data", () => redraw.invalidate(GRID, true)],
    ["grid_meta", () => redraw.invalidate(GRID, true)],
    ["order_data", () => redraw.invalidate(GRID, true)],
    ["norms_data", () => redraw.invalidate(GRID)],
    ["filter", () => redraw.invalidate(SELECTION)],
    ["colormap", () => redraw.invalidate(FILTER | GRID)],
    ["error", () => redraw.invalidate(0, true)],
    ["n_filters", updateRanges],
    ["n_input_channels", updateRanges],
    ["rgb", updateRanges],
    ["layer_options", () => layerSelect.setOptions(layerChoices(model.get("layer_options")))],
  ];
  const unlisten = listen(model, handlers);

  updateRanges();
  redraw.flush(FILTER | GRID);

  return () => {
    redraw.dispose();
    unlisten();
    for (const control of controls) control.destroy();
    filterView.destroy();
    gridView.destroy();
    root.remove();
  };
}

export default { render };
