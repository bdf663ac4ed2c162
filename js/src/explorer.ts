// Explorer view (anywidget AFM module): the model's top predictions (a click sets the target of every
// view), the inputs as a strip of thumbnails or lines of text (a click picks the sample), the layer /
// saliency tabs, the collapsible model tree with activation-magnitude bars and health badges (a click
// selects the layer), and the selected layer's details and distributions. The specialist view of the
// layer is laid out beside this one by the Python Explorer. See docs/wire-and-dom.md.

import type { RenderProps } from "@anywidget/types";
import { formatNumber, readPayload, type Meta } from "./lib/decode";
import { EXPLORER_CSS, histogramCanvas, thumbnail } from "./lib/explorer_draw";
import {
  compactCount,
  initialCollapsed,
  magnitudeBars,
  reuseText,
  shapeText,
  shortName,
  visibleRows,
  type TreeNodeInfo,
} from "./lib/explorer_tree";
import { createRedraw, createShell, listen, panel } from "./lib/view";

type MetaTrait = Meta | Record<string, never>;

interface Prediction {
  class: number;
  label: string;
  probability: number;
}

interface HistRow {
  name: string;
  low: number;
  high: number;
  count: number;
  nonfinite: number;
}

interface LayerInfo extends Partial<TreeNodeInfo> {
  /** The call shown, for a module that runs several times (null: its last call). */
  call?: number | null;
  dead_fraction?: number | null;
  saturated_fraction?: number | null;
  grad_rms?: number | null;
}

interface Model {
  tree: TreeNodeInfo[];
  layer: string;
  layer_info: LayerInfo;
  view_kind: string;
  tab: string;
  saliency_available: boolean;
  sample: number;
  n_samples: number;
  target: number | null;
  n_classes: number;
  predictions: Prediction[];
  output_shape: number[];
  strip_data: DataView;
  strip_meta: MetaTrait & { rgb?: boolean; total?: number };
  strip_text: string[];
  strip_labels: string[];
  hist_data: DataView;
  hist_meta: MetaTrait & { rows?: Array<HistRow | null>; layer?: string };
  summary: string;
  seq: number;
  error: string;
}



function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text = ""): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  el.className = className;
  if (text) el.textContent = text;
  return el;
}

