import { describe, expect, it } from "vitest";
import { colorOf, layoutFigure, linearDomain, niceTicks, type FigureSpec, type Shape } from "./export_figure";

function marks(shapes: Shape[], type: string): Shape[] {
  return shapes.filter((s) => s.role === "mark" && s.attrs["data-mv-mark"] === type).flatMap((s) => s.children ?? []);
}

const MARGIN = { top: 10, bottom: 20, left: 30, right: 40 };

describe("niceTicks", () => {
  it("picks steps of 1, 2 or 5 times a power of ten inside the range", () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-6, 6, 5)).toEqual([-6, -4, -2, 0, 2, 4, 6]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});

describe("linearDomain", () => {
  it("spans the data unless the scale fixes an end, and never collapses", () => {
    expect(linearDomain({ type: "linear" }, [2, 5, 3])).toEqual([2, 5]);
    expect(linearDomain({ type: "linear", min: 0 }, [2, 5])).toEqual([0, 5]);
    expect(linearDomain({ type: "linear" }, [2, 5], true)).toEqual([0, 5]);
    expect(linearDomain({ type: "linear" }, [4])).toEqual([3.5, 4.5]);
    expect(linearDomain({ type: "linear" }, [])).toEqual([0, 1]);
  });
});

describe("colorOf", () => {
  it("interpolates the scale's colours and lands on them at the stops", () => {
    const scale = { type: "color", colors: ["#000000", "#ff0000", "#ffffff"] };
    expect(colorOf(scale, [0, 2], 0)).toBe("#000000");
    expect(colorOf(scale, [0, 2], 1)).toBe("#ff0000");
    expect(colorOf(scale, [0, 2], 2)).toBe("#ffffff");
    expect(colorOf(scale, [0, 2], 0.5)).toBe("#800000");
  });

  it("uses viridis without colours: dark purple low, yellow high", () => {
    const low = colorOf({ type: "color" }, [0, 1], 0);
    const high = colorOf({ type: "color" }, [0, 1], 1);
    expect(parseInt(low.slice(1, 3), 16)).toBeLessThan(100);
    expect(parseInt(high.slice(1, 3), 16)).toBeGreaterThan(200);
  });
});

describe("layoutFigure", () => {
  const spec: FigureSpec = {
    title: "t",
    width: 200,
    height: 130,
    margin: MARGIN,
    scales: { sx: { type: "linear" }, sy: { type: "linear" }, o: { type: "ordinal", domain: ["a", "b"] } },
    axes: [{ scale: "sx", side: "bottom", label: "x" }, { scale: "sy", side: "left", label: "y" }],
    marks: [
      { type: "Scatter", x: [0, 10], y: [0, 100], scales: { x: "sx", y: "sy" }, default_size: 64 },
      { type: "Lines", x: [0, 5, 10], y: [[0, null, 100], [0, 50, 100]], scales: { x: "sx", y: "sy" }, colors: ["red", "blue"], labels: ["one", "two"], display_legend: true },
    ],
  };

  it("places points at the plot corners for the ends of the data", () => {
    const { shapes } = layoutFigure(spec);
    const [first, last] = marks(shapes, "Scatter");
    // Plot area: x 30..160, y 10..110 (y grows downwards).
    expect([Number(first.attrs.cx), Number(first.attrs.cy)]).toEqual([30, 110]);
    expect([Number(last.attrs.cx), Number(last.attrs.cy)]).toEqual([160, 10]);
  });

  it("draws one path per curve, breaking at missing values, with a legend", () => {
    const { shapes } = layoutFigure(spec);
    const paths = marks(shapes, "Lines");
    expect(paths.map((p) => p.attrs.stroke)).toEqual(["red", "blue"]);
    expect(String(paths[0].attrs.d).match(/M/g)?.length).toBe(2);
    expect(String(paths[1].attrs.d).match(/L/g)?.length).toBe(2);
    const legend = shapes.find((s) => s.role === "legend");
    expect(legend?.children?.filter((c) => c.tag === "text").map((c) => c.text)).toEqual(["one", "two"]);
    expect(shapes.find((s) => s.role === "title")?.text).toBe("t");
  });

  it("draws bars from zero, one band per category, the selected one outlined", () => {
    const { shapes } = layoutFigure({
      margin: MARGIN,
      width: 200,
      height: 130,
      scales: { o: { type: "ordinal", domain: ["a", "b"] }, y: { type: "linear", min: 0, max: 1 } },
      axes: [{ scale: "o", side: "bottom" }],
      marks: [{ type: "Bars", x: ["a", "b"], y: [0.5, 1], scales: { x: "o", y: "y" }, selected: [1], padding: 0 }],
    });
    const bars = marks(shapes, "Bars");
    expect(bars.map((b) => [Number(b.attrs.x), Number(b.attrs.width), Number(b.attrs.y), Number(b.attrs.height)])).toEqual([
      [30, 65, 60, 50],
      [95, 65, 10, 100],
    ]);
    expect(bars[1].attrs.stroke).toBe("black");
    const ticks = shapes.find((s) => s.role === "axis")?.children?.filter((c) => c.tag === "text").map((c) => c.text);
    expect(ticks).toEqual(["a", "b"]);
  });

  it("names marks it cannot draw instead of leaving them out silently", () => {
    const { shapes } = layoutFigure({ scales: {}, axes: [], marks: [{ type: "Pie", scales: {} }] });
    expect(shapes.find((s) => s.role === "note")?.text).toMatch(/Pie/);
  });
});
