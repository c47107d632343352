/**
 * Fan-out (docs/spec/resourcesyncset.md) against the real control plane: a ClusterResourceSyncSet follows
 * namespaces as their labels change (added, pruned, new namespaces), a source edit reaches every copy, remote
 * destinations come and go, pruning Delete and Orphan on the set's deletion; a tenant's ResourceSyncSet reaches its
 * own clusters only and no hand-made ResourceSync can borrow a set's grant.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import {
  cmRef,
  condition,
  configMap,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: { watchWidening: { at: 20, minShare: 0 } } });
const { a, b } = suite;
const run = randomBytes(3).toString("hex");
const LABEL = `fanout-e2e-${run}`;

const cm = cmRef;

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const name = `${prefix}-${run}-${randomBytes(2).toString("hex")}`;
  await a.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } });
  suite.track("a", name);
  return name;
}

async function label(ns: string, value: string | null): Promise<void> {
  await a.mergePatch("v1", "Namespace", undefined, ns, { metadata: { labels: { [LABEL]: value } } });
}

function clusterSet(name: string, spec: Record<string, unknown>): Obj {
  suite.trackClusterSet(name);
  return { apiVersion: RS_API, kind: "ClusterResourceSyncSet", metadata: { name }, spec };
}

/** Namespaces (of those given) holding a ConfigMap `name` whose data.k is `value`. */
async function copiesIn(namespaces: string[], name: string, value?: string): Promise<string[]> {
  const found: string[] = [];
  await Promise.all(
    namespaces.map(async (n) => {
      const o = await a.get("v1", "ConfigMap", n, name);
      if (o && (value === undefined || o.data?.k === value)) found.push(n);
    }),
  );
  return found.sort();
}

async function waitCopies(namespaces: string[], name: string, expected: string[], value?: string) {
  const want = [...expected].sort();
  let last: string[] = [];
  await waitFor(
    `copies of ${name} in exactly ${want.length} namespaces`,
    async () => {
      last = await copiesIn(namespaces, name, value);
      return JSON.stringify(last) === JSON.stringify(want);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; found ${last.length}: ${last.join(", ")}`);
  });
}

async function waitSetStatus(
  kind: string,
  ns: string | undefined,
  name: string,
  want: Record<string, number>,
) {
  let last: unknown;
  await waitFor(
    `${kind} ${name} status ${JSON.stringify(want)}`,
    async () => {
      const set = await a.get(RS_API, kind, ns, name);
      const status = (set?.status ?? {}) as Record<string, unknown>;
      last = status;
      return Object.entries(want).every(([k, v]) => status[k] === v);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status ${JSON.stringify(last)}`);
  });
}

