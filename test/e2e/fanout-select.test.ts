/**
 * Sets that pick their sources by label (docs/spec/resourcesyncset.md#sources-selected-by-label), against the real
 * control plane: Secrets selected by label copied into local namespaces and into cluster b, following the labels
 * (labelled later: copied; unlabelled or deleted: pruned with Delete, kept with no owner left with Orphan), two
 * sources colliding on one target, and a tenant's set stopped at the cap on children.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import { type Cluster, kubeconfigSecret, type Obj, RS_API } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const CAP = 10;
const suite = useSuite({ controller: { maxChildrenPerSet: CAP } });
const { a, b } = suite;
const run = randomBytes(3).toString("hex");
/** The cap on children per set in this file: the tenant test below selects more. */
const LABEL = `team-${run}`;

const secret = (
  namespace: string,
  name: string,
  value: string,
  labels: Record<string, string> = {},
): Obj => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace, labels },
  stringData: { value },
});
const secretValue = async (c: Cluster, ns: string, name: string) => {
  const s = await c.get("v1", "Secret", ns, name);
  const data = (s as { data?: Record<string, string> } | undefined)?.data?.value;
  return data === undefined ? undefined : Buffer.from(data, "base64").toString();
};
const relabel = (ns: string, name: string, value: string | null) =>
  a.mergePatch("v1", "Secret", ns, name, { metadata: { labels: { [LABEL]: value } } });

function clusterSet(name: string, spec: Record<string, unknown>): Obj {
  suite.trackClusterSet(name);
  return { apiVersion: RS_API, kind: "ClusterResourceSyncSet", metadata: { name }, spec };
}

type Status = Record<string, unknown> & {
  conditions?: Array<{ type: string; reason: string; message: string }>;
  failures?: Array<{ reason: string; source?: string; message: string }>;
};

async function waitStatus(kind: string, ns: string | undefined, name: string, ok: (s: Status) => boolean) {
  let last: Status = {};
  await waitFor(
    `${kind} ${name} status`,
    async () => {
      last = ((await a.get(RS_API, kind, ns, name))?.status ?? {}) as Status;
      return ok(last);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status ${JSON.stringify(last)}`);
  });
  return last;
}

/** Where (cluster/namespace) each of `names` has a copy, among the destinations given. */
async function copies(dests: Array<[Cluster, string]>, names: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const [c, ns] of dests)
    for (const n of names) if ((await c.get("v1", "Secret", ns, n)) !== undefined) found.push(`${ns}/${n}`);
  return found.sort();
}

async function waitCopies(dests: Array<[Cluster, string]>, names: string[], want: string[]) {
  const expected = [...want].sort();
  let last: string[] = [];
  await waitFor(
    `copies ${expected.join(", ")}`,
    async () => {
      last = await copies(dests, names);
      return JSON.stringify(last) === JSON.stringify(expected);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; found ${last.join(", ")}`);
  });
}

const everywhere = (dests: Array<[Cluster, string]>, names: string[]) =>
  dests.flatMap(([, ns]) => names.map((n) => `${ns}/${n}`));

async function selectingSet(pruning: "Delete" | "Orphan") {
  const src = await suite.ns("a", `sel-src-${pruning.toLowerCase()}`);
  const d1 = await suite.ns("a", "sel-d1");
  const d2 = await suite.ns("a", "sel-d2");
  const nb = await suite.ns("b", "sel-b");
  await a.apply(kubeconfigSecret(src, "cluster-b", suite.env.kubeconfigText("b")));
  await a.apply(secret(src, "one", "1", { [LABEL]: "pay" }));
  await a.apply(secret(src, "two", "2", { [LABEL]: "pay" }));
  await a.apply(secret(src, "three", "3"));
  const SET = `sel-${pruning.toLowerCase()}-${run}`;
  await a.apply(
    clusterSet(SET, {
      sourceSelector: { apiVersion: "v1", kind: "Secret", namespace: src, matchLabels: { [LABEL]: "pay" } },
      target: { resourceRef: { apiVersion: "v1", kind: "Secret" } },
      namespaceSelector: { include: [d1, d2] },
      clusters: [
        { kubeConfig: { secretRef: { name: "cluster-b", namespace: src, key: "value" } }, namespaces: [nb] },
      ],
      pruning,
    }),
  );
  const dests: Array<[Cluster, string]> = [
    [a, d1],
    [a, d2],
    [b, nb],
  ];
  return { src, d1, nb, SET, dests };
}

