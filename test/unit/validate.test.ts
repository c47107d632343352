import assert from "node:assert/strict";
import { test } from "node:test";
import {
  formatValidationErrors,
  type ValidationError,
  validateResourceSync,
} from "../../src/api/validate.ts";

function valid(): Record<string, unknown> {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "demo", namespace: "default" },
    spec: {
      source: {
        resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "remote-demo" },
        cluster: {
          namespace: "default",
          kubeConfig: { secretRef: { name: "remote-kubeconfig", key: "value", namespace: "other-ns" } },
        },
      },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "demo" } },
      mappings: [
        { fromFieldPath: "data.remote", toFieldPath: "data.remote" },
        { fromFieldPath: "spec" },
        { toFieldPath: "spec.all" },
        { fromFieldPath: "", toFieldPath: "spec" },
      ],
    },
    status: { conditions: [] },
  };
}

/** Applies `edit` to a fresh valid document. */
// biome-ignore lint/suspicious/noExplicitAny: edits reach anywhere into untyped JSON
function withEdit(edit: (doc: any) => void): unknown {
  const doc = valid();
  edit(doc);
  return doc;
}

test("valid ResourceSyncs pass and come back as the same object", () => {
  for (const doc of [
    valid(),
    withEdit((d) => delete d.spec.mappings),
    withEdit((d) => delete d.status),
    withEdit((d) => delete d.metadata.namespace),
    withEdit((d) => (d.spec.mappings = [])),
    withEdit((d) => (d.spec.source.cluster.namespace = null)), // nulls count as absent, as the API server prunes them
  ]) {
    const result = validateResourceSync(doc);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.equal(result.value, doc);
  }
});

const invalid: { name: string; doc: unknown; errors: ValidationError[] }[] = [
  { name: "not an object", doc: "hello", errors: [{ path: "", message: 'expected an object, got "hello"' }] },
  { name: "null", doc: null, errors: [{ path: "", message: "expected an object, got null" }] },
  {
    name: "wrong apiVersion and kind",
    doc: withEdit((d) => {
      d.apiVersion = "v1";
      d.kind = "ConfigMap";
    }),
    errors: [
      { path: "apiVersion", message: 'must be sinker.influxdata.io/v1alpha1, got "v1"' },
      { path: "kind", message: 'must be ResourceSync, got "ConfigMap"' },
    ],
  },
  {
    name: "no name",
    doc: withEdit((d) => delete d.metadata.name),
    errors: [{ path: "metadata.name", message: "required" }],
  },
  { name: "no spec", doc: withEdit((d) => delete d.spec), errors: [{ path: "spec", message: "required" }] },
  {
    name: "mapping with neither field (and one with only nulls)",
    doc: withEdit((d) => {
      d.spec.mappings[1] = {};
      d.spec.mappings[2] = { fromFieldPath: null };
    }),
    errors: [
      { path: "spec.mappings[1]", message: "a mapping must set fromFieldPath, toFieldPath or both" },
      { path: "spec.mappings[2]", message: "a mapping must set fromFieldPath, toFieldPath or both" },
    ],
  },
  {
    name: "empty and missing resourceRef fields",
    doc: withEdit((d) => {
      d.spec.source.resourceRef.kind = "";
      delete d.spec.target.resourceRef.name;
      d.spec.target.resourceRef.apiVersion = 1;
    }),
    errors: [
      { path: "spec.source.resourceRef.kind", message: "must not be empty" },
      { path: "spec.target.resourceRef.name", message: "required" },
      { path: "spec.target.resourceRef.apiVersion", message: "must be a string, got number 1" },
    ],
  },
  {
    name: "bad toFieldPath, unknown field, wrong types",
    doc: withEdit((d) => {
      d.spec.mappings[0].toFieldPath = "a..b";
      d.spec.mappings[1].fromFieldPth = "x";
      d.spec.mappings[3] = "data.foo";
      d.spec.source.cluster.kubeConfig.secretRef.key = "";
    }),
    errors: [
      { path: "spec.source.cluster.kubeConfig.secretRef.key", message: "must not be empty" },
      {
        path: "spec.mappings[0].toFieldPath",
        message:
          'must be a dotted path of non-empty field names, e.g. "data.foo" (a dot in a name is written "\\.")',
      },
      { path: "spec.mappings[1].fromFieldPth", message: "unknown field" },
      { path: "spec.mappings[3]", message: 'must be an object, got "data.foo"' },
    ],
  },
  {
    name: "cluster without kubeConfig, mappings not a list",
    doc: withEdit((d) => {
      delete d.spec.source.cluster.kubeConfig;
      d.spec.mappings = { fromFieldPath: "x" };
    }),
    errors: [
      { path: "spec.source.cluster.kubeConfig", message: "required" },
      { path: "spec.mappings", message: "must be an array, got an object" },
    ],
  },
  {
    name: "too long fromFieldPath",
    doc: withEdit((d) => (d.spec.mappings = [{ fromFieldPath: "a".repeat(1025) }])),
    errors: [{ path: "spec.mappings[0].fromFieldPath", message: "longer than 1024 characters" }],
  },
];

