/**
 * The metadata policy (docs/spec/resourcesync.md#labels-and-annotations-of-the-target): which labels and
 * annotations reach the target, as a pure function, and through the projection (clone and mappings alike), the
 * schema's key validation and the owner reference of a kept target (docs/spec/resourcesync.md#kept-means-kept).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { METADATA_KEY_OR_PREFIX_PATTERN } from "../../src/api/metadata-schema.ts";
import type { Mapping, MetadataRule, ResourceSync } from "../../src/api/types.ts";
import { validateResourceSync, validateResourceSyncSet } from "../../src/api/validate.ts";
import { SinkerError } from "../../src/errors.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import { WorkBudget } from "../../src/projection/budget.ts";
import { applyMetadataRule, isToolTrackingKey, project } from "../../src/projection/index.ts";

const TRACKING = {
  "argocd.argoproj.io/instance": "shop",
  "kustomize.toolkit.fluxcd.io/name": "apps",
  "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
  "helm.toolkit.fluxcd.io/name": "shop",
  "app.kubernetes.io/managed-by": "Helm",
  "kapp.k14s.io/app": "1700000000",
  "objectset.rio.cattle.io/hash": "abc",
};
const TRACKING_ANNOTATIONS = {
  "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:default/cfg",
  "argocd.argoproj.io/installation-id": "prod",
  "meta.helm.sh/release-name": "shop",
  "meta.helm.sh/release-namespace": "default",
  "kubectl.kubernetes.io/last-applied-configuration": "{}",
};

describe("applyMetadataRule", () => {
  const cases: Array<{
    name: string;
    values: Record<string, string> | undefined;
    rule?: MetadataRule;
    want: Record<string, string> | undefined;
  }> = [
    { name: "no rule: everything but tracking keys", values: { app: "x", ...TRACKING }, want: { app: "x" } },
    {
      name: "no rule: tracking annotations dropped, others kept",
      values: { note: "n", "argocd.argoproj.io/sync-options": "Prune=false", ...TRACKING_ANNOTATIONS },
      want: { note: "n", "argocd.argoproj.io/sync-options": "Prune=false" },
    },
    { name: "nothing in, nothing out", values: undefined, want: undefined },
    { name: "only tracking keys → none at all", values: { ...TRACKING }, want: undefined },
    {
      name: "include: exact keys and prefixes only",
      values: { app: "x", team: "t", "example.com/a": "1", "example.com/b": "2", "other.io/c": "3" },
      rule: { include: ["app", "example.com/*"] },
      want: { app: "x", "example.com/a": "1", "example.com/b": "2" },
    },
    { name: "include empty: none", values: { app: "x" }, rule: { include: [] }, want: undefined },
    {
      name: "include names a tracking key exactly: copied",
      values: { app: "x", ...TRACKING },
      rule: { include: ["app", "argocd.argoproj.io/instance"] },
      want: { app: "x", "argocd.argoproj.io/instance": "shop" },
    },
    {
      name: "include by prefix or * does not bring tracking keys back",
      values: { app: "x", ...TRACKING },
      rule: { include: ["*", "argocd.argoproj.io/*"] },
      want: { app: "x" },
    },
    {
      name: "exclude: exact keys and prefixes",
      values: { app: "x", team: "t", "internal.example.com/a": "1", "internal.example.com/b": "2" },
      rule: { exclude: ["team", "internal.example.com/*"] },
      want: { app: "x" },
    },
    { name: "exclude *: none", values: { app: "x" }, rule: { exclude: ["*"] }, want: undefined },
    {
      name: "exclude wins over include",
      values: { app: "x", team: "t" },
      rule: { include: ["app", "team"], exclude: ["team"] },
      want: { app: "x" },
    },
    {
      name: "a prefix without a slash matches the start of the key",
      values: { "team-a": "1", "team-b": "2", teams: "3", other: "4" },
      rule: { exclude: ["team-*"] },
      want: { teams: "3", other: "4" },
    },
    {
      name: "add: set over copied values, also when nothing is copied, also tracking keys",
      values: { app: "x", team: "t" },
      rule: {
        exclude: ["*"],
        add: { team: "fixed", "argocd.argoproj.io/instance": "mine" },
      },
      want: { team: "fixed", "argocd.argoproj.io/instance": "mine" },
    },
    {
      name: "add over a copied key",
      values: { app: "x", team: "t" },
      rule: { add: { team: "fixed" } },
      want: { app: "x", team: "fixed" },
    },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(applyMetadataRule(c.values, c.rule, "labels"), c.want));
  }

  test("a __proto__ key stays an own field", () => {
    const values = JSON.parse('{"__proto__": "p", "app": "x"}') as Record<string, string>;
    const out = applyMetadataRule(values, undefined, "labels");
    assert.deepEqual(Object.keys(out ?? {}).sort(), ["__proto__", "app"]);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
  });

  test("a non-object (a mapping wrote a string at metadata.labels) is an error", () => {
    assert.throws(
      () => applyMetadataRule("x", undefined, "labels"),
      (e: unknown) => e instanceof SinkerError && e.reason === "InvalidFieldPath",
    );
  });

  test("work is charged to the budget: a huge label map fails instead of stalling", () => {
    const values: Record<string, string> = {};
    for (let i = 0; i < 50_000; i++) values[`k${i}`] = "v";
    const rule = { exclude: Array.from({ length: 64 }, (_, i) => `p${i}/*`) };
    assert.throws(
      () => applyMetadataRule(values, rule, "labels", new WorkBudget()),
      (e: unknown) => e instanceof SinkerError && e.reason === "ProjectionBudgetExceeded",
    );
  });

  test("the tracking list", () => {
    for (const k of [...Object.keys(TRACKING), ...Object.keys(TRACKING_ANNOTATIONS)]) {
      assert.equal(isToolTrackingKey(k), true, k);
    }
    for (const k of [
      "app",
      "app.kubernetes.io/name",
      "app.kubernetes.io/instance",
      "argocd.argoproj.io/sync-options",
    ])
      assert.equal(isToolTrackingKey(k), false, k);
  });
});

const UID = "11111111-2222-4333-8444-555555555555";

function rs(
  target: Partial<ResourceSync["spec"]["target"]> = {},
  mappings?: Mapping[],
  annotations?: Record<string, string>,
): ResourceSync {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "demo", namespace: "default", uid: UID, ...(annotations ? { annotations } : {}) },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" }, ...target },
      ...(mappings ? { mappings } : {}),
    },
  };
}

const source: KubeObject = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: {
    name: "src",
    namespace: "default",
    labels: { app: "shop", ...TRACKING },
    annotations: { note: "n", ...TRACKING_ANNOTATIONS },
  },
  data: { k: "v" },
};

const LOCAL = { namespace: "default", ownerReference: true };

describe("projection with the metadata policy", () => {
  test("clone: tracking labels and annotations are not copied", () => {
    const out = project({ resourceSync: rs(), source, target: LOCAL });
    assert.deepEqual(out.metadata?.labels, { app: "shop" });
    assert.deepEqual(out.metadata?.annotations, { note: "n" });
    assert.deepEqual(out.data, { k: "v" });
  });

  test("clone: include, exclude and add, per field", () => {
    const out = project({
      resourceSync: rs({
        labels: { include: ["app", "argocd.argoproj.io/instance"], add: { copied: "by-sinker" } },
        annotations: { exclude: ["note"], add: { "argocd.argoproj.io/sync-options": "Prune=false" } },
      }),
      source,
      target: LOCAL,
    });
    assert.deepEqual(out.metadata?.labels, {
      app: "shop",
      "argocd.argoproj.io/instance": "shop",
      copied: "by-sinker",
    });
    assert.deepEqual(out.metadata?.annotations, { "argocd.argoproj.io/sync-options": "Prune=false" });
  });

  test("mappings: a mapping of metadata.labels is filtered too; add applies with mappings", () => {
    const out = project({
      resourceSync: rs({ labels: { exclude: ["app"], add: { fixed: "1" } } }, [
        { fromFieldPath: "metadata.labels", toFieldPath: "metadata.labels" },
        { fromFieldPath: "metadata.annotations", toFieldPath: "metadata.annotations" },
      ]),
      source,
      target: LOCAL,
    });
    assert.deepEqual(out.metadata?.labels, { fixed: "1" });
    assert.deepEqual(out.metadata?.annotations, { note: "n" });
  });

  test("mappings: one key mapped onto a tracking key is dropped unless included", () => {
    const mapping = {
      fromFieldPath: "metadata.labels.app",
      toFieldPath: "metadata.labels.app\\.kubernetes\\.io/managed-by",
    };
    const dropped = project({ resourceSync: rs({}, [mapping]), source, target: LOCAL });
    assert.equal(dropped.metadata?.labels, undefined);
    const kept = project({
      resourceSync: rs({ labels: { include: ["app.kubernetes.io/managed-by"] } }, [mapping]),
      source,
      target: LOCAL,
    });
    assert.deepEqual(kept.metadata?.labels, { "app.kubernetes.io/managed-by": "shop" });
  });

  test("an unpacked object (from-only mapping) is filtered like a clone", () => {
    const container: KubeObject = {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "SinkerContainer",
      metadata: { name: "c" },
      spec: source,
    };
    const out = project({
      resourceSync: rs({}, [{ fromFieldPath: "spec" }]),
      source: container,
      target: LOCAL,
    });
    assert.deepEqual(out.metadata?.labels, { app: "shop" });
  });

  test("last-applied is never applied, even when included or added", () => {
    const out = project({
      resourceSync: rs({
        annotations: {
          include: ["kubectl.kubernetes.io/last-applied-configuration"],
          add: { "kubectl.kubernetes.io/last-applied-configuration": "{}" },
        },
      }),
      source,
      target: LOCAL,
    });
    assert.equal(out.metadata?.annotations, undefined);
  });

  test("kept means kept: no owner reference while disable-target-deletion is set", () => {
    const owned = project({ resourceSync: rs(), source, target: LOCAL });
    assert.equal(owned.metadata?.ownerReferences?.[0]?.uid, UID);
    const kept = project({
      resourceSync: rs({}, undefined, { "sinker.influxdata.io/disable-target-deletion": "true" }),
      source,
      target: LOCAL,
    });
    assert.equal(kept.metadata?.ownerReferences, undefined);
    const notExactlyTrue = project({
      resourceSync: rs({}, undefined, { "sinker.influxdata.io/disable-target-deletion": "yes" }),
      source,
      target: LOCAL,
    });
    assert.equal(notExactlyTrue.metadata?.ownerReferences?.length, 1);
  });
});

describe("schema of the policy", () => {
  const re = new RegExp(METADATA_KEY_OR_PREFIX_PATTERN, "u");
  const good = [
    "app",
    "example.com/team",
    "example.com/*",
    "*",
    "team-*",
    "a.b-c/x_y.z",
    "example.com/team-*",
  ];
  const bad = ["", "/x", "Example.com/x", "example.com/", "-app", "app-", "a/b/c", "**", "ex*ample", "a b"];
  for (const k of good) test(`key pattern accepts ${JSON.stringify(k)}`, () => assert.ok(re.test(k)));
  for (const k of bad) test(`key pattern refuses ${JSON.stringify(k)}`, () => assert.ok(!re.test(k)));

  const validate = (target: Record<string, unknown>) =>
    validateResourceSync({ ...rs(), spec: { ...rs().spec, target: { ...rs().spec.target, ...target } } });

  test("valid policy", () => {
    const r = validate({
      labels: { include: ["app", "example.com/*"], exclude: ["x"], add: { team: "payments" } },
      annotations: { add: { "example.com/note": "any text, even with spaces" } },
    });
    assert.ok(r.ok, JSON.stringify(r));
  });

  const refused: Array<[string, Record<string, unknown>, RegExp]> = [
    ["bad add key", { labels: { add: { "bad key": "v" } } }, /valid label\/annotation key/],
    [
      "add key with a long prefix",
      { annotations: { add: { [`${"a".repeat(254)}/x`]: "v" } } },
      /valid label/,
    ],
    ["bad label value", { labels: { add: { team: "not valid!" } } }, /label value/],
    ["long label value", { labels: { add: { team: "a".repeat(64) } } }, /longer than 63/],
    ["bad include entry", { labels: { include: ["a/b/c"] } }, /prefix of one followed by/],
    [
      "too many entries",
      { labels: { exclude: Array.from({ length: 65 }, (_, i) => `k${i}`) } },
      /at most 64/,
    ],
    ["unknown field", { labels: { drop: ["x"] } }, /unknown field/],
  ];
  for (const [name, target, message] of refused) {
    test(`refused: ${name}`, () => {
      const r = validate(target);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.errors.map((e) => e.message).join("\n"), message);
    });
  }

  test("not on the source end", () => {
    const r = validateResourceSync({
      ...rs(),
      spec: { ...rs().spec, source: { ...rs().spec.source, labels: { exclude: ["x"] } } },
    });
    assert.equal(r.ok, false);
  });

  test("on a ResourceSyncSet's target", () => {
    const set = {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "ResourceSyncSet",
      metadata: { name: "s", namespace: "default" },
      spec: {
        source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } },
        target: {
          resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" },
          labels: { exclude: ["team"], add: { copy: "yes" } },
        },
      },
    };
    assert.ok(validateResourceSyncSet(set).ok);
  });
});
