// TrainingMonitor view (anywidget AFM module; the core of mv.TrainingMonitor, the bqplot loss figure sits
// below it). The kernel appends the recorded history as custom messages (lib/training_history.ts); every
// part is drawn here from what the browser holds, so choosing a layer or scrubbing through the sampled steps
// works while the kernel is busy in a training cell. Parts: heat strips of the selected layer's weight and
// gradient distributions over time, its gradient-norm and update-ratio curves (every run overlaid), a table
// of every layer at the scrubbed sample, and the alerts. Drawing happens at most once per animation frame.

import type { RenderProps } from "@anywidget/types";
import { getLut } from "./lib/colormap";
import { animationFrames, bindTrait, createSelect, createSlider, type TraitBinding } from "./lib/controls";
import { drawNorms, drawStrips, RUN_COLOURS } from "./lib/training_draw";
import { HistoryError, isHistoryMessage, TrainingHistory } from "./lib/training_history";
import { formatStat, layerCells, LayerTable } from "./lib/training_table";
import { element } from "./lib/tokens";
import { createRedraw, createShell, listen, messageOf, panel } from "./lib/view";

interface RunInfo {
  name: string;
  every: number;
  layers: string[];
  live: boolean;
  finished: boolean;
}

interface Alert {
  run: number;
  step: number;
  layer: string;
  kind: string;
  message: string;
}

interface Model {
  runs: RunInfo[];
  metric_names: string[];
  bins: number;
  quantities: string[];
  latest_step: number;
  running: boolean;
  alerts: Alert[];
  layer: string;
  scrub: number;
  error: string;
}

const STRIPS = 1;
const NORMS = 2;
const TABLE = 4;
const ALERTS = 8;
const HEADER = 16;
const ALL = STRIPS | NORMS | TABLE | ALERTS | HEADER;

