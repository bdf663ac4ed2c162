// Runtime of a static export page (modelviz_widgets/export.py writes the page and inlines this module).
// It reads the embedded state, rebuilds the widget tree with plain elements, loads each view's ES module
// from a Blob URL and renders it over an ExportModel, draws bqplot snapshots as SVG, and answers the
// controls a view moves from the recorded frames, or says that they need the live kernel. No network.

import { ExportModel, frameTargets, pendingUpdates } from "./lib/export_model";
import { layoutFigure, type FigureSpec, type Shape } from "./lib/export_figure";
import { base64ToBytes, decodeState, frameKey, type EmbeddedState } from "./lib/export_state";

interface ViewEntry extends EmbeddedState {
  module: string;
  class: string;
  kernel_traits?: string[];
  replies?: Record<string, Array<{ content: unknown; buffers: string[] }>>;
}

interface Frame {
  views?: Record<string, EmbeddedState>;
  figures?: Record<string, FigureSpec>;
  /** The widget tree when the frame changes it, and the views that were not in the page. */
  tree?: Node;
  new_views?: Record<string, ViewEntry>;
}

interface Node {
  kind: string;
  id?: string;
  widget?: string;
  layout?: string;
  children?: Node[];
  titles?: string[];
  selected?: number | null;
  text?: string;
  description?: string;
  value?: string;
  control?: string;
  options?: string[];
  min?: number;
  max?: number;
}

interface Page {
  title?: string;
  modules: Record<string, string>;
  views: Record<string, ViewEntry>;
  figures: Record<string, FigureSpec>;
  frames: Record<string, Record<string, Record<string, Frame>>>;
  tree: Node;
}

export const KERNEL_NOTICE = "static export: this control needs the live kernel";

const page = JSON.parse(document.getElementById("mvx-state")?.textContent ?? "null") as Page;
const svgNs = document.getElementById("mvx-svg")?.namespaceURI ?? "";
const pageRoot = document.getElementById("mvx-root") as HTMLElement;

const models = new Map<string, ExportModel>();
const hosts = new Map<string, HTMLElement>();
const base = new Map<string, Record<string, unknown>>();
// What the page shows for each trait of each view: where a refused control goes back to.
const shown = new Map<string, Record<string, unknown>>();
const figureHosts = new Map<string, { el: HTMLElement; spec: FigureSpec }>();
const touched: Record<string, Set<string>> = {};
const decodedFrames = new WeakMap<Frame, Record<string, Record<string, unknown>>>();
const modules = new Map<string, Promise<any>>();
// Every view the page may show: those of the exported tree and those only a frame's tree holds.
const entries: Record<string, ViewEntry> = { ...page.views };
let shownTree: Node = page.tree;
let treeElement: HTMLElement | null = null;

