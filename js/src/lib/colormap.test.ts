import { describe, expect, it } from "vitest";
import { buildLut, getLut, lutWords, pickLut, resolveColormap, type ColormapName } from "./colormap";

const NAMES: ColormapName[] = ["viridis", "rdbu", "gray"];

function rgb(table: Uint8ClampedArray, code: number): number[] {
  return Array.from(table.slice(code * 4, code * 4 + 3));
}

// CIE L* of an sRGB colour, computed independently of the module under test.
function lightness([r, g, b]: number[]): number {
  const linear = (c: number): number => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const y = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  return y > 216 / 24389 ? 116 * Math.cbrt(y) - 16 : (24389 / 27) * y;
}

describe("lookup tables", () => {
  it.each(NAMES)("%s has 256 opaque RGBA entries and magenta for non-finite", (name) => {
    const table = getLut(name);
    expect(table).toBeInstanceOf(Uint8ClampedArray);
    expect(table.length).toBe(1024);
    for (let code = 0; code < 256; code++) expect(table[code * 4 + 3]).toBe(255);
    expect(rgb(table, 255)).toEqual([255, 0, 255]);
  });

  it("builds each table once", () => {
    expect(getLut("viridis")).toBe(getLut("viridis"));
    expect(lutWords(getLut("gray"))).toBe(lutWords(getLut("gray")));
  });

  it("viridis runs from dark purple to yellow with lightness rising at every step", () => {
    const table = getLut("viridis");
    expect(rgb(table, 0)).toEqual([68, 1, 84]);
    expect(rgb(table, 254)).toEqual([253, 231, 37]);
    let previous = -Infinity;
    for (let code = 0; code <= 254; code++) {
      const l = lightness(rgb(table, code));
      expect(l).toBeGreaterThanOrEqual(previous);
      previous = l;
    }
    expect(lightness(rgb(table, 254)) - lightness(rgb(table, 0))).toBeGreaterThan(60);
  });

  it("rdbu is blue for negative codes, white at 127 and red for positive codes", () => {
    const table = getLut("rdbu");
    const [r0, , b0] = rgb(table, 0);
    const [r254, , b254] = rgb(table, 254);
    expect(b0).toBeGreaterThan(r0);
    expect(r254).toBeGreaterThan(b254);
    for (const channel of rgb(table, 127)) expect(channel).toBeGreaterThanOrEqual(245);
    // Darker (further from white) the further a code is from the middle, on both sides.
    expect(lightness(rgb(table, 0))).toBeLessThan(lightness(rgb(table, 64)));
    expect(lightness(rgb(table, 64))).toBeLessThan(lightness(rgb(table, 127)));
    expect(lightness(rgb(table, 254))).toBeLessThan(lightness(rgb(table, 190)));
    expect(lightness(rgb(table, 190))).toBeLessThan(lightness(rgb(table, 127)));
  });

  it("gray runs from black to white", () => {
    const table = getLut("gray");
    expect(rgb(table, 0)).toEqual([0, 0, 0]);
    expect(rgb(table, 254)).toEqual([255, 255, 255]);
    expect(rgb(table, 127)).toEqual([128, 128, 128]);
  });

  it("interpolates between control points", () => {
    const table = buildLut([
      [0, 0, 0, 0],
      [1, 254, 0, 254],
    ]);
    expect(rgb(table, 100)).toEqual([100, 0, 100]);
  });

  it('"auto" picks red/blue for symmetric data and viridis otherwise', () => {
    expect(resolveColormap("auto", "symmetric")).toBe("rdbu");
    expect(resolveColormap("auto", "linear")).toBe("viridis");
    expect(resolveColormap("gray", "symmetric")).toBe("gray");
    expect(pickLut("auto", "symmetric")).toBe(getLut("rdbu"));
    expect(pickLut("no-such-map", "linear")).toBe(getLut("viridis"));
  });
});
