// DOM parts of the Attention view: the overview canvas (every layer x head thumbnail in one canvas, one
// putImageData per frame, labels and the selection outline drawn over it) and the head view (query and
// key token columns, one span per token, with the top-k lines of the shown heads in one canvas between).

import { cssColor, headColor, lineBatches, rowAt, rowCenter, type LineBatch } from "./attention_lines";
import {
  overviewLayout,
  paintThumbnails,
  selectionRect,
  thumbnailAt,
  type OverviewLayout,
} from "./attention_overview";
import { toCodes, type Payload } from "./decode";
import { element } from "./tokens";
import { Tooltip } from "./tooltip";

export const ATTENTION_CSS = `
.mvz-attn-overview { position: relative; display: inline-block; }
.mvz-attn-overview canvas { display: block; cursor: pointer; }
.mvz-attn-matrix { display: grid; grid-template-columns: auto auto; align-items: start; gap: 2px; }
.mvz-attn-qaxis { display: flex; flex-direction: column; font-size: 11px; text-align: right; }
.mvz-attn-kaxis { display: flex; align-items: flex-end; font-size: 11px; max-height: 7em; }
.mvz-attn-qaxis span, .mvz-attn-kaxis span { flex: none; overflow: hidden; white-space: nowrap;
  text-overflow: ellipsis; line-height: 1; }
.mvz-attn-qaxis span { max-width: 9em; display: flex; align-items: center; justify-content: flex-end; }
.mvz-attn-kaxis span { writing-mode: vertical-rl; transform: rotate(180deg); max-height: 7em;
  display: flex; align-items: center; }
.mvz-attn-chips { display: flex; flex-wrap: wrap; gap: 4px; }
.mvz-attn-chip { font: inherit; font-size: 11px; cursor: pointer; border-radius: 3px; padding: 1px 6px;
  border: 2px solid var(--mvz-head); background: transparent; color: inherit; opacity: 0.55; }
.mvz-attn-chip[aria-pressed="true"] { background: var(--mvz-head); color: #fff; opacity: 1; }
.mvz-attn-scroll { max-height: 520px; overflow-y: auto; overflow-x: hidden; }
.mvz-attn-middle { flex: none; }
.mvz-attn-middle canvas { display: block; position: sticky; top: 0; }
.mvz-attn-heads { display: flex; align-items: flex-start; }
.mvz-attn-tokens { display: flex; flex-direction: column; font-size: 12px; }
.mvz-attn-tokens span { flex: none; white-space: pre; overflow: hidden; text-overflow: ellipsis;
  max-width: 10em; padding: 0 4px; box-sizing: border-box; }
.mvz-attn-tokens[data-mv-part="queries"] span { text-align: right; cursor: default; }
.mvz-attn-tokens span.mvz-attn-on { background: var(--jp-layout-color3, rgba(128,128,128,0.3)); }
`;

function textColor(node: HTMLElement): string {
  const color = node.isConnected ? getComputedStyle(node).color : "";
  return color || "#666";
}

/** Every layer x head thumbnail in one canvas; a click reports the thumbnail under the pointer. */
export class OverviewCanvas {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  layout: OverviewLayout = overviewLayout(0, 0, 0, 0);
  private image: ImageData | null = null;
  private ratio = 1;
  private selection: { layer: number; head: number; mode: string } = { layer: 0, head: 0, mode: "head" };
  private readonly tooltip: Tooltip;

  constructor(
    private readonly maxWidth: number,
    private readonly onPick: (layer: number, head: number) => void,
  ) {
    this.el = element("div", "mvz-attn-overview");
    this.canvas = element("canvas", "mvz-canvas");
    this.canvas.dataset.mvPart = "overview";
    this.canvas.dataset.mvThumbnails = "0";
    this.el.appendChild(this.canvas);
    this.tooltip = new Tooltip(this.el);
    this.canvas.addEventListener("click", this.onClick);
    this.canvas.addEventListener("pointermove", this.onMove);
    this.canvas.addEventListener("pointerleave", this.onLeave);
  }