describe("a ClusterResourceSyncSet selecting Secrets by label (pruning Delete)", () => {
  it("copies the labelled ones to local namespaces and cluster b, and follows their labels", async () => {
    const { src, d1, SET, dests } = await selectingSet("Delete");
    const names = ["one", "two", "three"];
    await waitCopies(dests, names, everywhere(dests, ["one", "two"]));
    assert.equal(await secretValue(a, d1, "two"), "2");
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (s) => s.desired === 6 && s.synced === 6);
    // labelled later: copied everywhere
    await relabel(src, "three", "pay");
    await waitCopies(dests, names, everywhere(dests, names));
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (s) => s.desired === 9 && s.synced === 9);
    // a source's data change reaches its copies (the children are ordinary ResourceSyncs)
    await a.apply(secret(src, "three", "3b", { [LABEL]: "pay" }));
    await waitFor(
      "the edit copied",
      async () => (await secretValue(b, dests[2]?.[1] ?? "", "three")) === "3b",
      {
        timeoutMs: 30_000,
      },
    );
    // unlabelled: its copies are pruned; deleted: likewise
    await relabel(src, "one", null);
    await waitCopies(dests, names, everywhere(dests, ["two", "three"]));
    await a.delete("v1", "Secret", src, "two");
    await waitCopies(dests, names, everywhere(dests, ["three"]));
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (s) => s.desired === 3 && s.synced === 3);
    // the children are listed by the set's label
    const r = await suite.env.kubectl("a", [
      "get",
      "rsync",
      "-A",
      "-l",
      `sinker.influxdata.io/set=${SET}`,
      "-o",
      "name",
    ]);
    assert.equal(r.stdout.trim().split("\n").length, 3, r.stdout + r.stderr);
    const selector = String(
      (await waitStatus("ClusterResourceSyncSet", undefined, SET, () => true)).childSelector,
    );
    assert.equal(
      selector,
      `sinker.influxdata.io/set=${SET},sinker.influxdata.io/set-kind=ClusterResourceSyncSet`,
    );
    const bySelector = await suite.env.kubectl("a", ["get", "rsync", "-A", "-l", selector, "-o", "name"]);
    assert.equal(bySelector.stdout.trim().split("\n").length, 3, bySelector.stdout + bySelector.stderr);
  });
});

describe("pruning Orphan", () => {
  it("an unlabelled source keeps its copies, with no owner left", async () => {
    const { src, d1, SET, dests } = await selectingSet("Orphan");
    await waitCopies(dests, ["one", "two", "three"], everywhere(dests, ["one", "two"]));
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (s) => s.desired === 6 && s.synced === 6);
    await relabel(src, "one", null);
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (s) => s.desired === 3 && s.synced === 3);
    await waitFor(
      "the children of `one` gone",
      async () => {
        const children = await a.list(RS_API, "ResourceSync", d1);
        return children.every(
          (c) => (c.spec as { source: { resourceRef: { name: string } } }).source.resourceRef.name !== "one",
        );
      },
      { timeoutMs: 30_000 },
    );
    // the local copy loses its owner reference to the deleted child (else the garbage collector would take it)
    await waitFor(
      "the copy of `one` in d1 without owner",
      async () => {
        const copy = await a.get("v1", "Secret", d1, "one");
        return copy !== undefined && (copy.metadata?.ownerReferences ?? []).length === 0;
      },
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(await copies(dests, ["one"]), everywhere(dests, ["one"]).sort());
    assert.equal(await secretValue(b, dests[2]?.[1] ?? "", "one"), "1");
  });
});

