/**
 * Level-triggered behaviour and ownership against the real control plane: what Sinker wrote lives in the
 * ResourceSync's status (the sync record), so deletion, retargeting and "delete only what I wrote" work after a
 * restart; exact echo suppression (chains, removal drift); resync at no request cost; single-object watches when a
 * namespace-wide list is refused; backoff not defeated by watches; one reconcile per ResourceSync at restart.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FINALIZER } from "../../src/api/types.ts";
import { ANNOTATION_ADOPT_TARGET as ADOPT } from "../../src/controller/decisions.ts";
import { restrictedUser, waitFor } from "../controlplane/testenv.ts";
import {
  clusterRef,
  cmRef,
  condition,
  configMap,
  deleteResourceSyncs,
  kubeconfigSecret,
  RS_API,
  resourceSync,
  type TestController,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const { a, b } = suite;
const ns = suite.ns;

const cm = cmRef;
const bRef = clusterRef;

interface Record {
  uid: string;
  name: string;
  namespace?: string;
  kind: string;
  apiVersion: string;
  appliedAt: string;
  fieldSetHash?: string;
  cluster: {
    secretRef?: { namespace: string; name: string; key: string };
    identity?: { kubeSystemUID?: string; caSHA256?: string };
  };
}

async function record(n: string, name: string): Promise<Record | undefined> {
  const rs = await a.get(RS_API, "ResourceSync", n, name);
  return (rs?.status as { appliedTarget?: Record } | undefined)?.appliedTarget;
}

async function events(
  n: string,
  name: string,
): Promise<Array<{ reason?: string; type?: string; message?: string }>> {
  return (await a.list("v1", "Event", n)).filter(
    (e) => (e.involvedObject as { name?: string }).name === name,
  ) as Array<{
    reason?: string;
    type?: string;
    message?: string;
  }>;
}

async function reconciles(ctrl: TestController): Promise<number> {
  const m = await ctrl.metrics.reconcileTotal.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

describe("the sync record and what is decided from it", () => {
  const suite = useSuite({ controller: true });

  it("records the applied target (cluster, kind, namespace/name, uid, time) in status", async () => {
    const n = await suite.ns("a", "record");
    const nb = await suite.ns("b", "record");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "local", { source: cm("src"), target: cm("dst") }));
    await a.apply(
      resourceSync(n, "remote", { source: cm("src"), target: { ...cm("dst"), cluster: bRef(nb) } }),
    );
    await waitReady(a, n, "local", "True");
    await waitReady(a, n, "remote", "True");
    const localTarget = await a.get("v1", "ConfigMap", n, "dst");
    const remoteTarget = await b.get("v1", "ConfigMap", nb, "dst");
    const lr = await a.waitFor(
      "local record",
      RS_API,
      "ResourceSync",
      n,
      "local",
      (o) => (o?.status as { appliedTarget?: Record })?.appliedTarget,
    );
    assert.deepEqual(
      { ...lr, appliedAt: undefined, fieldSetHash: undefined },
      {
        cluster: {},
        apiVersion: "v1",
        kind: "ConfigMap",
        namespace: n,
        name: "dst",
        uid: localTarget?.metadata?.uid,
        appliedAt: undefined,
        fieldSetHash: undefined,
      },
    );
    assert.match(lr.appliedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // the set of fields the apply set (issue 25: a restart knows from it that the target is in place)
    assert.match(lr.fieldSetHash ?? "", /^[A-Za-z0-9+/]{27}=$/);
    const rr = await record(n, "remote");
    assert.deepEqual(rr?.cluster.secretRef, { namespace: n, name: "cluster-b", key: "value" });
    // which cluster the Secret reached, as the cluster says (docs/security.md#cluster-identity)
    assert.match(rr?.cluster.identity?.kubeSystemUID ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(rr?.uid, remoteTarget?.metadata?.uid);
    assert.equal(rr?.namespace, nb);
  });

  it("nothing ever applied (unknown kind, denied Secret, missing Secret): the finalizer goes at once", async () => {
    const n = await suite.ns("a", "never");
    const nb = await suite.ns("b", "never");
    const shared = await suite.ns("a", "never-shared");
    await a.apply(kubeconfigSecret(shared, "closed", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "unknown-kind", {
        source: cm("src"),
        target: { resourceRef: { apiVersion: "example.com/v1", kind: "Nothing", name: "x" } },
      }),
    );
    await a.apply(
      resourceSync(n, "denied", {
        source: cm("src"),
        target: {
          ...cm("dst"),
          cluster: {
            namespace: nb,
            kubeConfig: { secretRef: { name: "closed", key: "value", namespace: shared } },
          },
        },
      }),
    );
    await a.apply(
      resourceSync(n, "missing", { source: cm("src"), target: { ...cm("dst"), cluster: bRef(nb, "nope") } }),
    );
    await waitReady(a, n, "unknown-kind", "False", "UnknownKind");
    await waitReady(a, n, "denied", "False", "SecretAccessDenied");
    await waitReady(a, n, "missing", "False", "SecretNotFound");
    for (const name of ["unknown-kind", "denied", "missing"]) {
      const rs = await a.get(RS_API, "ResourceSync", n, name);
      assert.ok(rs?.metadata?.finalizers?.includes(FINALIZER));
      await a.delete(RS_API, "ResourceSync", n, name);
    }
    for (const name of ["unknown-kind", "denied", "missing"])
      await a.waitGone(RS_API, "ResourceSync", n, name, 15_000);
  });

  it("a deletion failure is a condition and an Event, and the deletion completes once it can", async () => {
    const n = await suite.ns("a", "delfail");
    const nb = await suite.ns("b", "delfail");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: { ...cm("dst"), cluster: bRef(nb) } }));
    await waitReady(a, n, "rs", "True");
    // The kubeconfig now names a user that may do nothing in nb: the target can neither be watched nor deleted.
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b-restricted")));
    await a.delete(RS_API, "ResourceSync", n, "rs");
    const failing = await waitReady(a, n, "rs", "False", "Forbidden", 30_000);
    assert.match(failing.message, /forbidden/i);
    assert.ok((await events(n, "rs")).some((e) => e.type === "Warning" && e.reason === "Forbidden"));
    assert.ok(await b.get("v1", "ConfigMap", nb, "dst"), "the target is still there");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.waitGone(RS_API, "ResourceSync", n, "rs", 60_000);
    assert.equal(await b.get("v1", "ConfigMap", nb, "dst"), undefined);
    assert.ok((await events(n, "rs")).some((e) => e.reason === "TargetDeleted"));
  });

  it("changing spec.target deletes the old target (local and remote) with an Event", async () => {
    const n = await suite.ns("a", "retarget");
    const nb = await suite.ns("b", "retarget");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("first") }));
    await waitReady(a, n, "rs", "True");
    assert.ok(await a.get("v1", "ConfigMap", n, "first"));
    // local → remote
    await a.apply(
      resourceSync(n, "rs", { source: cm("src"), target: { ...cm("second"), cluster: bRef(nb) } }),
    );
    await a.waitGone("v1", "ConfigMap", n, "first");
    await b.waitFor("new remote target", "v1", "ConfigMap", nb, "second", (o) => o?.data?.k === "v");
    await a.waitFor("record moved", RS_API, "ResourceSync", n, "rs", (o) =>
      (o?.status as { appliedTarget?: Record })?.appliedTarget?.name === "second" ? true : undefined,
    );
    // remote → another remote name
    await a.apply(
      resourceSync(n, "rs", { source: cm("src"), target: { ...cm("third"), cluster: bRef(nb) } }),
    );
    await b.waitGone("v1", "ConfigMap", nb, "second");
    await b.waitFor("third", "v1", "ConfigMap", nb, "third", (o) => o?.data?.k === "v");
    const evs = await events(n, "rs");
    assert.equal(evs.filter((e) => e.reason === "OldTargetDeleted").length >= 2, true, JSON.stringify(evs));
  });

  it("with disable-target-deletion the old target stays", async () => {
    const n = await suite.ns("a", "retarget-keep");
    await a.apply(configMap(n, "src", { k: "v" }));
    const keep = { "sinker.influxdata.io/disable-target-deletion": "true" };
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("first") }, keep));
    await waitReady(a, n, "rs", "True");
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("second") }, keep));
    await a.waitFor("second", "v1", "ConfigMap", n, "second", (o) => o?.data?.k === "v");
    assert.ok(await a.get("v1", "ConfigMap", n, "first"), "old target kept");
  });

  it("chains work and removing a field Sinker owns is undone", async () => {
    const n = await suite.ns("a", "chain");
    const nb = await suite.ns("b", "chain");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v1" }, { labels: { team: "x" } }));
    // src (a) → mid (b) → back (a): the middle object is one ResourceSync's target and the next one's source
    await a.apply(
      resourceSync(n, "first", { source: cm("src"), target: { ...cm("mid"), cluster: bRef(nb) } }),
    );
    await a.apply(
      resourceSync(n, "second", { source: { ...cm("mid"), cluster: bRef(nb) }, target: cm("back") }),
    );
    await waitReady(a, n, "first", "True");
    await waitReady(a, n, "second", "True");
    await a.waitFor("chain end", "v1", "ConfigMap", n, "back", (o) => o?.data?.k === "v1");
    for (const v of ["v2", "v3", "v4"]) {
      await a.apply(configMap(n, "src", { k: v }, { labels: { team: "x" } }));
      await a.waitFor(`chain carries ${v}`, "v1", "ConfigMap", n, "back", (o) => o?.data?.k === v, 10_000);
    }
    // `kubectl label cm back team-` and a JSON-patch remove of a data key: neither refreshes Sinker's entry
    await a.mergePatch("v1", "ConfigMap", n, "back", { metadata: { labels: { team: null } } });
    await a.waitFor(
      "label restored",
      "v1",
      "ConfigMap",
      n,
      "back",
      (o) => o?.metadata?.labels?.team === "x",
      10_000,
    );
    const r = await suite.env.request(
      "a",
      "PATCH",
      `/api/v1/namespaces/${n}/configmaps/back`,
      [{ op: "remove", path: "/data/k" }],
      "application/json-patch+json",
    );
    assert.equal(r.status, 200);
    await a.waitFor("data restored", "v1", "ConfigMap", n, "back", (o) => o?.data?.k === "v4", 10_000);
  });

  it("ownership: an existing object is not taken over without the annotation; with it, it is", async () => {
    const n = await suite.ns("a", "owner");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(configMap(n, "theirs", { mine: "keep" }), "someone-else");
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("theirs") }));
    const refused = await waitReady(a, n, "rs", "False", "TargetNotOwned");
    assert.match(refused.message, /adopt-target/);
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "theirs"))?.data, { mine: "keep" });
    // deleting a ResourceSync that never wrote it leaves it alone
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    assert.ok(await a.get("v1", "ConfigMap", n, "theirs"), "not deleted");

    await a.apply(resourceSync(n, "adopt", { source: cm("src"), target: cm("theirs") }, { [ADOPT]: "true" }));
    await waitReady(a, n, "adopt", "True");
    assert.equal((await a.get("v1", "ConfigMap", n, "theirs"))?.data?.k, "v");
  });

  it("ownership: an object Sinker applied (e.g. the Rust controller) counts as Sinker's", async () => {
    const n = await suite.ns("a", "rust");
    await a.apply(configMap(n, "src", { k: "new" }));
    await a.apply(configMap(n, "dst", { k: "old" }), "sinker.influxdata.io");
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("dst") }));
    await waitReady(a, n, "rs", "True");
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "new");
  });

  it("ownership: a target replaced by someone else's object is not deleted with the ResourceSync", async () => {
    const n = await suite.ns("a", "replaced");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("dst") }));
    await waitReady(a, n, "rs", "True");
    // someone deletes the target and creates their own object under its name before Sinker re-creates it
    await a.delete("v1", "ConfigMap", n, "dst");
    await a.apply(configMap(n, "dst", { other: "owner" }), "someone-else").catch(() => undefined);
    await waitFor("a target exists", async () => (await a.get("v1", "ConfigMap", n, "dst")) !== undefined);
    const current = await a.get("v1", "ConfigMap", n, "dst");
    const ours = current?.metadata?.managedFields?.some((m) => m.manager === "sinker.influxdata.io");
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    if (!ours) assert.ok(await a.get("v1", "ConfigMap", n, "dst"), "someone else's object stays");
    else
      assert.equal(
        await a.get("v1", "ConfigMap", n, "dst"),
        undefined,
        "Sinker re-created it first: it goes",
      );
  });

  it("ownership: source == target and target == the ResourceSync itself are refused; both deletable", async () => {
    const n = await suite.ns("a", "self");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "same", { source: cm("src"), target: cm("src") }));
    await a.apply(
      resourceSync(n, "itself", {
        source: cm("src"),
        target: { resourceRef: { apiVersion: RS_API, kind: "ResourceSync", name: "itself" } },
      }),
    );
    await waitReady(a, n, "same", "False", "TargetIsSource");
    await waitReady(a, n, "itself", "False", "TargetIsSource");
    await a.delete(RS_API, "ResourceSync", n, "same");
    await a.delete(RS_API, "ResourceSync", n, "itself");
    await a.waitGone(RS_API, "ResourceSync", n, "same");
    await a.waitGone(RS_API, "ResourceSync", n, "itself");
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "src"))?.data, { k: "v" }, "the source is untouched");
  });

  it("ownership: two ResourceSyncs on one target: the later one reports a conflict and does not write", async () => {
    const n = await suite.ns("a", "conflict");
    await a.apply(configMap(n, "one", { from: "one" }));
    await a.apply(configMap(n, "two", { from: "two" }));
    await a.apply(resourceSync(n, "first", { source: cm("one"), target: cm("dst") }));
    await waitReady(a, n, "first", "True");
    await a.waitFor(
      "first's record",
      RS_API,
      "ResourceSync",
      n,
      "first",
      (o) => condition(o, "Ready") && (o?.status as { appliedTarget?: unknown })?.appliedTarget,
    );
    await a.apply(resourceSync(n, "second", { source: cm("two"), target: cm("dst") }));
    const c = await waitReady(a, n, "second", "False", "TargetConflict");
    assert.match(c.message, /first/);
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst"))?.data, { from: "one" });
    // deleting the later one leaves the target alone
    await a.delete(RS_API, "ResourceSync", n, "second");
    await a.waitGone(RS_API, "ResourceSync", n, "second");
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst"))?.data, { from: "one" });
    // once the first one is gone (its target with it), a waiting one takes over at once, not after its backoff
    await a.apply(resourceSync(n, "third", { source: cm("two"), target: cm("dst") }));
    await waitReady(a, n, "third", "False", "TargetConflict");
    await a.delete(RS_API, "ResourceSync", n, "first");
    await a.waitFor(
      "the waiting one writes",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o?.data?.from === "two",
      10_000,
    );
  });

  it("another namespace's kubeconfig Secret is watched only after the check, and alone", async () => {
    const n = await suite.ns("a", "xns-watch");
    const shared = await suite.ns("a", "xns-shared");
    const nb = await suite.ns("b", "xns-watch");
    await a.apply(kubeconfigSecret(shared, "closed", suite.env.kubeconfigText("b")));
    await a.apply(
      kubeconfigSecret(shared, "open", suite.env.kubeconfigText("b"), {
        "sinker.influxdata.io/allowed-namespaces": n,
      }),
    );
    await a.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "unrelated", namespace: shared },
      data: { x: "eA==" },
    });
    await a.apply(configMap(n, "src", { k: "v" }));
    const target = (secret: string, name: string) => ({
      ...cm(name),
      cluster: {
        namespace: nb,
        kubeConfig: { secretRef: { name: secret, key: "value", namespace: shared } },
      },
    });
    await a.apply(resourceSync(n, "denied", { source: cm("src"), target: target("closed", "d1") }));
    await waitReady(a, n, "denied", "False", "SecretAccessDenied");
    const secretWatches = () =>
      suite.controller.controller
        .watchInfo()
        .filter((w) => w.resource.plural === "secrets" && w.namespace === shared);
    assert.deepEqual(secretWatches(), [], "no informer on the other namespace's Secrets while denied");
    await a.apply(resourceSync(n, "allowed", { source: cm("src"), target: target("open", "d2") }));
    await waitReady(a, n, "allowed", "True");
    const w = secretWatches();
    assert.deepEqual(
      w.map((x) => [x.name, x.objects]),
      [["open", 1]],
      "one single-object informer, one Secret cached",
    );
  });
});

describe("watches, resync and backoff", () => {
  const requests = new Map<string, number>();
  const suite = useSuite({ controller: { resyncPeriodMs: 1500, requests } });

  it("one apply per ResourceSync at creation (the ADDED echo is recognised) and one per drift repair", async () => {
    const n = await suite.ns("a", "echo");
    for (let i = 0; i < 10; i++) await a.apply(configMap(n, `src-${i}`, { i: String(i) }));
    const applies = () => requests.get("apply") ?? 0;
    const before = applies();
    for (let i = 0; i < 10; i++)
      await a.apply(resourceSync(n, `rs-${i}`, { source: cm(`src-${i}`), target: cm(`dst-${i}`) }));
    for (let i = 0; i < 10; i++) await waitReady(a, n, `rs-${i}`, "True");
    // let every echo arrive (and a resync or two pass) before counting
    const settled = await reconciles(suite.controller);
    await waitFor("a resync round", async () => (await reconciles(suite.controller)) >= settled + 10, {
      timeoutMs: 30_000,
    });
    assert.equal(applies() - before, 10, "one apply per ResourceSync");
    const repairBase = applies();
    for (let i = 0; i < 5; i++)
      await a.mergePatch("v1", "ConfigMap", n, `dst-${i}`, { data: { i: "drift" } });
    for (let i = 0; i < 5; i++)
      await a.waitFor("repaired", "v1", "ConfigMap", n, `dst-${i}`, (o) => o?.data?.i === String(i), 10_000);
    const after = await reconciles(suite.controller);
    await waitFor("another resync round", async () => (await reconciles(suite.controller)) >= after + 10, {
      timeoutMs: 30_000,
    });
    assert.equal(applies() - repairBase, 5, "one apply per drift repair");
  });

  it("a periodic resync reconciles every ResourceSync at no request cost while the target matches", async () => {
    const n = await suite.ns("a", "resync");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("dst") }));
    await waitReady(a, n, "rs", "True");
    const rsVersion = (await a.get(RS_API, "ResourceSync", n, "rs"))?.metadata?.resourceVersion;
    const targetVersion = (await a.get("v1", "ConfigMap", n, "dst"))?.metadata?.resourceVersion;
    const writes = () => (requests.get("apply") ?? 0) + (requests.get("patch") ?? 0);
    // wait until the ResourceSync's own writes are over, then count across several resync periods
    await waitFor(
      "quiet",
      async () => {
        const w = writes();
        const r = await reconciles(suite.controller);
        await new Promise((resolve) => setTimeout(resolve, 2000));
        return writes() === w && (await reconciles(suite.controller)) > r;
      },
      { timeoutMs: 30_000 },
    );
    const w0 = writes();
    const reads0 = new Map(requests);
    const relists = () => suite.controller.controller.watchInfo().reduce((sum, w) => sum + w.health.lists, 0);
    const relists0 = relists();
    const r0 = await reconciles(suite.controller);
    await waitFor(
      "3 resyncs of every ResourceSync",
      async () => (await reconciles(suite.controller)) >= r0 + 3 * 10,
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(writes(), w0, "no write");
    // A read per reconcile would be 30 or more here. The only reads allowed are the lists of a watch of sources
    // or targets that had to start again from a list (410 Gone after a watch ended): counted by the informers
    // themselves, they are the watches' cost, not the resync's.
    const delta = [...requests]
      .filter(([k]) => k.startsWith("get") || k.startsWith("list"))
      .map(([k, v]) => [k, v - (reads0.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0);
    const detail = `reads ${JSON.stringify(delta)}, informer lists ${relists() - relists0}`;
    assert.equal(requests.get("get") ?? 0, reads0.get("get") ?? 0, `no GET per resync: ${detail}`);
    // (the controller's own informers, of ResourceSyncs, sets and namespaces, are not per ResourceSync at all)
    const own = /^list (resourcesyncs|resourcesyncsets|clusterresourcesyncsets|namespaces)$/;
    const lists = delta.filter(([k]) => k.startsWith("list ") && !own.test(k)).reduce((n, [, v]) => n + v, 0);
    assert.ok(lists <= relists() - relists0, `no list per resync but the watches' own: ${detail}`);
    assert.equal((await a.get(RS_API, "ResourceSync", n, "rs"))?.metadata?.resourceVersion, rsVersion);
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.metadata?.resourceVersion, targetVersion);
  });

  it("a ResourceSync failing with Forbidden backs off (its watches are not re-created per attempt)", async () => {
    const n = await suite.ns("a", "backoff");
    const nb = await suite.ns("b", "backoff");
    await a.apply(kubeconfigSecret(n, "restricted", suite.env.kubeconfigText("b-restricted")));
    await a.apply(
      resourceSync(n, "rs", {
        source: {
          ...cm("src"),
          cluster: { namespace: nb, kubeConfig: { secretRef: { name: "restricted", key: "value" } } },
        },
        target: cm("dst"),
      }),
    );
    await waitReady(a, n, "rs", "False", "Forbidden");
    const errors = async () =>
      (await suite.controller.metrics.reconcileErrorsByReason.get()).values.find(
        (v) => v.labels.reason === "Forbidden",
      )?.value ?? 0;
    const e0 = await errors();
    const t0 = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10_000));
    const attempts = (await errors()) - e0;
    process.stderr.write(
      `# a Forbidden ResourceSync was retried ${attempts} times in ${Date.now() - t0} ms\n`,
    );
    // backoff 0.5, 1, 2, 4, 8 s…: at most a handful in 10 s (it was ~190 before)
    assert.ok(attempts <= 6, `${attempts} attempts in 10 s`);
  });

  it("deleting 30 at once: each finalized exactly once, learnt from the watch (no polling GET)", async () => {
    const n = await suite.ns("a", "delete-once");
    for (let i = 0; i < 30; i++) {
      await a.apply(configMap(n, `src-${i}`, { i: String(i) }));
      await a.apply(resourceSync(n, `rs-${i}`, { source: cm(`src-${i}`), target: cm(`dst-${i}`) }));
    }
    for (let i = 0; i < 30; i++) await waitReady(a, n, `rs-${i}`, "True");
    const gets = requests.get("get") ?? 0;
    const deletes = requests.get("delete") ?? 0;
    const patches = requests.get("patch resourcesyncs") ?? 0;
    const statusPatches = requests.get("patch resourcesyncs/status") ?? 0;
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 30 }, (_, i) => a.delete(RS_API, "ResourceSync", n, `rs-${i}`)));
    await waitFor("all gone", async () => (await a.list(RS_API, "ResourceSync", n)).length === 0, {
      timeoutMs: 60_000,
    });
    const took = Date.now() - t0;
    const evs = (await a.list("v1", "Event", n)).filter((e) => e.reason === "TargetDeleted");
    const perRs = new Map<string, number>();
    for (const e of evs) {
      const name = (e.involvedObject as { name: string }).name;
      perRs.set(name, (perRs.get(name) ?? 0) + Number(e.count ?? 1));
    }
    process.stderr.write(
      `# deleted 30 in ${took} ms: ${(requests.get("delete") ?? 0) - deletes} DELETEs, ` +
        `${(requests.get("patch resourcesyncs") ?? 0) - patches} ResourceSync patches (${(requests.get("patch resourcesyncs/status") ?? 0) - statusPatches} of status), ` +
        `${(requests.get("get") ?? 0) - gets} GETs\n`,
    );
    assert.equal((requests.get("get") ?? 0) - gets, 0, "no polling GET");
    assert.equal((requests.get("delete") ?? 0) - deletes, 30, "one DELETE per target");
    assert.equal(
      (requests.get("patch resourcesyncs") ?? 0) - patches,
      30,
      "one finalizer patch per ResourceSync",
    );
    assert.equal(perRs.size, 30);
    assert.ok(
      [...perRs.values()].every((c) => c === 1),
      JSON.stringify([...perRs]),
    );
    for (let i = 0; i < 30; i++) assert.equal(await a.get("v1", "ConfigMap", n, `dst-${i}`), undefined);
  });

  it("a namespace-wide list refused (Role limited by resourceNames) falls back to a single-object watch", async () => {
    const n = await suite.ns("a", "narrow");
    const nb = await suite.ns("b", "narrow");
    await b.apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "one-configmap", namespace: nb },
      rules: [
        {
          apiGroups: [""],
          resources: ["configmaps"],
          resourceNames: ["src"],
          verbs: ["get", "list", "watch"],
        },
      ],
    });
    await b.apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "one-configmap", namespace: nb },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "one-configmap" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: restrictedUser }],
    });
    await b.apply(configMap(nb, "src", { k: "r1" }));
    await a.apply(kubeconfigSecret(n, "restricted", suite.env.kubeconfigText("b-restricted")));
    await a.apply(
      resourceSync(n, "rs", {
        source: {
          ...cm("src"),
          cluster: { namespace: nb, kubeConfig: { secretRef: { name: "restricted", key: "value" } } },
        },
        target: cm("dst"),
      }),
    );
    await waitReady(a, n, "rs", "True", undefined, 30_000);
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "r1");
    const w = suite.controller.controller.watchInfo().filter((x) => x.namespace === nb);
    assert.deepEqual(
      w.map((x) => x.name),
      ["src"],
      "a single-object watch",
    );
    await b.apply(configMap(nb, "src", { k: "r2" }));
    await a.waitFor(
      "change through the single-object watch",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o?.data?.k === "r2",
      10_000,
    );
  });
});

describe("restart", () => {
  it("after a restart each ResourceSync is reconciled once, deletion is decided from the record", async () => {
    const n = await ns("a", "restart");
    const nb = await ns("b", "restart");
    let ctrl = await suite.startController();
    try {
      await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
      for (let i = 0; i < 20; i++) {
        await a.apply(configMap(n, `src-${i}`, { i: String(i) }));
        await a.apply(
          resourceSync(n, `rs-${i}`, {
            source: cm(`src-${i}`),
            target: i % 2 ? cm(`dst-${i}`) : { ...cm(`dst-${i}`), cluster: bRef(nb) },
          }),
        );
      }
      for (let i = 0; i < 20; i++) await waitReady(a, n, `rs-${i}`, "True");
    } finally {
      await ctrl.stop();
    }
    // While no controller runs: two are deleted (they wait on the finalizer), one is retargeted.
    await a.delete(RS_API, "ResourceSync", n, "rs-0");
    await a.delete(RS_API, "ResourceSync", n, "rs-1");
    await a.apply(
      resourceSync(n, "rs-2", { source: cm("src-2"), target: { ...cm("moved-2"), cluster: bRef(nb) } }),
    );

    const requests = new Map<string, number>();
    ctrl = await suite.startController({ requests });
    try {
      await a.waitGone(RS_API, "ResourceSync", n, "rs-0");
      await a.waitGone(RS_API, "ResourceSync", n, "rs-1");
      assert.equal(
        await b.get("v1", "ConfigMap", nb, "dst-0"),
        undefined,
        "remote target of a deleted one gone",
      );
      assert.equal(
        await a.get("v1", "ConfigMap", n, "dst-1"),
        undefined,
        "local target of a deleted one gone",
      );
      await b.waitFor("retargeted", "v1", "ConfigMap", nb, "moved-2", (o) => o?.data?.i === "2");
      await b.waitGone("v1", "ConfigMap", nb, "dst-2");
      const total = await reconciles(ctrl);
      // 18 live ResourceSyncs, once each; the two deleted ones: a reconcile to delete, one more when the
      // target's watch reports it gone (local: the owner reference GC may be first), one for the object going
      const byResult = (await ctrl.metrics.reconcileTotal.get()).values.map((v) => [
        v.labels.result,
        v.value,
      ]);
      const errors = (await ctrl.metrics.reconcileErrorsByReason.get()).values.map((v) => [
        v.labels.reason,
        v.value,
      ]);
      const detail = `${JSON.stringify(byResult)}, errors ${JSON.stringify(errors)}; requests ${JSON.stringify([...requests])}`;
      process.stderr.write(`# restart: ${total} reconciles for 20 ResourceSyncs: ${detail}\n`);
      assert.ok(total <= 18 + 2 * 3 + 2, `${total} reconciles: ${detail}`);
    } finally {
      await deleteResourceSyncs(a, [n]).catch(() => undefined);
      await ctrl.stop();
    }
  });
});