describe("ClusterResourceSyncSet over labelled namespaces", () => {
  let source: string;
  let all: string[];
  const SET = `fan-${run}`;

  before(async () => {
    source = await namespace("fan-src");
    await a.apply(configMap(source, "shared", { k: "v1" }));
    all = [];
    for (let i = 0; i < 50; i++) all.push(await namespace(`fan-${i}`, i < 25 ? { [LABEL]: "on" } : {}));
  });

  it("copies the source into the 25 labelled namespaces of 50, and says so in its status", async () => {
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm("copy"),
        namespaceSelector: { matchLabels: { [LABEL]: "on" } },
      }),
    );
    await waitCopies(all, "copy", all.slice(0, 25));
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 25, synced: 25, failing: 0 });
    const set = await a.get(RS_API, "ClusterResourceSyncSet", undefined, SET);
    assert.equal(condition(set, "Ready")?.status, "True");
    assert.equal(
      ((set?.status ?? {}) as { observedGeneration?: number }).observedGeneration,
      set?.metadata?.generation,
    );
    // the children are ordinary ResourceSyncs, labelled with the set's name (kubectl get rsync -l ...)
    const r = await suite.env.kubectl("a", [
      "get",
      "rsync",
      "-A",
      "-l",
      `sinker.influxdata.io/set=${SET}`,
      "-o",
      "name",
    ]);
    assert.equal(r.stdout.trim().split("\n").length, 25, r.stderr);
    // Events on the set (cluster-scoped: recorded in namespace default)
    await waitFor(
      "DestinationsChanged and Synced Events on the set",
      async () => {
        const reasons = (await a.list("v1", "Event", "default"))
          .filter((e) => (e.involvedObject as { name?: string }).name === SET)
          .map((e) => e.reason);
        return reasons.includes("DestinationsChanged") && reasons.includes("Synced");
      },
      { timeoutMs: 30_000 },
    );
  });

  it("follows labels: 5 more labelled → 30 copies; 10 unlabelled → 20, their copies gone", async () => {
    for (const n of all.slice(25, 30)) await label(n, "on");
    await waitCopies(all, "copy", all.slice(0, 30));
    // 30 destination namespaces: their ConfigMaps are watched by one cluster-wide watch, not 30
    await waitFor(
      "one cluster-wide ConfigMap watch instead of one per namespace",
      async () => {
        const cms = suite.controller.controller.watchInfo().filter((w) => w.resource.kind === "ConfigMap");
        return cms.length === 1 && cms[0]?.namespace === undefined && cms[0]?.synced === true;
      },
      { timeoutMs: 30_000 },
    );
    for (const n of all.slice(0, 10)) await label(n, null);
    await waitCopies(all, "copy", all.slice(10, 30));
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 20, synced: 20, failing: 0 });
  });

  it("gives a namespace created with the label its copy", async () => {
    const started = Date.now();
    const fresh = await namespace("fan-new", { [LABEL]: "on" });
    all.push(fresh);
    await a.waitFor("copy in the new namespace", "v1", "ConfigMap", fresh, "copy", (o) => o, 30_000);
    console.log(`# new matching namespace → copy in ${Date.now() - started} ms`);
  });

  it("carries a source edit to every copy", async () => {
    const started = Date.now();
    await a.apply(configMap(source, "shared", { k: "v2" }));
    await waitCopies(all, "copy", [...all.slice(10, 30), all[all.length - 1] as string], "v2");
    console.log(`# source edit → all 21 copies in ${Date.now() - started} ms`);
  });

  it("adds and removes a cluster b destination", async () => {
    const nb = await suite.env.createNamespace("b", `fan-b-${run}`);
    suite.track("b", nb);
    // the Secret is in a namespace of its own, without an allowed-namespaces annotation: the set grants it, to
    // apply the copy and, once the destination is removed, to delete it
    const remotes = await namespace("fan-remotes");
    await a.apply(kubeconfigSecret(remotes, "cluster-b", suite.env.kubeconfigText("b")));
    const remote = [
      {
        kubeConfig: { secretRef: { name: "cluster-b", namespace: remotes, key: "value" } },
        namespaces: [nb],
      },
    ];
    await a.mergePatch(RS_API, "ClusterResourceSyncSet", undefined, SET, { spec: { clusters: remote } });
    await b.waitFor("copy in cluster b", "v1", "ConfigMap", nb, "copy", (o) => o?.data?.k === "v2", 30_000);
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 22, synced: 22 });
    // a restart (or failover) in between: the new process knows of the grant only what the API holds
    await suite.controller.stop();
    await suite.startController({ watchWidening: { at: 20, minShare: 0 } });
    await a.mergePatch(RS_API, "ClusterResourceSyncSet", undefined, SET, { spec: { clusters: null } });
    await b.waitGone("v1", "ConfigMap", nb, "copy", 30_000);
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 21, synced: 21 });
  });

  it("reports a destination whose target exists and was not made by Sinker, and leaves it alone", async () => {
    const taken = all[40] as string;
    await a.apply(configMap(taken, "copy", { k: "someone else's" }));
    await label(taken, "on");
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 22, synced: 21, failing: 1 });
    const set = await a.get(RS_API, "ClusterResourceSyncSet", undefined, SET);
    const failures = ((set?.status ?? {}) as { failures?: Array<{ namespace?: string; reason: string }> })
      .failures;
    assert.deepEqual(
      failures?.map((f) => [f.namespace, f.reason]),
      [[taken, "TargetNotOwned"]],
    );
    assert.equal(condition(set, "Ready")?.reason, "Failing");
    assert.equal((await a.get("v1", "ConfigMap", taken, "copy"))?.data?.k, "someone else's");
    await label(taken, null);
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 21, synced: 21, failing: 0 });
    assert.equal((await a.get("v1", "ConfigMap", taken, "copy"))?.data?.k, "someone else's");
  });

  it("deletes every copy when the set is deleted (pruning Delete)", async () => {
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, SET);
    // all but the namespace whose ConfigMap someone else made (the test above): that one stays
    const taken = all[40] as string;
    await waitCopies(all, "copy", [taken]);
    assert.equal((await a.get("v1", "ConfigMap", taken, "copy"))?.data?.k, "someone else's");
  });
});