for (const c of invalid) {
  test(`invalid: ${c.name}`, () => {
    const result = validateResourceSync(c.doc);
    assert.ok(!result.ok);
    assert.deepEqual(result.errors, c.errors);
  });
}

test("never throws, even on hostile documents", () => {
  const hostile = {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "x" },
    get spec(): unknown {
      throw new Error("boom");
    },
  };
  const result = validateResourceSync(hostile);
  assert.ok(!result.ok);
  assert.match(formatValidationErrors(result.errors), /cannot validate: boom/);
  for (const doc of [undefined, 1, [], true, { spec: [] }, { spec: { source: 1, target: [] } }]) {
    assert.equal(validateResourceSync(doc).ok, false);
  }
});

test("formatValidationErrors: one line per error", () => {
  assert.equal(
    formatValidationErrors([
      { path: "", message: "a" },
      { path: "spec", message: "required" },
    ]),
    "a\nspec: required",
  );
});

test("invalid: too many mappings (maxItems)", () => {
  const result = validateResourceSync(
    withEdit((d) => (d.spec.mappings = Array.from({ length: 257 }, () => ({ toFieldPath: "spec" })))),
  );
  assert.ok(!result.ok);
  assert.deepEqual(result.errors, [{ path: "spec.mappings", message: "257 items, at most 256 are allowed" }]);
  const ok = validateResourceSync(
    withEdit((d) => (d.spec.mappings = Array.from({ length: 256 }, () => ({ toFieldPath: "spec" })))),
  );
  assert.ok(ok.ok);
});

// Names become URL path segments (docs/security.md); "." and ".." would address the collection or the namespace.
// biome-ignore lint/suspicious/noExplicitAny: edits reach anywhere into untyped JSON
const names: { field: string; set: (d: any, v: string) => void; good: string[]; bad: string[] }[] = [
  {
    field: "spec.target.resourceRef.name",
    set: (d, v) => (d.spec.target.resourceRef.name = v),
    good: ["demo", "a.b", "...", "..a", ".a", "system:aggregate-to-admin", "A_b", "x".repeat(253)],
    bad: [".", "..", "a/b", "a%2Fb", "../secrets", "x".repeat(254)],
  },
  {
    field: "spec.source.cluster.namespace",
    set: (d, v) => (d.spec.source.cluster.namespace = v),
    good: ["default", "team-a", "a1", "x".repeat(63)],
    bad: [".", "..", "Team", "-a", "a-", "a.b", "a/b", "x".repeat(64)],
  },
  {
    field: "spec.source.cluster.kubeConfig.secretRef.namespace",
    set: (d, v) => (d.spec.source.cluster.kubeConfig.secretRef.namespace = v),
    good: ["kube-system", "other-ns"],
    bad: [".", "..", "kube_system", "a/b"],
  },
  {
    field: "spec.source.cluster.kubeConfig.secretRef.name",
    set: (d, v) => (d.spec.source.cluster.kubeConfig.secretRef.name = v),
    good: ["remote", "remote.kubeconfig", "a-b.c-d"],
    bad: [".", "..", "Remote", "a..b", "a/b", ".a"],
  },
  {
    field: "spec.source.cluster.kubeConfig.secretRef.key",
    set: (d, v) => (d.spec.source.cluster.kubeConfig.secretRef.key = v),
    good: ["value", "config.yaml", ".kube", "..a", "A_B-c"],
    bad: [".", "..", "a/b", "a b", "../x"],
  },
  {
    field: "spec.source.resourceRef.apiVersion",
    set: (d, v) => (d.spec.source.resourceRef.apiVersion = v),
    good: ["v1", "apps/v1", "sinker.influxdata.io/v1alpha1"],
    bad: ["..", "../v1", "apps/../v1", "a/b/c", "V1", "apps/"],
  },
  {
    field: "spec.source.resourceRef.kind",
    set: (d, v) => (d.spec.source.resourceRef.kind = v),
    good: ["ConfigMap", "SinkerContainer", "v1Thing"],
    bad: [".", "..", "Config Map", "a/b", "1Kind"],
  },
];

for (const n of names) {
  test(`names: ${n.field}`, () => {
    for (const v of n.good) {
      const result = validateResourceSync(withEdit((d) => n.set(d, v)));
      assert.ok(
        result.ok,
        `${JSON.stringify(v)} should be accepted: ${JSON.stringify(!result.ok && result.errors)}`,
      );
    }
    for (const v of n.bad) {
      const result = validateResourceSync(withEdit((d) => n.set(d, v)));
      assert.ok(!result.ok, `${JSON.stringify(v)} should be refused`);
      assert.deepEqual(
        result.errors.map((e) => e.path),
        [n.field],
        JSON.stringify(v),
      );
    }
  });
}
