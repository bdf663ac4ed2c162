import { describe, expect, it } from "vitest";
import { HistoryError, isHistoryMessage, sampleWidth, TrainingHistory, type HistoryMessage } from "./training_history";

// A packed sample row built from the layout written in docs/wire-and-dom.md, block by block, independent of
// the accessors under test: [step, counts L*4*32, scales L*4, nans L*4, norms L*4, updates L*2, acts L*5].
interface LayerStats {
  counts: number[][]; // [4][32]
  scales: number[]; // [4]
  nans: number[];
  norms: number[];
  updates: number[]; // [2]
  acts: number[]; // [5]
}
function packRow(step: number, layers: LayerStats[]): number[] {
  return [
    step,
    ...layers.flatMap((l) => l.counts.flat()),
    ...layers.flatMap((l) => l.scales),
    ...layers.flatMap((l) => l.nans),
    ...layers.flatMap((l) => l.norms),
    ...layers.flatMap((l) => l.updates),
    ...layers.flatMap((l) => l.acts),
  ];
}
function layerStats(seed: number): LayerStats {
  return {
    counts: [0, 1, 2, 3].map((q) => Array.from({ length: 32 }, (_, b) => seed * 1000 + q * 100 + b)),
    scales: [seed + 1, NaN, (seed + 1) / 1024, NaN],
    nans: [0, 0, seed, 0],
    norms: [seed + 0.5, NaN, (seed + 1) * 1e-3, NaN],
    updates: [(seed + 1) * 1e-4, seed + 0.5],
    acts: [64, seed / 10, 1 + seed / 10, 0.25, NaN],
  };
}

function stepsBuffer(rows: number[][]): ArrayBuffer {
  return new Float64Array(rows.flat()).buffer;
}
function samplesBuffer(rows: number[][]): ArrayBuffer {
  return new Float32Array(rows.flat()).buffer;
}

function chunk(
  over: Partial<HistoryMessage>,
  steps: number[][],
  samples: number[][],
  layers = 2,
): [HistoryMessage, ArrayBuffer[]] {
  const metrics = over.metrics ?? ["accuracy"];
  const message: HistoryMessage = {
    type: "history",
    run: 0,
    reset: false,
    steps_from: 0,
    samples_from: 0,
    steps_shape: [steps.length, 3 + metrics.length],
    samples_shape: samples.length ? [samples.length, sampleWidth(layers)] : [0, 0],
    metrics,
    layers,
    ...over,
  };
  return [message, [stepsBuffer(steps), samplesBuffer(samples)]];
}

const stepRow = (s: number): number[] => [s, s * 0.1, 2 / (s + 1), s / 100];

