import { describe, expect, it } from "vitest";
import { logExtent, logRow } from "./training_draw";
import { sampleWidth, TrainingHistory } from "./training_history";
import { formatMeanStd, formatPercent, formatStat, layerCells } from "./training_table";

describe("table formatting", () => {
  it("writes statistics with three significant digits", () => {
    expect(formatStat(3.66786312)).toBe("3.67");
    expect(formatStat(0.0123456)).toBe("0.0123");
    expect(formatStat(1234.5)).toBe("1230");
    expect(formatStat(1.70293271e-4)).toBe("1.70e-4");
    expect(formatStat(2.5e7)).toBe("2.50e+7");
    expect(formatStat(0)).toBe("0");
    expect(formatStat(NaN)).toBe("–");
    expect(formatStat(Infinity)).toBe("+Inf");
    expect(formatStat(-Infinity)).toBe("-Inf");
  });

  it("writes fractions as percentages", () => {
    expect(formatPercent(0.221679688)).toBe("22.2 %");
    expect(formatPercent(1)).toBe("100.0 %");
    expect(formatPercent(NaN)).toBe("–");
    expect(formatMeanStd(0.405880630, 0.497463277)).toBe("0.406 ± 0.497");
    expect(formatMeanStd(NaN, NaN)).toBe("–");
  });

  it("fills a layer's row from its sample", () => {
    const layers = 1;
    const row = new Float32Array(sampleWidth(layers));
    row[0] = 40;
    const at = 1 + 4 * 32;
    row.set([1, NaN, 0.001, NaN], at); // scales
    row.set([3.5, NaN, 0.00725, NaN], at + 8); // norms
    row.set([0.00035, 3.5], at + 12); // update norms
    row.set([100, 0.25, 1.5, 0.125, NaN], at + 14); // activations
    const history = new TrainingHistory();
    const run = history.apply(
      {
        type: "history", run: 0, reset: true, steps_from: 0, samples_from: 0,
        steps_shape: [0, 3], samples_shape: [1, row.length], metrics: [], layers,
      },
      [new ArrayBuffer(0), row.buffer],
    );
    expect(layerCells(run, 0, 0)).toEqual(["3.5", "0.00725", "1.00e-4", "12.5 %", "–", "0.25 ± 1.5"]);
    expect(layerCells(run, 5, 0)).toEqual(["–", "–", "–", "–", "–", "–"]);
  });
});

describe("log curves", () => {
  it("spans whole decades around the positive values", () => {
    expect(logExtent([{ xs: [0, 1, 2], ys: [0.003, NaN, 0.2], colour: "" }])).toEqual([-3, 0]);
    expect(logExtent([{ xs: [0], ys: [0], colour: "" }])).toBeNull();
    expect(logExtent([{ xs: [0], ys: [10], colour: "" }])).toEqual([1, 2]);
  });

  it("puts a value at its decade", () => {
    expect(logRow(1e-2, [-3, 0], 90)).toBeCloseTo(60, 9);
    expect(logRow(1, [-3, 0], 90)).toBeCloseTo(0, 9);
    expect(logRow(0, [-3, 0], 90)).toBeNaN();
  });
});
