import { describe, expect, it } from "vitest";
import type { TraitBinding } from "./controls";
import { asText, metaKey } from "./tokens";

function fakeBinding<V>(initial: V): TraitBinding<V> & { writes: V[] } {
  let value = initial;
  const watchers: Array<(value: V) => void> = [];
  const writes: V[] = [];
  return {
    name: "target",
    writes,
    get: () => value,
    set: (next) => {
      writes.push(next);
      value = next;
      watchers.forEach((watcher) => watcher(next));
    },
    watch: (callback) => {
      watchers.push(callback);
      return () => watchers.splice(watchers.indexOf(callback), 1);
    },
  };
}

describe("asText", () => {
  it("shows an integer trait as a string and writes numbers back", () => {
    const binding = fakeBinding<number | null>(2);
    const text = asText(binding);
    expect(text.get()).toBe("2");
    const seen: string[] = [];
    text.watch((value) => seen.push(value));
    text.set("0");
    expect(binding.writes).toEqual([0]);
    expect(seen).toEqual(["0"]);
  });

  it("maps null to the 'none' text and back", () => {
    const binding = fakeBinding<number | null>(null);
    const text = asText(binding);
    expect(text.get()).toBe("");
    text.set("1");
    text.set("");
    expect(binding.writes).toEqual([1, null]);
  });
});

describe("metaKey", () => {
  it("reads extra keys of a synced metadata dict", () => {
    expect(metaKey({ rows: ["hidden"] }, "rows")).toEqual(["hidden"]);
    expect(metaKey({}, "rows")).toBeUndefined();
    expect(metaKey(null, "rows")).toBeUndefined();
  });
});