describe("TrainingHistory", () => {
  it("reads every field of a packed sample at the documented offsets", () => {
    const h = new TrainingHistory();
    const rows = [packRow(0, [layerStats(0), layerStats(1)]), packRow(10, [layerStats(2), layerStats(3)])];
    const run = h.apply(...chunk({ reset: true }, [stepRow(0)], rows));
    expect(sampleWidth(2)).toBe(1 + 2 * 147);
    expect(run.sampleCount).toBe(2);
    expect(run.sampleStep(1)).toBe(10);
    // sample 1, layer 1 is layerStats(3)
    const ref = layerStats(3);
    expect(Array.from(run.counts(1, 1, 2))).toEqual(ref.counts[2]);
    expect(run.scale(1, 1, 0)).toBe(4);
    expect(run.scale(1, 1, 1)).toBeNaN();
    expect(run.scale(1, 1, 2)).toBeCloseTo(4 / 1024, 12);
    expect(run.nanCount(1, 1, 2)).toBe(3);
    expect(run.norm(1, 1, 0)).toBe(3.5);
    expect(run.norm(1, 1, 2)).toBeCloseTo(4e-3, 8);
    expect(run.updateRatio(1, 1)).toBeCloseTo(4e-4 / 3.5, 8);
    expect(run.activation(1, 1, 1)).toBeCloseTo(0.3, 6);
    expect(run.activation(1, 1, 2)).toBeCloseTo(1.3, 6);
    expect(run.activation(1, 1, 3)).toBe(0.25);
    expect(run.activation(1, 1, 4)).toBeNaN();
    // and layer 0 of sample 0 is layerStats(0)
    expect(Array.from(run.counts(0, 0, 3))).toEqual(layerStats(0).counts[3]);
    expect(run.norm(0, 0, 0)).toBe(0.5);
  });

  it("appends contiguous chunks and reads steps, loss and metrics", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true }, [stepRow(0), stepRow(1)], []));
    const run = h.apply(...chunk({ steps_from: 2 }, [stepRow(2), stepRow(3), stepRow(4)], []));
    expect(run.stepCount).toBe(5);
    expect([0, 1, 2, 3, 4].map((i) => run.step(i))).toEqual([0, 1, 2, 3, 4]);
    expect(run.loss(4)).toBeCloseTo(2 / 5, 12);
    expect(run.seconds(3)).toBeCloseTo(0.3, 12);
    expect(run.metric(2, "accuracy")).toBeCloseTo(0.02, 12);
    expect(run.metric(2, "missing")).toBeNaN();
    expect(h.chunks).toBe(2);
  });

  it("grows far beyond its first allocation without losing rows", () => {
    const h = new TrainingHistory();
    let run = h.apply(...chunk({ reset: true }, [], []));
    for (let s = 0; s < 5000; s += 50) {
      const rows = Array.from({ length: 50 }, (_, k) => stepRow(s + k));
      const samples = [packRow(s, [layerStats(1), layerStats(2)])];
      run = h.apply(...chunk({ steps_from: s, samples_from: s / 50 }, rows, samples));
    }
    expect(run.stepCount).toBe(5000);
    expect(run.sampleCount).toBe(100);
    expect(run.step(4999)).toBe(4999);
    expect(run.sampleStep(99)).toBe(4950);
    expect(run.sampleAtOrBefore(4999)).toBe(99);
    expect(run.sampleAtOrBefore(120)).toBe(2);
    expect(run.sampleAtOrBefore(-1)).toBe(-1);
  });

  it("replaces everything on reset", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true }, [stepRow(0), stepRow(1), stepRow(2)], [packRow(0, [layerStats(0), layerStats(0)])]));
    const run = h.apply(...chunk({ reset: true }, [stepRow(7)], []));
    expect(run.stepCount).toBe(1);
    expect(run.step(0)).toBe(7);
    expect(run.sampleCount).toBe(0);
  });

  it("overwrites an overlapping chunk from its start", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true }, [stepRow(0), stepRow(1), stepRow(2)], []));
    const run = h.apply(...chunk({ steps_from: 1 }, [[1, 9, 9, 9], stepRow(2), stepRow(3)], []));
    expect(run.stepCount).toBe(4);
    expect(run.loss(1)).toBe(9);
    expect(run.step(3)).toBe(3);
  });

  it("keeps the newest window after a gap, then takes the reset that fills it", () => {
    const h = new TrainingHistory();
    // The view opened late: chunks from 12 on reach it before the answer to its sync request.
    let run = h.apply(...chunk({ steps_from: 12, samples_from: 3 }, [stepRow(12), stepRow(13)], [packRow(15, [layerStats(1), layerStats(1)])]));
    expect(run.steps.base).toBe(12);
    expect(run.sampleBase).toBe(3);
    expect(run.step(0)).toBe(12);
    run = h.apply(...chunk({ steps_from: 20 }, [stepRow(20)], []));
    expect(run.steps.base).toBe(20);
    expect(run.stepCount).toBe(1);
    const all = Array.from({ length: 22 }, (_, s) => stepRow(s));
    run = h.apply(...chunk({ reset: true }, all, []));
    expect(run.steps.base).toBe(0);
    expect(run.stepCount).toBe(22);
    // a chunk sent before the reset was answered, starting inside what the reset brought, is merged
    run = h.apply(...chunk({ steps_from: 21 }, [stepRow(21), stepRow(22)], []));
    expect(run.stepCount).toBe(23);
    expect(run.step(22)).toBe(22);
  });

  it("widens the step rows when a new metric appears", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true, metrics: [] }, [[0, 0, 1], [1, 0.1, 0.5]], []));
    const run = h.apply(...chunk({ steps_from: 2, metrics: ["acc"] }, [[2, 0.2, 0.25, 0.9]], []));
    expect(run.metrics).toEqual(["acc"]);
    expect(run.loss(1)).toBe(0.5);
    expect(run.metric(0, "acc")).toBeNaN();
    expect(run.metric(2, "acc")).toBeCloseTo(0.9, 12);
  });

  it("keeps runs apart", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true }, [stepRow(0)], []));
    h.apply(...chunk({ reset: true, run: 1 }, [stepRow(0), stepRow(1)], [], 3));
    expect(h.run(0)?.stepCount).toBe(1);
    expect(h.run(1)?.stepCount).toBe(2);
    expect(h.run(1)?.layers).toBe(3);
  });

  it("refuses buffers that do not match the shapes, holding what it had", () => {
    const h = new TrainingHistory();
    h.apply(...chunk({ reset: true }, [stepRow(0)], []));
    const [message] = chunk({ steps_from: 1 }, [stepRow(1)], []);
    expect(() => h.apply(message, [new ArrayBuffer(8), new ArrayBuffer(0)])).toThrow(HistoryError);
    const [bad, buffers] = chunk({ steps_from: 1, samples_shape: [1, 7] }, [stepRow(1)], [[1, 2, 3, 4, 5, 6, 7]]);
    expect(() => h.apply(bad, buffers)).toThrow(/values, not 295/);
    expect(h.run(0)?.stepCount).toBe(1);
    expect(h.chunks).toBe(1);
  });

  it("reads buffers given as unaligned DataViews", () => {
    const rows = [stepRow(0), stepRow(1)];
    const bytes = new Uint8Array(3 + rows.length * 4 * 8);
    bytes.set(new Uint8Array(stepsBuffer(rows)), 3);
    const [message] = chunk({ reset: true }, rows, []);
    const run = new TrainingHistory().apply(message, [new DataView(bytes.buffer, 3, rows.length * 32), new DataView(new ArrayBuffer(0))]);
    expect(run.loss(1)).toBe(1);
  });

  it("tells history messages from others", () => {
    expect(isHistoryMessage(chunk({}, [], [])[0])).toBe(true);
    expect(isHistoryMessage({ type: "sync" })).toBe(false);
    expect(isHistoryMessage(null)).toBe(false);
  });
});