  /** Paints every thumbnail of a [layers, heads, s, s] payload; returns how many were drawn. */
  draw(payload: Payload | null, lut: Uint8ClampedArray): number {
    if (payload === null || payload.shape.length !== 4) {
      this.image = null;
      this.layout = overviewLayout(0, 0, 0, 0);
      this.canvas.getContext("2d")?.clearRect(0, 0, this.canvas.width, this.canvas.height);
      this.canvas.dataset.mvThumbnails = "0";
      return 0;
    }
    const [layers, heads, side, side2] = payload.shape;
    if (side !== side2) throw new Error(`thumbnails of ${side} x ${side2}; square thumbnails expected`);
    this.layout = overviewLayout(layers, heads, side, this.maxWidth);
    this.ratio = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
    const { width, height } = this.layout;
    const pixelWidth = Math.max(1, Math.round(width * this.ratio));
    const pixelHeight = Math.max(1, Math.round(height * this.ratio));
    this.canvas.width = pixelWidth;
    this.canvas.height = pixelHeight;
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    if (this.image === null || this.image.width !== pixelWidth || this.image.height !== pixelHeight) {
      this.image = new ImageData(pixelWidth, pixelHeight);
    }
    const codes = toCodes(payload);
    const painted = paintThumbnails(this.image.data, pixelWidth, pixelHeight, this.ratio, this.layout, codes,
      payload.meta, lut);
    this.canvas.dataset.mvThumbnails = String(painted);
    this.frame();
    return painted;
  }

  /** Moves the outline (the thumbnails are not repainted). */
  select(layer: number, head: number, mode: string): void {
    this.selection = { layer, head, mode };
    this.frame();
  }

  destroy(): void {
    this.canvas.removeEventListener("click", this.onClick);
    this.canvas.removeEventListener("pointermove", this.onMove);
    this.canvas.removeEventListener("pointerleave", this.onLeave);
    this.image = null;
  }

  // One frame: the cached thumbnails (a single putImageData), then labels and outline on top.
  private frame(): void {
    const context = this.canvas.getContext("2d");
    if (context === null || this.image === null) return;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.putImageData(this.image, 0, 0);
    context.setTransform(this.ratio, 0, 0, this.ratio, 0, 0);
    const { layers, heads, cell, gap, left, top } = this.layout;
    context.fillStyle = textColor(this.canvas);
    context.font = "10px sans-serif";
    context.textBaseline = "middle";
    context.textAlign = "right";
    const labelEvery = cell < 14 ? 2 : 1;
    for (let layer = 0; layer < layers; layer += labelEvery) {
      context.fillText(`L${layer}`, left - 4, top + layer * (cell + gap) + gap / 2 + cell / 2);
    }
    context.textAlign = "center";
    context.textBaseline = "bottom";
    for (let head = 0; head < heads; head += labelEvery) {
      context.fillText(`H${head}`, left + head * (cell + gap) + gap / 2 + cell / 2, top - 3);
    }
    const { layer, head, mode } = this.selection;
    const rect = selectionRect(this.layout, layer, head, mode);
    if (rect !== null) {
      context.strokeStyle = "#ff3d00";
      context.lineWidth = 2;
      context.strokeRect(rect.x + 1, rect.y + 1, rect.width - 2, rect.height - 2);
    }
  }

  private hit(event: MouseEvent): { layer: number; head: number; x: number; y: number } | null {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const y = event.clientY - rect.top;
    const found = thumbnailAt(this.layout, x, y);
    return found === null ? null : { ...found, x, y };
  }

  private readonly onClick = (event: MouseEvent): void => {
    const found = this.hit(event);
    if (found !== null) this.onPick(found.layer, found.head);
  };

  private readonly onMove = (event: PointerEvent): void => {
    const found = this.hit(event);
    if (found === null) return this.tooltip.hide();
    this.tooltip.show(`layer ${found.layer}, head ${found.head} (click to open)`, found.x, found.y);
  };

  private readonly onLeave = (): void => this.tooltip.hide();
}

