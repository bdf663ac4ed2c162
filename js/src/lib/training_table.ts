// The layer table of the training monitor: one row per monitored layer at the scrubbed sample (norms,
// update ratio, dead and saturated units, activation mean and std, alert badges). Rows are built once per
// list of layers; later updates only rewrite the text of cells whose text changed. Layer names are user
// text: they go in with textContent (and a data attribute), never parsed as markup.

import type { RunHistory } from "./training_history";
import { element } from "./tokens";

export const TABLE_COLUMNS = [
  "layer",
  "‖W‖",
  "‖∇W‖",
  "update / W",
  "dead",
  "saturated",
  "activation mean ± std",
  "alerts",
] as const;

/** A statistic with three significant digits; exponent notation outside [1e-3, 1e4); "–" when absent. */
export function formatStat(value: number): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? "–" : value > 0 ? "+Inf" : "-Inf";
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(3)));
}

/** A fraction as a percentage with one decimal; "–" when not measured. */
export function formatPercent(fraction: number): string {
  if (!Number.isFinite(fraction)) return "–";
  return `${(fraction * 100).toFixed(1)} %`;
}

export function formatMeanStd(mean: number, std: number): string {
  if (!Number.isFinite(mean)) return "–";
  return `${formatStat(mean)} ± ${formatStat(std)}`;
}

/** The numeric cells (every column but the name and the alerts) of layer `l` at held sample `i`. */
export function layerCells(history: RunHistory, i: number, l: number): string[] {
  if (i < 0 || i >= history.sampleCount) return ["–", "–", "–", "–", "–", "–"];
  return [
    formatStat(history.norm(i, l, 0)),
    formatStat(history.norm(i, l, 2)),
    formatStat(history.updateRatio(i, l)),
    formatPercent(history.activation(i, l, 3)),
    formatPercent(history.activation(i, l, 4)),
    formatMeanStd(history.activation(i, l, 1), history.activation(i, l, 2)),
  ];
}

export class LayerTable {
  readonly el: HTMLTableElement;
  private readonly body: HTMLTableSectionElement;
  private names: readonly string[] = [];
  private rows: HTMLTableRowElement[] = [];
  private cells: HTMLTableCellElement[][] = [];
  private badgeText: string[] = [];
  private selected = "";

  constructor(private readonly onPick: (name: string) => void) {
    this.el = element("table", "mvz-tm-table");
    this.el.dataset.mvPart = "table";
    const head = this.el.createTHead().insertRow();
    for (const title of TABLE_COLUMNS) head.appendChild(element("th", "", title));
    this.body = this.el.createTBody();
    this.body.addEventListener("click", this.onClick);
  }

  private readonly onClick = (event: Event): void => {
    const row = (event.target as Element | null)?.closest?.("tr");
    const name = row?.dataset.mvLayer;
    if (row && name !== undefined && this.body.contains(row)) this.onPick(name);
  };

  /** Rebuilds the rows when the list of layers changed; otherwise keeps them. */
  setLayers(names: readonly string[]): void {
    if (names.length === this.names.length && names.every((n, i) => n === this.names[i])) return;
    this.names = [...names];
    this.rows = [];
    this.cells = [];
    this.badgeText = [];
    for (const name of names) {
      const row = element("tr", "mvz-clickable");
      row.dataset.mvLayer = name;
      row.title = `show ${name} in the strips and curves`;
      const cells = TABLE_COLUMNS.map(() => element("td"));
      cells[0].textContent = name;
      row.append(...cells);
      this.rows.push(row);
      this.cells.push(cells);
      this.badgeText.push("");
    }
    this.body.replaceChildren(...this.rows);
    this.selected = "";
  }

  /** Writes the numbers (`values[row]`: the six numeric cells) and badges; touches only what changed. */
  update(values: ReadonlyArray<readonly string[]>, badges: ReadonlyArray<readonly string[]>, selected: string): void {
    for (let r = 0; r < this.rows.length; r++) {
      const cells = this.cells[r];
      const row = values[r] ?? [];
      for (let c = 0; c < 6; c++) {
        const text = row[c] ?? "–";
        if (cells[c + 1].textContent !== text) cells[c + 1].textContent = text;
      }
      const kinds = badges[r] ?? [];
      const key = kinds.join(" ");
      if (key !== this.badgeText[r]) {
        this.badgeText[r] = key;
        cells[7].replaceChildren(...kinds.map((kind) => element("span", `mvz-tm-badge mvz-tm-${kind}`, kind)));
        this.rows[r].classList.toggle("mvz-tm-alerted", kinds.length > 0);
      }
    }
    if (selected !== this.selected) {
      this.selected = selected;
      this.rows.forEach((row, r) => row.setAttribute("aria-selected", String(this.names[r] === selected)));
    }
  }

  destroy(): void {
    this.body.removeEventListener("click", this.onClick);
  }
}
