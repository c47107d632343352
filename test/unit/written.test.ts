import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { writtenSuperseded } from "../../src/controller/reconciler.ts";

const rs = (uid: string, resourceVersion: string) => ({ metadata: { name: "a", uid, resourceVersion } });

describe("writtenSuperseded (our own last write of a ResourceSync beside the cache)", () => {
  it("is kept while the cache is older than the write", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "9")), false);
  });

  it("is dropped once the cache has caught up, or went past it", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "10")), true);
    assert.equal(writtenSuperseded(rs("u", "10"), rs("u", "11")), true);
  });

  it("is dropped when the ResourceSync is gone or is another object of that name", () => {
    assert.equal(writtenSuperseded(rs("u", "10"), undefined), true);
    assert.equal(writtenSuperseded(rs("u", "10"), rs("v", "3")), true);
  });
});
