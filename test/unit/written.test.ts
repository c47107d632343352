import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { writtenSuperseded } from "../../src/controller/own-writes.ts";

const rs = (uid: string, resourceVersion: string) => ({ metadata: { name: "a", uid, resourceVersion } });

describe("writtenSuperseded (our own last write of a ResourceSync beside the cache)", () => {
  it("is kept while the cache is older than the write", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "9")), false);
  });

  it("is dropped once the cache has caught up, or went past it", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "10")), true);
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "11")), true);
  });

  it("is kept after our removal of the finalizer deleted it, while the cache still shows the finalizer", () => {
    const at = "2026-01-01T00:00:00Z";
    const deleting = (resourceVersion: string, finalizers: string[]) => ({
      metadata: { name: "a", uid: "u", resourceVersion, deletionTimestamp: at, finalizers },
    });
    // the answer to the patch that removed the last finalizer carries the resourceVersion before the deletion
    assert.equal(
      writtenSuperseded(deleting("10", []), deleting("10", ["sinker.influxdata.io/target"])),
      false,
    );
    assert.equal(writtenSuperseded(deleting("10", []), deleting("10", [])), true);
    assert.equal(writtenSuperseded(deleting("10", []), undefined), true, "the deletion event drops it");
  });

  it("is dropped when the ResourceSync is gone or is another object of that name", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), undefined), true);
    assert.equal(writtenSuperseded(rs("u", "10"), rs("v", "3")), true);
  });
});