const EXTRA_CSS = `
.mvz-tm-status { font-variant-numeric: tabular-nums; color: var(--jp-ui-font-color2, inherit); }
.mvz-tm-table { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
.mvz-tm-table th, .mvz-tm-table td { padding: 1px 8px; text-align: right; white-space: nowrap; }
.mvz-tm-table th:first-child, .mvz-tm-table td:first-child { text-align: left; max-width: 22em;
  overflow: hidden; text-overflow: ellipsis; }
.mvz-tm-table th { font-weight: 600; border-bottom: 1px solid var(--jp-border-color1, rgba(128,128,128,0.6)); }
.mvz-tm-table tbody tr:hover { background: var(--jp-layout-color2, rgba(128,128,128,0.15)); }
.mvz-tm-table tr[aria-selected="true"] { outline: 1px solid var(--jp-brand-color1, #1976d2); font-weight: 600; }
.mvz-tm-badge { display: inline-block; margin-left: 3px; padding: 0 4px; border-radius: 3px; font-size: 11px;
  color: #fff; background: #e65100; }
.mvz-tm-badge.mvz-tm-nan, .mvz-tm-badge.mvz-tm-exploding { background: #c62828; }
.mvz-tm-badge.mvz-tm-vanishing { background: #6a1b9a; }
.mvz-tm-alerts { margin: 0; padding-left: 1.2em; max-height: 9em; overflow-y: auto; font-size: 12px; }
.mvz-tm-legend { display: flex; gap: 12px; font-size: 11px; }
.mvz-tm-legend span::before { content: ""; display: inline-block; width: 10px; height: 3px; margin-right: 4px;
  vertical-align: middle; background: var(--mvz-run-colour); }
`;

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, mount } = createShell("TrainingMonitor", el, EXTRA_CSS, model);
  const history = new TrainingHistory();
  let chunkError = "";
  const redraw = createRedraw({
    root,
    errorLine,
    error: () => [model.get("error"), chunkError].filter(Boolean).join("\n"),
    draw,
    // Loading until the first chunk of history (the answer to the sync request, or a live append).
    loading: () => history.chunks === 0,
  });

  const runs = (): RunInfo[] => model.get("runs") ?? [];
  const layersOf = (run: number): string[] => runs()[run]?.layers ?? [];

  // -- header: layer, scrubber (over run 0's samples, -1 follows the newest), "latest", status --
  const layerBinding = bindTrait(model, "layer");
  const layerSelect = createSelect(layerBinding, "layer", []);
  const scrubRaw = bindTrait(model, "scrub");
  const newest = (): number => {
    const run = history.run(0);
    return run ? run.sampleBase + run.sampleCount - 1 : 0;
  };
  // The slider shows the newest sample while the trait is -1; moving it pins a sample.
  const scrubShown: TraitBinding<number> = {
    name: "scrub",
    get: () => (scrubRaw.get() < 0 ? Math.max(newest(), 0) : scrubRaw.get()),
    set: (value) => scrubRaw.set(value),
    watch: (callback) => scrubRaw.watch(() => callback(scrubShown.get())),
  };
  const scrubSlider = createSlider(scrubShown, { label: "sample", min: 0, max: 0 });
  const latestBox = element("input");
  latestBox.type = "checkbox";
  latestBox.dataset.mvPart = "latest";
  latestBox.dataset.lmSuppressShortcuts = "true";
  const latestLabel = element("label", "mvz-control");
  latestLabel.append(latestBox, element("span", "mvz-label", "latest"));
  const onLatest = (): void => scrubRaw.set(latestBox.checked ? -1 : Math.max(newest(), 0));
  latestBox.addEventListener("change", onLatest);
  const status = element("span", "mvz-tm-status");
  status.dataset.mvPart = "status";
  header.append(layerSelect.el, scrubSlider.el, latestLabel, status);

  // -- body --
  const strips = element("canvas", "mvz-canvas");
  strips.dataset.mvPart = "strips";
  const stripsPanel = panel("distributions", strips);
  const norms = element("canvas", "mvz-canvas");
  norms.dataset.mvPart = "norms";
  const legend = element("div", "mvz-tm-legend");
  const normsPanel = panel("gradient norm and update ratio", norms, legend);
  const table = new LayerTable((name) => layerBinding.set(name));
  const tablePanel = panel("layers", table.el);
  const alertList = element("ol", "mvz-tm-alerts");
  alertList.dataset.mvPart = "alerts";
  const alertsPanel = panel("alerts", alertList);
  const body = element("div", "mvz-body");
  body.append(stripsPanel.el, normsPanel.el, tablePanel.el, alertsPanel.el);
  mount(header, errorLine, body);

  /** Held index of run 0's scrubbed sample (-1: none held). */
  function scrubbed(): number {
    const run = history.run(0);
    if (!run || run.sampleCount === 0) return -1;
    const wanted = scrubRaw.get();
    const index = wanted < 0 ? run.sampleCount - 1 : wanted - run.sampleBase;
    return Math.max(0, Math.min(run.sampleCount - 1, index));
  }

  function selectedLayer(): string {
    const name = model.get("layer");
    const names = layersOf(0);
    return names.includes(name) || names.length === 0 ? name : names[0];
  }

  function draw(parts: number): void {
    const run = history.run(0);
    const index = scrubbed();
    const layer = selectedLayer();
    if (parts & HEADER) redraw.guarded("header", drawHeader);
    if (parts & STRIPS) {
      redraw.guarded("strips", () => {
        drawStrips(strips, run, layersOf(0).indexOf(layer), index, getLut("viridis"));
        stripsPanel.title.textContent = `distributions of ${layer || "—"} over the sampled steps (run 0)`;
        // What the strips show, for tests and tools: the layer and the marked (scrubbed) sample.
        strips.dataset.mvLayer = layer;
        strips.dataset.mvMarked = String(index < 0 || !run ? -1 : index + run.sampleBase);
      });
    }
    if (parts & NORMS) {
      redraw.guarded("curves", () => {
        const markStep = run && index >= 0 ? run.sampleStep(index) : NaN;
        drawNorms(norms, runs().map((info, r) => ({ history: history.run(r), layers: info.layers })), layer, markStep);
      });
    }
    if (parts & TABLE) redraw.guarded("table", () => drawTable(index, layer));
    if (parts & ALERTS) redraw.guarded("alerts", drawAlerts);
    root.dataset.mvSeq = String(history.chunks);
    root.dataset.mvSteps = String(run?.stepCount ?? 0);
    root.dataset.mvSamples = String(run?.sampleCount ?? 0);
  }

  let shownNames: readonly string[] | null = null;
  let shownLegend = "";
  function drawHeader(): void {
    const names = layersOf(0);
    if (names !== shownNames) {
      shownNames = names;
      layerSelect.setOptions(names.map((name) => ({ value: name, label: name })));
    }
    const run = history.run(0);
    const count = run?.sampleCount ?? 0;
    scrubSlider.setRange(run?.sampleBase ?? 0, Math.max(newest(), 0));
    scrubSlider.input.disabled = count === 0;
    latestBox.checked = scrubRaw.get() < 0;
    const info = runs()[0];
    const last = run && run.stepCount > 0 ? run.stepCount - 1 : -1;
    const parts: string[] = [];
    if (last >= 0) {
      parts.push(`step ${run!.step(last)}`);
      const loss = run!.loss(last);
      if (!Number.isNaN(loss)) parts.push(`loss ${formatStat(loss)}`);
    } else parts.push("no steps yet");
    parts.push(model.get("running") ? "running" : info?.finished ? "finished" : info?.live ? "live" : "loaded");
    if (runs().length > 1) parts.push(`${runs().length} runs`);
    status.textContent = parts.join(" · ");
    const shown = scrubbed();
    scrubSlider.input.title = run && shown >= 0 ? `sample ${shown + run.sampleBase}: step ${run.sampleStep(shown)}` : "";
    const names2 = runs().length > 1 ? runs().map((info) => info.name) : [];
    if (JSON.stringify(names2) !== shownLegend) {
      shownLegend = JSON.stringify(names2);
      legend.replaceChildren(
        ...names2.map((name, r) => {
          const item = element("span", "", name);
          item.style.setProperty("--mvz-run-colour", RUN_COLOURS[r % RUN_COLOURS.length]);
          return item;
        }),
      );
    }
  }

  function drawTable(index: number, layer: string): void {
    const names = layersOf(0);
    table.setLayers(names);
    const run = history.run(0);
    const step = run && index >= 0 ? run.sampleStep(index) : NaN;
    const kinds = new Map<string, string[]>();
    for (const alert of model.get("alerts") ?? []) {
      if (alert.run !== 0 || alert.step !== step || !alert.layer || !/^[a-z]+$/.test(alert.kind)) continue;
      const list = kinds.get(alert.layer) ?? [];
      if (!list.includes(alert.kind)) list.push(alert.kind);
      kinds.set(alert.layer, list);
    }
    const values = names.map((_, l) => (run ? layerCells(run, index, l) : []));
    table.update(values, names.map((name) => kinds.get(name) ?? []), layer);
    tablePanel.title.textContent = Number.isNaN(step) ? "layers" : `layers at step ${step}`;
  }

  // The alerts trait is the latest 200: items already shown are kept (by their text), only new ones made.
  let shownAlerts: Alert[] | null = null;
  let alertItems = new Map<string, HTMLLIElement>();
  const noAlerts = element("li", "mvz-note", "no alerts");
  function drawAlerts(): void {
    const alerts = model.get("alerts") ?? [];
    if (alerts === shownAlerts) return;
    shownAlerts = alerts;
    const many = runs().length > 1;
    const next = new Map<string, HTMLLIElement>();
    const items: HTMLLIElement[] = [];
    for (let a = alerts.length - 1; a >= 0; a--) {
      const alert = alerts[a];
      const run = many ? `${runs()[alert.run]?.name ?? alert.run} · ` : "";
      const text = `${run}step ${alert.step} · ${alert.kind}: ${alert.message}`;
      let key = text;
      for (let n = 2; next.has(key); n++) key = `${text}\u0000${n}`;
      let item = alertItems.get(key);
      if (item === undefined) {
        item = element("li", "mvz-tm-alert", text);
        item.dataset.mvKind = alert.kind;
      }
      next.set(key, item);
      items.push(item);
    }
    alertItems = next;
    const children = alertList.children;
    const same = children.length === items.length && items.every((item, i) => children[i] === item);
    if (!same) alertList.replaceChildren(...(items.length ? items : [noAlerts]));
  }

  // -- scheduling: at most one draw per animation frame --
  let dirty = 0;
  let frame: number | null = null;
  function invalidate(parts: number): void {
    dirty |= parts;
    if (frame === null) {
      frame = animationFrames.request(() => {
        frame = null;
        const marked = dirty;
        dirty = 0;
        redraw.flush(marked);
      });
    }
  }

  const onCustom = (content: unknown, buffers: ReadonlyArray<ArrayBuffer | ArrayBufferView> = []): void => {
    if (!isHistoryMessage(content)) return;
    try {
      history.apply(content, buffers);
      chunkError = "";
    } catch (error) {
      chunkError = error instanceof HistoryError ? `cannot read the history: ${error.message}` : messageOf(error);
    }
    invalidate(ALL & ~ALERTS);
  };
  model.on("msg:custom", onCustom);

  const unlisten = listen(model, [
    ["layer", () => invalidate(STRIPS | NORMS | TABLE)],
    ["scrub", () => invalidate(STRIPS | NORMS | TABLE | HEADER)],
    ["runs", () => invalidate(ALL)],
    ["alerts", () => invalidate(ALERTS | TABLE)],
    ["running", () => invalidate(HEADER)],
    ["latest_step", () => invalidate(HEADER)],
    ["error", () => invalidate(0)],
  ]);

  redraw.flush(ALL);
  // Ask for the whole history: chunks sent before this view existed never reached it.
  model.send({ type: "sync" });

  return () => {
    if (frame !== null) animationFrames.cancel(frame);
    redraw.dispose();
    unlisten();
    model.off("msg:custom", onCustom);
    latestBox.removeEventListener("change", onLatest);
    layerSelect.destroy();
    scrubSlider.destroy();
    table.destroy();
    root.remove();
  };
}

export default { render };
