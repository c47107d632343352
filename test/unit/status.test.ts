import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import {
  FAILING,
  findCondition,
  nextStatus,
  READY,
  statusDiffers,
  syncedEventWorthIt,
  truncateMessage,
} from "../../src/controller/status.ts";

const t0 = new Date("2026-01-01T10:00:00.123Z");
const t1 = new Date("2026-01-01T10:05:00.000Z");
const t2 = new Date("2026-01-01T10:09:00.000Z");

describe("nextStatus", () => {
  it("a first success sets Ready True/Synced and observedGeneration, without a failing condition", () => {
    const s = nextStatus(undefined, 3, { ok: true, message: "in sync" }, t0);
    assert.equal(s.observedGeneration, 3);
    assert.deepEqual(findCondition(s, READY), {
      type: READY,
      status: "True",
      reason: "Synced",
      message: "in sync",
      observedGeneration: 3,
      lastTransitionTime: "2026-01-01T10:00:00Z",
    });
    assert.equal(findCondition(s, FAILING), undefined);
  });

  it("a failure sets ResourceSyncFailing True (Rust-compatible) and Ready False with the error's reason", () => {
    const s = nextStatus(undefined, 1, { ok: false, reason: "SourceNotFound", message: "no source" }, t0);
    const failing = findCondition(s, FAILING);
    assert.equal(failing?.status, "True");
    assert.equal(failing?.reason, "ResourceSyncFailing");
    assert.equal(failing?.message, "no source");
    assert.equal(failing?.observedGeneration, 1);
    const ready = findCondition(s, READY);
    assert.equal(ready?.status, "False");
    assert.equal(ready?.reason, "SourceNotFound");
  });

  it("keeps lastTransitionTime while a failure goes on, even when the message changes", () => {
    const s1 = nextStatus(undefined, 1, { ok: false, reason: "A", message: "first" }, t0);
    const s2 = nextStatus(s1, 2, { ok: false, reason: "B", message: "second" }, t1);
    assert.equal(findCondition(s2, FAILING)?.lastTransitionTime, "2026-01-01T10:00:00Z");
    assert.equal(findCondition(s2, FAILING)?.message, "second");
    assert.equal(findCondition(s2, FAILING)?.observedGeneration, 2);
  });

  it("turns ResourceSyncFailing to False (not removed) when the sync recovers, with a new transition time", () => {
    const failed = nextStatus(undefined, 1, { ok: false, reason: "A", message: "boom" }, t0);
    const recovered = nextStatus(failed, 1, { ok: true, message: "in sync" }, t1);
    assert.equal(findCondition(recovered, FAILING)?.status, "False");
    assert.equal(findCondition(recovered, FAILING)?.lastTransitionTime, "2026-01-01T10:05:00Z");
    assert.equal(findCondition(recovered, READY)?.status, "True");
    assert.equal(findCondition(recovered, READY)?.lastTransitionTime, "2026-01-01T10:05:00Z");
    const again = nextStatus(recovered, 1, { ok: true, message: "in sync" }, t2);
    assert.equal(statusDiffers(recovered, again), false, "a steady state writes nothing");
  });

  it("keeps conditions of other types that someone else set", () => {
    const prev = {
      conditions: [
        {
          type: "Custom",
          status: "True" as const,
          reason: "X",
          message: "",
          lastTransitionTime: "2020-01-01T00:00:00Z",
        },
      ],
    };
    const s = nextStatus(prev, 1, { ok: true, message: "" }, t0);
    assert.ok(findCondition(s, "Custom"));
  });

  it("truncates long messages", () => {
    assert.equal(truncateMessage("x".repeat(5000)).length, 1024);
    assert.equal(truncateMessage("short"), "short");
  });
});