describe("remote namespaces selected by label", () => {
  it("copies to the labelled namespaces of cluster b, following their labels", async () => {
    const source = await namespace("remote-sel-src");
    await a.apply(configMap(source, "shared", { k: "r" }));
    await a.apply(kubeconfigSecret(source, "cluster-b", suite.env.kubeconfigText("b")));
    const [nb1, nb2] = [
      await suite.env.createNamespace("b", `sel-1-${run}`),
      await suite.env.createNamespace("b", `sel-2-${run}`),
    ];
    suite.track("b", nb1);
    suite.track("b", nb2);
    const labelB = (n: string, value: string | null) =>
      b.mergePatch("v1", "Namespace", undefined, n, { metadata: { labels: { [LABEL]: value } } });
    await labelB(nb1, "on");
    const SET = `remote-sel-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm("copy"),
        clusters: [
          {
            kubeConfig: { secretRef: { name: "cluster-b", namespace: source, key: "value" } },
            namespaceSelector: { matchLabels: { [LABEL]: "on" } },
          },
        ],
      }),
    );
    await b.waitFor("copy in the labelled namespace of b", "v1", "ConfigMap", nb1, "copy", (o) => o, 30_000);
    assert.equal(await b.get("v1", "ConfigMap", nb2, "copy"), undefined);
    await labelB(nb2, "on");
    await b.waitFor("copy once the second is labelled", "v1", "ConfigMap", nb2, "copy", (o) => o, 30_000);
    await labelB(nb1, null);
    await b.waitGone("v1", "ConfigMap", nb1, "copy", 30_000);
    await waitSetStatus("ClusterResourceSyncSet", undefined, SET, { desired: 1, synced: 1, failing: 0 });
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, SET);
    await b.waitGone("v1", "ConfigMap", nb2, "copy", 30_000);
  });
});

describe("pruning Orphan", () => {
  it("keeps the copies when the set is deleted, and the ResourceSyncs go", async () => {
    const source = await namespace("orphan-src");
    await a.apply(configMap(source, "shared", { k: "kept" }));
    const targets = [await namespace("orphan-1"), await namespace("orphan-2"), await namespace("orphan-3")];
    const SET = `orphan-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm("copy"),
        namespaceSelector: { include: targets.slice(0, 2) },
        pruning: "Orphan",
      }),
    );
    await waitCopies(targets, "copy", targets.slice(0, 2));
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, SET);
    await waitFor(
      "the set's ResourceSyncs to be gone",
      async () => {
        for (const n of targets) if ((await a.list(RS_API, "ResourceSync", n)).length > 0) return false;
        return true;
      },
      { timeoutMs: 60_000 },
    );
    // the garbage collector would take a copy still owned by its ResourceSync: give it time to (wrongly) act
    await new Promise((r) => setTimeout(r, 2_000));
    assert.deepEqual(await copiesIn(targets, "copy", "kept"), targets.slice(0, 2).sort());
  });
});

