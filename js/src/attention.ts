// Attention view (anywidget AFM module): every layer x head of a transformer as thumbnails in one canvas
// (a click opens that head), and a large panel with either the query x key matrix of one head, the mean
// of a layer's heads or the rollout, or the head view (tokens in two columns joined by the top-k lines
// of each query, one colour per head). Tokens are user text and go in with textContent only.

import type { RenderProps } from "@anywidget/types";
import { readKeys, toggleHead } from "./lib/attention_lines";
import { ATTENTION_CSS, HeadView, OverviewCanvas } from "./lib/attention_panels";
import { getLut } from "./lib/colormap";
import { bindTrait, createSelect, createSlider } from "./lib/controls";
import { readPayload, sizeOf, type Meta, type Payload } from "./lib/decode";
import { Heatmap } from "./lib/heatmap";
import { element, metaKey } from "./lib/tokens";
import { count, createRedraw, createShell, listen, panel, showNotes } from "./lib/view";

type MetaTrait = Meta | Record<string, never>;

interface Model {
  layer: number;
  head: number;
  mode: string;
  detail: string;
  shown_heads: number[];
  sample: number;
  n_layers: number;
  n_heads: number;
  n_samples: number;
  length: number;
  tokens: string[];
  text: string;
  editable: boolean;
  thumbnail_size: number;
  thumbnails_data: DataView;
  thumbnails_meta: MetaTrait;
  matrix_data: DataView;
  matrix_meta: MetaTrait;
  lines_data: DataView;
  lines_meta: MetaTrait;
  lines_keys: DataView;
  error: string;
}

/** Token labels go on the matrix's axes up to this many tokens. */
const MAX_LABELLED = 64;
const MATRIX_SIZE = 520;

const OVERVIEW = 1, MATRIX = 2, LINES = 4, SELECTION = 8, RANGES = 16, TOKENS = 32;

