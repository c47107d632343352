import assert from "node:assert/strict";
import { test } from "node:test";
import type { Mapping, ResourceSync } from "../../src/api/types.ts";
import { type ErrorReason, SinkerError } from "../../src/errors.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import { deepCopy, type ProjectionTarget, project } from "../../src/projection/index.ts";

const UID = "11111111-2222-4333-8444-555555555555";
const OWNER = {
  apiVersion: "sinker.influxdata.io/v1alpha1",
  kind: "ResourceSync",
  name: "demo",
  uid: UID,
  controller: false,
  blockOwnerDeletion: true,
};
const LOCAL: ProjectionTarget = { namespace: "default", ownerReference: true };
/** The applied ConfigMap `demo` in `remote-ns` (the target identity every mapping starts from), plus `fields`. */
function remoteTarget(fields: Record<string, unknown>) {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "demo", namespace: "remote-ns" },
    ...fields,
  };
}

const REMOTE: ProjectionTarget = { namespace: "remote-ns", ownerReference: false };
const CLUSTER: ProjectionTarget = { namespace: undefined, ownerReference: false };

function rs(
  mappings?: Mapping[],
  target = { apiVersion: "v1", kind: "ConfigMap", name: "demo" },
): ResourceSync {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "demo", namespace: "default", uid: UID },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "remote-demo" } },
      target: { resourceRef: target },
      ...(mappings === undefined ? {} : { mappings }),
    },
  };
}

function configMap(): KubeObject {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "remote-demo",
      namespace: "src-ns",
      uid: "source-uid",
      resourceVersion: "42",
      creationTimestamp: "2024-01-01T00:00:00Z",
      managedFields: [{ manager: "kubectl", operation: "Apply" }],
      ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: "p", uid: "pod-uid" }],
      labels: { app: "demo", team: "payments" },
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        note: "hello",
      },
    },
    data: { remote: "r", foo: "f", nested: "n", "dotted.key": "d" },
    binaryData: { bin: "AAEC" },
    list: [{ a: 1 }, { a: 2 }],
  };
}

interface Case {
  name: string;
  resourceSync: ResourceSync;
  source?: KubeObject;
  target?: ProjectionTarget;
  want: KubeObject;
}

