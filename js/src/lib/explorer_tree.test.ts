import { describe, expect, it } from "vitest";
import {
  ancestors,
  compactCount,
  initialCollapsed,
  magnitudeBars,
  reuseText,
  shapeText,
  shortName,
  visibleRows,
  type TreeNodeInfo,
} from "./explorer_tree";

function node(name: string, parent: string | null, depth: number, children: string[] = [], magnitude = 1): TreeNodeInfo {
  return {
    name,
    parent,
    depth,
    module_type: children.length ? "Sequential" : "Linear",
    kind: children.length ? "container" : "linear",
    n_params: 0,
    own_params: 0,
    children,
    calls: [{ index: 0, output_shape: [1, 4], magnitude, nonfinite: 0 }],
    shared_with: [],
    badges: [],
    view: "feature_maps",
  };
}

const TREE = [
  node("", null, 0, ["a", "b"]),
  node("a", "", 1, ["a.x", "a.y"]),
  node("a.x", "a", 2, [], 0.01),
  node("a.y", "a", 2, [], 10),
  node("b", "", 1, [], 1),
];

describe("explorer tree", () => {
  it("hides the rows under a collapsed container, and only those", () => {
    expect(visibleRows(TREE, new Set()).map((n) => n.name)).toEqual(["", "a", "a.x", "a.y", "b"]);
    expect(visibleRows(TREE, new Set(["a"])).map((n) => n.name)).toEqual(["", "a", "b"]);
    expect(visibleRows(TREE, new Set([""])).map((n) => n.name)).toEqual([""]);
  });

  it("collapses deep containers at first but keeps the selected layer's ancestors open", () => {
    expect([...initialCollapsed(TREE, 1, "b")]).toEqual(["a"]);
    expect([...initialCollapsed(TREE, 1, "a.y")]).toEqual([]);
    expect(ancestors(TREE, "a.y")).toEqual(["a", ""]);
  });

  it("draws magnitudes on a log scale between the smallest and the largest", () => {
    const bars = magnitudeBars(TREE);
    expect(bars.get("a.x")).toBeCloseTo(0.08);
    expect(bars.get("a.y")).toBeCloseTo(1);
    expect(bars.get("b")).toBeCloseTo(0.08 + 0.92 * (2 / 3));
  });

  it("writes the row texts", () => {
    expect(compactCount(1_234_567)).toBe("1.2M");
    expect(compactCount(45_300)).toBe("45.3k");
    expect(compactCount(980)).toBe("980");
    expect(shortName("layer1.0.conv1")).toBe("conv1");
    expect(shortName("")).toBe("(model)");
    const twice = { ...node("f", "", 1), calls: [TREE[2].calls[0], { ...TREE[2].calls[0], index: 3 }] };
    expect(shapeText(twice)).toBe("[1, 4] ×2 calls");
    expect(reuseText({ ...node("p.f", "p", 2), shared_with: ["q.f"] })).toBe("shared with q.f");
  });
});