function render({ model, el }: RenderProps<Model>): () => void {
  const { root, header, errorLine, noteLine, mount } = createShell("Attention", el, ATTENTION_CSS, model);
  const redraw = createRedraw({
    root,
    errorLine,
    error: () => model.get("error"),
    draw,
    loading: () => showSeq() === 0,
  });
  const onWrite = (): void => redraw.markPending();
  const trait = <K extends keyof Model & string>(name: K) => bindTrait(model, name, onWrite);

  const layerSlider = createSlider(trait("layer"), { label: "layer", min: 0, max: 0 });
  const headSlider = createSlider(trait("head"), { label: "head", min: 0, max: 0 });
  const sampleSlider = createSlider(trait("sample"), { label: "sample", min: 0, max: 0 });
  const modeSelect = createSelect(trait("mode"), "matrix of", [
    { value: "head", label: "one head" },
    { value: "mean", label: "mean of heads" },
    { value: "rollout", label: "rollout" },
  ]);
  // Switching the large panel needs nothing new from the kernel: both payloads are always there.
  const detailSelect = createSelect(bindTrait(model, "detail"), "show", [
    { value: "matrix", label: "matrix" },
    { value: "lines", label: "lines (head view)" },
  ]);
  const controls = [layerSlider, headSlider, sampleSlider, modeSelect, detailSelect];

  // The text box: sent on Enter or when it loses focus changed.
  const textInput = element("input");
  textInput.type = "text";
  textInput.size = 48;
  textInput.dataset.mvControl = "text";
  textInput.dataset.lmSuppressShortcuts = "true";
  const textBox = element("label", "mvz-control");
  textBox.append(element("span", "mvz-label", "text"), textInput);
  const sendText = (): void => {
    if (textInput.value === model.get("text")) return;
    onWrite();
    model.set("text", textInput.value);
    model.save_changes();
  };
  const onTextKey = (event: KeyboardEvent): void => {
    if (event.key === "Enter") sendText();
  };
  textInput.addEventListener("keydown", onTextKey);
  textInput.addEventListener("change", sendText);
  header.append(...controls.map((control) => control.el), textBox);

  // A click on a thumbnail opens that head in the matrix: four traits, one message.
  const overview = new OverviewCanvas(640, (layer, head) => {
    const next: Partial<Model> = { layer, head, mode: "head", detail: "matrix" };
    const changed = (Object.keys(next) as Array<keyof Model>).filter((name) => model.get(name) !== next[name]);
    if (changed.length === 0) return;
    // The kernel answers a new layer, head or mode with payloads; the panel switch alone it only records.
    if (changed.some((name) => name !== "detail")) onWrite();
    for (const name of changed) model.set(name, next[name] as never);
    model.save_changes();
  });
  const overviewPanel = panel("every layer (rows) and head (columns), each scaled to its own maximum",
    overview.el);

  const tokenAt = (index: number): string => String((model.get("tokens") ?? [])[index] ?? index);
  let matrixPayload: Payload | null = null;
  const tokenOfCell = (cell: number, axis: number): number => {
    const cells = matrixPayload?.shape[axis] ?? 0;
    const length = count(model.get("length"));
    return cells === length || cells === 0 ? cell : Math.floor((cell * length) / cells);
  };
  const matrix = new Heatmap({
    maxWidth: MATRIX_SIZE,
    maxHeight: MATRIX_SIZE,
    colorbar: true,
    describe: (row, col, value) => {
      const q = tokenOfCell(row, 0);
      const k = tokenOfCell(col, 1);
      return `query ${q} ${JSON.stringify(tokenAt(q))} → key ${k} ${JSON.stringify(tokenAt(k))}: ${value}`;
    },
  });
  matrix.canvas.dataset.mvPart = "matrix";
  const queryAxis = element("div", "mvz-attn-qaxis");
  const keyAxis = element("div", "mvz-attn-kaxis");
  const matrixGrid = element("div", "mvz-attn-matrix");
  matrixGrid.append(element("div"), keyAxis, queryAxis, matrix.el);
  const matrixPanel = panel("matrix", element("div", "mvz-label", "rows: queries, columns: keys"), matrixGrid);

  const headView = new HeadView((head) => {
    // Drawn here at once; the kernel only records the choice.
    model.set("shown_heads", toggleHead(model.get("shown_heads") ?? [], head));
    model.save_changes();
    redraw.flush(LINES);
  });
  const linesPanel = panel("head view", headView.el);

  const body = element("div", "mvz-body");
  body.append(overviewPanel.el, matrixPanel.el, linesPanel.el);
  mount(header, errorLine, noteLine, body);

  let thumbnails: Payload | null = null;
  let lines: Payload | null = null;

  function drawOverview(): void {
    thumbnails = readPayload(model.get("thumbnails_data"), model.get("thumbnails_meta"));
    overview.draw(thumbnails, getLut("viridis"));
    const pool = Number(metaKey(model.get("thumbnails_meta"), "pool")) || 1;
    overviewPanel.title.textContent =
      "every layer (rows) and head (columns), each scaled to its own maximum" +
      (pool > 1 ? ` · max over ${pool} × ${pool} token blocks` : "");
  }

  function fillAxes(rows: number, cols: number): void {
    const labelled = matrixPayload !== null && rows <= MAX_LABELLED && rows === count(model.get("length"));
    queryAxis.hidden = keyAxis.hidden = !labelled;
    if (!labelled) return (queryAxis.replaceChildren(), keyAxis.replaceChildren());
    const size = parseFloat(matrix.canvas.style.width) || 0;
    const cellW = size / cols;
    const cellH = (parseFloat(matrix.canvas.style.height) || 0) / rows;
    const font = `${Math.max(7, Math.min(11, Math.floor(Math.min(cellW, cellH)) - 1))}px`;
    const label = (index: number, width: string, height: string): HTMLSpanElement => {
      const text = tokenAt(index);
      const span = element("span", "", text);
      span.title = `${index}: ${text}`;
      span.style.width = width;
      span.style.height = height;
      span.style.fontSize = font;
      return span;
    };
    queryAxis.replaceChildren(...Array.from({ length: rows }, (_, q) => label(q, "", `${cellH}px`)));
    keyAxis.replaceChildren(...Array.from({ length: cols }, (_, k) => label(k, `${cellW}px`, "")));
  }

  function drawMatrix(): void {
    matrixPayload = readPayload(model.get("matrix_data"), model.get("matrix_meta"));
    if (matrixPayload === null || matrixPayload.shape.length !== 2) {
      matrix.clear();
      fillAxes(0, 0);
      return;
    }
    matrix.drawMap(matrixPayload, getLut("viridis"));
    const [rows, cols] = matrixPayload.shape;
    fillAxes(rows, cols);
    const raw = model.get("matrix_meta");
    const layer = Number(metaKey(raw, "layer") ?? model.get("layer"));
    const head = Number(metaKey(raw, "head") ?? model.get("head"));
    const mode = String(metaKey(raw, "mode") ?? model.get("mode"));
    matrixPanel.title.textContent =
      mode === "rollout"
        ? `attention rollout through layer ${layer}`
        : mode === "mean"
          ? `layer ${layer} · mean of heads`
          : `layer ${layer} · head ${head}`;
  }

  function drawLines(): void {
    lines = readPayload(model.get("lines_data"), model.get("lines_meta"));
    const keys = lines === null ? null : readKeys(model.get("lines_keys"), sizeOf(lines.shape));
    headView.setTokens(model.get("tokens") ?? []);
    headView.setHeads(count(model.get("n_heads")), model.get("shown_heads") ?? []);
    headView.setLines(lines, keys);
    headView.draw();
    const raw = model.get("lines_meta");
    const layer = metaKey(raw, "layer") ?? model.get("layer");
    const k = metaKey(raw, "k");
    linesPanel.title.textContent =
      `head view of layer ${layer}` + (typeof k === "number" ? ` (the ${k} strongest keys of each query)` : "");
  }

  function updateRanges(): void {
    layerSlider.setRange(0, count(model.get("n_layers")) - 1);
    headSlider.setRange(0, count(model.get("n_heads")) - 1);
    const samples = count(model.get("n_samples"));
    sampleSlider.setRange(0, samples - 1);
    sampleSlider.el.hidden = samples < 2;
    textBox.hidden = !model.get("editable");
    if (document.activeElement !== textInput) textInput.value = model.get("text") ?? "";
  }

  function updateSelection(): void {
    overview.select(Number(model.get("layer")), Number(model.get("head")), String(model.get("mode")));
    const lined = model.get("detail") === "lines";
    matrixPanel.el.hidden = lined;
    linesPanel.el.hidden = !lined;
  }

  function showSeq(): number {
    const seqs = (["thumbnails_meta", "matrix_meta", "lines_meta"] as const).map(
      (name) => Number((model.get(name) as Partial<Meta>)?.seq) || 0,
    );
    const seq = Math.max(...seqs);
    if (seq > 0) root.dataset.mvSeq = String(seq);
    return seq;
  }

  // Several traits arrive in one kernel message: collect them and draw each part once, after it.
  function draw(parts: number): void {
    if (parts & RANGES) updateRanges();
    if (parts & OVERVIEW) redraw.guarded("overview", drawOverview);
    if (parts & (MATRIX | TOKENS)) redraw.guarded("matrix", drawMatrix);
    if (parts & (SELECTION | OVERVIEW)) redraw.guarded("selection", updateSelection);
    // The head view is drawn only while shown (at 512 tokens it is tens of thousands of lines).
    const lined = model.get("detail") === "lines";
    if (parts & (LINES | TOKENS) && lined) redraw.guarded("head view", drawLines);
    showNotes(noteLine, [thumbnails, matrixPayload, lines]);
  }

  const handlers: Array<[keyof Model, () => void]> = [
    ["thumbnails_data", () => redraw.invalidate(OVERVIEW, true)],
    ["thumbnails_meta", () => redraw.invalidate(OVERVIEW, true)],
    ["matrix_data", () => redraw.invalidate(MATRIX, true)],
    ["matrix_meta", () => redraw.invalidate(MATRIX, true)],
    ["lines_data", () => redraw.invalidate(LINES, true)],
    ["lines_meta", () => redraw.invalidate(LINES, true)],
    ["lines_keys", () => redraw.invalidate(LINES, true)],
    ["tokens", () => redraw.invalidate(TOKENS)],
    ["shown_heads", () => redraw.invalidate(LINES)],
    ["layer", () => redraw.invalidate(SELECTION)],
    ["head", () => redraw.invalidate(SELECTION)],
    ["mode", () => redraw.invalidate(SELECTION)],
    ["detail", () => redraw.invalidate(SELECTION | LINES)],
    ["error", () => redraw.invalidate(0, true)],
    ["n_layers", () => redraw.invalidate(RANGES)],
    ["n_heads", () => redraw.invalidate(RANGES | LINES)],
    ["n_samples", () => redraw.invalidate(RANGES)],
    ["editable", () => redraw.invalidate(RANGES)],
    ["text", () => redraw.invalidate(RANGES)],
  ];
  const unlisten = listen(model, handlers);

  redraw.flush(OVERVIEW | MATRIX | LINES | SELECTION | RANGES);

  return () => {
    redraw.dispose();
    unlisten();
    for (const control of controls) control.destroy();
    textInput.removeEventListener("keydown", onTextKey);
    textInput.removeEventListener("change", sendText);
    overview.destroy();
    matrix.destroy();
    headView.destroy();
    root.remove();
  };
}

export default { render };
