// The Explorer's model tree, as data: which rows show under the collapsed containers, how long each
// activation-magnitude bar is, and the short texts of a row (shape, parameters, reuse).

export interface ModuleCallInfo {
  index: number;
  output_shape: number[] | null;
  magnitude: number | null;
  nonfinite: number;
}

export interface BadgeInfo {
  kind: string;
  level: string;
  message: string;
}

export interface TreeNodeInfo {
  name: string;
  parent: string | null;
  depth: number;
  module_type: string;
  kind: string;
  n_params: number;
  own_params: number;
  children: string[];
  calls: ModuleCallInfo[];
  shared_with: string[];
  badges: BadgeInfo[];
  view: string;
}

/** The rows to show: every node whose ancestors are all expanded (the root always shows). */
export function visibleRows(nodes: readonly TreeNodeInfo[], collapsed: ReadonlySet<string>): TreeNodeInfo[] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const shown: TreeNodeInfo[] = [];
  for (const node of nodes) {
    let parent = node.parent;
    let hidden = false;
    const seen = new Set<string>();
    while (parent !== null && parent !== undefined && !seen.has(parent)) {
      if (collapsed.has(parent)) {
        hidden = true;
        break;
      }
      seen.add(parent);
      parent = byName.get(parent)?.parent ?? null;
    }
    if (!hidden) shown.push(node);
  }
  return shown;
}

/** Containers collapsed at first: those deeper than `depth`, so a big model opens readable. */
export function initialCollapsed(nodes: readonly TreeNodeInfo[], depth: number, keepOpen: string): Set<string> {
  const collapsed = new Set<string>();
  for (const node of nodes) {
    if (node.children.length > 0 && node.depth >= depth) collapsed.add(node.name);
  }
  // The selected layer's ancestors stay open so it can be seen.
  for (const name of ancestors(nodes, keepOpen)) collapsed.delete(name);
  return collapsed;
}

/** Names of the containers above `name`, nearest first. */
export function ancestors(nodes: readonly TreeNodeInfo[], name: string): string[] {
  const byName = new Map(nodes.map((node) => [node.name, node]));
  const result: string[] = [];
  let parent = byName.get(name)?.parent ?? null;
  while (parent !== null && !result.includes(parent)) {
    result.push(parent);
    parent = byName.get(parent)?.parent ?? null;
  }
  return result;
}

/** The magnitude shown for a node: its last call's mean |output|, or null. */
export function magnitudeOf(node: TreeNodeInfo): number | null {
  const last = node.calls[node.calls.length - 1];
  const value = last?.magnitude;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** Bar widths in [0, 1] for every node: magnitudes on a log scale over the finite positive ones. */
export function magnitudeBars(nodes: readonly TreeNodeInfo[]): Map<string, number> {
  const values = nodes.map(magnitudeOf).filter((v): v is number => v !== null && v > 0);
  const bars = new Map<string, number>();
  if (values.length === 0) return bars;
  const low = Math.log10(Math.min(...values));
  const high = Math.log10(Math.max(...values));
  for (const node of nodes) {
    const value = magnitudeOf(node);
    if (value === null) continue;
    if (value <= 0) bars.set(node.name, 0);
    else bars.set(node.name, high > low ? 0.08 + (0.92 * (Math.log10(value) - low)) / (high - low) : 1);
  }
  return bars;
}

/** "1.2M", "45.3k", "980". */
export function compactCount(value: number): string {
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return String(value);
}

/** The last path component ("layer1.0.conv1" -> "conv1"); the root is "(model)". */
export function shortName(name: string): string {
  if (name === "") return "(model)";
  const parts = name.split(".");
  return parts[parts.length - 1];
}

/** "[1, 64, 56, 56]", with "×2 calls" when the module ran more than once. */
export function shapeText(node: TreeNodeInfo): string {
  const last = node.calls[node.calls.length - 1];
  const shape = last?.output_shape ? `[${last.output_shape.join(", ")}]` : "";
  return node.calls.length > 1 ? `${shape} ×${node.calls.length} calls` : shape;
}

/** The reuse marker of a shared module: "shared with a.b, c.d", or "". */
export function reuseText(node: TreeNodeInfo): string {
  return node.shared_with.length > 0 ? `shared with ${node.shared_with.join(", ")}` : "";
}
