/**
 * The write policy (CreateOnly) and replacement on an immutable change: the pure decisions as tables, the
 * reading of the API server's immutability refusal, the schema rule and the status field.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateResourceSync } from "../../src/api/validate.ts";
import type { LiveTarget } from "../../src/controller/decisions.ts";
import { nextStatus, statusDiffers } from "../../src/controller/status.ts";
import {
  decideReplace,
  decideWriteAction,
  MAX_REPLACE_ATTEMPTS,
  type ReplaceFacts,
  readReplacement,
} from "../../src/controller/write-policy.ts";
import { SinkerError } from "../../src/errors.ts";
import { apiError, immutableFieldsOf } from "../../src/kube/api-errors.ts";

const absent: LiveTarget = { exists: false };
const present = (more: Partial<Extract<LiveTarget, { exists: true }>> = {}): LiveTarget => ({
  exists: true,
  uid: "uid-1",
  deleting: false,
  writtenBySinker: true,
  ownedByThis: false,
  ...more,
});

describe("decideWriteAction", () => {
  const rows: Array<[string, "Apply" | "CreateOnly", LiveTarget, string]> = [
    ["Apply, absent: apply (creates)", "Apply", absent, "apply"],
    ["Apply, present: apply (updates, repairs drift)", "Apply", present(), "apply"],
    ["CreateOnly, absent: create", "CreateOnly", absent, "create"],
    ["CreateOnly, present: leave it", "CreateOnly", present(), "leave"],
    [
      "CreateOnly, being deleted: leave it (its deletion event brings it back)",
      "CreateOnly",
      present({ deleting: true }),
      "leave",
    ],
  ];
  for (const [name, policy, live, want] of rows) {
    it(name, () => assert.equal(decideWriteAction(policy, live), want));
  }
});

/** The 422 the API server answers a Secret type change with (shape checked against kube-apiserver). */
const secretTypeStatus = {
  kind: "Status",
  apiVersion: "v1",
  status: "Failure",
  message: 'Secret "dst" is invalid: type: Invalid value: "kubernetes.io/tls": field is immutable',
  reason: "Invalid",
  details: {
    name: "dst",
    kind: "Secret",
    causes: [
      {
        reason: "FieldValueInvalid",
        message: 'Invalid value: "kubernetes.io/tls": field is immutable',
        field: "type",
      },
    ],
  },
  code: 422,
};
const immutableConfigMapStatus = {
  kind: "Status",
  message: 'ConfigMap "dst" is invalid: data: Forbidden: field is immutable when `immutable` is set',
  reason: "Invalid",
  details: {
    causes: [
      {
        reason: "FieldValueForbidden",
        message: "Forbidden: field is immutable when `immutable` is set",
        field: "data",
      },
    ],
  },
  code: 422,
};

describe("immutableFieldsOf / apiError", () => {
  it("names the immutable fields of a 422's causes", () => {
    assert.deepEqual(immutableFieldsOf(secretTypeStatus), ["type"]);
    assert.deepEqual(immutableFieldsOf(immutableConfigMapStatus), ["data"]);
    const err = apiError("local", 422, JSON.stringify(secretTypeStatus), "apply secrets");
    assert.equal(err.reason, "Invalid");
    assert.deepEqual(err.immutableFields, ["type"]);
    assert.match(err.message, /type: .*field is immutable/);
    assert.doesNotMatch(err.message, /kubernetes\.io\/tls/, "the refused value is not echoed");
  });
  it("other refusals are not immutability refusals", () => {
    const other = {
      kind: "Status",
      message: 'ConfigMap "x" is invalid: metadata.labels: Invalid value',
      details: { causes: [{ field: "metadata.labels", message: "Invalid value: a valid label" }] },
    };
    assert.equal(immutableFieldsOf(other), undefined);
    assert.equal(apiError("local", 422, JSON.stringify(other), "apply").immutableFields, undefined);
    assert.equal(
      apiError("local", 409, JSON.stringify(secretTypeStatus), "apply").immutableFields,
      undefined,
    );
    assert.equal(immutableFieldsOf("not a status"), undefined);
  });
  it("a message without causes still counts, without fields", () => {
    assert.deepEqual(immutableFieldsOf({ kind: "Status", message: "spec: field is immutable" }), []);
  });
  it("bounds and filters what a hostile server sends", () => {
    const causes = Array.from({ length: 1000 }, (_, i) => ({
      field: `f${i}`,
      message: "field is immutable",
    }));
    causes.unshift({ field: 'bad"field <script>', message: "field is immutable" });
    const fields = immutableFieldsOf({ kind: "Status", details: { causes } }) ?? [];
    assert.equal(fields.length, 8);
    assert.ok(fields.every((f) => /^f\d+$/.test(f)));
  });
});

