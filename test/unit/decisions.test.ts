/**
 * The reconciler's decisions (finalize or not, delete what, write or refuse, what happens to an old target), as
 * tables over a fake context of facts, in the style of kube-rs' `finalizer` helper tests.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppliedMemos } from "../../src/controller/applied.ts";
import { ClaimIndex } from "../../src/controller/claims.ts";
import {
  type Candidate,
  claimWinner,
  decideFinalize,
  decideTargetChange,
  decideWrite,
  type FinalizeAction,
  type FinalizeFacts,
  type LiveTarget,
} from "../../src/controller/decisions.ts";
import { isEcho, resourceSyncChangeMatters } from "../../src/controller/event-filters.ts";
import { liveOf } from "../../src/controller/live-target.ts";
import { nextStatus, statusDiffers } from "../../src/controller/status.ts";
import {
  type AppliedTarget,
  identityKey,
  nextRecord,
  readRecord,
  type TargetIdentity,
} from "../../src/controller/sync-record.ts";
import { SinkerError } from "../../src/errors.ts";
import type { ResourceInfo } from "../../src/kube/client.ts";
import { stripForCache } from "../../src/kube/informer.ts";
import { rvNewer } from "../../src/kube/resource-version.ts";

const cm = (name: string, extra: Partial<TargetIdentity> = {}): TargetIdentity => ({
  cluster: {},
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace: "ns",
  name,
  ...extra,
});
const remote = { secretRef: { namespace: "ns", name: "kc", key: "value" } };
const record = (t: TargetIdentity, uid = "uid-1"): AppliedTarget => ({
  ...t,
  uid,
  appliedAt: "2026-01-01T00:00:00Z",
});
const absent: LiveTarget = { exists: false };
const live = (uid: string, more: Partial<Extract<LiveTarget, { exists: true }>> = {}): LiveTarget => ({
  exists: true,
  uid,
  deleting: false,
  writtenBySinker: false,
  ownedByThis: false,
  ...more,
});
const unreachable = new SinkerError("ClusterUnreachable", "cluster down");

describe("decideFinalize", () => {
  const base: FinalizeFacts = {
    hasFinalizer: true,
    disableTargetDeletion: false,
    forceDelete: false,
    record: undefined,
    candidates: [],
  };
  const rows: Array<[string, Partial<FinalizeFacts>, FinalizeAction["kind"], string?]> = [
    ["no finalizer: nothing to do", { hasFinalizer: false, record: record(cm("t")) }, "none"],
    ["disable-target-deletion: orphan", { disableTargetDeletion: true, record: record(cm("t")) }, "orphan"],
    ["nothing ever applied, nothing resolvable: release at once", {}, "release", "never-applied"],
    [
      "nothing applied, the spec's target unresolvable (unknown kind, denied Secret): release at once",
      { candidates: [{ target: cm("t"), unresolved: new SinkerError("SecretAccessDenied", "no") }] },
      "release",
      "never-applied",
    ],
    [
      "nothing applied, the spec's target exists but is not Sinker's: release, untouched",
      { candidates: [{ target: cm("t"), live: live("u") }] },
      "release",
      "never-applied",
    ],
    [
      "no record but the target carries our owner reference (crash between apply and status): delete it",
      { candidates: [{ target: cm("t"), live: live("u", { ownedByThis: true }) }] },
      "delete",
    ],
    [
      "no record, written by the Rust controller (field manager): delete it",
      { candidates: [{ target: cm("t"), live: live("u", { writtenBySinker: true }) }] },
      "delete",
    ],
    [
      "no record, our field manager but another ResourceSync holds it: leave it",
      {
        candidates: [{ target: cm("t"), live: live("u", { writtenBySinker: true }), claimedBy: "ns/other" }],
      },
      "release",
      "never-applied",
    ],
    [
      "recorded target live with the recorded uid: delete",
      { record: record(cm("t")), candidates: [{ target: cm("t"), live: live("uid-1") }] },
      "delete",
    ],
    [
      "recorded target being deleted: wait for its watch",
      { record: record(cm("t")), candidates: [{ target: cm("t"), live: live("uid-1", { deleting: true }) }] },
      "wait",
    ],
    [
      "recorded target gone: release (TargetDeleted)",
      { record: record(cm("t")), candidates: [{ target: cm("t"), live: absent }] },
      "release",
      "gone",
    ],
    [
      "recorded name now holds another object (other uid, not Sinker's): release without deleting it",
      { record: record(cm("t")), candidates: [{ target: cm("t"), live: live("uid-2") }] },
      "release",
      "not-ours",
    ],
    [
      "recorded target unreachable: fail (condition and Event), retried",
      {
        record: record(cm("t", { cluster: remote })),
        candidates: [{ target: cm("t", { cluster: remote }), unresolved: unreachable }],
      },
      "fail",
    ],
    [
      "recorded target unreachable with force-delete: force release",
      {
        forceDelete: true,
        record: record(cm("t", { cluster: remote })),
        candidates: [{ target: cm("t", { cluster: remote }), unresolved: unreachable }],
      },
      "force-release",
    ],
    [
      "recorded kind no longer served (CRD removed): the object cannot exist, release",
      {
        record: record(cm("t")),
        candidates: [{ target: cm("t"), unresolved: new SinkerError("UnknownKind", "gone") }],
      },
      "release",
    ],
    [
      "record gone but spec's new target carries our owner reference (retarget crash window): delete that",
      {
        record: record(cm("old")),
        candidates: [
          { target: cm("old"), live: absent },
          { target: cm("new"), live: live("u9", { ownedByThis: true }) },
        ],
      },
      "delete",
    ],
  ];
  for (const [name, facts, kind, why] of rows) {
    it(name, () => {
      const action = decideFinalize({ ...base, ...facts });
      assert.equal(action.kind, kind, JSON.stringify(action));
      if (why !== undefined) assert.equal((action as { why?: string }).why, why);
    });
  }

  it("deletes by the live uid (the DELETE's precondition)", () => {
    const c: Candidate = { target: cm("t"), live: live("uid-1") };
    const action = decideFinalize({ ...base, record: record(cm("t")), candidates: [c] });
    assert.deepEqual(action, { kind: "delete", target: cm("t"), uid: "uid-1" });
  });
});

describe("decideWrite (ownership)", () => {
  const rows: Array<[string, Parameters<typeof decideWrite>[0], string | undefined]> = [
    [
      "target absent: create it",
      { target: cm("t"), record: undefined, live: absent, adopt: false, claimedBy: undefined },
      undefined,
    ],
    [
      "recorded target, same uid: write",
      { target: cm("t"), record: record(cm("t")), live: live("uid-1"), adopt: false, claimedBy: undefined },
      undefined,
    ],
    [
      "existing object never applied: refused",
      { target: cm("t"), record: undefined, live: live("x"), adopt: false, claimedBy: undefined },
      "TargetNotOwned",
    ],
    [
      "existing object never applied, opt-in annotation: take over",
      { target: cm("t"), record: undefined, live: live("x"), adopt: true, claimedBy: undefined },
      undefined,
    ],
    [
      "written by the Rust controller (same field manager): Sinker's",
      {
        target: cm("t"),
        record: undefined,
        live: live("x", { writtenBySinker: true }),
        adopt: false,
        claimedBy: undefined,
      },
      undefined,
    ],
    [
      "re-created by someone else under the recorded name: refused",
      { target: cm("t"), record: record(cm("t")), live: live("uid-2"), adopt: false, claimedBy: undefined },
      "TargetNotOwned",
    ],
    [
      "another ResourceSync holds it: conflict, even with the opt-in",
      { target: cm("t"), record: undefined, live: absent, adopt: true, claimedBy: "ns/first" },
      "TargetConflict",
    ],
  ];
  for (const [name, facts, reason] of rows) {
    it(name, () => assert.equal(decideWrite(facts)?.reason, reason));
  }
});

describe("decideTargetChange", () => {
  const rows: Array<[string, AppliedTarget | undefined, TargetIdentity, boolean, string]> = [
    ["no record", undefined, cm("t"), false, "none"],
    ["same target", record(cm("t")), cm("t"), false, "none"],
    ["same target under another version", record(cm("t", { apiVersion: "v1" })), cm("t"), false, "none"],
    ["renamed: delete the old one", record(cm("old")), cm("new"), false, "delete-old"],
    [
      "moved to another cluster: delete the old one",
      record(cm("t")),
      cm("t", { cluster: remote }),
      false,
      "delete-old",
    ],
    ["renamed with deletion disabled: keep it", record(cm("old")), cm("new"), true, "forget-old"],
  ];
  for (const [name, rec, desired, disable, expected] of rows) {
    it(name, () => assert.equal(decideTargetChange(rec, desired, disable), expected));
  }
});

describe("claims (two ResourceSyncs on one target)", () => {
  it("the one holding it in its record first wins, else the oldest, else by name", () => {
    assert.equal(
      claimWinner([
        { key: "ns/b", createdAt: "2026-01-01T00:00:00Z" },
        { key: "ns/a", createdAt: "2026-01-02T00:00:00Z", appliedAt: "2026-01-03T00:00:00Z" },
      ]),
      "ns/a",
    );
    assert.equal(
      claimWinner([
        { key: "ns/b", createdAt: "2026-01-01T00:00:00Z" },
        { key: "ns/a", createdAt: "2026-01-02T00:00:00Z" },
      ]),
      "ns/b",
    );
    assert.equal(
      claimWinner([
        { key: "ns/b", createdAt: "2026-01-01T00:00:00Z" },
        { key: "ns/a", createdAt: "2026-01-01T00:00:00Z" },
      ]),
      "ns/a",
    );
  });

  it("the index tells the later ResourceSync who holds its target, and forgets deleted ones", () => {
    const idx = new ClaimIndex();
    const rs = (name: string, created: string, status?: unknown) => ({
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "ResourceSync",
      metadata: { name, namespace: "ns", creationTimestamp: created },
      spec: {
        source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } },
        target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "t" } },
      },
      ...(status ? { status } : {}),
    });
    idx.update(rs("first", "2026-01-01T00:00:00Z", { appliedTarget: record(cm("t")) }));
    idx.update(rs("second", "2025-01-01T00:00:00Z"));
    assert.equal(
      idx.claimedBy("ns/second", cm("t"), { key: "ns/second", createdAt: "2025-01-01T00:00:00Z" }),
      "ns/first",
    );
    assert.equal(
      idx.claimedBy("ns/first", cm("t"), {
        key: "ns/first",
        createdAt: "2026-01-01T00:00:00Z",
        appliedAt: "2026-01-01T00:00:00Z",
      }),
      undefined,
    );
    idx.remove("ns/first");
    assert.equal(
      idx.claimedBy("ns/second", cm("t"), { key: "ns/second", createdAt: "2025-01-01T00:00:00Z" }),
      undefined,
    );
  });
});

describe("sync record", () => {
  it("round-trips through status and ignores malformed records", () => {
    const r = record(cm("t", { cluster: remote }));
    assert.deepEqual(readRecord({ appliedTarget: r }), r);
    assert.equal(readRecord({ appliedTarget: { kind: "ConfigMap" } }), undefined);
    assert.equal(readRecord({ appliedTarget: "x" }), undefined);
    assert.equal(readRecord(undefined), undefined);
  });

  it("identity ignores the version, not the group, cluster, namespace or name", () => {
    const dep = (v: string) => cm("d", { apiVersion: `apps/${v}`, kind: "Deployment" });
    assert.equal(identityKey(dep("v1")), identityKey(dep("v1beta1")));
    assert.notEqual(identityKey(cm("t")), identityKey(cm("t", { cluster: remote })));
    assert.notEqual(identityKey(cm("t")), identityKey(cm("t", { namespace: "other" })));
  });

  it("nextRecord keeps the record (and its time) while nothing changed, renews it for a new object", () => {
    const now = new Date("2026-02-02T02:02:02.500Z");
    const prev = record(cm("t"));
    assert.equal(nextRecord(prev, cm("t"), "uid-1", now), prev);
    assert.deepEqual(nextRecord(prev, cm("t"), "uid-2", now), {
      ...prev,
      uid: "uid-2",
      appliedAt: "2026-02-02T02:02:02Z",
    });
  });

  it("nextRecord records the field set of the last apply (kept when absent or equal), readRecord reads it", () => {
    const now = new Date("2026-02-02T02:02:02.500Z");
    const prev = { ...record(cm("t")), fieldSetHash: "s1" };
    assert.equal(nextRecord(prev, cm("t"), "uid-1", now, "s1"), prev, "same fields: the same record");
    assert.equal(nextRecord(prev, cm("t"), "uid-1", now), prev, "no apply said (CreateOnly): kept");
    assert.deepEqual(nextRecord(prev, cm("t"), "uid-1", now, "s2"), { ...prev, fieldSetHash: "s2" });
    assert.deepEqual(
      nextRecord(record(cm("t")), cm("t"), "uid-1", now, "s1"),
      prev,
      "an older record gets it",
    );
    assert.equal(nextRecord(undefined, cm("t"), "uid-1", now, "s1").fieldSetHash, "s1");
    assert.equal(readRecord({ appliedTarget: prev })?.fieldSetHash, "s1");
    assert.equal(readRecord({ appliedTarget: { ...prev, fieldSetHash: 7 } })?.fieldSetHash, undefined);
  });

  it("status: the record is kept through failures, written when new, removed with null", () => {
    const t = new Date("2026-01-01T00:00:00Z");
    const ok = nextStatus(undefined, 1, { ok: true, message: "m" }, t, record(cm("t")));
    assert.deepEqual(ok.appliedTarget, record(cm("t")));
    const failed = nextStatus(ok, 1, { ok: false, reason: "X", message: "m" }, t);
    assert.deepEqual(failed.appliedTarget, record(cm("t")));
    assert.equal(statusDiffers(ok, nextStatus(ok, 1, { ok: true, message: "m" }, t)), false);
    assert.equal(
      statusDiffers(ok, nextStatus(ok, 1, { ok: true, message: "m" }, t, record(cm("t"), "u2"))),
      true,
    );
    assert.equal(nextStatus(ok, 1, { ok: true, message: "m" }, t, null).appliedTarget, null);
  });
});

describe("echo suppression", () => {
  const res: ResourceInfo = {
    apiVersion: "v1",
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
  };
  const memo = { target: "7|/configmaps|ns|t", resourceVersion: "42", hash: "h" };
  const event = (over: {
    type?: "added" | "modified" | "deleted";
    rv?: string;
    name?: string;
    clientId?: number;
  }) => ({
    cluster: "local",
    clientId: over.clientId ?? 7,
    resource: res,
    type: over.type ?? "modified",
    object: { metadata: { name: over.name ?? "t", namespace: "ns", resourceVersion: over.rv ?? "42" } },
  });
  const rows: Array<[string, Parameters<typeof isEcho>[1], boolean]> = [
    ["the event of our own apply (MODIFIED)", event({}), true],
    ["the ADDED event of a target our apply created", event({ type: "added" }), true],
    ["any later change (a label removed, a JSON-patch remove)", event({ rv: "43" }), false],
    ["the target deleted", event({ type: "deleted" }), false],
    [
      "same resourceVersion, another object (e.g. this target is another's source in a chain)",
      event({ name: "u" }),
      false,
    ],
    ["same name through another client (a rotated kubeconfig)", event({ clientId: 8 }), false],
  ];
  for (const [name, e, expected] of rows) it(name, () => assert.equal(isEcho(memo, e), expected));
  it("no apply remembered: everything reconciles", () => assert.equal(isEcho(undefined, event({})), false));

  describe("the removal of a target this process deleted (AppliedMemos.deletedTarget)", () => {
    const withUid = (e: ReturnType<typeof event>, uid: string) => ({
      ...e,
      object: { metadata: { ...e.object.metadata, uid } },
    });
    const deleted = withUid(event({ type: "deleted" }), "u1");
    const memos = () => {
      const m = new AppliedMemos();
      m.set("ns/rs", memo);
      return m;
    };
    it("is an echo once the DELETE said the target is gone", () => {
      const m = memos();
      assert.equal(m.isEcho("ns/rs", deleted), false, "before the DELETE's answer");
      m.deletedTarget("ns/rs", memo.target, "u1");
      assert.equal(m.isEcho("ns/rs", deleted), true);
      assert.equal(m.has("ns/rs"), true);
    });
    const rows: Array<[string, ReturnType<typeof event>]> = [
      ["another object of that name (another uid)", withUid(event({ type: "deleted" }), "u2")],
      ["another object (another name)", withUid(event({ type: "deleted", name: "u" }), "u1")],
      ["through another client", withUid(event({ type: "deleted", clientId: 8 }), "u1")],
    ];
    for (const [name, e] of rows)
      it(`is not an echo: ${name}`, () => {
        const m = memos();
        m.deletedTarget("ns/rs", memo.target, "u1");
        assert.equal(m.isEcho("ns/rs", e), false);
      });
    it("is forgotten with the ResourceSync", () => {
      const m = memos();
      m.deletedTarget("ns/rs", memo.target, "u1");
      m.delete("ns/rs");
      assert.equal(m.isEcho("ns/rs", deleted), false);
      assert.equal(m.has("ns/rs"), false);
    });
  });
});

describe("liveOf and resourceVersion order", () => {
  it("reads ownership marks from the cached object", () => {
    assert.deepEqual(liveOf(undefined, "rs"), { exists: false });
    const l = liveOf(
      {
        metadata: {
          uid: "u",
          deletionTimestamp: "2026-01-01T00:00:00Z",
          ownerReferences: [{ apiVersion: "x", kind: "ResourceSync", name: "rs", uid: "rs" }],
          managedFields: [{ manager: "sinker.influxdata.io", operation: "Apply" }],
        },
      },
      "rs",
    );
    assert.deepEqual(l, { exists: true, uid: "u", deleting: true, writtenBySinker: true, ownedByThis: true });
    const other = liveOf(
      { metadata: { uid: "u", managedFields: [{ manager: "kubectl", operation: "Apply" }] } },
      "rs",
    );
    assert.equal(other.exists && other.writtenBySinker, false);
  });

  it("counts Sinker's create (an Update entry) as its write, and no other manager's or subresource's", () => {
    const written = (managedFields: Array<Record<string, string>>) => {
      const l = liveOf({ metadata: { uid: "u", managedFields } }, "rs");
      return l.exists && l.writtenBySinker;
    };
    const cases: Array<[string, Array<Record<string, string>>, boolean]> = [
      ["Sinker's apply", [{ manager: "sinker.influxdata.io", operation: "Apply" }], true],
      ["Sinker's create (CreateOnly)", [{ manager: "sinker.influxdata.io", operation: "Update" }], true],
      [
        "Sinker's field manager on a subresource only",
        [{ manager: "sinker.influxdata.io", operation: "Update", subresource: "status" }],
        false,
      ],
      ["the default manager of Sinker's user agent", [{ manager: "sinker", operation: "Update" }], false],
      ["another manager's create", [{ manager: "kubectl-create", operation: "Update" }], false],
      ["none", [], false],
    ];
    for (const [what, entries, want] of cases) assert.equal(written(entries), want, what);
  });

  it("compares resourceVersions as numbers, never guesses for opaque ones", () => {
    assert.equal(rvNewer("10", "9"), true);
    assert.equal(rvNewer("9", "10"), false);
    assert.equal(rvNewer("10", "10"), false);
    assert.equal(rvNewer("abc", "1"), false);
    assert.equal(rvNewer(undefined, "1"), false);
  });
});

describe("stripForCache", () => {
  it("keeps only the managers' names, operations and times of managedFields and drops the last-applied annotation", () => {
    const o = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "x",
        annotations: { keep: "1", "kubectl.kubernetes.io/last-applied-configuration": "{...}" },
        managedFields: [
          { manager: "sinker.influxdata.io", operation: "Apply", fieldsV1: { "f:data": {} }, time: "t" },
          { manager: "kubectl", operation: "Update", fieldsV1: { "f:data": {} } },
          { manager: "x", operation: "Apply", subresource: "status", fieldsV1: {} },
        ],
      },
      data: { k: "v" },
    };
    const slim = stripForCache(o);
    assert.deepEqual(slim.metadata, {
      name: "x",
      annotations: { keep: "1" },
      managedFields: [
        { manager: "sinker.influxdata.io", operation: "Apply", time: "t" },
        { manager: "kubectl", operation: "Update" },
      ],
    });
    assert.deepEqual(slim.data, { k: "v" });
    assert.equal(o.metadata.managedFields.length, 3, "the input is not changed");
    const plain = { metadata: { name: "y" } };
    assert.equal(stripForCache(plain), plain, "nothing to strip: the same object");
  });
});

describe("resourceSyncChangeMatters (which ResourceSync events reconcile)", () => {
  const base = {
    metadata: {
      name: "rs",
      generation: 1,
      annotations: { a: "1", b: "2" },
      finalizers: ["sinker.influxdata.io/target"],
    },
    status: { observedGeneration: 1 },
  };
  const next = (f: (o: typeof base & Record<string, unknown>) => void) => {
    const o = structuredClone(base) as typeof base & Record<string, unknown>;
    f(o);
    return o;
  };
  const rows: Array<[string, ReturnType<typeof next>, boolean]> = [
    ["a status write", next((o) => Object.assign(o, { status: { observedGeneration: 2 } })), false],
    [
      "the same annotations in another order",
      next((o) => Object.assign(o.metadata, { annotations: { b: "2", a: "1" } })),
      false,
    ],
    [
      "an annotation changed",
      next((o) => Object.assign(o.metadata, { annotations: { a: "1", b: "3" } })),
      true,
    ],
    [
      "an annotation added",
      next((o) => Object.assign(o.metadata, { annotations: { a: "1", b: "2", c: "" } })),
      true,
    ],
    ["an annotation removed", next((o) => Object.assign(o.metadata, { annotations: { a: "1" } })), true],
    ["annotations gone", next((o) => Object.assign(o.metadata, { annotations: undefined })), true],
    ["the spec changed (generation)", next((o) => Object.assign(o.metadata, { generation: 2 })), true],
    [
      "an owner reference added",
      next((o) => Object.assign(o.metadata, { ownerReferences: [{ uid: "u" }] })),
      true,
    ],
    ["Sinker's finalizer removed", next((o) => Object.assign(o.metadata, { finalizers: [] })), true],
    [
      "deletion started",
      next((o) => Object.assign(o.metadata, { deletionTimestamp: "2026-12-07T00:00:00Z" })),
      true,
    ],
  ];
  for (const [name, o, expected] of rows)
    it(name, () => assert.equal(resourceSyncChangeMatters(base, o), expected));
  it("absent and empty annotations are the same", () => {
    const none = next((o) => Object.assign(o.metadata, { annotations: undefined }));
    const empty = next((o) => Object.assign(o.metadata, { annotations: {} }));
    assert.equal(resourceSyncChangeMatters(none, empty), false);
  });
});