function el(tag: string, className = "", text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// -- bqplot snapshots --

function svgShape(shape: Shape): Element {
  const node = document.createElementNS(svgNs, shape.tag);
  for (const [name, value] of Object.entries(shape.attrs)) node.setAttribute(name, String(value));
  if (shape.text !== undefined) node.textContent = shape.text;
  for (const child of shape.children ?? []) node.appendChild(svgShape(child));
  return node;
}

function drawFigure(host: HTMLElement, spec: FigureSpec): void {
  const layout = layoutFigure(spec);
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("width", String(layout.width));
  svg.setAttribute("height", String(layout.height));
  svg.setAttribute("viewBox", `0 0 ${layout.width} ${layout.height}`);
  svg.setAttribute("data-mv-figure", "");
  for (const shape of layout.shapes) svg.appendChild(svgShape(shape));
  host.replaceChildren(svg);
}

// -- frames and the kernel notice --

function decodedFrame(frame: Frame): Record<string, Record<string, unknown>> {
  let out = decodedFrames.get(frame);
  if (out === undefined) {
    out = {};
    for (const [id, embedded] of Object.entries(frame.views ?? {})) out[id] = decodeState(embedded);
    for (const [id, embedded] of Object.entries(frame.new_views ?? {})) out[id] = decodeState(embedded);
    decodedFrames.set(frame, out);
  }
  return out;
}

function applyFrame(frame: Frame, actor: string): void {
  const tree = frame.tree ?? page.tree;
  if (tree !== shownTree) showTree(tree, frame);
  const baseState = Object.fromEntries(base);
  const targets = frameTargets(baseState, touched, decodedFrame(frame), ["error"]);
  for (const [id, target] of Object.entries(targets)) {
    const model = models.get(id);
    if (model === undefined) continue;
    const updates = pendingUpdates(model, target);
    Object.assign(shown.get(id) ?? {}, target);
    // The acting view always hears an answer (the error trait, unchanged or cleared), so it leaves "loading".
    if (id === actor && !("error" in updates) && model.has("error")) updates.error = model.get("error");
    model.apply(updates);
  }
  for (const [id, figure] of figureHosts) {
    const spec = frame.figures?.[id] ?? page.figures[id];
    if (spec !== figure.spec) {
      figure.spec = spec;
      drawFigure(figure.el, spec);
    }
  }
}

function isLoading(id: string): boolean {
  const root = hosts.get(id)?.querySelector<HTMLElement>("[data-mv-state]");
  return root?.dataset.mvState === "loading";
}

function notice(id: string, name: string, value: unknown): void {
  const model = models.get(id) as ExportModel;
  const host = hosts.get(id) as HTMLElement;
  const message = `${KERNEL_NOTICE} (${name})`;
  host.dataset.mvExportNotice = message;
  // The control goes back to what is on screen; the message is the answer the view was waiting for.
  const updates: Record<string, unknown> = { [name]: value };
  if (model.has("error")) updates.error = message;
  model.apply(updates);
  if (!model.has("error")) {
    const line = host.querySelector(".mvx-notice") ?? host.appendChild(el("div", "mvx-notice"));
    line.textContent = message;
  }
}

function onSave(id: string, names: string[]): void {
  setTimeout(() => {
    const model = models.get(id) as ExportModel;
    const entry = entries[id];
    for (const name of names) {
      const frame = page.frames[id]?.[name]?.[frameKey(model.get(name))];
      if (frame !== undefined) {
        delete hosts.get(id)?.dataset.mvExportNotice;
        applyFrame(frame, id);
      } else if ((entry.kernel_traits ?? []).includes(name) || isLoading(id)) {
        notice(id, name, shown.get(id)?.[name]);
      }
    }
  }, 0);
}

// -- views --

function loadModule(key: string): Promise<any> {
  let loaded = modules.get(key);
  if (loaded === undefined) {
    const url = URL.createObjectURL(new Blob([page.modules[key]], { type: "text/javascript" }));
    loaded = import(/* @vite-ignore */ url).then(async (module) => {
      URL.revokeObjectURL(url);
      // anywidget also accepts a default export that is a function returning { initialize, render }.
      const exported = module.default;
      return typeof exported === "function" ? await exported() : exported;
    });
    modules.set(key, loaded);
  }
  return loaded;
}

async function renderView(id: string, host: HTMLElement): Promise<void> {
  const entry = entries[id];
  const state = decodeState(entry);
  base.set(id, state);
  shown.set(id, { ...state });
  const model: ExportModel = new ExportModel(state, {
    onSave: (names) => onSave(id, names),
    onSend: (content) => {
      for (const reply of entry.replies?.[frameKey(content)] ?? []) {
        const buffers = reply.buffers.map((data) => {
          const bytes = base64ToBytes(data);
          return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        });
        setTimeout(() => model.deliver(reply.content, buffers), 0);
      }
    },
  });
  models.set(id, model);
  hosts.set(id, host);
  const view = await loadModule(entry.module);
  const signal = new AbortController().signal;
  const experimental = { invoke: () => Promise.reject(new Error(KERNEL_NOTICE)) };
  if (typeof view?.initialize === "function") await view.initialize({ model, signal, experimental });
  if (typeof view?.render !== "function") throw new Error(`the module of ${entry.class} has no render()`);
  const noHost = { getModel: () => Promise.reject(), getWidget: () => Promise.reject() };
  await view.render({ model, el: host, signal, experimental, host: noHost });
}

// -- the widget tree --

function control(node: Node): HTMLElement {
  const wrapper = el("label", "mvx-control");
  wrapper.dataset.mvExportControl = node.widget ?? "";
  if (node.description) wrapper.append(el("span", "mvx-description", node.description));
  let input: HTMLElement;
  if (node.control === "slider" || node.control === "progress") {
    const range = document.createElement("input");
    range.type = "range";
    range.min = String(node.min ?? 0);
    range.max = String(node.max ?? 100);
    range.value = node.value ?? "";
    range.disabled = true;
    input = el("span");
    input.append(range, el("output", "mvx-readout", node.value ?? ""));
  } else if (node.control === "select") {
    const select = document.createElement("select");
    for (const [i, label] of (node.options ?? []).entries()) {
      const option = document.createElement("option");
      option.textContent = label;
      option.selected = i === node.selected;
      select.appendChild(option);
    }
    select.disabled = true;
    input = select;
  } else if (node.control === "toggle") {
    input = el("span", "mvx-toggles");
    for (const [i, label] of (node.options ?? []).entries()) {
      const button = el("button", i === node.selected ? "mvx-on" : "", label) as HTMLButtonElement;
      button.disabled = true;
      input.appendChild(button);
    }
  } else if (node.control === "button") {
    const button = el("button", "", node.value ?? "") as HTMLButtonElement;
    button.disabled = true;
    input = button;
  } else if (node.control === "checkbox") {
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = node.value === "true";
    box.disabled = true;
    input = box;
  } else {
    const text = document.createElement("input");
    text.value = node.value ?? "";
    text.disabled = true;
    input = text;
  }
  wrapper.appendChild(input);
  return wrapper;
}

function build(node: Node, pending: Array<Promise<void>>, frame?: Frame): HTMLElement {
  switch (node.kind) {
    case "view": {
      // A view already on the page is moved, not drawn again.
      const existing = hosts.get(node.id as string);
      if (existing !== undefined) return existing;
      const host = el("div", "mvx-view");
      host.dataset.mvExportView = node.id ?? "";
      pending.push(
        renderView(node.id as string, host).catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          const line = el("div", "mvx-failed", `static export: cannot show ${node.widget}: ${message}`);
          line.dataset.mvState = "error";
          host.appendChild(line);
          throw error;
        }),
      );
      return host;
    }
    case "figure": {
      const existing = figureHosts.get(node.id as string);
      if (existing !== undefined) return existing.el;
      const host = el("div", "mvx-figure");
      const spec = frame?.figures?.[node.id as string] ?? page.figures[node.id as string];
      figureHosts.set(node.id as string, { el: host, spec });
      drawFigure(host, spec);
      return host;
    }
    case "box": {
      const box = el("div", `mvx-box mvx-${node.layout ?? "column"}`);
      for (const child of node.children ?? []) box.appendChild(build(child, pending, frame));
      return box;
    }
    case "tabs": {
      const box = el("div", "mvx-tabs");
      for (const [i, child] of (node.children ?? []).entries()) {
        const section = el("details", "mvx-tab");
        (section as HTMLDetailsElement).open = node.selected == null || node.selected === i || node.layout === "tab";
        section.append(el("summary", "", node.titles?.[i] || `(${i + 1})`), build(child, pending, frame));
        box.appendChild(section);
      }
      return box;
    }
    case "text":
      return el("div", "mvx-text", node.text ?? "");
    case "control":
      return control(node);
    default: {
      const box = el("div", "mvx-unknown", `static export: a ${node.widget ?? "widget"} cannot be shown here`);
      box.dataset.mvExportUnknown = node.widget ?? "";
      return box;
    }
  }
}