const cases: Case[] = [
  {
    name: "clone: top-level fields, labels and annotations without last-applied, owner reference",
    resourceSync: rs(),
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "demo",
        namespace: "default",
        labels: { app: "demo", team: "payments" },
        annotations: { note: "hello" },
        ownerReferences: [OWNER],
      },
      data: { remote: "r", foo: "f", nested: "n", "dotted.key": "d" },
      binaryData: { bin: "AAEC" },
      list: [{ a: 1 }, { a: 2 }],
    },
  },
  {
    name: "clone: empty mappings list is clone mode too",
    resourceSync: rs([]),
    source: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { a: "1" } },
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "demo", namespace: "default", ownerReferences: [OWNER] },
      data: { a: "1" },
    },
  },
  {
    name: "clone: only annotation is last-applied → no annotations at all",
    resourceSync: rs(),
    source: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x", annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } },
    },
    target: REMOTE,
    want: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "demo", namespace: "remote-ns" } },
  },
  {
    name: "clone into a remote target: no owner reference",
    resourceSync: rs(),
    source: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { a: "1" } },
    target: REMOTE,
    want: remoteTarget({
      data: { a: "1" },
    }),
  },
  {
    name: "clone into a cluster-scoped target: no namespace, no owner reference even when asked",
    resourceSync: rs(undefined, { apiVersion: "v1", kind: "Namespace", name: "copy" }),
    source: { apiVersion: "v1", kind: "Namespace", metadata: { name: "orig", labels: { a: "b" } }, spec: {} },
    target: { namespace: undefined, ownerReference: true },
    want: { apiVersion: "v1", kind: "Namespace", metadata: { name: "copy", labels: { a: "b" } }, spec: {} },
  },
  {
    name: "mappings: applied in order onto an empty object, renaming keys",
    resourceSync: rs([
      { fromFieldPath: "data.remote", toFieldPath: "data.remote" },
      { fromFieldPath: "data.foo", toFieldPath: "data.bar" },
    ]),
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "demo", namespace: "default", ownerReferences: [OWNER] },
      data: { remote: "r", bar: "f" },
    },
  },
  {
    name: "mappings: a later mapping overwrites an earlier one",
    resourceSync: rs([
      { fromFieldPath: "data.remote", toFieldPath: "data.x" },
      { fromFieldPath: "data.foo", toFieldPath: "data.x" },
    ]),
    target: REMOTE,
    want: remoteTarget({
      data: { x: "f" },
    }),
  },
  {
    name: "mappings: absolute path taken as is, bracket notation for dotted keys",
    resourceSync: rs([{ fromFieldPath: "$.data['dotted.key']", toFieldPath: "data.plain" }]),
    target: REMOTE,
    want: remoteTarget({
      data: { plain: "d" },
    }),
  },
  {
    name: "mappings: filter selecting exactly one node",
    resourceSync: rs([{ fromFieldPath: "list[?@.a == 2]", toFieldPath: "spec.chosen" }]),
    target: CLUSTER,
    want: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "demo" }, spec: { chosen: { a: 2 } } },
  },
  {
    name: "mappings: selecting nothing leaves the toFieldPath out",
    resourceSync: rs([
      { fromFieldPath: "data.missing", toFieldPath: "data.missing" },
      { fromFieldPath: "data.foo", toFieldPath: "data.foo" },
      { fromFieldPath: "list[?@.a == 3]", toFieldPath: "spec.none" },
    ]),
    target: REMOTE,
    want: remoteTarget({
      data: { foo: "f" },
    }),
  },
  {
    name: "mappings: empty fromFieldPath and omitted fromFieldPath select the whole source",
    resourceSync: rs([{ fromFieldPath: "", toFieldPath: "spec.a" }, { toFieldPath: "spec.b" }], {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      name: "box",
    }),
    source: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { k: "v" } },
    target: REMOTE,
    want: {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      metadata: { name: "box", namespace: "remote-ns" },
      spec: {
        a: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { k: "v" } },
        b: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data: { k: "v" } },
      },
    },
  },
  {
    name: "mappings: deep toFieldPath creates the objects on the way",
    resourceSync: rs([{ fromFieldPath: "data.nested", toFieldPath: "spec.config.inner" }]),
    target: REMOTE,
    want: remoteTarget({
      spec: { config: { inner: "n" } },
    }),
  },
  {
    name: "metadata targets: labels map and one annotation",
    resourceSync: rs([
      { fromFieldPath: "metadata.labels", toFieldPath: "metadata.labels" },
      { fromFieldPath: "metadata.labels.team", toFieldPath: "metadata.annotations.team" },
    ]),
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "demo",
        namespace: "default",
        labels: { app: "demo", team: "payments" },
        annotations: { team: "payments" },
        ownerReferences: [OWNER],
      },
    },
  },
  {
    name: "metadata targets: a whole metadata mapping keeps the target's identity and drops server fields",
    resourceSync: rs([{ fromFieldPath: "metadata", toFieldPath: "metadata" }]),
    target: REMOTE,
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "demo",
        namespace: "remote-ns",
        labels: { app: "demo", team: "payments" },
        annotations: { note: "hello" },
      },
    },
  },
  {
    name: "metadata targets: name, namespace, apiVersion and kind written by mappings are overridden",
    resourceSync: rs([
      { fromFieldPath: "data.foo", toFieldPath: "metadata.name" },
      { fromFieldPath: "data.foo", toFieldPath: "metadata.namespace" },
      { fromFieldPath: "data.foo", toFieldPath: "apiVersion" },
      { fromFieldPath: "data.foo", toFieldPath: "kind" },
    ]),
    target: CLUSTER,
    want: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "demo" } },
  },
  {
    name: "from-only: the inner object becomes the target (fields, labels, annotations)",
    resourceSync: rs([{ fromFieldPath: "spec" }]),
    source: {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      metadata: { name: "box" },
      spec: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
          name: "orig",
          namespace: "elsewhere",
          uid: "x",
          labels: { l: "1" },
          annotations: { a: "2", "kubectl.kubernetes.io/last-applied-configuration": "{}" },
        },
        data: { k: "v" },
      },
    },
    want: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "demo",
        namespace: "default",
        labels: { l: "1" },
        annotations: { a: "2" },
        ownerReferences: [OWNER],
      },
      data: { k: "v" },
    },
  },
  {
    name: "from-only selecting nothing changes nothing; later mappings still apply",
    resourceSync: rs([
      { fromFieldPath: "spec.absent" },
      { fromFieldPath: "data.foo", toFieldPath: "data.foo" },
    ]),
    target: REMOTE,
    want: remoteTarget({
      data: { foo: "f" },
    }),
  },
];

