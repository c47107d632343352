/**
 * Dependencies point down: a module may import from its own layer or a lower one, never from a higher one.
 * The layers are those of docs/architecture.md; a new directory or top-level module must be placed here.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

/** Lowest first. A rule is a file (`x.ts`) or a directory (`x/`); the most specific rule wins. */
const LAYERS: ReadonlyArray<[string, readonly string[]]> = [
  [
    "base",
    ["errors.ts", "log.ts", "log-redact.ts", "regex.ts", "pool.ts", "lazy-module.ts", "kube/object.ts"],
  ],
  ["api", ["api/"]],
  ["kube", ["kube/"]],
  ["projection", ["projection/"]],
  ["admin", ["admin/"]],
  ["runtime", ["runtime/"]],
  ["controller", ["controller/"]],
  ["fanout", ["fanout/"]],
  ["wiring", ["controller/controller.ts"]],
  ["cli", ["cli/"]],
];

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

/** The layer index of a file under src/ (path relative to src, `/`-separated), or undefined. */
export function layerOf(file: string): number | undefined {
  let best: { index: number; length: number } | undefined;
  for (const [index, [, rules]] of LAYERS.entries()) {
    for (const rule of rules) {
      const hit = rule.endsWith("/") ? file.startsWith(rule) : file === rule;
      if (hit && (best === undefined || rule.length > best.length)) best = { index, length: rule.length };
    }
  }
  return best?.index;
}

/** Relative module specifiers of a source file: static imports and re-exports, and dynamic imports. */
export function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+"(\.[^"]+)"/gms))
    out.push(m[1] as string);
  for (const m of text.matchAll(/\bimport\(\s*"(\.[^"]+)"\s*\)/g)) out.push(m[1] as string);
  return out;
}

function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.split("\\").join("/"))
    .sort();
}

describe("layers", () => {
  it("finds the imports of a module", () => {
    const text = [
      'import { a } from "../api/types.ts";',
      "import {",
      "  b,",
      '} from "./b.ts";',
      'import type { C } from "./c.ts";',
      'export { d } from "./d.ts";',
      'import { readFileSync } from "node:fs";',
      'const e = await import("./e.ts");',
    ].join("\n");
    assert.deepEqual(importsOf(text), ["../api/types.ts", "./b.ts", "./c.ts", "./d.ts", "./e.ts"]);
  });

  it("places files by their most specific rule", () => {
    assert.equal(layerOf("kube/object.ts"), 0);
    assert.equal(layerOf("kube/client.ts"), 2);
    assert.equal(layerOf("controller/controller.ts"), 8);
    assert.equal(layerOf("runtime/queue.ts"), 5);
    assert.equal(layerOf("elsewhere.ts"), undefined);
  });

  it("every module of src/ has a layer", () => {
    const unplaced = sourceFiles().filter((f) => layerOf(f) === undefined);
    assert.deepEqual(unplaced, [], "place these modules in LAYERS (and docs/architecture.md)");
  });

  it("no module imports from a higher layer", () => {
    const upward: string[] = [];
    for (const file of sourceFiles()) {
      const from = layerOf(file) ?? -1;
      for (const spec of importsOf(readFileSync(join(SRC, file), "utf8"))) {
        const target = relative(SRC, normalize(join(SRC, dirname(file), spec)))
          .split("\\")
          .join("/");
        const to = layerOf(target) ?? -1;
        if (to > from) {
          upward.push(`${file} (${LAYERS[from]?.[0]}) imports ${target} (${LAYERS[to]?.[0]})`);
        }
      }
    }
    assert.deepEqual(upward, []);
  });
});
