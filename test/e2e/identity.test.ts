/**
 * Cluster identity (docs/security.md#cluster-identity) against the real control plane: one cluster is one cluster
 * whatever Secret or alias of its server reaches it. Two tenants' Secrets for cluster b naming one target: one
 * ResourceSync holds it, the other reports TargetConflict, and the target settles (no write war). A `localhost`
 * alias of cluster a is cluster a: a target that is the source through it is refused (TargetIsSource), with or
 * without adopt-target, and deleting the ResourceSync leaves the source. A Secret that now reaches another cluster
 * is a new target.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ANNOTATION_ADOPT_TARGET as ADOPT } from "../../src/controller/decisions.ts";
import { restrictedNamespace, waitFor } from "../controlplane/testenv.ts";
import {
  type Cluster,
  clusterRef,
  cmRef,
  condition,
  configMap,
  deleteResourceSyncs,
  kubeconfigSecret,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;

/** The kubeconfig of `name` with its server written `https://localhost:<port>` (an alias of 127.0.0.1). */
function aliased(name: "a" | "b" | "b-restricted"): string {
  const text = suite.env.kubeconfigText(name);
  assert.match(text, /https:\/\/127\.0\.0\.1:\d+/);
  return text.replace(/https:\/\/127\.0\.0\.1:/g, "https://localhost:");
}

