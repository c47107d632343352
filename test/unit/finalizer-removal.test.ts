// The patch that releases a ResourceSync: only Sinker's finalizer goes, conditional on the version it was read at.
import assert from "node:assert/strict";
import { test } from "node:test";
import { FINALIZER } from "../../src/api/types.ts";
import { finalizerRemoval } from "../../src/controller/finalizer.ts";

test("finalizerRemoval keeps other finalizers and carries the resourceVersion", () => {
  const cases: Array<[string, string[] | undefined, string[]]> = [
    ["only ours", [FINALIZER], []],
    ["others kept, in order", ["a.example/x", FINALIZER, "b.example/y"], ["a.example/x", "b.example/y"]],
    ["ours absent", ["a.example/x"], ["a.example/x"]],
    ["no finalizers", undefined, []],
  ];
  for (const [name, finalizers, want] of cases) {
    const rs = { metadata: { name: "rs", resourceVersion: "42", ...(finalizers ? { finalizers } : {}) } };
    assert.deepEqual(finalizerRemoval(rs), { metadata: { finalizers: want, resourceVersion: "42" } }, name);
  }
});