describe("tenants", () => {
  it("a ResourceSyncSet copies to the clusters of its own Secrets, selected by label, and prunes", async () => {
    const tenant = await namespace("tenant");
    const nb1 = await suite.env.createNamespace("b", `tenant-b1-${run}`);
    const nb2 = await suite.env.createNamespace("b", `tenant-b2-${run}`);
    suite.track("b", nb1);
    suite.track("b", nb2);
    await a.apply(configMap(tenant, "shared", { k: "t" }));
    await a.apply(kubeconfigSecret(tenant, "b-explicit", suite.env.kubeconfigText("b")));
    const labelled = kubeconfigSecret(tenant, "b-labelled", suite.env.kubeconfigText("b"));
    await a.apply(labelled);
    await a.apply({
      apiVersion: RS_API,
      kind: "ResourceSyncSet",
      metadata: { name: "fleet", namespace: tenant },
      spec: {
        source: cm("shared"),
        target: cm("copy"),
        clusters: [{ kubeConfig: { secretRef: { name: "b-explicit", key: "value" } }, namespace: nb1 }],
        clusterSelector: { matchLabels: { fleet: "yes" }, key: "value", namespace: nb2 },
      },
    });
    await b.waitFor(
      "explicit cluster copy",
      "v1",
      "ConfigMap",
      nb1,
      "copy",
      (o) => o?.data?.k === "t",
      30_000,
    );
    await waitSetStatus("ResourceSyncSet", tenant, "fleet", { desired: 1, synced: 1 });
    await a.mergePatch("v1", "Secret", tenant, "b-labelled", { metadata: { labels: { fleet: "yes" } } });
    await b.waitFor(
      "selected cluster copy",
      "v1",
      "ConfigMap",
      nb2,
      "copy",
      (o) => o?.data?.k === "t",
      30_000,
    );
    await waitSetStatus("ResourceSyncSet", tenant, "fleet", { desired: 2, synced: 2 });
    await a.mergePatch("v1", "Secret", tenant, "b-labelled", { metadata: { labels: { fleet: null } } });
    await b.waitGone("v1", "ConfigMap", nb2, "copy", 30_000);
    await waitSetStatus("ResourceSyncSet", tenant, "fleet", { desired: 1, synced: 1 });
  });

  it("a ResourceSyncSet cannot use another namespace's Secret without that Secret's consent", async () => {
    const tenant = await namespace("tenant-x");
    const other = await namespace("tenant-y");
    await a.apply(configMap(tenant, "shared", { k: "t" }));
    await a.apply(kubeconfigSecret(other, "their-cluster", suite.env.kubeconfigText("b")));
    await a.apply({
      apiVersion: RS_API,
      kind: "ResourceSyncSet",
      metadata: { name: "grab", namespace: tenant },
      spec: {
        source: cm("shared"),
        target: cm("copy"),
        clusters: [{ kubeConfig: { secretRef: { name: "their-cluster", namespace: other, key: "value" } } }],
      },
    });
    await waitSetStatus("ResourceSyncSet", tenant, "grab", { desired: 1, synced: 0, failing: 1 });
    const set = await a.get(RS_API, "ResourceSyncSet", tenant, "grab");
    const failures = ((set?.status ?? {}) as { failures?: Array<{ reason: string }> }).failures;
    assert.equal(failures?.[0]?.reason, "SecretAccessDenied");
  });

  it("a hand-made copy of a set's child in an unselected namespace does not get the source", async () => {
    const source = await namespace("grant-src");
    await a.apply(configMap(source, "secret-ish", { k: "private" }));
    const selected = await namespace("grant-in");
    const intruder = await namespace("grant-out");
    const SET = `grant-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("secret-ish"), namespace: source },
        target: cm("copy"),
        namespaceSelector: { include: [selected] },
      }),
    );
    await waitCopies([selected, intruder], "copy", [selected]);
    const [child] = await a.list(RS_API, "ResourceSync", selected);
    assert.ok(child?.metadata);
    // the tenant of `intruder` copies the child, owner reference and annotation included
    await a.apply({
      ...resourceSync(intruder, "borrow", child.spec, child.metadata.annotations),
      metadata: {
        name: "borrow",
        namespace: intruder,
        annotations: child.metadata.annotations ?? {},
        ownerReferences: child.metadata.ownerReferences ?? [],
      },
    });
    // Either the ResourceSync reconciler refuses it, or the set prunes it as a child it does not want (it names
    // the set as its controller): never does the copy appear.
    let copied = false;
    await waitFor(
      "the forged child refused or pruned",
      async () => {
        if (await a.get("v1", "ConfigMap", intruder, "copy")) copied = true;
        const rs = await a.get(RS_API, "ResourceSync", intruder, "borrow");
        return !rs || condition(rs, "Ready")?.reason === "SourceNamespaceNotGranted";
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    assert.equal(copied || (await a.get("v1", "ConfigMap", intruder, "copy")) !== undefined, false);
    // and a plain ResourceSync naming the annotation gets nothing either
    await a.apply(
      resourceSync(
        intruder,
        "plain",
        { source: cm("secret-ish"), target: cm("copy2") },
        {
          "sinker.influxdata.io/source-namespace": source,
        },
      ),
    );
    await waitReady(a, intruder, "plain", "False", "SourceNamespaceNotGranted");
  });
});
