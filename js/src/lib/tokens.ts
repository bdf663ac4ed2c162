// DOM helpers of the sequence views: elements with text (always textContent), tokens laid out on a time
// axis, tokens coloured by a signed score, and an integer trait seen as a string for a drop-down.

import type { TraitBinding } from "./controls";
import { describeValue, toCodes, type Payload } from "./decode";

export const SEQUENCE_CSS = `
.mvz-hs-grids { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.mvz-hs-axis { display: flex; overflow: hidden; font-size: 11px; }
.mvz-hs-axis span, .mvz-hs-attr span {
  flex: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; text-align: center;
}
.mvz-hs-axis span.mvz-hs-now { font-weight: 700; }
.mvz-hs-attr { display: flex; flex-wrap: wrap; gap: 3px; max-width: 720px; }
.mvz-hs-attr span { padding: 1px 4px; border-radius: 3px; color: #000; }
.mvz-hs-rows { display: flex; gap: 6px; align-items: flex-start; }
.mvz-hs-names { display: flex; flex-direction: column; font-size: 11px; text-align: right; }
.mvz-hs-names div { overflow: hidden; white-space: nowrap; display: flex; align-items: center;
  justify-content: flex-end; }
.mvz-hs-grid { position: relative; display: inline-flex; flex-direction: column; gap: 2px; }
.mvz-hs-grid canvas { cursor: crosshair; touch-action: none; }
`;

/** An integer (or nullable integer) trait seen as a string, for a drop-down. */
export function asText(binding: TraitBinding<any>, none = ""): TraitBinding<string> {
  const show = (value: unknown): string => (value === null || value === undefined ? none : String(value));
  return {
    name: binding.name,
    get: () => show(binding.get()),
    set: (text) => binding.set(text === none ? null : Number(text)),
    watch: (callback) => binding.watch((value) => callback(show(value))),
  };
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = "",
  text = "",
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** An extra key of a metadata trait as synced (decoded metas keep only the contract's keys). */
export function metaKey(raw: unknown, key: string): unknown {
  return raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>)[key] : undefined;
}


/** Token labels, one per column of `width` CSS pixels; the one at `now` is bold. */
export function fillTokenAxis(axis: HTMLElement, labels: readonly string[], width: number, now: number): void {
  axis.replaceChildren(
    ...labels.map((text, t) => {
      const label = element("span", t === now ? "mvz-hs-now" : "", text);
      label.title = text;
      label.style.width = `${width}px`;
      return label;
    }),
  );
}

/** Tokens as chips coloured through `lut` by a payload's values (a signed scale: red up, blue down). */
export function fillScoredTokens(
  row: HTMLElement,
  labels: readonly string[],
  scores: Payload,
  lut: Uint8ClampedArray,
): void {
  const codes = toCodes(scores);
  const chips = labels.slice(0, scores.size).map((text, t) => {
    const chip = element("span", "", text);
    const c = codes[t] * 4;
    chip.style.background = `rgb(${lut[c]}, ${lut[c + 1]}, ${lut[c + 2]})`;
    chip.title = `${text}: ${describeValue(scores, t)}`;
    return chip;
  });
  row.replaceChildren(...chips);
}