for (const c of cases) {
  test(`project: ${c.name}`, () => {
    const source = c.source ?? configMap();
    const before = structuredClone(source);
    const got = project({ resourceSync: c.resourceSync, source, target: c.target ?? LOCAL });
    assert.deepEqual(got, c.want);
    assert.deepEqual(source, before, "the source must not be mutated");
  });
}

interface ErrorCase {
  name: string;
  mappings: Mapping[];
  source?: KubeObject;
  reason: ErrorReason;
  message: RegExp;
  target?: ProjectionTarget;
  resourceSync?: ResourceSync;
}

const errorCases: ErrorCase[] = [
  {
    name: "a mapping with neither field",
    mappings: [{ fromFieldPath: "data.foo", toFieldPath: "data.foo" }, {}],
    reason: "InvalidMapping",
    message: /^spec\.mappings\[1\]: a mapping must set fromFieldPath, toFieldPath or both$/,
  },
  {
    name: "invalid JSONPath",
    mappings: [{ fromFieldPath: "data[", toFieldPath: "data.x" }],
    reason: "InvalidJSONPath",
    message: /invalid JSONPath "data\["/,
  },
  {
    name: "several nodes selected",
    mappings: [{ fromFieldPath: "data.*", toFieldPath: "data.x" }],
    reason: "AmbiguousJSONPath",
    message: /JSONPath "data\.\*" selects more than one node/,
  },
  {
    name: "from-only on a value that is not a Kubernetes object",
    mappings: [{ fromFieldPath: "data" }],
    reason: "NotAKubernetesObject",
    message: /^spec\.mappings\[0\]: expected a Kubernetes object at data\b/,
  },
  {
    name: "from-only on a string",
    mappings: [{ fromFieldPath: "data.foo" }],
    reason: "NotAKubernetesObject",
    message: /^spec\.mappings\[0\]: expected a Kubernetes object at data\.foo \(.*\), found a string$/,
  },
  {
    name: "from-only on an object of another kind",
    mappings: [{ fromFieldPath: "spec" }],
    source: {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      metadata: { name: "box" },
      spec: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" }, data: {} },
    },
    reason: "KindMismatch",
    message: /the object at spec is a v1 Secret, but the target is a v1 ConfigMap/,
  },
  {
    name: "a non-object in the way of toFieldPath",
    mappings: [
      { fromFieldPath: "data.foo", toFieldPath: "data.foo" },
      { fromFieldPath: "data.foo", toFieldPath: "data.foo.deeper" },
    ],
    reason: "InvalidFieldPath",
    message: /toFieldPath "data\.foo\.deeper": data\.foo is a string, not an object/,
  },
  {
    name: "metadata replaced by a non-object",
    mappings: [{ fromFieldPath: "data.foo", toFieldPath: "metadata" }],
    reason: "InvalidFieldPath",
    message: /metadata of the target must be an object/,
  },
  {
    name: "owner reference wanted but the ResourceSync has no uid",
    mappings: [{ fromFieldPath: "data.foo", toFieldPath: "data.foo" }],
    resourceSync: {
      ...rs([{ fromFieldPath: "data.foo", toFieldPath: "data.foo" }]),
      metadata: { name: "demo" },
    },
    reason: "InvalidSpec",
    message: /has no metadata\.uid/,
  },
];