/** Shows another widget tree (a frame's): views and figures already drawn are moved into it. */
function showTree(tree: Node, frame?: Frame): Array<Promise<void>> {
  const pending: Array<Promise<void>> = [];
  const element = build(tree, pending, frame);
  if (treeElement === null) pageRoot.appendChild(element);
  else treeElement.replaceWith(element);
  treeElement = element;
  shownTree = tree;
  for (const promise of pending) promise.catch(() => undefined);
  return pending;
}

async function main(): Promise<void> {
  for (const traits of Object.values(page.frames ?? {})) {
    for (const byValue of Object.values(traits)) {
      for (const frame of Object.values(byValue)) {
        const changed = { ...(frame.views ?? {}), ...(frame.new_views ?? {}) };
        for (const [id, embedded] of Object.entries(changed)) {
          const set = (touched[id] ??= new Set());
          for (const name of Object.keys(embedded.state ?? {})) set.add(name);
          for (const buffer of embedded.buffers ?? []) set.add(String(buffer.path[0]));
        }
        for (const [id, entry] of Object.entries(frame.new_views ?? {})) entries[id] ??= entry;
      }
    }
  }
  if (page.title) pageRoot.appendChild(el("h1", "mvx-title", page.title));
  const pending = showTree(page.tree);
  const results = await Promise.allSettled(pending);
  pageRoot.dataset.mvExport = results.every((r) => r.status === "fulfilled") ? "ready" : "error";
}

main().catch((error: unknown) => {
  pageRoot.dataset.mvExport = "error";
  const message = error instanceof Error ? error.message : String(error);
  pageRoot.appendChild(el("div", "mvx-failed", `static export: ${message}`));
});