describe("statusDiffers", () => {
  it("ignores condition order and detects real changes", () => {
    const a = nextStatus(undefined, 1, { ok: false, reason: "A", message: "m" }, t0);
    const reversed = { ...a, conditions: [...(a.conditions ?? [])].reverse() };
    assert.equal(statusDiffers(a, reversed), false);
    assert.equal(statusDiffers(a, nextStatus(a, 2, { ok: false, reason: "A", message: "m" }, t0)), true);
    assert.equal(statusDiffers(undefined, a), true);
  });

  const record = {
    cluster: {
      secretRef: { namespace: "ns", name: "kc", key: "config" },
      identity: { kubeSystemUID: "u1", caSHA256: "c1" },
    },
    apiVersion: "v1",
    kind: "ConfigMap",
    namespace: "ns",
    name: "dst",
    uid: "t1",
    appliedAt: "2026-01-01T10:00:00Z",
    fieldSetHash: "h1",
  };
  const ready = nextStatus(undefined, 1, { ok: true, message: "in sync" }, t0, record);
  const reorder = (v: unknown): unknown =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v)
            .reverse()
            .map(([k, x]) => [k, reorder(x)]),
        )
      : v;
  const withCondition = (change: Record<string, unknown>) => ({
    ...ready,
    conditions: (ready.conditions ?? []).map((c) => (c.type === READY ? { ...c, ...change } : c)),
  });
  const cases: [string, unknown, boolean][] = [
    ["the same status", structuredClone(ready), false],
    ["the record with its keys (and its cluster's) in another order", reorder(ready), false],
    ["a property holding undefined, against one absent", { ...ready, writePolicy: undefined }, false],
    ["another observedGeneration", { ...ready, observedGeneration: 2 }, true],
    ["another write policy", { ...ready, writePolicy: "CreateOnly" }, true],
    ["the record of another uid", { ...ready, appliedTarget: { ...record, uid: "t2" } }, true],
    [
      "the record's cluster identity changed",
      {
        ...ready,
        appliedTarget: {
          ...record,
          cluster: { ...record.cluster, identity: { kubeSystemUID: "u2", caSHA256: "c1" } },
        },
      },
      true,
    ],
    [
      "a record without its fieldSetHash",
      { ...ready, appliedTarget: { ...record, fieldSetHash: undefined } },
      true,
    ],
    ["no record", { ...ready, appliedTarget: undefined }, true],
    ["the record removed (null)", { ...ready, appliedTarget: null }, true],
    ["another message", withCondition({ message: "other" }), true],
    ["another lastTransitionTime", withCondition({ lastTransitionTime: "2026-01-01T11:00:00Z" }), true],
    ["another condition observedGeneration", withCondition({ observedGeneration: 9 }), true],
    ["one condition fewer", { ...ready, conditions: (ready.conditions ?? []).slice(1) }, true],
    ["conditions that are not a list", { ...ready, conditions: "Ready" }, true],
  ];
  for (const [name, previous, differs] of cases) {
    it(`${differs ? "differs" : "does not differ"}: ${name}`, () => {
      assert.equal(statusDiffers(previous as Parameters<typeof statusDiffers>[0], ready), differs);
    });
  }
  it("no record before and none now (absent, or null in a patch) is no change", () => {
    const bare = nextStatus(undefined, 1, { ok: true, message: "in sync" }, t0);
    assert.equal(statusDiffers({ ...bare, appliedTarget: null }, bare), false);
  });
});

test("syncedEventWorthIt: a recovery is worth an Event, a first or repeated success is not", () => {
  const cond = (status: "True" | "False") => ({
    type: "Ready",
    status,
    reason: status === "True" ? "Synced" : "SourceNotFound",
    message: "m",
    lastTransitionTime: "2026-01-01T00:00:00Z",
  });
  const cases: Array<[string, Parameters<typeof syncedEventWorthIt>[0], boolean]> = [
    ["first success (no Ready yet)", undefined, false],
    ["still synced", cond("True"), false],
    ["recovered from a failure", cond("False"), true],
  ];
  for (const [what, before, want] of cases) assert.equal(syncedEventWorthIt(before), want, what);
});