const ROW_HEIGHT = 18;
const LINES_WIDTH = 170;
/** Height of the scrolled window on the tokens (the max-height of .mvz-attn-scroll). */
const VIEW_HEIGHT = 520;

/** Query and key token columns with the lines of the shown heads between them. */
export class HeadView {
  readonly el: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  private readonly chips: HTMLDivElement;
  private readonly queries: HTMLDivElement;
  private readonly keys: HTMLDivElement;
  private readonly scroll: HTMLDivElement;
  private readonly middle: HTMLDivElement;
  private frameHandle: number | null = null;
  private tokens: readonly string[] = [];
  private weights: Payload | null = null;
  private keyIndex: Uint16Array | null = null;
  private shown: readonly number[] = [];
  private hovered: number | null = null;
  private marked: HTMLElement[] = [];
  /** Lines drawn by the last frame (for tests and the title). */
  lines = 0;

  constructor(private readonly onToggle: (head: number) => void) {
    this.el = element("div");
    this.chips = element("div", "mvz-attn-chips");
    const scroll = element("div", "mvz-attn-scroll");
    this.scroll = scroll;
    const columns = element("div", "mvz-attn-heads");
    this.queries = element("div", "mvz-attn-tokens");
    this.queries.dataset.mvPart = "queries";
    this.keys = element("div", "mvz-attn-tokens");
    this.keys.dataset.mvPart = "keys";
    this.canvas = element("canvas");
    this.canvas.dataset.mvPart = "lines";
    // The canvas covers only the window scrolled into view and stays in it (sticky): a 512-token
    // column would otherwise be a canvas thousands of pixels high, every long line rasterised in full.
    this.middle = element("div", "mvz-attn-middle");
    this.middle.style.width = `${LINES_WIDTH}px`;
    this.middle.appendChild(this.canvas);
    columns.append(this.queries, this.middle, this.keys);
    scroll.appendChild(columns);
    this.el.append(this.chips, scroll);
    this.chips.addEventListener("click", this.onChip);
    this.queries.addEventListener("pointerover", this.onOver);
    this.queries.addEventListener("pointerleave", this.onLeave);
    this.scroll.addEventListener("scroll", this.onScroll);
  }

  /** Rebuilds the token columns when the tokens changed (one span per token and column). */
  setTokens(tokens: readonly string[]): void {
    if (tokens.length === this.tokens.length && tokens.every((t, i) => t === this.tokens[i])) return;
    this.tokens = tokens.slice();
    this.hovered = null;
    this.marked = [];
    const spans = (): HTMLSpanElement[] =>
      this.tokens.map((text, index) => {
        const span = element("span", "", text);
        span.title = text;
        span.dataset.mvIndex = String(index);
        span.style.height = `${ROW_HEIGHT}px`;
        span.style.lineHeight = `${ROW_HEIGHT}px`;
        return span;
      });
    this.queries.replaceChildren(...spans());
    this.keys.replaceChildren(...spans());
  }

  /** One toggle per head, coloured like its lines. */
  setHeads(heads: number, shown: readonly number[]): void {
    this.shown = shown.slice();
    if (this.chips.childElementCount !== heads) {
      this.chips.replaceChildren(
        ...Array.from({ length: heads }, (_, head) => {
          const chip = element("button", "mvz-attn-chip", `head ${head}`);
          chip.dataset.mvControl = "shown_heads";
          chip.dataset.mvHead = String(head);
          chip.dataset.lmSuppressShortcuts = "true";
          chip.style.setProperty("--mvz-head", cssColor(headColor(head)));
          return chip;
        }),
      );
    }
    for (const chip of Array.from(this.chips.children) as HTMLElement[]) {
      chip.setAttribute("aria-pressed", String(this.shown.includes(Number(chip.dataset.mvHead))));
    }
  }

  setLines(weights: Payload | null, keys: Uint16Array | null): void {
    this.weights = weights;
    this.keyIndex = keys;
  }

