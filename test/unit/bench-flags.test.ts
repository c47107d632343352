// The benchmark starts Sinker with the node flags of the image's ENTRYPOINT and the environment of its runtime stage,
// so its figures are Sinker's as shipped.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { IMAGE_ENV, IMAGE_NODE_FLAGS } from "../../bench/support/scenario.ts";

test("bench and Dockerfile ENTRYPOINT use the same node flags", () => {
  const dockerfile = readFileSync(join(import.meta.dirname, "..", "..", "Dockerfile"), "utf8");
  const line = dockerfile.split("\n").find((l) => l.startsWith("ENTRYPOINT "));
  assert.ok(line, "the Dockerfile has an ENTRYPOINT");
  const [node, ...rest] = JSON.parse(line.slice("ENTRYPOINT ".length)) as string[];
  assert.equal(node, "node");
  assert.deepEqual(
    rest.filter((a) => a.startsWith("--")),
    IMAGE_NODE_FLAGS,
  );
  assert.equal(rest.at(-1), "bin/sinker.js");
});

test("bench and the Dockerfile's runtime stage set the same environment", () => {
  const dockerfile = readFileSync(join(import.meta.dirname, "..", "..", "Dockerfile"), "utf8");
  const runtime = dockerfile.slice(dockerfile.indexOf(" AS runtime"));
  const env: Record<string, string> = {};
  for (const line of runtime.split("\n").filter((l) => l.startsWith("ENV "))) {
    for (const pair of line.slice("ENV ".length).trim().split(/\s+/)) {
      const [name, value] = pair.split("=");
      assert.ok(name && value !== undefined, `ENV ${pair} is name=value`);
      env[name] = value;
    }
  }
  assert.deepEqual(env, IMAGE_ENV);
});
