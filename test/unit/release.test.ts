/**
 * Kept means kept (docs/spec/resourcesync.md#kept-means-kept): the patch that removes only Sinker's owner reference
 * from a kept target.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ownerReferenceRemoval } from "../../src/controller/release.ts";
import type { KubeObject } from "../../src/kube/object.ts";

const ref = (uid: string) => ({ apiVersion: "v1", kind: "X", name: uid, uid });
const obj = (...uids: string[]): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "t", ownerReferences: uids.map(ref) },
});

const cases: Array<[string, KubeObject | undefined, string, unknown]> = [
  ["no object", undefined, "rs", undefined],
  ["no owner references", { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "t" } }, "rs", undefined],
  ["only other owners: untouched", obj("a", "b"), "rs", undefined],
  ["empty uid never matches", obj(""), "", undefined],
  [
    "ours alone",
    obj("rs"),
    "rs",
    [
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: "rs" },
      { op: "remove", path: "/metadata/ownerReferences/0" },
    ],
  ],
  [
    "ours among others: only ours, tested first",
    obj("a", "rs", "b"),
    "rs",
    [
      { op: "test", path: "/metadata/ownerReferences/1/uid", value: "rs" },
      { op: "remove", path: "/metadata/ownerReferences/1" },
    ],
  ],
  [
    "twice: removed from the last, so indices stay valid",
    obj("rs", "a", "rs"),
    "rs",
    [
      { op: "test", path: "/metadata/ownerReferences/2/uid", value: "rs" },
      { op: "remove", path: "/metadata/ownerReferences/2" },
      { op: "test", path: "/metadata/ownerReferences/0/uid", value: "rs" },
      { op: "remove", path: "/metadata/ownerReferences/0" },
    ],
  ],
];

for (const [name, o, uid, want] of cases) {
  test(`ownerReferenceRemoval: ${name}`, () => assert.deepEqual(ownerReferenceRemoval(o, uid), want));
}