  /** Draws the lines in one canvas pass: one path and one stroke per head and opacity level. */
  draw(): void {
    const length = this.tokens.length;
    const total = Math.max(1, length * ROW_HEIGHT);
    const height = Math.min(total, VIEW_HEIGHT);
    this.middle.style.height = `${total}px`;
    const top = Math.max(0, Math.min(this.scroll.scrollTop, total - height));
    const ratio = Math.max(1, Math.min(3, globalThis.devicePixelRatio || 1));
    const width = Math.round(LINES_WIDTH * ratio);
    const pixelHeight = Math.round(height * ratio);
    if (this.canvas.width !== width) this.canvas.width = width;
    if (this.canvas.height !== pixelHeight) this.canvas.height = pixelHeight;
    this.canvas.style.width = `${LINES_WIDTH}px`;
    this.canvas.style.height = `${height}px`;
    const context = this.canvas.getContext("2d");
    this.lines = 0;
    this.canvas.dataset.mvLines = "0";
    if (context === null) return;
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, LINES_WIDTH, height);
    if (this.weights === null || this.keyIndex === null) return this.mark(new Set());
    const first = Math.floor(top / ROW_HEIGHT);
    const last = Math.ceil((top + height) / ROW_HEIGHT);
    const batches: LineBatch[] = lineBatches(this.weights, this.keyIndex, {
      shown: this.shown,
      query: this.hovered,
      rows: [first, last],
    });
    context.lineWidth = this.hovered === null ? 1 : 2;
    const targets = new Set<number>();
    for (const batch of batches) {
      context.strokeStyle = cssColor(headColor(batch.head), batch.alpha);
      context.beginPath();
      const { pairs } = batch;
      for (let i = 0; i < pairs.length; i += 2) {
        context.moveTo(2, rowCenter(pairs[i], ROW_HEIGHT, -top));
        context.lineTo(LINES_WIDTH - 2, rowCenter(pairs[i + 1], ROW_HEIGHT, -top));
        if (this.hovered !== null) targets.add(pairs[i + 1]);
      }
      context.stroke();
      this.lines += pairs.length / 2;
    }
    this.canvas.dataset.mvLines = String(this.lines);
    this.mark(targets);
  }

  destroy(): void {
    this.chips.removeEventListener("click", this.onChip);
    this.queries.removeEventListener("pointerover", this.onOver);
    this.queries.removeEventListener("pointerleave", this.onLeave);
    this.scroll.removeEventListener("scroll", this.onScroll);
    if (this.frameHandle !== null) cancelAnimationFrame(this.frameHandle);
  }

  // Shades the hovered query and the keys its lines reach.
  private mark(keys: Set<number>): void {
    for (const span of this.marked) span.classList.remove("mvz-attn-on");
    this.marked = [];
    if (this.hovered === null) return;
    const spans = [this.queries.children[this.hovered], ...[...keys].map((k) => this.keys.children[k])];
    for (const span of spans) {
      if (span instanceof HTMLElement) {
        span.classList.add("mvz-attn-on");
        this.marked.push(span);
      }
    }
  }

  private readonly onChip = (event: MouseEvent): void => {
    const chip = (event.target as HTMLElement).closest<HTMLElement>("[data-mv-head]");
    if (chip !== null) this.onToggle(Number(chip.dataset.mvHead));
  };

  private readonly onOver = (event: PointerEvent): void => {
    const rect = this.queries.getBoundingClientRect();
    const row = rowAt(event.clientY - rect.top, ROW_HEIGHT, this.tokens.length);
    const next = row < 0 ? null : row;
    if (next !== this.hovered) {
      this.hovered = next;
      this.draw();
    }
  };

  // Scrolling redraws what came into view, at most once per frame.
  private readonly onScroll = (): void => {
    if (this.frameHandle !== null) return;
    this.frameHandle = requestAnimationFrame(() => {
      this.frameHandle = null;
      this.draw();
    });
  };

  private readonly onLeave = (): void => {
    if (this.hovered === null) return;
    this.hovered = null;
    this.draw();
  };
}
