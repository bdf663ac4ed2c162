// HiddenStates view (anywidget AFM module): a recurrent layer's units x timesteps for each direction side
// by side, tokens on the time axis, the highlighted step's state vector and gates, the tokens coloured by
// their attribution, and an LSTMVis-style pattern search (drag over the time axis to select a range).
// Selections are synced traits the kernel answers with payloads; tokens go in with textContent only.

import type { RenderProps } from "@anywidget/types";
import { getLut, pickLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider, type SelectOption } from "./lib/controls";
import { describeValue, readPayload, toCodes, type Meta, type Payload } from "./lib/decode";
import { Colorbar } from "./lib/heatmap";
import { columnAt, thresholdRange, TimeGrid } from "./lib/timeline";
import { asText, element, fillScoredTokens, fillTokenAxis, metaKey, SEQUENCE_CSS } from "./lib/tokens";
import { Tooltip } from "./lib/tooltip";
import { count, createRedraw, createShell, listen, panel, showNotes } from "./lib/view";

type MetaTrait = Meta | Record<string, never>;

interface LayerOption {
  name: string;
  module_type: string;
  num_layers: number;
  bidirectional: boolean;
  hidden_size: number;
}

interface Model {
  layer: string;
  layer_options: LayerOption[];
  stacked_layer: number;
  n_stacked_layers: number;
  direction: number;
  n_directions: number;
  quantity: string;
  quantity_options: string[];
  sample: number;
  n_samples: number;
  timestep: number;
  n_steps: number;
  length: number;
  target: number | null;
  n_classes: number;
  explained_target: number;
  tokens: string[][];
  attribution_method: string;
  pattern_start: number;
  pattern_end: number;
  threshold: number;
  pattern_units: number[];
  pattern_runs: number[][];
  states_data: DataView;
  states_meta: MetaTrait;
  step_data: DataView;
  step_meta: MetaTrait;
  attribution_data: DataView;
  attribution_meta: MetaTrait;
  matches_data: DataView;
  matches_meta: MetaTrait;
  error: string;
}

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, noteLine, mount } = createShell("HiddenStates", el, SEQUENCE_CSS, model);
  // Still loading until some payload has arrived; the newest payload's seq is data-mv-seq.
  const redraw = createRedraw({
    root,
    errorLine,
    error: () => model.get("error"),
    draw,
    loading: () => showSeq() === 0,
  });
  const onWrite = (): void => redraw.markPending();
  const trait = <K extends keyof Model & string>(name: K) => bindTrait(model, name, onWrite);

  const layerChoices = (): SelectOption[] =>
    (model.get("layer_options") ?? []).map((option) => ({
      value: option.name,
      label: `${option.name || "(model)"} — ${option.module_type}`,
    }));
  const layerSelect = createSelect(trait("layer"), "layer", layerChoices());
  const stackedSlider = createSlider(trait("stacked_layer"), { label: "stacked layer", min: 0, max: 0 });
  const directionSelect = createSelect(asText(trait("direction")), "direction", [
    { value: "0", label: "forward" },
    { value: "1", label: "backward" },
  ]);
  const quantityChoices = (): SelectOption[] =>
    (model.get("quantity_options") ?? []).map((quantity) => ({ value: quantity, label: quantity }));
  const quantitySelect = createSelect(trait("quantity"), "quantity", quantityChoices());
  const targetChoices = (): SelectOption[] => [
    { value: "", label: "predicted" },
    ...Array.from({ length: Number(model.get("n_classes")) || 0 }, (_, k) => ({ value: String(k), label: String(k) })),
  ];
  const targetSelect = createSelect(asText(trait("target")), "target", targetChoices());
  const sampleSlider = createSlider(trait("sample"), { label: "sample", min: 0, max: 0 });
  const timestepSlider = createSlider(trait("timestep"), { label: "timestep", min: 0, max: 0 });
  const startSlider = createSlider(trait("pattern_start"), { label: "range start", min: -1, max: 0 });
  const endSlider = createSlider(trait("pattern_end"), { label: "range end", min: -1, max: 0 });
  const thresholdSlider = createSlider(trait("threshold"), { label: "threshold", min: -1, max: 1, step: 0.01 });
  const controls = [
    layerSelect, stackedSlider, directionSelect, quantitySelect, targetSelect, sampleSlider, timestepSlider,
  ];
  const patternControls = [startSlider, endSlider, thresholdSlider];
  header.append(...controls.map((control) => control.el));

  // One grid per direction, its token axis under it, one colour scale for both.
  const grids = [0, 1].map((direction) => {
    const part = panel(direction === 0 ? "forward" : "backward");
    const holder = element("div", "mvz-hs-grid");
    const grid = new TimeGrid(560, 260);
    grid.canvas.dataset.mvPart = direction === 0 ? "forward" : "backward";
    const axis = element("div", "mvz-hs-axis");
    axis.dataset.mvPart = "tokens";
    holder.append(grid.canvas, axis);
    part.el.appendChild(holder);
    return { part, grid, axis, holder, tooltip: new Tooltip(holder) };
  });
  const colorbar = new Colorbar();
  const gridRow = element("div", "mvz-hs-grids");
  gridRow.append(...grids.map((g) => g.part.el));

  const attrPanel = panel("attribution");
  const attrRow = element("div", "mvz-hs-attr");
  attrRow.dataset.mvPart = "attribution";
  attrPanel.el.appendChild(attrRow);

  const stepPanel = panel("step");
  const stepNames = element("div", "mvz-hs-names");
  const stepGrid = new TimeGrid(360, 200);
  stepGrid.canvas.dataset.mvPart = "step";
  const stepRows = element("div", "mvz-hs-rows");
  stepRows.append(stepNames, stepGrid.canvas);
  const stepScale = new Colorbar();
  stepPanel.el.append(stepRows, stepScale.el);

  const patternPanel = panel("pattern search (drag over a grid to select a range)");
  const patternControlRow = element("div", "mvz-header");
  patternControlRow.append(...patternControls.map((control) => control.el));
  const patternText = element("div", "mvz-summary");
  patternText.dataset.mvPart = "pattern-units";
  const matchesGrid = new TimeGrid(560, 160);
  matchesGrid.canvas.dataset.mvPart = "matches";
  const runsText = element("div", "mvz-note");
  const matchesTitle = element("div", "mvz-label", "fraction of these units on, per sample (rows) and step (columns)");
  patternPanel.el.append(patternControlRow, patternText, matchesTitle, matchesGrid.canvas, runsText);

  const body = element("div", "mvz-body");
  body.append(stepPanel.el, patternPanel.el);
  mount(header, errorLine, noteLine, gridRow, colorbar.el, attrPanel.el, body);

  let states: Payload | null = null;
  let attribution: Payload | null = null;

  const tokenAt = (t: number): string => {
    const row = (model.get("tokens") ?? [])[Number(model.get("sample")) || 0];
    return row && t < row.length ? String(row[t]) : String(t);
  };

  function drawStates(): void {
    states = readPayload(model.get("states_data"), model.get("states_meta"));
    if (states === null) return grids.forEach((g) => g.grid.clear());
    const [directions, units, time] = states.shape;
    const codes = toCodes(states);
    const lut = pickLut("auto", states.meta.scale);
    grids.forEach((g, d) => {
      g.part.el.hidden = d >= directions;
      if (d >= directions) return;
      g.grid.draw(codes.subarray(d * units * time, (d + 1) * units * time), units, time, lut);
    });
    colorbar.update(states.meta, lut, grids[0].grid.layout.width);
    showNotes(noteLine, [states]);
  }

  function drawAxis(): void {
    const labels = Array.from({ length: states?.shape[2] ?? 0 }, (_, t) => tokenAt(t));
    const now = Number(model.get("timestep"));
    for (const g of grids) fillTokenAxis(g.axis, labels, g.grid.layout.cellWidth, now);
  }

  function drawHighlight(): void {
    const start = Number(model.get("pattern_start"));
    const end = Number(model.get("pattern_end"));
    const range: [number, number] | null = start >= 0 && end >= start ? [start, end] : null;
    for (const g of grids) g.grid.highlight({ column: Number(model.get("timestep")), range });
    drawAxis();
  }

  function drawStep(): void {
    const payload = readPayload(model.get("step_data"), model.get("step_meta"));
    if (payload === null) return stepGrid.clear();
    const [rows, units] = payload.shape;
    const lut = pickLut("auto", payload.meta.scale);
    stepGrid.draw(toCodes(payload), rows, units, lut);
    const rawMeta = model.get("step_meta");
    const listed = metaKey(rawMeta, "rows");
    const names = Array.isArray(listed) ? listed.map(String) : [];
    stepNames.replaceChildren(
      ...names.map((name) => {
        const row = element("div", "", name);
        row.style.height = `${stepGrid.layout.cellHeight}px`;
        return row;
      }),
    );
    const t = Number(metaKey(rawMeta, "timestep") ?? model.get("timestep"));
    stepPanel.title.textContent = `step ${t}: ${tokenAt(t)}`;
    stepScale.update(payload.meta, lut, Math.max(120, stepGrid.layout.width));
  }

  function drawAttribution(): void {
    attribution = readPayload(model.get("attribution_data"), model.get("attribution_meta"));
    attrPanel.el.hidden = attribution === null;
    if (attribution === null) return attrRow.replaceChildren();
    const length = Number(model.get("length")) || attribution.size;
    const method = String(metaKey(model.get("attribution_meta"), "method") ?? "").split("_").join(" ");
    const target = model.get("explained_target");
    attrPanel.title.textContent = `attribution to class ${target} (${method}; red raises it, blue lowers it)`;
    const labels = Array.from({ length }, (_, t) => tokenAt(t));
    fillScoredTokens(attrRow, labels, attribution, getLut("rdbu"));
  }

  function drawMatches(): void {
    const payload = readPayload(model.get("matches_data"), model.get("matches_meta"));
    const units = model.get("pattern_units") ?? [];
    const start = Number(model.get("pattern_start"));
    const problem = String(metaKey(model.get("matches_meta"), "problem") ?? "");
    if (problem) patternText.textContent = problem;
    else if (start < 0) patternText.textContent = "no range selected";
    else if (units.length === 0) patternText.textContent = "no unit is on throughout the range and off elsewhere";
    else patternText.textContent = `units on in the range and off elsewhere: ${units.join(", ")}`;
    const runs = model.get("pattern_runs") ?? [];
    const shown = runs
      .slice(0, 10)
      .map(([sample, a, b]) => (a === b ? `sample ${sample} step ${a}` : `sample ${sample} steps ${a}–${b}`));
    runsText.textContent = runs.length
      ? `fire together at: ${shown.join("; ")}${runs.length > shown.length ? "; …" : ""}`
      : "";
    matchesTitle.hidden = payload === null || units.length === 0;
    if (payload === null || units.length === 0) return matchesGrid.clear();
    const [rows, cols] = payload.shape;
    matchesGrid.draw(toCodes(payload), rows, cols, getLut("viridis"));
  }

  function updateRanges(): void {
    const steps = count(model.get("n_steps"));
    timestepSlider.setRange(0, steps - 1);
    startSlider.setRange(-1, steps - 1);
    endSlider.setRange(-1, steps - 1);
    const samples = count(model.get("n_samples"));
    sampleSlider.setRange(0, samples - 1);
    sampleSlider.el.hidden = samples < 2;
    const stacked = count(model.get("n_stacked_layers"));
    stackedSlider.setRange(0, stacked - 1);
    stackedSlider.el.hidden = stacked < 2;
    directionSelect.el.hidden = count(model.get("n_directions")) < 2;
    targetSelect.setOptions(targetChoices());
    targetSelect.el.hidden = !(Number(model.get("n_classes")) > 0);
    const meta = model.get("states_meta") as Partial<Meta>;
    if (typeof meta.vmin === "number" && typeof meta.vmax === "number") {
      const [low, high, step] = thresholdRange(meta.vmin, meta.vmax, Number(model.get("threshold")));
      thresholdSlider.input.step = String(step);
      thresholdSlider.setRange(low, high);
    }
  }

  function showSeq(): number {
    const seqs = (["states_meta", "step_meta", "matches_meta", "attribution_meta"] as const).map(
      (name) => Number((model.get(name) as Partial<Meta>).seq) || 0,
    );
    const seq = Math.max(...seqs);
    if (seq > 0) root.dataset.mvSeq = String(seq);
    return seq;
  }

  // Several traits arrive in one kernel message: collect them and draw each part once, after it.
  const STATES = 1, STEP = 2, ATTR = 4, MATCHES = 8, MARKS = 16, RANGES = 32;
  function draw(parts: number): void {
    if (parts & RANGES) updateRanges();
    if (parts & STATES) redraw.guarded("states", drawStates);
    if (parts & (STATES | MARKS)) redraw.guarded("highlight", drawHighlight);
    if (parts & STEP) redraw.guarded("step view", drawStep);
    if (parts & ATTR) redraw.guarded("attribution", drawAttribution);
    if (parts & MATCHES) redraw.guarded("pattern matches", drawMatches);
  }

  // Pointer on a grid: a click picks the timestep, a drag selects the pattern range.
  let dragFrom: number | null = null;
  const pointerHandlers = grids.map((g, d) => {
    const columnOf = (event: PointerEvent): number =>
      columnAt(g.grid.layout, event.clientX - g.grid.canvas.getBoundingClientRect().left);
    const down = (event: PointerEvent): void => {
      dragFrom = columnOf(event);
    };
    const up = (event: PointerEvent): void => {
      if (dragFrom === null || dragFrom < 0) return;
      const to = columnOf(event);
      const [start, end] = [Math.min(dragFrom, to), Math.max(dragFrom, to)];
      dragFrom = null;
      if (start === end) return trait("timestep").set(start);
      const direction = d < count(model.get("n_directions")) ? d : model.get("direction");
      const unchanged =
        start === model.get("pattern_start") &&
        end === model.get("pattern_end") &&
        direction === model.get("direction");
      // The same range again changes nothing: the kernel would not answer, so send nothing.
      if (unchanged) return;
      onWrite();
      model.set("pattern_start", start);
      model.set("pattern_end", end);
      if (d < count(model.get("n_directions"))) model.set("direction", d);
      model.save_changes();
    };
    const move = (event: PointerEvent): void => {
      if (states === null) return;
      const rect = g.grid.canvas.getBoundingClientRect();
      const t = columnOf(event);
      const { cellHeight, rows, cols } = g.grid.layout;
      const unit = Math.min(rows - 1, Math.max(0, Math.floor((event.clientY - rect.top) / cellHeight)));
      const index = d * rows * cols + unit * cols + t;
      g.tooltip.show(`unit ${unit}, step ${t} (${tokenAt(t)}): ${describeValue(states, index)}`,
        event.clientX - rect.left, event.clientY - rect.top);
    };
    const leave = (): void => g.tooltip.hide();
    g.grid.canvas.addEventListener("pointerdown", down);
    g.grid.canvas.addEventListener("pointerup", up);
    g.grid.canvas.addEventListener("pointermove", move);
    g.grid.canvas.addEventListener("pointerleave", leave);
    return () => {
      g.grid.canvas.removeEventListener("pointerdown", down);
      g.grid.canvas.removeEventListener("pointerup", up);
      g.grid.canvas.removeEventListener("pointermove", move);
      g.grid.canvas.removeEventListener("pointerleave", leave);
    };
  });

  const handlers: Array<[keyof Model, () => void]> = [
    ["states_data", () => redraw.invalidate(STATES | RANGES, true)],
    ["states_meta", () => redraw.invalidate(STATES | RANGES, true)],
    ["step_data", () => redraw.invalidate(STEP, true)],
    ["step_meta", () => redraw.invalidate(STEP, true)],
    ["attribution_data", () => redraw.invalidate(ATTR, true)],
    ["attribution_meta", () => redraw.invalidate(ATTR, true)],
    ["matches_data", () => redraw.invalidate(MATCHES, true)],
    ["matches_meta", () => redraw.invalidate(MATCHES, true)],
    ["pattern_units", () => redraw.invalidate(MATCHES)],
    ["pattern_runs", () => redraw.invalidate(MATCHES)],
    ["timestep", () => redraw.invalidate(MARKS)],
    ["threshold", () => redraw.invalidate(RANGES)],
    ["pattern_start", () => redraw.invalidate(MARKS | MATCHES)],
    ["pattern_end", () => redraw.invalidate(MARKS)],
    ["tokens", () => redraw.invalidate(MARKS | ATTR | STEP)],
    ["error", () => redraw.invalidate(0, true)],
    ["n_steps", () => redraw.invalidate(RANGES)],
    ["n_samples", () => redraw.invalidate(RANGES)],
    ["n_stacked_layers", () => redraw.invalidate(RANGES)],
    ["n_directions", () => redraw.invalidate(RANGES)],
    ["n_classes", () => redraw.invalidate(RANGES)],
    ["layer_options", () => layerSelect.setOptions(layerChoices())],
    ["quantity_options", () => quantitySelect.setOptions(quantityChoices())],
  ];
  const unlisten = listen(model, handlers);

  redraw.flush(STATES | STEP | ATTR | MATCHES | MARKS | RANGES);

  return () => {
    redraw.dispose();
    unlisten();
    for (const control of [...controls, ...patternControls]) control.destroy();
    for (const remove of pointerHandlers) remove();
    root.remove();
  };
}

export default { render };