function percent(value: number | null | undefined): string {
  return typeof value === "number" ? `${(100 * value).toFixed(1)}%` : "—";
}

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, noteLine, mount } = createShell("Explorer", el, EXPLORER_CSS, model);
  root.classList.add("mvz-explorer-core");
  const redraw = createRedraw({
    root,
    errorLine,
    error: () => model.get("error"),
    draw,
    loading: () => {
      const seq = Number(model.get("seq")) || 0;
      if (seq > 0) root.dataset.mvSeq = String(seq);
      return seq === 0;
    },
  });

  const send = (name: "layer" | "sample" | "target" | "tab", value: unknown): void => {
    if (model.get(name) === value) return;
    redraw.markPending();
    model.set(name, value as never);
    model.save_changes();
  };

  // -- header: summary, predictions, tabs --
  const summary = element("div", "mvz-summary");
  const predictions = element("div", "mvz-classes");
  predictions.dataset.mvControl = "target";
  const predictedButton = element("button", "mvz-button", "predicted class");
  predictedButton.dataset.mvControl = "target-predicted";
  predictedButton.addEventListener("click", () => send("target", null));
  const tabs = element("div", "mvz-row-line");
  tabs.dataset.mvControl = "tab";
  const tabButtons = new Map<string, HTMLButtonElement>();
  for (const [value, label] of [
    ["layer", "layer view"],
    ["saliency", "saliency"],
  ] as const) {
    const button = element("button", "mvz-button", label);
    button.dataset.mvTab = value;
    button.dataset.lmSuppressShortcuts = "true";
    button.addEventListener("click", () => send("tab", value));
    tabButtons.set(value, button);
    tabs.appendChild(button);
  }
  header.append(summary);

  // -- inputs --
  const strip = element("div", "mvz-strip");
  strip.dataset.mvControl = "sample";

  // -- tree --
  const tree = element("div", "mvz-tree");
  tree.dataset.mvControl = "layer";
  tree.tabIndex = 0;
  tree.dataset.lmSuppressShortcuts = "true";
  tree.setAttribute("role", "tree");
  let collapsed: Set<string> | null = null;
  let revealSelected = false; // after a keyboard move, keep the selected row in sight
  // Arrow keys walk the visible rows (a module's call rows included); left / right fold and
  // unfold the selected container; the kernel answers the new selection as for a click.
  const onKey = (event: KeyboardEvent): void => {
    const rows = Array.from(tree.querySelectorAll<HTMLElement>(".mvz-node"));
    const names = rows.map((row) => row.dataset.mvLayer ?? "");
    const at = names.indexOf(model.get("layer"));
    const node = (model.get("tree") ?? []).find((n) => n.name === model.get("layer"));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const next = Math.min(names.length - 1, Math.max(0, at + (event.key === "ArrowDown" ? 1 : -1)));
      if (next !== at && names[next] !== undefined) {
        revealSelected = true;
        send("layer", names[next]);
      }
    } else if ((event.key === "ArrowLeft" || event.key === "ArrowRight") && node && node.children.length) {
      const folded = collapsed ?? new Set<string>();
      if (event.key === "ArrowLeft") folded.add(node.name);
      else folded.delete(node.name);
      collapsed = folded;
      drawTree();
    } else {
      return;
    }
    event.preventDefault();
  };
  tree.addEventListener("keydown", onKey);

  // -- layer details --
  const details = element("div", "mvz-panel");
  const hists = element("div", "mvz-hists");

  const predictionPanel = panel("prediction", predictions, predictedButton);
  const inputPanel = panel("inputs", strip);
  const treePanel = panel("model", tree);
  const layerPanel = panel("layer", details, hists);
  mount(header, errorLine, noteLine, predictionPanel.el, inputPanel.el, tabs, treePanel.el, layerPanel.el);

  function drawPredictions(): void {
    const list = model.get("predictions") ?? [];
    const target = model.get("target");
    predictionPanel.el.hidden = list.length === 0;
    predictions.replaceChildren(
      ...list.map((prediction) => {
        const button = element("button", "mvz-button mvz-pred");
        button.dataset.mvClass = String(prediction.class);
        button.dataset.lmSuppressShortcuts = "true";
        button.setAttribute("aria-pressed", String(target === prediction.class));
        const label = element("span", "", prediction.label);
        const bar = element("div", "mvz-pred-bar");
        bar.style.width = `${Math.max(1, Math.round(80 * prediction.probability))}px`;
        const value = element("span", "mvz-readout", `${(100 * prediction.probability).toFixed(1)}%`);
        button.append(label, bar, value);
        button.addEventListener("click", () => send("target", prediction.class));
        return button;
      }),
    );
    predictedButton.setAttribute("aria-pressed", String(target === null));
    const shape = model.get("output_shape") ?? [];
    predictionPanel.title.textContent =
      target === null ? `prediction (output [${shape.join(", ")}])` : `prediction — explaining class ${target}`;
  }

  function drawTabs(): void {
    const tab = model.get("tab");
    for (const [value, button] of tabButtons) button.setAttribute("aria-pressed", String(value === tab));
    const saliency = tabButtons.get("saliency");
    if (saliency) saliency.hidden = !model.get("saliency_available");
  }

  function drawStrip(): void {
    const payload = readPayload(model.get("strip_data"), model.get("strip_meta"));
    const texts = model.get("strip_text") ?? [];
    const labels = model.get("strip_labels") ?? [];
    const sample = model.get("sample");
    const items: HTMLElement[] = [];
    if (payload !== null) {
      const rgb = model.get("strip_meta").rgb === true;
      const count = payload.shape[0] ?? 0;
      for (let i = 0; i < count; i++) {
        const item = element("div", "mvz-thumb");
        item.dataset.mvSample = String(i);
        item.setAttribute("aria-selected", String(i === sample));
        item.append(thumbnail(payload, i, rgb));
        if (labels[i] !== undefined) item.append(element("span", "", labels[i]));
        item.addEventListener("click", () => send("sample", i));
        items.push(item);
      }
    } else {
      texts.forEach((text, i) => {
        const line = element("div", "mvz-text-input", labels[i] !== undefined ? `${labels[i]}: ${text}` : text);
        line.dataset.mvSample = String(i);
        line.title = text;
        line.setAttribute("aria-selected", String(i === sample));
        line.addEventListener("click", () => send("sample", i));
        items.push(line);
      });
    }
    strip.replaceChildren(...items);
    const total = Number(model.get("strip_meta").total ?? items.length) || items.length;
    inputPanel.title.textContent =
      total > items.length ? `inputs (first ${items.length} of ${total})` : `inputs (${items.length})`;
  }

  function drawTree(): void {
    const nodes = model.get("tree") ?? [];
    const selected = model.get("layer");
    if (collapsed === null && nodes.length > 0) collapsed = initialCollapsed(nodes, nodes.length > 60 ? 2 : 4, selected);
    const folded = collapsed ?? new Set<string>();
    const bars = magnitudeBars(nodes);
    const rows = visibleRows(nodes, folded).map((node) => {
      const row = element("div", "mvz-node");
      row.dataset.mvLayer = node.name;
      row.dataset.mvKind = node.kind;
      row.setAttribute("aria-selected", String(node.name === selected));
      row.style.paddingLeft = `${4 + 12 * node.depth}px`;
      const caret = element("span", "mvz-caret", node.children.length ? (folded.has(node.name) ? "▸" : "▾") : "");
      caret.addEventListener("click", (event) => {
        event.stopPropagation();
        if (!node.children.length) return;
        if (folded.has(node.name)) folded.delete(node.name);
        else folded.add(node.name);
        drawTree();
      });
      const magnitude = element("div", "mvz-mag");
      const fill = element("div", "");
      fill.style.width = `${Math.round(100 * (bars.get(node.name) ?? 0))}%`;
      magnitude.title = "mean |activation| for these inputs (log scale)";
      magnitude.append(fill);
      row.append(
        caret,
        element("span", "", shortName(node.name)),
        element("span", "mvz-node-type", node.module_type),
        element("span", "mvz-node-shape", shapeText(node)),
        magnitude,
      );
      if (node.n_params > 0) row.append(element("span", "mvz-node-shape", compactCount(node.n_params)));
      const reuse = reuseText(node);
      if (reuse) {
        const mark = element("span", "mvz-reuse", "shared");
        mark.title = reuse;
        mark.dataset.mvReuse = "shared";
        row.append(mark);
      }
      for (const badge of node.badges ?? []) {
        const chip = element("span", "mvz-badge", badge.kind);
        chip.dataset.mvBadge = badge.kind;
        chip.dataset.level = badge.level;
        chip.title = badge.message;
        row.append(chip);
      }
      row.title = node.name || "(model)";
      row.addEventListener("click", () => send("layer", node.name));
      if (node.calls.length < 2) return [row];
      // A module that ran several times: one row per call, each with its own output.
      const calls = node.calls.map((call, k) => {
        const name = `${node.name}#${k}`;
        const sub = element("div", "mvz-node");
        sub.dataset.mvLayer = name;
        sub.dataset.mvCall = String(k);
        sub.setAttribute("aria-selected", String(name === selected));
        sub.style.paddingLeft = `${4 + 12 * (node.depth + 1)}px`;
        const shape = call.output_shape ? `[${call.output_shape.join(", ")}]` : "";
        sub.append(element("span", "mvz-caret"), element("span", "mvz-node-type", `call ${k}`), element("span", "mvz-node-shape", shape));
        sub.addEventListener("click", () => send("layer", name));
        return sub;
      });
      return [row, ...calls];
    });
    tree.replaceChildren(...rows.flat());
    if (revealSelected) {
      revealSelected = false;
      tree.querySelector<HTMLElement>('.mvz-node[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
    }
  }

  function drawDetails(): void {
    const info = model.get("layer_info") ?? {};
    const lines: string[] = [];
    const call = typeof info.call === "number" ? ` — call ${info.call}` : "";
    lines.push(`${info.name || "(model)"}${call} — ${info.module_type ?? ""} (${info.kind ?? ""})`);
    if (info.calls && info.calls.length) lines.push(`output ${shapeText(info as TreeNodeInfo)}`);
    lines.push(`${(info.n_params ?? 0).toLocaleString()} parameters (${(info.own_params ?? 0).toLocaleString()} own)`);
    if (info.shared_with && info.shared_with.length) lines.push(`the same module is also ${info.shared_with.join(", ")}`);
    if (info.dead_fraction !== undefined && info.dead_fraction !== null) lines.push(`dead units: ${percent(info.dead_fraction)}`);
    if (info.saturated_fraction !== undefined && info.saturated_fraction !== null)
      lines.push(`saturated outputs: ${percent(info.saturated_fraction)}`);
    if (typeof info.grad_rms === "number") lines.push(`gradient RMS at the output: ${formatNumber(info.grad_rms)}`);
    const view = model.get("view_kind");
    lines.push(view === "none" ? "no view for this module's output" : `shown beside: ${view.replace("_", " ")}`);
    const children: HTMLElement[] = lines.map((line) => element("div", "", line));
    for (const badge of info.badges ?? []) {
      const item = element("div", "mvz-row-line");
      const chip = element("span", "mvz-badge", badge.kind);
      chip.dataset.level = badge.level;
      item.append(chip, element("span", "", badge.message));
      children.push(item);
    }
    details.replaceChildren(...children);
    layerPanel.title.textContent = `layer ${shortName(info.name ?? "")}`;
  }

  function drawHists(): void {
    const payload = readPayload(model.get("hist_data"), model.get("hist_meta"));
    const rows = model.get("hist_meta").rows ?? [];
    if (payload === null || payload.values === null) return hists.replaceChildren();
    const items: HTMLElement[] = [];
    rows.forEach((row, r) => {
      if (row === null) return;
      const box = element("div", "mvz-hist");
      box.dataset.mvHist = row.name;
      const canvas = histogramCanvas(payload, r, getComputedStyle(root).color || "#555");
      const extra = row.nonfinite ? `, ${row.nonfinite} NaN/Inf` : "";
      box.append(
        element("span", "", `${row.name} (${row.count.toLocaleString()} values${extra})`),
        canvas,
        element("span", "mvz-node-shape", `${formatNumber(row.low)} … ${formatNumber(row.high)}`),
      );
      items.push(box);
    });
    hists.replaceChildren(...items);
  }

  const TREE = 1;
  const DETAILS = 2;
  const STRIP = 4;
  const HEADER = 8;

  function draw(parts: number): void {
    if (parts & HEADER) {
      summary.textContent = model.get("summary") ?? "";
      redraw.guarded("predictions", drawPredictions);
      drawTabs();
    }
    if (parts & STRIP) redraw.guarded("inputs", drawStrip);
    if (parts & TREE) redraw.guarded("model tree", drawTree);
    if (parts & DETAILS) {
      redraw.guarded("layer details", drawDetails);
      redraw.guarded("distributions", drawHists);
    }
  }

  const unlisten = listen(model, [
    ["tree", () => redraw.invalidate(TREE)],
    ["layer", () => redraw.invalidate(TREE)],
    ["layer_info", () => redraw.invalidate(DETAILS)],
    ["hist_data", () => redraw.invalidate(DETAILS)],
    ["hist_meta", () => redraw.invalidate(DETAILS)],
    ["view_kind", () => redraw.invalidate(DETAILS)],
    ["strip_data", () => redraw.invalidate(STRIP)],
    ["strip_meta", () => redraw.invalidate(STRIP)],
    ["strip_text", () => redraw.invalidate(STRIP)],
    ["strip_labels", () => redraw.invalidate(STRIP)],
    ["sample", () => redraw.invalidate(STRIP)],
    ["predictions", () => redraw.invalidate(HEADER)],
    ["target", () => redraw.invalidate(HEADER)],
    ["tab", () => redraw.invalidate(HEADER)],
    ["saliency_available", () => redraw.invalidate(HEADER)],
    ["summary", () => redraw.invalidate(HEADER)],
    ["output_shape", () => redraw.invalidate(HEADER)],
    ["seq", () => redraw.invalidate(0, true)],
    ["error", () => redraw.invalidate(0, true)],
  ]);
  redraw.flush(TREE | DETAILS | STRIP | HEADER);

  return () => {
    redraw.dispose();
    unlisten();
    tree.removeEventListener("keydown", onKey);
    root.remove();
  };
}

export default { render };