for (const c of errorCases) {
  test(`project error: ${c.name} → ${c.reason}`, () => {
    assert.throws(
      () =>
        project({
          resourceSync: c.resourceSync ?? rs(c.mappings),
          source: c.source ?? configMap(),
          target: c.target ?? LOCAL,
        }),
      (err: unknown) => {
        assert.ok(err instanceof SinkerError, `expected a SinkerError, got ${String(err)}`);
        assert.equal(err.reason, c.reason);
        assert.match(err.message, c.message);
        return true;
      },
    );
  });
}

test("project: the result shares no object with the source", () => {
  const source = configMap();
  const clone = project({ resourceSync: rs(), source, target: LOCAL });
  (clone.data as Record<string, string>).remote = "changed";
  (clone.list as { a: number }[])[0] = { a: 99 };
  (clone.metadata?.labels as Record<string, string>).app = "changed";
  const mapped = project({
    resourceSync: rs([
      { fromFieldPath: "list", toFieldPath: "spec.list" },
      { fromFieldPath: "", toFieldPath: "spec.all" },
    ]),
    source,
    target: LOCAL,
  });
  ((mapped.spec as { list: { a: number }[] }).list[0] as { a: number }).a = 99;
  ((mapped.spec as { all: KubeObject }).all.data as Record<string, string>).foo = "changed";
  assert.deepEqual(source, configMap());
});

test("project: a field named __proto__ stays a plain field", () => {
  const source = JSON.parse(
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"__proto__":{"polluted":"yes"}}}',
  );
  const got = project({
    resourceSync: rs([{ fromFieldPath: "$.data['__proto__']", toFieldPath: "data.__proto__" }]),
    source,
    target: REMOTE,
  });
  assert.equal(Object.getPrototypeOf(got.data), Object.prototype);
  assert.deepEqual(Object.keys(got.data as object), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const cloned = project({ resourceSync: rs(), source, target: REMOTE });
  assert.deepEqual(Object.keys(cloned.data as object), ["__proto__"]);
  assert.equal(Object.getPrototypeOf(cloned.data), Object.prototype);
});

test("SinkerContainer round trip: a ConfigMap carried in spec and unpacked into a real ConfigMap", () => {
  const original: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "settings",
      namespace: "cluster-a-ns",
      uid: "a-uid",
      resourceVersion: "7",
      labels: { app: "shop" },
      annotations: { owner: "team-a", "kubectl.kubernetes.io/last-applied-configuration": "{}" },
    },
    data: { "app.properties": "x=1\ny=2\n", mode: "prod" },
    immutable: false,
  };
  // Cluster A: pack the whole ConfigMap into a SinkerContainer's spec.
  const pack: ResourceSync = {
    ...rs([{ fromFieldPath: "", toFieldPath: "spec" }], {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      name: "settings-box",
    }),
  };
  const container = project({
    resourceSync: pack,
    source: original,
    target: { namespace: "transit", ownerReference: false },
  });
  assert.equal(container.kind, "SinkerContainer");
  assert.deepEqual(container.metadata, { name: "settings-box", namespace: "transit" });
  assert.deepEqual(container.spec, original);

  // Cluster B: unpack the container's spec into a real ConfigMap.
  const unpack = rs([{ fromFieldPath: "spec" }], { apiVersion: "v1", kind: "ConfigMap", name: "settings" });
  unpack.spec.source.resourceRef = {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "SinkerContainer",
    name: "settings-box",
  };
  const unpacked = project({ resourceSync: unpack, source: container, target: LOCAL });
  assert.deepEqual(unpacked, {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "settings",
      namespace: "default",
      labels: { app: "shop" },
      annotations: { owner: "team-a" },
      ownerReferences: [OWNER],
    },
    data: { "app.properties": "x=1\ny=2\n", mode: "prod" },
    immutable: false,
  });
});

