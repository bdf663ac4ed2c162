// Bundles each widget view into one self-contained ES module for anywidget's `_esm`.
// Usage: `node build.mjs` (production) or `node build.mjs --watch` (rebuild on change).
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "../modelviz_widgets/static");

// One entry per widget: every src/<name>.ts (tests aside) -> modelviz_widgets/static/<name>.js
const entries = readdirSync(resolve(here, "src"))
  .filter((file) => file.endsWith(".ts") && !file.endsWith(".test.ts"))
  .map((file) => ({ in: `src/${file}`, out: file.slice(0, -3) }));

const options = {
  absWorkingDir: here,
  entryPoints: entries,
  outdir,
  bundle: true,
  format: "esm",
  // anywidget loads one module from a string or file; it cannot fetch relative `./chunk-*.js` files.
  splitting: false,
  minify: true,
  target: "es2020",
  platform: "browser",
  legalComments: "none",
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const context = await esbuild.context({ ...options, minify: false });
  await context.watch();
} else {
  await esbuild.build(options);
}
