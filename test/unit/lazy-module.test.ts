// Modules a controller may never need are loaded at their first use, not at start (resident memory: see
// src/lazy-module.ts). Each case that watches module loading runs in a fresh process: the module cache is global.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { lazyModule } from "../../src/lazy-module.ts";

const root = join(import.meta.dirname, "..", "..");

test("lazyModule loads the module at the first call, once", () => {
  const dir = mkdtempSync(join(tmpdir(), "sinker-lazy-"));
  try {
    const file = join(dir, "counted.mjs");
    writeFileSync(
      file,
      "globalThis.sinkerLazyLoads = (globalThis.sinkerLazyLoads ?? 0) + 1;\nexport const x = 42;\n",
    );
    const g = globalThis as { sinkerLazyLoads?: number };
    const load = lazyModule<{ x: number }>(pathToFileURL(join(dir, "parent.mjs")).href, "./counted.mjs");
    assert.equal(g.sinkerLazyLoads, undefined);
    assert.equal(load().x, 42);
    assert.equal(load(), load());
    assert.equal(g.sinkerLazyLoads, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the controller starts without the JSONPath, RE2, YAML and CEL engines, and loads JSONPath at the first mapping (RE2 at the first pattern)", () => {
  const r = spawnSync(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `
      import { registerHooks } from "node:module";
      const seen = new Set();
      registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.add(r.url); return r; } });
      const engines = () => ["/json-p3/", "/re2js/", "/yaml/", "/@bufbuild/cel/"].filter((m) => [...seen].some((u) => u.includes("/node_modules" + m)));
      await import("./src/cli/run.ts");
      await import("./src/controller/controller.ts");
      const atStart = engines();
      const { project } = await import("./src/projection/index.ts");
      project({
        resourceSync: {
          apiVersion: "sinker.influxdata.io/v1alpha1", kind: "ResourceSync",
          metadata: { name: "rs", namespace: "ns", uid: "u" },
          spec: {
            source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "s" } },
            target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "t" } },
            mappings: [{ fromFieldPath: "$.data.a", toFieldPath: "data.b" }],
          },
        },
        source: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "s", namespace: "ns" }, data: { a: "1" } },
        target: { namespace: "ns", ownerReference: false },
      });
      console.log(JSON.stringify({ atStart, afterMapping: engines() }));
      `,
    ],
    { cwd: root, encoding: "utf8", env: { ...process.env, SINKER_LOG: "off" }, timeout: 60_000 },
  );
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  assert.ok(last.startsWith("{"), `no result; stderr: ${r.stderr.slice(0, 2000)}`);
  assert.deepEqual(JSON.parse(last), { atStart: [], afterMapping: ["/json-p3/"] });
});