describe("decideReplace", () => {
  const now = new Date("2026-01-01T00:00:00.500Z");
  const refusal = new SinkerError(
    "Invalid",
    'cluster "local": Secret "dst" is invalid: type: field is immutable',
    {
      status: 422,
      immutableFields: ["type"],
    },
  );
  const base: ReplaceFacts = {
    policy: "Replace",
    error: refusal,
    live: present(),
    ours: true,
    adopt: false,
    previous: undefined,
    generation: 2,
    sourceResourceVersion: "100",
  };
  const decide = (more: Partial<ReplaceFacts>) => decideReplace({ ...base, ...more }, now);

  it("replaces the object Sinker wrote, counting the attempt", () => {
    assert.deepEqual(decide({}), {
      kind: "replace",
      uid: "uid-1",
      fields: ["type"],
      record: {
        generation: 2,
        sourceResourceVersion: "100",
        attempts: 1,
        lastAttemptTime: "2026-01-01T00:00:00Z",
      },
    });
  });
  it("counts on from the attempts recorded for the same source version and generation", () => {
    const d = decide({ previous: { generation: 2, sourceResourceVersion: "100", attempts: 2 } });
    assert.equal(d.kind === "replace" && d.record.attempts, 3);
  });
  it("gives up after MAX_REPLACE_ATTEMPTS for one source version and generation", () => {
    const d = decide({
      previous: { generation: 2, sourceResourceVersion: "100", attempts: MAX_REPLACE_ATTEMPTS },
    });
    assert.equal(d.kind, "fail");
    assert.equal(d.kind === "fail" && d.error.reason, "ReplaceLimitReached");
    assert.match(d.kind === "fail" ? d.error.message : "", /replaced 3 times .*immutable field type/);
  });
  it("starts a new count for a new source version or a new generation", () => {
    const exhausted = { generation: 2, sourceResourceVersion: "100", attempts: MAX_REPLACE_ATTEMPTS };
    for (const more of [{ sourceResourceVersion: "101" }, { generation: 3 }]) {
      const d = decide({ previous: exhausted, ...more });
      assert.equal(d.kind === "replace" && d.record.attempts, 1);
    }
  });
  it("without the opt-in: the refusal, naming the field, with a hint", () => {
    const d = decide({ policy: "Fail" });
    assert.equal(d.kind, "fail");
    if (d.kind !== "fail") return;
    assert.equal(d.error.reason, "Invalid");
    assert.match(d.error.message, /type: field is immutable/);
    assert.match(d.error.message, /onImmutableChange: Replace/);
  });
  it("never deletes an object Sinker did not write (adopted only)", () => {
    const d = decide({ ours: false });
    assert.equal(d.kind === "fail" && d.error.reason, "Invalid");
    assert.match(d.kind === "fail" ? d.error.message : "", /not replaced/);
  });
  it("never deletes a target of a ResourceSync with adopt-target, even once Sinker has applied it", () => {
    const d = decide({ ours: true, adopt: true });
    assert.equal(d.kind === "fail" && d.error.reason, "Invalid");
    assert.match(d.kind === "fail" ? d.error.message : "", /not replaced: .*adopt-target/);
  });
  it("a target gone or going since the apply is not deleted again", () => {
    for (const live of [absent, present({ deleting: true })]) {
      assert.equal(decide({ live }).kind, "fail");
    }
  });
  it("any other refusal is reported as it is", () => {
    const other = new SinkerError("Forbidden", "no");
    assert.deepEqual(decide({ error: other }), { kind: "fail", error: other });
  });
});

describe("readReplacement", () => {
  it("reads status.replacement, ignoring a malformed one", () => {
    assert.deepEqual(
      readReplacement({ replacement: { attempts: 2, generation: 1, sourceResourceVersion: "9" } }),
      {
        attempts: 2,
        generation: 1,
        sourceResourceVersion: "9",
      },
    );
    for (const bad of [
      undefined,
      {},
      { replacement: "x" },
      { replacement: { attempts: -1 } },
      { replacement: { attempts: 1.5 } },
    ]) {
      assert.equal(readReplacement(bad), undefined);
    }
  });
});

describe("schema: writePolicy and onImmutableChange", () => {
  const rs = (spec: Record<string, unknown>) => ({
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "x", namespace: "ns" },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "a" } },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "b" } },
      ...spec,
    },
  });
  it("accepts the documented values", () => {
    for (const spec of [
      {},
      { writePolicy: "Apply" },
      { writePolicy: "CreateOnly" },
      { onImmutableChange: "Replace" },
      { writePolicy: "Apply", onImmutableChange: "Replace" },
      { writePolicy: "CreateOnly", onImmutableChange: "Fail" },
    ]) {
      assert.equal(validateResourceSync(rs(spec)).ok, true, JSON.stringify(spec));
    }
  });
  it("refuses other values and CreateOnly with Replace", () => {
    const errors = (spec: Record<string, unknown>) => {
      const r = validateResourceSync(rs(spec));
      return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
    };
    assert.deepEqual(errors({ writePolicy: "IfNotExists" }), [
      "spec.writePolicy: must be one of Apply, CreateOnly",
    ]);
    assert.deepEqual(errors({ onImmutableChange: "Recreate" }), [
      "spec.onImmutableChange: must be one of Fail, Replace",
    ]);
    assert.deepEqual(errors({ writePolicy: "CreateOnly", onImmutableChange: "Replace" }), [
      "spec: onImmutableChange: Replace needs writePolicy Apply (a CreateOnly target is never updated)",
    ]);
  });
});

describe("status.writePolicy", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  it("says which policy the last success acted under, and is kept across a failure", () => {
    const created = nextStatus(undefined, 1, { ok: true, message: "m", writePolicy: "CreateOnly" }, now);
    assert.equal(created.writePolicy, "CreateOnly");
    const failed = nextStatus(created, 1, { ok: false, reason: "SourceNotFound", message: "x" }, now);
    assert.equal(failed.writePolicy, "CreateOnly");
    const applied = nextStatus(failed, 2, { ok: true, message: "m", writePolicy: "Apply" }, now);
    assert.equal(applied.writePolicy, "Apply");
    assert.ok(
      statusDiffers({ ...applied, writePolicy: "CreateOnly" }, applied),
      "a policy change is written",
    );
  });
});