describe("two selected sources, one target", () => {
  it("are reported as colliding; the copy made first keeps the target, never overwritten", async () => {
    const src = await suite.ns("a", "coll-src");
    const dest = await suite.ns("a", "coll-dst");
    await a.apply(secret(src, "b-second", "second", { [LABEL]: "pay" }));
    const SET = `coll-${run}`;
    await a.apply(
      clusterSet(SET, {
        sourceSelector: { apiVersion: "v1", kind: "Secret", namespace: src, matchLabels: { [LABEL]: "pay" } },
        target: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "merged" } },
        namespaceSelector: { include: [dest] },
      }),
    );
    await waitFor("the copy", async () => (await secretValue(a, dest, "merged")) === "second", {
      timeoutMs: 30_000,
    });
    // a source sorting first arrives: it does not take the target over
    await a.apply(secret(src, "a-first", "first", { [LABEL]: "pay" }));
    const s = await waitStatus("ClusterResourceSyncSet", undefined, SET, (st) => st.failing === 1);
    assert.equal(s.desired, 2);
    assert.equal(s.synced, 1);
    assert.deepEqual(
      s.failures?.map((f) => [f.reason, f.source]),
      [["TargetCollision", "a-first"]],
    );
    assert.match(s.failures?.[0]?.message ?? "", /b-second/);
    assert.equal(s.conditions?.find((c) => c.type === "Ready")?.reason, "Failing");
    assert.equal(await secretValue(a, dest, "merged"), "second");
    // the keeper goes: the other one takes the target
    await relabel(src, "b-second", null);
    await waitFor(
      "the copy of the other source",
      async () => (await secretValue(a, dest, "merged")) === "first",
      {
        timeoutMs: 30_000,
      },
    );
    await waitStatus("ClusterResourceSyncSet", undefined, SET, (st) => st.failing === 0 && st.synced === 1);
  });
});

describe("the cap on children per set", () => {
  it("stops a tenant's set at --max-children-per-set and says so", async () => {
    const tenant = await suite.ns("a", "cap-tenant");
    const nbs = [await suite.ns("b", "cap-b1"), await suite.ns("b", "cap-b2")];
    await a.apply(kubeconfigSecret(tenant, "cluster-b", suite.env.kubeconfigText("b")));
    // 6 sources × 2 destinations = 12 children, over the cap of 10
    for (let i = 0; i < 6; i++)
      await a.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `cfg-${i}`, namespace: tenant, labels: { [LABEL]: "fleet" } },
        data: { i: String(i) },
      });
    await a.apply({
      apiVersion: RS_API,
      kind: "ResourceSyncSet",
      metadata: { name: "fleet", namespace: tenant },
      spec: {
        sourceSelector: { apiVersion: "v1", kind: "ConfigMap", matchLabels: { [LABEL]: "fleet" } },
        target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap" } },
        clusters: nbs.map((nb) => ({
          kubeConfig: { secretRef: { name: "cluster-b", key: "value" } },
          namespace: nb,
        })),
      },
    });
    const s = await waitStatus("ResourceSyncSet", tenant, "fleet", (st) => st.synced === CAP);
    assert.equal(s.desired, 12);
    assert.equal(s.failing, 2);
    const ready = s.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.reason, "ChildLimitReached");
    assert.match(ready?.message ?? "", /limit of 10 children per set \(--max-children-per-set\)/);
    assert.equal((await a.list(RS_API, "ResourceSync", tenant)).length, CAP);
    // one source fewer: 10 fit, the limit is no longer hit
    await a.delete("v1", "ConfigMap", tenant, "cfg-5");
    await waitStatus(
      "ResourceSyncSet",
      tenant,
      "fleet",
      (st) => st.desired === 10 && st.synced === 10 && st.conditions?.[0]?.reason === "Synced",
    );
  });
});
