// The benchmark starts Sinker with the node flags of the image's ENTRYPOINT, so its figures are Sinker's as shipped.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { IMAGE_NODE_FLAGS } from "../../bench/support/scenario.ts";

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
