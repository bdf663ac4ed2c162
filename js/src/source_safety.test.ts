/// <reference types="node" />
// Guards the rules for js/src: no HTML parsing of strings, no dynamic code, no remote modules.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL(".", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith(".ts") && !name.endsWith(".test.ts") ? [path] : [];
  });
}

// Built from pieces so this file does not match itself if it is ever scanned.
const forbidden: Array<[string, RegExp]> = [
  ["inner" + "HTML", new RegExp("\\binner" + "HTML\\b")],
  ["outer" + "HTML", new RegExp("\\bouter" + "HTML\\b")],
  ["insertAdjacent" + "HTML", new RegExp("insertAdjacent" + "HTML")],
  ["ev" + "al(", new RegExp("\\bev" + "al\\s*\\(")],
  ["new Func" + "tion", new RegExp("new\\s+Func" + "tion\\b")],
  ["remote import", new RegExp("(import|from)\\s*\\(?\\s*[\"']https?:")],
  ["document.wr" + "ite", new RegExp("document\\.wr" + "ite")],
];

describe("js/src", () => {
  const files = sources(root);

  it.each(["feature_maps.ts", "attention.ts"])("has the module %s the build expects", (entry) => {
    expect(files.some((f) => f.endsWith(entry))).toBe(true);
  });

  it.each(forbidden)("never uses %s", (_label, pattern) => {
    const offenders = files.filter((file) => pattern.test(readFileSync(file, "utf8")));
    expect(offenders).toEqual([]);
  });
});
