import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ClusterResourceSyncSet, ResourceSync, ResourceSyncSet } from "../../src/api/types.ts";
import { validateClusterResourceSyncSet, validateResourceSyncSet } from "../../src/api/validate.ts";
import { resourceSyncChangeMatters } from "../../src/controller/event-filters.ts";
import {
  childName,
  desiredChildren,
  sameJson,
  setLabelValue,
  setSources,
} from "../../src/fanout/children.ts";
import { grantFor } from "../../src/fanout/grant.ts";
import { capChildren, planChildren } from "../../src/fanout/plan.ts";
import { labelsMatch, type NamespaceInfo, namespaceSelected } from "../../src/fanout/selector.ts";
import {
  childState,
  nextSetStatus,
  readyCondition,
  refusedDestinations,
  summarize,
  transitionEvent,
} from "../../src/fanout/set-status.ts";

const API = "sinker.influxdata.io/v1alpha1";
const kids = (...args: Parameters<typeof desiredChildren>) => desiredChildren(...args).children;
const cm = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: "ConfigMap", name } });
const ns = (name: string, labels: Record<string, string> = {}, terminating = false): NamespaceInfo => ({
  name,
  labels,
  terminating,
});

function clusterSet(spec: Partial<ClusterResourceSyncSet["spec"]> = {}): ClusterResourceSyncSet {
  return {
    apiVersion: API,
    kind: "ClusterResourceSyncSet",
    metadata: { name: "ca", uid: "set-uid", generation: 3 },
    spec: {
      source: { ...cm("bundle"), namespace: "platform" },
      target: cm("bundle"),
      namespaceSelector: { matchLabels: { team: "x" } },
      ...spec,
    },
  };
}

function tenantSet(spec: Partial<ResourceSyncSet["spec"]> = {}): ResourceSyncSet {
  return {
    apiVersion: API,
    kind: "ResourceSyncSet",
    metadata: { name: "fleet", namespace: "tenant", uid: "tset-uid", generation: 1 },
    spec: { source: cm("cfg"), target: cm("cfg"), ...spec },
  };
}

describe("label selectors", () => {
  const cases: Array<[string, Parameters<typeof labelsMatch>[0], Record<string, string>, boolean]> = [
    ["absent selector matches nothing", undefined, { a: "1" }, false],
    ["empty selector matches nothing", {}, { a: "1" }, false],
    ["matchLabels equal", { matchLabels: { a: "1" } }, { a: "1", b: "2" }, true],
    ["matchLabels differ", { matchLabels: { a: "1" } }, { a: "2" }, false],
    ["In", { matchExpressions: [{ key: "a", operator: "In", values: ["1", "2"] }] }, { a: "2" }, true],
    ["In, key missing", { matchExpressions: [{ key: "a", operator: "In", values: ["1"] }] }, {}, false],
    ["NotIn, key missing", { matchExpressions: [{ key: "a", operator: "NotIn", values: ["1"] }] }, {}, true],
    [
      "NotIn, value listed",
      { matchExpressions: [{ key: "a", operator: "NotIn", values: ["1"] }] },
      { a: "1" },
      false,
    ],
    ["Exists", { matchExpressions: [{ key: "a", operator: "Exists" }] }, { a: "" }, true],
    ["DoesNotExist", { matchExpressions: [{ key: "a", operator: "DoesNotExist" }] }, { a: "" }, false],
    [
      "all requirements must hold",
      { matchLabels: { a: "1" }, matchExpressions: [{ key: "b", operator: "Exists" }] },
      { a: "1" },
      false,
    ],
  ];
  for (const [name, selector, labels, want] of cases)
    test(name, () => assert.equal(labelsMatch(selector, labels), want));

  test("namespace selection: labels or include, minus exclude, never a terminating namespace", () => {
    const selector = { matchLabels: { team: "x" }, include: ["extra"], exclude: ["no"] };
    assert.equal(namespaceSelected(selector, ns("a", { team: "x" })), true);
    assert.equal(namespaceSelected(selector, ns("extra")), true);
    assert.equal(namespaceSelected(selector, ns("no", { team: "x" })), false);
    assert.equal(namespaceSelected(selector, ns("a", { team: "x" }, true)), false);
    assert.equal(namespaceSelected(selector, ns("b", { team: "y" })), false);
    assert.equal(namespaceSelected(undefined, ns("a", { team: "x" })), false);
  });
});