test("deepCopy: equal, unshared, any depth", () => {
  const values: unknown[] = [null, 1, "s", true, [], {}, { a: [1, { b: [null, "x"] }], c: { d: {} } }];
  let deep: Record<string, unknown> = { leaf: [1, 2] };
  for (let i = 0; i < 100_000; i++) deep = { a: deep, n: i };
  for (const v of values) {
    const copy = deepCopy(v);
    assert.deepEqual(copy, v);
    if (v !== null && typeof v === "object") assert.notEqual(copy, v);
  }
  let a = deepCopy(deep);
  let b = deep;
  for (let i = 0; i < 100_000; i++) {
    assert.notEqual(a, b);
    assert.equal(a.n, b.n);
    assert.deepEqual(Object.keys(a), ["a", "n"]);
    a = a.a as Record<string, unknown>;
    b = b.a as Record<string, unknown>;
  }
  assert.notEqual(a.leaf, b.leaf);
  assert.deepEqual(a.leaf, [1, 2]);
});

test("error messages never carry values of the source (it may be a Secret)", () => {
  const secret = "s3cr3t-(value+)+";
  const source: KubeObject = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "creds" },
    data: { password: secret, other: secret, pattern: "(x+)+y" },
    nested: { apiVersion: "v1", kind: "ConfigMap" }, // kinds are named in KindMismatch: structure, not data
  };
  const mappings: Mapping[][] = [
    [{ fromFieldPath: "data.password" }],
    [{ fromFieldPath: "data" }],
    [{ fromFieldPath: "nested" }],
    [{ fromFieldPath: "data.*", toFieldPath: "data.x" }],
    [
      { fromFieldPath: "data.password", toFieldPath: "data.password" },
      { fromFieldPath: "data.other", toFieldPath: "data.password.x" },
    ],
    [{ fromFieldPath: "$.data[?match(@, '.*')]", toFieldPath: "data.x" }],
    [{ fromFieldPath: "$.data[?match(@, $.data.password) || @ == @]", toFieldPath: "data.x" }],
    [{ fromFieldPath: "data.password", toFieldPath: "metadata" }],
  ];
  for (const m of mappings) {
    const resourceSync = rs(m, { apiVersion: "v1", kind: "Secret", name: "copy" });
    assert.throws(
      () => project({ resourceSync, source, target: LOCAL }),
      (err: unknown) => {
        assert.ok(err instanceof SinkerError, String(err));
        assert.ok(!err.message.includes("s3cr3t"), err.message);
        assert.ok(!err.message.includes("(x+)+y"), err.message);
        return true;
      },
      JSON.stringify(m),
    );
  }
});

test("mappings start from the target's identity: writing below name, namespace, apiVersion or kind is an error", () => {
  for (const to of ["metadata.name.x", "metadata.namespace.x", "apiVersion.x", "kind.x"]) {
    assert.throws(
      () =>
        project({
          resourceSync: rs([{ fromFieldPath: "data.foo", toFieldPath: to }]),
          source: configMap(),
          target: LOCAL,
        }),
      (err: unknown) =>
        err instanceof SinkerError && err.reason === "InvalidFieldPath" && err.message.includes(to),
      to,
    );
  }
  // On a cluster-scoped target there is no namespace to be in the way.
  const got = project({
    resourceSync: rs([{ fromFieldPath: "data.foo", toFieldPath: "metadata.namespace.x" }]),
    source: configMap(),
    target: CLUSTER,
  });
  assert.deepEqual(got.metadata, { name: "demo" });
});
