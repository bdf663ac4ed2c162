import { describe, expect, it } from "vitest";
import { axisFor, binEdgeRows, columnSamples, sampleX, stripIntensities, toUnit } from "./training_strips";

describe("strip axes", () => {
  it("spans the largest scale and keeps the narrowest bin as the symlog floor", () => {
    const axis = axisFor([0.25, NaN, 2, 0.5, 0], "symlog");
    expect(axis).toEqual({ kind: "symlog", max: 2, floor: 0.25 / 16 });
    expect(axisFor([NaN, NaN], "linear")).toBeNull();
  });

  it("maps values linearly onto [-1, 1] for weights", () => {
    const axis = { kind: "linear" as const, max: 4, floor: 0 };
    expect(toUnit(axis, 2)).toBe(0.5);
    expect(toUnit(axis, -4)).toBe(-1);
    expect(toUnit(axis, 10)).toBe(1);
  });

  it("maps magnitudes on a symmetric log axis for gradients", () => {
    const axis = { kind: "symlog" as const, max: 1, floor: 1e-4 };
    // reference: u = log(1 + |v|/floor) / log(1 + max/floor), odd in v
    const ref = (v: number): number => (Math.sign(v) * Math.log(1 + Math.abs(v) / 1e-4)) / Math.log(1 + 1 / 1e-4);
    for (const v of [1e-5, 1e-3, 0.1, -0.01, 0]) expect(toUnit(axis, v)).toBeCloseTo(ref(v), 12);
    // each decade well above the floor takes about the same height
    const d1 = toUnit(axis, 1e-2) - toUnit(axis, 1e-3);
    const d2 = toUnit(axis, 1e-1) - toUnit(axis, 1e-2);
    expect(Math.abs(d1 - d2)).toBeLessThan(0.01);
  });

  it("places the bin edges of a column with its own scale on the shared axis", () => {
    const axis = { kind: "linear" as const, max: 2, floor: 0 };
    const rows = binEdgeRows(axis, 1, 64);
    // scale 1 on an axis of max 2: edges from -1 (row 48) to +1 (row 16), 1 row per bin
    expect(rows[0]).toBe(48);
    expect(rows[32]).toBe(16);
    expect(rows[16]).toBe(32);
    expect(rows[1] - rows[2]).toBeCloseTo(1, 12);
  });
});

describe("strip columns", () => {
  it("gives each sample an equal column, capped, oldest left", () => {
    const columns = columnSamples(3, 100, 24);
    expect(columns[0]).toBe(0);
    expect(columns[23]).toBe(0);
    expect(columns[24]).toBe(1);
    expect(columns[71]).toBe(2);
    expect(columns[72]).toBe(-1);
    expect(sampleX(1, 3, 100, 24)).toBe(36);
  });

  it("thins evenly past one pixel per sample, keeping the first and the newest", () => {
    const columns = columnSamples(1000, 100);
    expect(columns[0]).toBe(0);
    expect(columns[99]).toBe(999);
    for (let x = 1; x < 100; x++) expect(columns[x]).toBeGreaterThan(columns[x - 1]);
    expect(sampleX(999, 1000, 100)).toBe(99);
    expect(Math.abs(columns[sampleX(500, 1000, 100)] - 500)).toBeLessThanOrEqual(999 / 99 / 2 + 1);
  });

  it("normalises counts per column and puts each bin at its value rows", () => {
    const axis = { kind: "linear" as const, max: 1, floor: 0 };
    const counts = [new Array(32).fill(0), new Array(32).fill(0)];
    counts[0][31] = 10; // the top bin of sample 0: values in [15/16, 1]
    counts[0][0] = 5; // the bottom bin
    counts[1][16] = 3; // sample 1, the bin just above zero, scale 0.5: values in [0, 1/32]
    const columns = new Int32Array([0, 1]);
    const out = stripIntensities(axis, columns, 64, (i) => counts[i], (i) => [1, 0.5][i]);
    const at = (x: number, y: number): number => out[y * 2 + x];
    expect(at(0, 0)).toBe(1);
    expect(at(0, 1)).toBe(1);
    expect(at(0, 63)).toBe(0.5);
    expect(at(0, 32)).toBe(0);
    // sample 1: value 0..1/32 of an axis of max 1 over 64 rows is row 31 (rounded out to one row)
    expect(at(1, 31)).toBe(1);
    expect(at(1, 0)).toBeNaN(); // outside its [-0.5, 0.5] span: nothing there
    expect(at(1, 20)).toBe(0);
  });

  it("leaves columns of an absent tensor empty", () => {
    const axis = { kind: "linear" as const, max: 1, floor: 0 };
    const out = stripIntensities(axis, new Int32Array([0]), 8, () => new Array(32).fill(1), () => NaN);
    expect(Array.from(out).every(Number.isNaN)).toBe(true);
  });
});