/** Ready of two ResourceSyncs once one is True and the other False (TargetConflict). */
async function oneHoldsTheOtherConflicts(
  n1: string,
  n2: string,
  name: string,
): Promise<{ winner: string; loser: string; message: string }> {
  let last = "";
  return waitFor(
    "one ResourceSync Ready=True, the other TargetConflict",
    async () => {
      const r1 = condition(await a.get(RS_API, "ResourceSync", n1, name), "Ready");
      const r2 = condition(await a.get(RS_API, "ResourceSync", n2, name), "Ready");
      last = JSON.stringify([r1, r2]);
      if (r1?.status === "True" && r2?.status === "False" && r2.reason === "TargetConflict")
        return { winner: n1, loser: n2, message: r2.message };
      if (r2?.status === "True" && r1?.status === "False" && r1.reason === "TargetConflict")
        return { winner: n2, loser: n1, message: r1.message };
      return undefined;
    },
    { timeoutMs: 60_000 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${last}`);
  });
}

/** Waits until the target's resourceVersion stays the same for `quietMs` (a write war never gets there). */
async function settled(cluster: Cluster, namespace: string, name: string, quietMs = 3_000) {
  let rv = "";
  let since = Date.now();
  return waitFor(
    `ConfigMap ${namespace}/${name} to stop changing`,
    async () => {
      const o = await cluster.get("v1", "ConfigMap", namespace, name);
      const now = o?.metadata?.resourceVersion ?? "";
      if (now !== rv) {
        rv = now;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= quietMs ? o : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  );
}

/** The resourceVersion of cluster b's ConfigMaps in `namespace` now: where `versionsSince` starts. */
async function configMapsVersion(namespace: string): Promise<string> {
  const listed = await suite.env.request("b", "GET", `/api/v1/namespaces/${namespace}/configmaps`);
  const rv = (listed.body as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
  assert.ok(rv, `list of ConfigMaps in ${namespace}: ${listed.status}`);
  return rv;
}

/**
 * Every version ConfigMap `namespace/name` in cluster b has had since resourceVersion `rv` (the `data` of each
 * ADDED and MODIFIED event, in order): a watch from `rv` replays them all, and ends a second later. A
 * resourceVersion the server no longer replays from (410 Gone) fails the test rather than passing it unseen.
 */
async function versionsSince(
  namespace: string,
  name: string,
  rv: string,
): Promise<Array<Record<string, string>>> {
  const watched = await suite.env.request(
    "b",
    "GET",
    `/api/v1/namespaces/${namespace}/configmaps?watch=true&resourceVersion=${rv}&timeoutSeconds=1` +
      `&fieldSelector=metadata.name%3D${name}`,
  );
  assert.equal(watched.status, 200, `watch of ConfigMap ${namespace}/${name}`);
  const lines = typeof watched.body === "string" ? watched.body.split("\n") : [JSON.stringify(watched.body)];
  const events = lines
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { type: string; object: { data?: Record<string, string> } });
  const failed = events.find((e) => e.type === "ERROR");
  assert.equal(failed, undefined, `watch from resourceVersion ${rv}: ${JSON.stringify(failed?.object)}`);
  return events.filter((e) => e.type === "ADDED" || e.type === "MODIFIED").map((e) => e.object.data ?? {});
}

describe("one cluster through two tenants' Secrets", () => {
  it("two Secrets (one an alias) for cluster b, one target: one holds it, the other TargetConflict; writes stop", async () => {
    const t1 = await suite.ns("a", "tenant1");
    const t2 = await suite.ns("a", "tenant2");
    const nb = await suite.ns("b", "shared");
    await a.apply(kubeconfigSecret(t1, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(kubeconfigSecret(t2, "my-b", aliased("b")));
    await a.apply(configMap(t1, "src", { from: "tenant1" }));
    await a.apply(configMap(t2, "src", { from: "tenant2" }));
    const target = (secret: string) => ({ ...cmRef("dst"), cluster: clusterRef(nb, secret) });
    const before = await configMapsVersion(nb);
    // both at once: neither has a record when the other first reconciles
    await Promise.all([
      a.apply(resourceSync(t1, "sync", { source: cmRef("src"), target: target("cluster-b") })),
      a.apply(resourceSync(t2, "sync", { source: cmRef("src"), target: target("my-b") })),
    ]);
    const { winner, loser, message } = await oneHoldsTheOtherConflicts(t1, t2, "sync");
    assert.match(message, new RegExp(`${winner}/sync`));
    const dst = await settled(b, nb, "dst");
    const from = winner === t1 ? "tenant1" : "tenant2";
    assert.deepEqual(dst?.data, { from });
    // the other never wrote it, not even once before the claims were known: every version is the holder's
    assert.deepEqual(
      [...new Set((await versionsSince(nb, "dst", before)).map((v) => v.from))],
      [from],
      "values the target held while both ResourceSyncs were new",
    );
    // still so after the settling: the loser did not take it over meanwhile
    assert.equal(condition(await a.get(RS_API, "ResourceSync", loser, "sync"), "Ready")?.status, "False");
    assert.equal(condition(await a.get(RS_API, "ResourceSync", winner, "sync"), "Ready")?.status, "True");

    // deleting the one that does not hold the target leaves it alone; then the other may take it over
    await a.delete(RS_API, "ResourceSync", loser, "sync");
    await a.waitGone(RS_API, "ResourceSync", loser, "sync", 30_000);
    assert.deepEqual((await b.get("v1", "ConfigMap", nb, "dst"))?.data, dst?.data);
  });

  it("a Secret whose user may not read kube-system (CA fallback) still names the same cluster", async () => {
    const t1 = await suite.ns("a", "admin");
    const t2 = await suite.ns("a", "restricted");
    await a.apply(kubeconfigSecret(t1, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(kubeconfigSecret(t2, "cluster-b", suite.env.kubeconfigText("b-restricted")));
    await a.apply(configMap(t1, "src", { from: "admin" }));
    await a.apply(configMap(t2, "src", { from: "restricted" }));
    const name = `dst-${t1}`;
    const target = { ...cmRef(name), cluster: clusterRef(restrictedNamespace) };
    await a.apply(resourceSync(t1, "first", { source: cmRef("src"), target }));
    await waitReady(a, t1, "first", "True", undefined, 30_000);
    await a.waitFor("first's record", RS_API, "ResourceSync", t1, "first", (o) =>
      Boolean((o?.status as { appliedTarget?: unknown })?.appliedTarget),
    );
    await a.apply(resourceSync(t2, "second", { source: cmRef("src"), target }));
    const c = await waitReady(a, t2, "second", "False", "TargetConflict", 30_000);
    assert.match(c.message, new RegExp(`${t1}/first`));
    const dst = await settled(b, restrictedNamespace, name);
    assert.deepEqual(dst?.data, { from: "admin" });
    // the holder's record says which cluster, as the cluster says (its kube-system uid: the admin may read it)
    const first = await a.get(RS_API, "ResourceSync", t1, "first");
    const identity = (
      first?.status as { appliedTarget?: { cluster?: { identity?: Record<string, string> } } }
    )?.appliedTarget?.cluster?.identity;
    assert.match(identity?.kubeSystemUID ?? "", /^[0-9a-f-]{36}$/);
    assert.match(identity?.caSHA256 ?? "", /^[0-9a-f]{64}$/);
    await deleteResourceSyncs(a, [t1, t2]);
  });
});

describe("an alias of the local cluster is the local cluster", () => {
  it("a target that is the source through a localhost Secret is refused, with or without adopt-target", async () => {
    const n = await suite.ns("a", "alias");
    await a.apply(kubeconfigSecret(n, "self", aliased("a")));
    await a.apply(configMap(n, "src", { k: "v" }));
    const spec = { source: cmRef("src"), target: { ...cmRef("src"), cluster: clusterRef(n, "self") } };
    await a.apply(resourceSync(n, "adopting", spec, { [ADOPT]: "true" }));
    await a.apply(resourceSync(n, "plain", spec));
    await waitReady(a, n, "adopting", "False", "TargetIsSource", 30_000);
    await waitReady(a, n, "plain", "False", "TargetIsSource", 30_000);
    const src = await a.get("v1", "ConfigMap", n, "src");
    assert.ok(
      !(src?.metadata?.managedFields ?? []).some((m) => m.manager === "sinker.influxdata.io"),
      "Sinker never wrote the source",
    );
    await a.delete(RS_API, "ResourceSync", n, "adopting");
    await a.delete(RS_API, "ResourceSync", n, "plain");
    await a.waitGone(RS_API, "ResourceSync", n, "adopting", 30_000);
    await a.waitGone(RS_API, "ResourceSync", n, "plain", 30_000);
    const after = await a.get("v1", "ConfigMap", n, "src");
    assert.equal(after?.metadata?.uid, src?.metadata?.uid, "the source is still there");
    assert.deepEqual(after?.data, { k: "v" });
  });

  it("a local target and the same object through a localhost Secret: one holds it, the other TargetConflict", async () => {
    const n = await suite.ns("a", "alias-claim");
    await a.apply(kubeconfigSecret(n, "self", aliased("a")));
    await a.apply(configMap(n, "one", { from: "one" }));
    await a.apply(configMap(n, "two", { from: "two" }));
    await a.apply(resourceSync(n, "local", { source: cmRef("one"), target: cmRef("dst") }));
    await waitReady(a, n, "local", "True", undefined, 30_000);
    await a.waitFor("local's record", RS_API, "ResourceSync", n, "local", (o) =>
      Boolean((o?.status as { appliedTarget?: unknown })?.appliedTarget),
    );
    await a.apply(
      resourceSync(n, "via-alias", {
        source: cmRef("two"),
        target: { ...cmRef("dst"), cluster: clusterRef(n, "self") },
      }),
    );
    await waitReady(a, n, "via-alias", "False", "TargetConflict", 30_000);
    const dst = await settled(a, n, "dst");
    assert.deepEqual(dst?.data, { from: "one" });
  });
});

describe("a Secret that now reaches another cluster", () => {
  it("is handled like a new target: the old copy is left, the new cluster gets one", async () => {
    const n = await suite.ns("a", "moved");
    const nb = await suite.ns("b", "moved");
    // the same namespace name in cluster a, for the Secret once it points there
    await a.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: nb } });
    suite.track("a", nb);
    await a.apply(kubeconfigSecret(n, "where", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "sync", {
        source: cmRef("src"),
        target: { ...cmRef("dst"), cluster: clusterRef(nb, "where") },
      }),
    );
    await waitReady(a, n, "sync", "True", undefined, 30_000);
    const inB = await b.waitFor("the copy in b", "v1", "ConfigMap", nb, "dst", (o) => o);
    await a.apply(kubeconfigSecret(n, "where", suite.env.kubeconfigText("a")));
    await a.waitFor("the copy in a", "v1", "ConfigMap", nb, "dst", (o) => o?.data?.k === "v", 30_000);
    await a.waitFor(
      "the record names the new cluster",
      RS_API,
      "ResourceSync",
      n,
      "sync",
      (o) => {
        const r = (o?.status as { appliedTarget?: { uid?: string } })?.appliedTarget;
        return r?.uid !== undefined && r.uid !== inB?.metadata?.uid;
      },
      30_000,
    );
    const events = (await a.list("v1", "Event", n)).filter((e) => e.reason === "OldTargetKept");
    assert.ok(events.length > 0, "an OldTargetKept Event says the old copy was left");
    assert.equal((await b.get("v1", "ConfigMap", nb, "dst"))?.metadata?.uid, inB?.metadata?.uid, "left in b");
  });
});