describe("desired children", () => {
  test("a ClusterResourceSyncSet: one child per selected namespace, in that namespace, granted the source", () => {
    const set = clusterSet();
    const children = kids(set, {
      namespaces: [ns("b", { team: "x" }), ns("a", { team: "x" }), ns("c"), ns("platform", { team: "x" })],
      secrets: [],
    });
    assert.deepEqual(
      children.map((c) => c.namespace),
      ["a", "b"],
      "sorted; the source's own namespace is skipped when the copy would be the source itself",
    );
    const [first] = children;
    assert.ok(first);
    assert.equal(first.name, childName(set, "local|ns:a"));
    assert.deepEqual(first.object.spec, { source: cm("bundle"), target: cm("bundle") });
    assert.deepEqual(first.object.metadata.annotations, {
      "sinker.influxdata.io/source-namespace": "platform",
    });
    assert.deepEqual(first.object.metadata.ownerReferences, [
      {
        apiVersion: API,
        kind: "ClusterResourceSyncSet",
        name: "ca",
        uid: "set-uid",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    assert.deepEqual(first.object.metadata.labels, {
      "sinker.influxdata.io/set": "ca",
      "sinker.influxdata.io/set-kind": "ClusterResourceSyncSet",
    });
    // created with the finalizer: the child's first reconcile does not have to add it
    assert.deepEqual(first.object.metadata.finalizers, ["sinker.influxdata.io/target"]);
  });

  test("the source's namespace gets a copy when the target differs from the source", () => {
    const set = clusterSet({ target: cm("other") });
    const children = kids(set, { namespaces: [ns("platform", { team: "x" })], secrets: [] });
    assert.equal(children.length, 1);
  });

  test("remote clusters of a ClusterResourceSyncSet: a child per namespace, in the source's namespace", () => {
    const set = clusterSet({
      namespaceSelector: undefined,
      clusters: [
        {
          kubeConfig: { secretRef: { name: "b", namespace: "infra", key: "value" } },
          namespaces: ["n1", "n2"],
        },
        { kubeConfig: { secretRef: { name: "c", namespace: "infra", key: "value" } } },
      ],
    });
    const children = kids(set, { namespaces: [ns("a", { team: "x" })], secrets: [] });
    assert.deepEqual(
      children.map((c) => [c.namespace, c.destination.cluster, c.destination.namespace]),
      [
        ["platform", "infra/b", "n1"],
        ["platform", "infra/b", "n2"],
        ["platform", "infra/c", undefined],
      ],
    );
    assert.equal(children[2]?.object.spec.target.cluster?.namespace, undefined);
    assert.equal(
      children[0]?.object.metadata.annotations,
      undefined,
      "no source-namespace grant for remote ones",
    );
  });

  test("a ResourceSyncSet: explicit clusters plus Secrets of its namespace selected by label", () => {
    const set = tenantSet({
      clusters: [{ kubeConfig: { secretRef: { name: "b", key: "value" } }, namespace: "n" }],
      clusterSelector: { matchLabels: { fleet: "yes" }, key: "kubeconfig", namespace: "m" },
      pruning: "Orphan",
    });
    const children = kids(set, {
      namespaces: [ns("other", { team: "x" })],
      secrets: [
        { name: "z", labels: { fleet: "yes" } },
        { name: "y", labels: {} },
      ],
    });
    assert.deepEqual(
      children.map((c) => [
        c.namespace,
        c.destination.cluster,
        c.object.spec.target.cluster?.kubeConfig.secretRef.key,
      ]),
      [
        ["tenant", "tenant/b", "value"],
        ["tenant", "tenant/z", "kubeconfig"],
      ],
      "never a local namespace: every child lives in the set's namespace with a remote target",
    );
    for (const c of children) {
      assert.equal(c.object.metadata.annotations?.["sinker.influxdata.io/disable-target-deletion"], "true");
      assert.equal(c.object.spec.source.cluster, undefined);
    }
  });

  test("the write policy fields pass to every child, local and remote, and only when set", () => {
    const plain = kids(clusterSet(), { namespaces: [ns("a", { team: "x" })], secrets: [] });
    assert.equal(plain[0]?.object.spec.writePolicy, undefined);
    assert.equal(plain[0]?.object.spec.onImmutableChange, undefined);
    const sets = [
      clusterSet({
        writePolicy: "CreateOnly",
        clusters: [{ kubeConfig: { secretRef: { name: "b", namespace: "infra", key: "value" } } }],
      }),
      tenantSet({
        writePolicy: "CreateOnly",
        clusters: [{ kubeConfig: { secretRef: { name: "b", key: "v" } } }],
      }),
    ];
    for (const set of sets) {
      const children = kids(set, { namespaces: [ns("a", { team: "x" })], secrets: [] });
      assert.ok(children.length > 0);
      for (const c of children) assert.equal(c.object.spec.writePolicy, "CreateOnly");
    }
    const replace = kids(clusterSet({ onImmutableChange: "Replace" }), {
      namespaces: [ns("a", { team: "x" })],
      secrets: [],
    });
    assert.equal(replace[0]?.object.spec.onImmutableChange, "Replace");
  });

  test("names: stable, distinct per destination, valid for long set names; label values at most 63", () => {
    const set = clusterSet();
    assert.equal(childName(set, "local|ns:a"), childName(set, "local|ns:a"));
    assert.notEqual(childName(set, "local|ns:a"), childName(set, "local|ns:b"));
    const long = clusterSet();
    long.metadata.name = `${"x".repeat(250)}`;
    assert.ok(childName(long, "k").length <= 253);
    assert.ok(setLabelValue(long.metadata.name).length <= 63);
    assert.match(setLabelValue(long.metadata.name), /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    assert.equal(setLabelValue("short"), "short");
  });
});

/** The grant's view of remote clusters' namespaces when no set selects any by label. */
const noRemote = () => undefined;

describe("grants", () => {
  const set = clusterSet({
    clusters: [
      { kubeConfig: { secretRef: { name: "b", namespace: "infra", key: "value" } }, namespaces: ["n1"] },
    ],
  });
  const namespaces = new Map([
    ["a", ns("a", { team: "x" })],
    ["z", ns("z")],
  ]);
  const lookup = (name: string) => (name === "ca" ? set : undefined);
  const nsOf = (name: string) => namespaces.get(name);
  const children = kids(set, { namespaces: [...namespaces.values()], secrets: [] });
  const local = children.find((c) => c.namespace === "a")?.object as ResourceSync;
  const remote = children.find((c) => c.destination.cluster)?.object as ResourceSync;
  const copy = (rs: ResourceSync, patch: (r: ResourceSync) => void): ResourceSync => {
    const out = structuredClone(rs);
    patch(out);
    return out;
  };

  test("the child the set wants gets the source namespace; the remote one the Secret's", () => {
    assert.deepEqual(grantFor(local, lookup, nsOf, noRemote), { sourceNamespace: "platform" });
    assert.deepEqual(grantFor(remote, lookup, nsOf, noRemote), { secretNamespace: "infra" });
  });

  const refused: Array<[string, (r: ResourceSync) => void]> = [
    ["moved to an unselected namespace", (r) => (r.metadata.namespace = "z")],
    ["spec edited", (r) => (r.spec.target.resourceRef.name = "elsewhere")],
    ["mappings added", (r) => (r.spec.mappings = [{ fromFieldPath: "data", toFieldPath: "data" }])],
    ["another uid", (r) => (((r.metadata.ownerReferences ?? [])[0] as { uid: string }).uid = "forged")],
    ["no owner", (r) => (r.metadata.ownerReferences = [])],
    [
      "owner not controller",
      (r) => (((r.metadata.ownerReferences ?? [])[0] as { controller?: boolean }).controller = false),
    ],
    ["renamed", (r) => (r.metadata.name = "mine")],
    [
      "annotation changed",
      (r) => (r.metadata.annotations = { "sinker.influxdata.io/source-namespace": "kube-system" }),
    ],
  ];
  for (const [name, patch] of refused) {
    test(`refused: ${name}`, () =>
      assert.equal(grantFor(copy(local, patch), lookup, nsOf, noRemote), undefined));
  }

  test("refused once the set stops selecting the namespace or is being deleted", () => {
    assert.equal(
      grantFor(local, lookup, () => ns("a", { team: "y" }), noRemote),
      undefined,
    );
    const deleting = { ...set, metadata: { ...set.metadata, deletionTimestamp: "2026-01-01T00:00:00Z" } };
    assert.equal(
      grantFor(local, () => deleting, nsOf, noRemote),
      undefined,
    );
  });

  test("key order does not matter (the API server may reorder)", () => {
    assert.equal(sameJson({ a: 1, b: { c: [1, { d: 2 }] } }, { b: { c: [1, { d: 2 }] }, a: 1 }), true);
    assert.equal(sameJson({ a: 1 }, { a: 1, b: 2 }), false);
    assert.equal(sameJson([1, 2], [2, 1]), false);
  });
});

describe("plan and status", () => {
  const set = clusterSet();
  const desired = kids(set, {
    namespaces: [ns("a", { team: "x" }), ns("b", { team: "x" })],
    secrets: [],
  });
  const [da, db] = desired as [(typeof desired)[0], (typeof desired)[0]];
  const existing = (d: typeof da, patch: (r: ResourceSync) => void = () => {}): ResourceSync => {
    const out = structuredClone(d.object);
    out.metadata.uid = `uid-${d.namespace}`;
    out.metadata.generation = 1;
    patch(out);
    return out;
  };
  const ready =
    (status: "True" | "False", reason = "Synced", observed = 1) =>
    (r: ResourceSync) => {
      r.status = {
        observedGeneration: observed,
        conditions: [
          { type: "Ready", status, reason, message: "m", lastTransitionTime: "2026-01-01T00:00:00Z" },
        ],
      };
    };

  test("applies missing and changed children, skips up-to-date ones, prunes unwanted ones", () => {
    const upToDate = existing(da);
    const stale = existing(db, (r) => (r.spec.target.resourceRef.name = "edited-by-tenant"));
    const gone = existing({ ...da, namespace: "c", name: "old" }, (r) => {
      r.metadata.namespace = "c";
      r.metadata.name = "old";
    });
    const cache = new Map(
      [upToDate, stale, gone].map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]),
    );
    const plan = planChildren(set, desired, [...cache.values()], (n, name) => cache.get(`${n}/${name}`));
    assert.deepEqual(
      plan.apply.map((d) => d.namespace),
      ["b"],
    );
    assert.deepEqual(
      plan.remove.map((r) => r.metadata.name),
      ["old"],
    );
    assert.deepEqual(plan.orphanFirst, []);
  });

  test("a name held by someone else's ResourceSync is reported, not taken over", () => {
    const foreign = existing(da, (r) => (r.metadata.ownerReferences = []));
    const plan = planChildren(set, [da], [], (n, name) =>
      n === "a" && name === da.name ? foreign : undefined,
    );
    assert.deepEqual(plan.apply, []);
    assert.deepEqual(plan.taken, [da]);
    const summary = summarize([da], plan.taken, () => foreign);
    assert.equal(summary.failing, 1);
    assert.equal(summary.failures[0]?.reason, "NameTaken");
  });

  test("pruning Orphan marks a child before deleting it; a deleting child is left to finish", () => {
    const orphaning = clusterSet({ pruning: "Orphan" });
    const child = existing(da);
    const deleting = existing(db, (r) => (r.metadata.deletionTimestamp = "2026-01-01T00:00:00Z"));
    const plan = planChildren(orphaning, [], [child, deleting], () => undefined);
    assert.deepEqual(plan.remove, [child]);
    assert.deepEqual(plan.orphanFirst, [child]);
  });

  test("child states: synced only for the current generation", () => {
    assert.equal(childState(undefined).state, "pending");
    assert.equal(childState(existing(da)).state, "pending");
    assert.equal(childState(existing(da, ready("True"))).state, "synced");
    assert.equal(childState(existing(da, ready("True", "Synced", 0))).state, "pending");
    assert.deepEqual(childState(existing(da, ready("False", "SourceNotFound"))), {
      state: "failing",
      reason: "SourceNotFound",
      message: "m",
    });
  });

  test("summary, Ready condition and the Events worth sending", () => {
    const cache = new Map([
      [da.name, existing(da, ready("True"))],
      [db.name, existing(db, ready("False", "TargetNotOwned"))],
    ]);
    const summary = summarize(desired, [], (_n, name) => cache.get(name));
    assert.deepEqual(
      { ...summary, failures: summary.failures.map((f) => [f.namespace, f.reason]) },
      { desired: 2, synced: 1, failing: 1, failures: [["b", "TargetNotOwned"]] },
    );
    const now = new Date("2026-11-25T10:00:00.123Z");
    const failing = readyCondition(summary, 3, undefined, now);
    assert.deepEqual(failing, {
      type: "Ready",
      status: "False",
      reason: "Failing",
      message: "1 of 2 destinations failing",
      observedGeneration: 3,
      lastTransitionTime: "2026-11-25T10:00:00Z",
    });
    const synced = readyCondition({ desired: 2, synced: 2, failing: 0, failures: [] }, 3, failing, now);
    assert.equal(synced.reason, "Synced");
    assert.equal(transitionEvent(failing, synced)?.reason, "Synced");
    assert.equal(transitionEvent(undefined, failing)?.type, "Warning");
    assert.equal(transitionEvent(synced, synced), undefined);
    const progressing = readyCondition({ desired: 2, synced: 1, failing: 0, failures: [] }, 3, synced, now);
    assert.equal(progressing.reason, "Progressing");
    assert.equal(transitionEvent(synced, progressing), undefined);
    assert.equal(
      readyCondition({ desired: 0, synced: 0, failing: 0, failures: [] }, 3, undefined, now).status,
      "True",
    );
  });
});

describe("destinations and clusters counted apart", () => {
  const set = clusterSet();
  const [child] = kids(set, { namespaces: [ns("a", { team: "x" })], secrets: [] }) as [
    ReturnType<typeof kids>[0],
  ];
  const synced = structuredClone(child.object);
  synced.metadata.generation = 1;
  synced.status = {
    observedGeneration: 1,
    conditions: [
      {
        type: "Ready",
        status: "True",
        reason: "Synced",
        message: "",
        lastTransitionTime: "2026-01-01T00:00:00Z",
      },
    ],
  };
  const forbidden = {
    cluster: "ops/b",
    reason: "Forbidden",
    message: "cannot list the namespaces of cluster ops/b",
  };
  const now = new Date("2026-11-25T10:00:00Z");

  test("a cluster that cannot be listed is not a failing destination", () => {
    const summary = summarize([child], [], () => synced, [forbidden]);
    assert.deepEqual(
      [summary.desired, summary.synced, summary.failing, summary.failingClusters],
      [1, 1, 0, 1],
    );
    assert.deepEqual(summary.failures, []);
    assert.deepEqual(summary.clusterFailures, [forbidden]);
    const ready = readyCondition(summary, 1, undefined, now);
    assert.deepEqual(
      [ready.status, ready.reason, ready.message],
      ["False", "ClustersFailing", "1 of 1 destinations synced; 1 cluster failing"],
    );
    assert.equal(transitionEvent(undefined, ready)?.reason, "ClustersFailing");
  });

  test("children kept while their cluster is unknown are still counted as destinations", () => {
    const remote = structuredClone(synced);
    remote.metadata.name = "ca-remote";
    remote.spec.target.cluster = {
      namespace: "nb",
      kubeConfig: { secretRef: { name: "b", key: "v", namespace: "ops" } },
    };
    remote.status = {
      observedGeneration: 1,
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "ClusterUnreachable",
          message: "down",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    };
    const plan = planChildren(set, [], [remote], () => undefined, new Set(["ops/b"]));
    assert.deepEqual(plan.remove, []);
    assert.deepEqual(plan.kept, [remote]);
    const summary = summarize(
      [],
      [],
      () => remote,
      [{ ...forbidden, reason: "ClusterUnreachable" }],
      plan.kept,
    );
    assert.deepEqual(
      [summary.desired, summary.synced, summary.failing, summary.failingClusters],
      [1, 0, 1, 1],
    );
    assert.deepEqual(
      summary.failures.map((f) => [f.cluster, f.namespace, f.reason]),
      [["ops/b", "nb", "ClusterUnreachable"]],
    );
    assert.equal(
      readyCondition(summary, 1, undefined, now).message,
      "1 of 1 destinations failing; 1 cluster failing",
    );
  });
});

describe("validation", () => {
  test("a valid ClusterResourceSyncSet and ResourceSyncSet pass", () => {
    assert.equal(validateClusterResourceSyncSet(clusterSet()).ok, true);
    assert.equal(
      validateResourceSyncSet(
        tenantSet({
          clusterSelector: { matchExpressions: [{ key: "fleet", operator: "Exists" }], key: "value" },
        }),
      ).ok,
      true,
    );
  });

  const bad: Array<[string, unknown, string]> = [
    [
      "source namespace required",
      { ...clusterSet(), spec: { ...clusterSet().spec, source: cm("x") } },
      "spec.source.namespace",
    ],
    [
      "In without values",
      clusterSet({ namespaceSelector: { matchExpressions: [{ key: "a", operator: "In" }] } }),
      "spec.namespaceSelector.matchExpressions[0]",
    ],
    [
      "bad namespace name",
      clusterSet({ namespaceSelector: { include: ["Not_A_Namespace"] } }),
      "spec.namespaceSelector.include[0]",
    ],
    [
      "label value too long",
      clusterSet({ namespaceSelector: { matchLabels: { a: "x".repeat(64) } } }),
      "spec.namespaceSelector.matchLabels.a",
    ],
    ["pruning", clusterSet({ pruning: "Keep" as "Orphan" }), "spec.pruning"],
    ["writePolicy", clusterSet({ writePolicy: "IfNotExists" as "CreateOnly" }), "spec.writePolicy"],
    [
      "CreateOnly with Replace",
      clusterSet({ writePolicy: "CreateOnly", onImmutableChange: "Replace" }),
      "spec",
    ],
    [
      "label key that Kubernetes refuses",
      clusterSet({ namespaceSelector: { matchLabels: { "bad key!": "x" } } }),
      "spec.namespaceSelector.matchLabels",
    ],
    [
      "label value that Kubernetes refuses",
      clusterSet({ namespaceSelector: { matchLabels: { good: "not valid!" } } }),
      "spec.namespaceSelector.matchLabels.good",
    ],
    [
      "expression key that Kubernetes refuses",
      clusterSet({ namespaceSelector: { matchExpressions: [{ key: "bad key!", operator: "Exists" }] } }),
      "spec.namespaceSelector.matchExpressions[0].key",
    ],
    [
      "expression value that Kubernetes refuses",
      clusterSet({
        namespaceSelector: { matchExpressions: [{ key: "a", operator: "In", values: ["-x"] }] },
      }),
      "spec.namespaceSelector.matchExpressions[0].values[0]",
    ],
    [
      "remote Secret namespace required",
      clusterSet({ clusters: [{ kubeConfig: { secretRef: { name: "b", key: "v" } } } as never] }),
      "spec.clusters[0].kubeConfig.secretRef.namespace",
    ],
  ];
  for (const [name, doc, path] of bad) {
    test(`refused: ${name}`, () => {
      const r = validateClusterResourceSyncSet(doc);
      assert.equal(r.ok, false);
      if (!r.ok)
        assert.ok(
          r.errors.some((e) => e.path === path),
          JSON.stringify(r.errors),
        );
    });
  }

  test("label keys and values Kubernetes accepts pass", () => {
    const r = validateClusterResourceSyncSet(
      clusterSet({
        namespaceSelector: {
          matchLabels: { "example.com/team": "a.b_c-1", "kubernetes.io/metadata.name": "", A_b: "Z" },
          matchExpressions: [{ key: "x.io/y", operator: "NotIn", values: ["1", "a-b"] }],
        },
      }),
    );
    assert.equal(r.ok, true, JSON.stringify(r));
  });

  test("a ResourceSyncSet clusterSelector needs the kubeconfig key", () => {
    const r = validateResourceSyncSet(tenantSet({ clusterSelector: { matchLabels: { a: "b" } } as never }));
    assert.equal(r.ok, false);
  });
});

describe("remote namespaces selected by label", () => {
  const set = clusterSet({
    namespaceSelector: undefined,
    clusters: [
      {
        kubeConfig: { secretRef: { name: "b", namespace: "infra", key: "value" } },
        namespaces: ["fixed"],
        namespaceSelector: { matchLabels: { team: "x" }, exclude: ["no"] },
      },
    ],
  });

  test("children for the listed namespaces plus the selected ones of that cluster", () => {
    const d = desiredChildren(set, {
      namespaces: [],
      secrets: [],
      remoteNamespaces: (id) =>
        id === "infra/b/value" ? [ns("r1", { team: "x" }), ns("r2"), ns("no", { team: "x" })] : undefined,
    });
    assert.deepEqual(
      d.children.map((c) => c.destination.namespace),
      ["fixed", "r1"],
    );
    assert.equal(d.undecided.size, 0);
  });

  test("unknown namespaces: the cluster is undecided, and its children are kept rather than pruned", () => {
    const d = desiredChildren(set, { namespaces: [], secrets: [], remoteNamespaces: () => undefined });
    assert.deepEqual([...d.undecided], ["infra/b"]);
    assert.deepEqual(
      d.children.map((c) => c.destination.namespace),
      ["fixed"],
    );
    const known = desiredChildren(set, {
      namespaces: [],
      secrets: [],
      remoteNamespaces: () => [ns("r1", { team: "x" })],
    }).children;
    const r1 = structuredClone(known.find((c) => c.destination.namespace === "r1")?.object) as ResourceSync;
    const plan = planChildren(set, d.children, [r1], () => undefined, d.undecided);
    assert.deepEqual(plan.remove, [], "a cluster that cannot be listed right now loses no copy");
    assert.deepEqual(planChildren(set, d.children, [r1], () => undefined).remove, [r1]);
  });

  test("grant: the child for a remote namespace of a selector gets the Secret, unless that namespace is excluded", () => {
    const known = desiredChildren(set, {
      namespaces: [],
      secrets: [],
      remoteNamespaces: () => [ns("r1", { team: "x" })],
    }).children;
    const r1 = known.find((c) => c.destination.namespace === "r1")?.object as ResourceSync;
    const lookup = (name: string) => (name === "ca" ? set : undefined);
    const listed = () => [ns("r1", { team: "x" }), ns("kube-system"), ns("no", { team: "x" })];
    assert.deepEqual(
      grantFor(r1, lookup, () => undefined, listed),
      { secretNamespace: "infra" },
    );
    // a child for another namespace of that cluster, named and built as the set would: only if the selector picks it
    const forged = (remoteNs: string) => {
      const out = structuredClone(r1);
      if (out.spec.target.cluster) out.spec.target.cluster.namespace = remoteNs;
      out.metadata.name = childName(set, `cluster:infra/b/value|ns:${remoteNs}`);
      return out;
    };
    assert.equal(
      grantFor(forged("kube-system"), lookup, () => undefined, listed),
      undefined,
      "not selected",
    );
    assert.equal(
      grantFor(forged("no"), lookup, () => undefined, listed),
      undefined,
      "excluded",
    );
    // the cluster's namespaces not listed yet: neither granted nor refused
    assert.equal(
      grantFor(
        r1,
        lookup,
        () => undefined,
        () => undefined,
      ),
      "undecided",
    );
    assert.equal(
      grantFor(
        forged("kube-system"),
        lookup,
        () => undefined,
        () => undefined,
      ),
      "undecided",
    );
  });
});

describe("the target's metadata policy", () => {
  const policy = { labels: { exclude: ["team"], add: { copy: "yes" } }, annotations: { include: ["note"] } };
  const target = { ...cm("bundle"), ...policy };

  test("every child of either kind carries the set's policy on its target", () => {
    const cset = clusterSet({
      target,
      clusters: [{ kubeConfig: { secretRef: { name: "b", namespace: "infra", key: "value" } } }],
    });
    const tset = tenantSet({
      target,
      clusters: [{ kubeConfig: { secretRef: { name: "b", key: "value" } } }],
    });
    const all = [
      ...kids(cset, { namespaces: [ns("a", { team: "x" })], secrets: [] }),
      ...kids(tset, { namespaces: [], secrets: [] }),
    ];
    assert.equal(all.length, 3);
    for (const c of all) {
      assert.deepEqual(c.object.spec.target.labels, policy.labels);
      assert.deepEqual(c.object.spec.target.annotations, policy.annotations);
    }
  });

  test("a child whose policy was edited loses its grant", () => {
    const set = clusterSet({ target });
    const child = kids(set, { namespaces: [ns("a", { team: "x" })], secrets: [] })[0]?.object as ResourceSync;
    const nsOf = () => ns("a", { team: "x" });
    const lookup = () => set;
    assert.deepEqual(grantFor(child, lookup, nsOf, noRemote), { sourceNamespace: "platform" });
    const edited = structuredClone(child);
    edited.spec.target.labels = { include: ["*"] };
    assert.equal(grantFor(edited, lookup, nsOf, noRemote), undefined);
  });
});

describe("ResourceSync events worth a reconcile", () => {
  test("losing the set's owner reference (kubectl delete --cascade=orphan) reconciles the child", () => {
    const child: ResourceSync = {
      apiVersion: API,
      kind: "ResourceSync",
      metadata: {
        name: "c",
        namespace: "n",
        generation: 1,
        ownerReferences: [
          { apiVersion: API, kind: "ClusterResourceSyncSet", name: "ca", uid: "u", controller: true },
        ],
      },
      spec: { source: cm("x"), target: cm("x") },
    };
    const orphaned = structuredClone(child);
    delete orphaned.metadata.ownerReferences;
    assert.equal(resourceSyncChangeMatters(child, orphaned), true);
    assert.equal(resourceSyncChangeMatters(child, structuredClone(child)), false);
  });
});

describe("sources selected by label", () => {
  const selecting = (target: Record<string, string> = { apiVersion: "v1", kind: "Secret" }) =>
    clusterSet({
      source: undefined,
      sourceSelector: {
        apiVersion: "v1",
        kind: "Secret",
        namespace: "platform",
        matchLabels: { team: "pay" },
      },
      target: { resourceRef: target as never },
      namespaceSelector: { include: ["a", "b"] },
    });
  const objects = [
    { name: "db", labels: { team: "pay" } },
    { name: "api", labels: { team: "pay" } },
    { name: "other", labels: { team: "web" } },
  ];
  const destinations = { namespaces: [ns("a"), ns("b"), ns("platform")], secrets: [], sources: objects };

  test("setSources: the matching objects by name, each target named after its source unless the set names one", () => {
    const set = selecting();
    assert.deepEqual(
      setSources(set, objects).map((s) => [s.resourceRef.name, s.target.name, s.namespace]),
      [
        ["api", "api", "platform"],
        ["db", "db", "platform"],
      ],
    );
    assert.deepEqual(
      setSources(selecting({ apiVersion: "v1", kind: "Secret", name: "fixed" }), objects).map(
        (s) => s.target.name,
      ),
      ["fixed", "fixed"],
    );
    // a named source is one source, whatever the objects
    assert.deepEqual(
      setSources(clusterSet(), objects).map((s) => [s.resourceRef.name, s.key]),
      [["bundle", ""]],
    );
  });

  test("one child per source × destination, in the destination namespace, reading its source by name", () => {
    const out = desiredChildren(selecting(), destinations);
    assert.deepEqual(
      out.children.map((c) => [
        c.namespace,
        c.object.spec.source.resourceRef.name,
        c.object.spec.target.resourceRef.name,
      ]),
      [
        ["a", "api", "api"],
        ["b", "api", "api"],
        ["a", "db", "db"],
        ["b", "db", "db"],
      ],
    );
    assert.equal(new Set(out.children.map((c) => c.name)).size, 4);
    assert.deepEqual(out.collisions, []);
    assert.equal(out.children[0]?.destination.source, "api");
  });

  test("two sources onto one target: the child already made keeps it, else the first by name", () => {
    const fixed = selecting({ apiVersion: "v1", kind: "Secret", name: "merged" });
    const fresh = desiredChildren(fixed, { ...destinations, namespaces: [ns("a")] });
    assert.deepEqual(
      fresh.children.map((c) => c.destination.source),
      ["api"],
    );
    assert.deepEqual(
      fresh.collisions.map((x) => [x.child.destination.source, x.winner.destination.source]),
      [["db", "api"]],
    );
    const dbChild = fresh.collisions[0]?.child as (typeof fresh.children)[0];
    const made = desiredChildren(fixed, {
      ...destinations,
      namespaces: [ns("a")],
      exists: (_n, name) => name === dbChild.name,
    });
    assert.deepEqual(
      made.children.map((c) => c.destination.source),
      ["db"],
    );
    const refused = refusedDestinations(made.collisions, []);
    assert.equal(refused.count, 1);
    assert.equal(refused.failures[0]?.reason, "TargetCollision");
    assert.equal(refused.failures[0]?.source, "api");
  });

  test("the source's namespace gets no copy of a source onto itself", () => {
    const out = desiredChildren(
      clusterSet({
        source: undefined,
        sourceSelector: {
          apiVersion: "v1",
          kind: "Secret",
          namespace: "platform",
          matchLabels: { team: "pay" },
        },
        target: { resourceRef: { apiVersion: "v1", kind: "Secret" } as never },
        namespaceSelector: { include: ["platform"] },
      }),
      destinations,
    );
    assert.deepEqual(out.children, []);
  });

  test("the grant follows the selection: a source that stops matching grants nothing", () => {
    const set = selecting();
    const [child] = desiredChildren(set, destinations).children as [ReturnType<typeof kids>[0]];
    const lookup = () => set;
    const nsOf = (name: string) => ns(name);
    assert.deepEqual(
      grantFor(child.object, lookup, nsOf, undefined, () => objects),
      { sourceNamespace: "platform" },
    );
    const unlabelled = objects.map((o) => (o.name === "api" ? { ...o, labels: {} } : o));
    assert.equal(
      grantFor(child.object, lookup, nsOf, undefined, () => unlabelled),
      undefined,
    );
    assert.equal(
      grantFor(child.object, lookup, nsOf, undefined, () => undefined),
      "undecided",
    );
  });

  test("schema: exactly one of source and sourceSelector; a named source needs a named target", () => {
    assert.equal(validateClusterResourceSyncSet(selecting()).ok, true);
    const both = { ...selecting(), spec: { ...selecting().spec, source: clusterSet().spec.source } };
    assert.equal(validateClusterResourceSyncSet(both).ok, false);
    const neither = { ...selecting(), spec: { ...selecting().spec, sourceSelector: undefined } };
    assert.equal(validateClusterResourceSyncSet(neither).ok, false);
    const unnamed = clusterSet({ target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap" } as never } });
    assert.equal(validateClusterResourceSyncSet(unnamed).ok, false);
    assert.equal(
      validateResourceSyncSet(
        tenantSet({
          source: undefined,
          sourceSelector: { apiVersion: "v1", kind: "ConfigMap", matchLabels: { a: "b" } },
          target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap" } as never },
        }),
      ).ok,
      true,
    );
  });
});

describe("the cap on children per set", () => {
  const set = clusterSet({ namespaceSelector: { include: ["a", "b", "c", "d"] } });
  const desired = kids(set, { namespaces: ["a", "b", "c", "d"].map((n) => ns(n)), secrets: [] });

  test("under the cap: everything", () => {
    assert.deepEqual(
      capChildren(desired, 4, () => false),
      { children: desired, over: [] },
    );
  });

  test("over it: children already made first, new ones up to the cap, the rest over", () => {
    const { children, over } = capChildren(desired, 2, (d) => d.namespace === "d");
    assert.deepEqual(
      children.map((c) => c.namespace),
      ["a", "d"],
    );
    assert.deepEqual(
      over.map((c) => c.namespace),
      ["b", "c"],
    );
  });

  test("a lowered cap never prunes children already made", () => {
    const { children, over } = capChildren(desired, 1, () => true);
    assert.equal(children.length, 4);
    assert.deepEqual(over, []);
  });

  test("the children over the cap are failing destinations, and the condition names the cap", () => {
    const refused = refusedDestinations([], desired.slice(2), 2);
    const summary = summarize(desired.slice(0, 2), [], () => undefined, [], [], refused);
    assert.deepEqual([summary.desired, summary.failing], [4, 2]);
    assert.match(
      summary.failures[0]?.message ?? "",
      /limit of 2 children per set \(--max-children-per-set\)/,
    );
  });
});

describe("the children's label selector in the set's status", () => {
  test("names the set (shortened past 63 characters) and its kind", () => {
    const long = clusterSet();
    long.metadata.name = "a".repeat(70);
    const summary = { desired: 0, synced: 0, failing: 0, failures: [] };
    const selector = nextSetStatus(long, summary, new Date()).childSelector ?? "";
    const value = /set=([^,]*),/.exec(selector)?.[1] ?? "";
    assert.equal(value, setLabelValue(long.metadata.name));
    assert.equal(value.length, 63);
    assert.ok(selector.endsWith(",sinker.influxdata.io/set-kind=ClusterResourceSyncSet"));
    assert.equal(
      nextSetStatus(tenantSet(), summary, new Date()).childSelector,
      "sinker.influxdata.io/set=fleet,sinker.influxdata.io/set-kind=ResourceSyncSet",
    );
  });
});
