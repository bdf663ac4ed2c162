import { describe, expect, it } from "vitest";
import { headColor, lineBatches, lineCount, readKeys, rowAt, rowCenter, toggleHead } from "./attention_lines";
import { decode, readMeta } from "./decode";

function float32Payload(shape: number[], values: number[]) {
  const meta = readMeta({ shape, dtype: "float32", vmin: Math.min(...values), vmax: Math.max(...values) });
  if (meta === null) throw new Error("bad meta");
  const bytes = new Float32Array(values);
  return decode(new DataView(bytes.buffer), meta);
}

function keyBytes(keys: number[], offset = 0): DataView {
  const buffer = new ArrayBuffer(offset + keys.length * 2);
  const view = new DataView(buffer, offset, keys.length * 2);
  keys.forEach((k, i) => view.setUint16(i * 2, k, true));
  return view;
}

describe("headColor", () => {
  it("gives the first heads distinct colours and keeps going past the palette", () => {
    const seen = new Set(Array.from({ length: 24 }, (_, h) => headColor(h).join(",")));
    expect(seen.size).toBe(24);
    for (const channel of headColor(40)) expect(channel).toBeGreaterThanOrEqual(0);
  });
});

describe("readKeys", () => {
  it("reads uint16 little-endian at an odd byte offset", () => {
    expect(Array.from(readKeys(keyBytes([1, 511, 258], 1), 3) ?? [])).toEqual([1, 511, 258]);
  });

  it("names the mismatch when the size is wrong", () => {
    expect(() => readKeys(keyBytes([1, 2]), 3)).toThrow(/4 bytes; 6 expected/);
  });

  it("is null before the trait holds bytes", () => {
    expect(readKeys(undefined, 3)).toBeNull();
  });
});

describe("lineBatches", () => {
  // 2 heads, 3 queries, k = 2, weights descending per query.
  const weights = float32Payload(
    [2, 3, 2],
    [0.8, 0.2, 0.5, 0.5, 1.0, 0.0, 0.4, 0.3, 0.6, 0.1, 0.95, 0.05],
  );
  const keys = new Uint16Array([1, 0, 0, 2, 2, 1, 0, 1, 2, 0, 1, 2]);

  it("draws the shown heads only, query -> key pairs, opacity from the weight", () => {
    const batches = lineBatches(weights, keys, { shown: [1], levels: 10, minAlpha: 0.02 });
    expect(batches.every((b) => b.head === 1)).toBe(true);
    const lines = batches.flatMap((b) => {
      const out: Array<[number, number, number]> = [];
      for (let i = 0; i < b.pairs.length; i += 2) out.push([b.pairs[i], b.pairs[i + 1], b.alpha]);
      return out;
    });
    // Opacity is weight / max weight (1.0), rounded up to the level: 0.4 -> 0.5, 0.05 -> 0.1.
    expect(lines).toContainEqual([0, 0, 0.5]);
    expect(lines).toContainEqual([2, 1, 1]);
    expect(lines).toContainEqual([2, 2, 0.1]);
    expect(lines.length).toBe(6);
  });

  it("leaves out zero weights and keeps one query when hovering", () => {
    const all = lineBatches(weights, keys, { shown: [0, 1] });
    // Head 0 query 2 has one zero weight.
    expect(lineCount(all)).toBe(11);
    const hovered = lineBatches(weights, keys, { shown: [0, 1], query: 2 });
    const queries = hovered.flatMap((b) => b.pairs.filter((_, i) => i % 2 === 0));
    expect(new Set(queries)).toEqual(new Set([2]));
    expect(lineCount(hovered)).toBe(3);
  });

  it("keeps only lines with an end in the rows in view", () => {
    // Rows [2, 2]: every line of query 2 (3 non-zero), plus lines from other queries into key 2.
    const batches = lineBatches(weights, keys, { shown: [0, 1], rows: [2, 2] });
    const pairs = batches.flatMap((b) => Array.from({ length: b.pairs.length / 2 }, (_, i) => [b.pairs[2 * i], b.pairs[2 * i + 1]]));
    expect(pairs.every(([q, k]) => q === 2 || k === 2)).toBe(true);
    // Head 0: q1 -> 2; head 1: q1 -> 2; plus query 2's own three lines.
    expect(pairs.length).toBe(5);
  });

  it("orders each head's batches faint to strong", () => {
    const batches = lineBatches(weights, keys, { shown: [0] });
    const alphas = batches.map((b) => b.alpha);
    expect(alphas).toEqual([...alphas].sort((a, b) => a - b));
  });

  it("ignores unknown heads and out-of-range keys", () => {
    const bad = new Uint16Array(keys);
    bad[0] = 99;
    expect(lineCount(lineBatches(weights, bad, { shown: [0, 7] }))).toBe(4);
  });
});

describe("rows", () => {
  it("maps token rows to y and back", () => {
    expect(rowCenter(2, 18)).toBe(45);
    expect(rowAt(45, 18, 10)).toBe(2);
    expect(rowAt(-1, 18, 10)).toBe(-1);
    expect(rowAt(180, 18, 10)).toBe(-1);
  });
});

describe("toggleHead", () => {
  it("adds and removes a head, sorted, without repeats", () => {
    expect(toggleHead([0, 2], 1)).toEqual([0, 1, 2]);
    expect(toggleHead([0, 1, 2], 1)).toEqual([0, 2]);
    expect(toggleHead([3, 3], 3)).toEqual([]);
  });
});
