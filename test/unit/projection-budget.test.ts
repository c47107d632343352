/**
 * Bounded projections (docs/spec/resourcesync.md#limits-and-errors-of-mappings): one work budget for all mappings
 * of a projection, at most MAX_MAPPINGS mappings, bounded source depth and size. Over a bound, the projection fails
 * with a clear reason, quickly.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_MAPPINGS } from "../../src/api/schema.ts";
import type { Mapping, ResourceSync } from "../../src/api/types.ts";
import { SinkerError } from "../../src/errors.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import { MAX_PROJECTION_WORK, WorkBudget } from "../../src/projection/budget.ts";
import { project } from "../../src/projection/index.ts";
import { checkSourceBounds, MAX_SOURCE_DEPTH, MAX_SOURCE_NODES } from "../../src/projection/source-bounds.ts";

function rs(mappings: Mapping[]): ResourceSync {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "demo", namespace: "default", uid: "u" },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" } },
      mappings,
    },
  };
}

function wideSource(keys: number): KubeObject {
  const data: Record<string, string> = {};
  for (let i = 0; i < keys; i++) data[`k${i}`] = "v";
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "src" }, data };
}

function deep(levels: number): unknown {
  let v: unknown = "leaf";
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
}

const target = { namespace: "default", ownerReference: false };

// The bound is the budget's error, not a clock: a timed assertion fails on a loaded machine.
function fails(f: () => unknown, reason: string, message: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof SinkerError, String(err));
    assert.equal(err.reason, reason, err.message);
    assert.match(err.message, message);
    return true;
  });
}

test("one budget spans all mappings: each mapping alone is fine, all together are not", () => {
  // Each mapping walks the whole (wide) source once: ~100k visits, far below the per-evaluation bound.
  const source = wideSource(50_000);
  const one: Mapping = { fromFieldPath: "$.data[?@ == 'nope']", toFieldPath: "data.x" };
  assert.doesNotThrow(() => project({ resourceSync: rs([one]), source, target }));
  const many = Array.from({ length: 100 }, () => one);
  fails(
    () => project({ resourceSync: rs(many), source, target }),
    "ProjectionBudgetExceeded",
    /^spec\.mappings\[\d+\]: .*all mappings together visits or copies more than 2000000 nodes/,
  );
});

test("copies count: copying a large value many times exhausts the budget", () => {
  const source = wideSource(100_000);
  const many = Array.from({ length: 30 }, (_, i) => ({ fromFieldPath: "data", toFieldPath: `data${i}` }));
  fails(() => project({ resourceSync: rs(many), source, target }), "ProjectionBudgetExceeded", /copies/);
});

test("regular expressions count across mappings too", () => {
  const source = { ...wideSource(1), data: { v: "a".repeat(50_000) } } as KubeObject;
  const one: Mapping = { fromFieldPath: '$.data[?match(@, "[a-z]{100}b")]', toFieldPath: "data.x" };
  assert.doesNotThrow(() => project({ resourceSync: rs([one]), source, target }));
  fails(
    () => project({ resourceSync: rs(Array.from({ length: 50 }, () => one)), source, target }),
    "ProjectionBudgetExceeded",
    /regular expressions/,
  );
});

test("at most MAX_MAPPINGS mappings", () => {
  const source = wideSource(1);
  const m: Mapping = { fromFieldPath: "data.k0", toFieldPath: "data.k0" };
  assert.doesNotThrow(() =>
    project({ resourceSync: rs(Array.from({ length: MAX_MAPPINGS }, () => m)), source, target }),
  );
  fails(
    () => project({ resourceSync: rs(Array.from({ length: MAX_MAPPINGS + 1 }, () => m)), source, target }),
    "InvalidSpec",
    /257 mappings, at most 256/,
  );
});

test("source bounds: depth and number of values", () => {
  const cases: [string, unknown, string | null][] = [
    ["shallow", { a: 1 }, null],
    ["at the depth bound", deep(MAX_SOURCE_DEPTH - 1), null],
    ["too deep", deep(MAX_SOURCE_DEPTH + 1), `nested more than ${MAX_SOURCE_DEPTH} levels`],
    ["too deep in arrays", JSON.parse(`${"[".repeat(300)}${"]".repeat(300)}`), "nested more than"],
    ["too many values", new Array(MAX_SOURCE_NODES).fill(0), `more than ${MAX_SOURCE_NODES} values`],
    ["too much text", Array.from({ length: 40 }, () => "x".repeat(1024 * 1024)), "characters of text"],
  ];
  for (const [name, value, message] of cases) {
    if (message === null) assert.doesNotThrow(() => checkSourceBounds(value), name);
    else fails(() => checkSourceBounds(value), "SourceTooLarge", new RegExp(message));
  }
  // and the projection checks it before any mapping runs
  const source = { ...wideSource(1), spec: deep(1000) } as KubeObject;
  fails(() => project({ resourceSync: rs([]), source, target }), "SourceTooLarge", /nested more than/);
});

test("WorkBudget: spends up to its bound, then throws", () => {
  const b = new WorkBudget(10, 100);
  b.spend(10);
  b.spendRegex(100);
  assert.deepEqual(b.spent, { work: 10, regexWork: 100 });
  assert.throws(() => b.spend(1), /ProjectionBudgetExceeded|too much work/);
  assert.throws(() => b.spendRegex(1), /regular expressions/);
  assert.equal(new WorkBudget().maxWork, MAX_PROJECTION_WORK);
});
