/**
 * The controller against the real two-cluster control plane: the behaviour of docs/spec/resourcesync.md, each with an
 * assertion that fails when the behaviour breaks.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FINALIZER, FIELD_MANAGER as MANAGER } from "../../src/api/types.ts";
import { waitFor } from "../controlplane/testenv.ts";
import {
  clusterRef,
  cmRef,
  condition,
  configMap,
  kubeconfigSecret,
  RS_API,
  resourceSync,
  sleep,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;
const ns = suite.ns;

/** ConfigMap `src` cloned to `dst` by ResourceSync `rs` in namespace `n` of cluster a, synced. */
async function syncedClone(n: string, data: Record<string, string>, annotations?: Record<string, string>) {
  await a.apply(configMap(n, "src", data));
  await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("dst") }, annotations));
  await waitReady(a, n, "rs", "True");
}

const cm = cmRef;
const bRef = clusterRef;

describe("in one cluster", () => {
  it("clones a ConfigMap, with finalizer, owner reference, field manager and Ready condition", async () => {
    const n = await ns("a", "clone");
    await a.apply(
      configMap(
        n,
        "src",
        { k: "v", other: "x" },
        {
          labels: { app: "demo" },
          annotations: { note: "kept", "kubectl.kubernetes.io/last-applied-configuration": "{}" },
        },
      ),
    );
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("src"),
        target: cm("dst"),
      }),
    );
    const ready = await waitReady(a, n, "rs", "True", "Synced");
    const target = await a.get("v1", "ConfigMap", n, "dst");
    assert.deepEqual(target?.data, { k: "v", other: "x" });
    assert.equal(target?.metadata?.labels?.app, "demo");
    assert.equal(target?.metadata?.annotations?.note, "kept");
    assert.equal(
      target?.metadata?.annotations?.["kubectl.kubernetes.io/last-applied-configuration"],
      undefined,
    );
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    assert.deepEqual(target?.metadata?.ownerReferences, [
      {
        apiVersion: RS_API,
        kind: "ResourceSync",
        name: "rs",
        uid: rs?.metadata?.uid,
        controller: false,
        blockOwnerDeletion: true,
      },
    ]);
    assert.ok(target?.metadata?.managedFields?.some((m) => m.manager === MANAGER && m.operation === "Apply"));
    assert.ok(rs?.metadata?.finalizers?.includes(FINALIZER));
    assert.equal(ready.observedGeneration, rs?.metadata?.generation);
    assert.equal(
      (rs?.status as { observedGeneration?: number } | undefined)?.observedGeneration,
      rs?.metadata?.generation,
    );

    // A first success is what the Ready condition says: no Event for it (see syncedEventWorthIt).
    const events = await a.list("v1", "Event", n);
    assert.ok(
      !events.some((e) => e.reason === "Synced" && (e.involvedObject as { name: string }).name === "rs"),
      "no Synced event for a first success",
    );
  });

  it("undoes drift on the target, propagates source changes, re-creates a deleted target", async () => {
    const n = await ns("a", "drift");
    await syncedClone(n, { k: "v1" });

    let t = Date.now();
    await a.mergePatch("v1", "ConfigMap", n, "dst", { data: { k: "drifted" } });
    await a.waitFor("drift undone", "v1", "ConfigMap", n, "dst", (o) => o?.data?.k === "v1", 5000);
    const driftMs = Date.now() - t;

    t = Date.now();
    await a.apply(configMap(n, "src", { k: "v2", added: "yes" }));
    await a.waitFor(
      "source change propagated",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o?.data?.k === "v2" && o.data.added === "yes",
      5000,
    );
    const propagateMs = Date.now() - t;

    // A field removed from the source is removed from the target (server-side apply ownership).
    await a.apply(configMap(n, "src", { k: "v2" }));
    await a.waitFor(
      "removed field removed",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o?.data?.added === undefined,
      5000,
    );

    // A field someone else owns on the target stays.
    await a.mergePatch("v1", "ConfigMap", n, "dst", { data: { theirs: "kept" } });
    await sleep(500);
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.theirs, "kept");

    t = Date.now();
    const before = await a.get("v1", "ConfigMap", n, "dst");
    await a.delete("v1", "ConfigMap", n, "dst");
    await a.waitFor(
      "target re-created",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o && o.metadata?.uid !== before?.metadata?.uid && o.data?.k === "v2",
      5000,
    );
    const recreateMs = Date.now() - t;
    process.stderr.write(
      `# drift undone in ${driftMs} ms, source change in ${propagateMs} ms, re-created in ${recreateMs} ms\n`,
    );
  });

  it("deletes the target when the ResourceSync is deleted, and removes the finalizer", async () => {
    const n = await ns("a", "delete");
    await syncedClone(n, { k: "v" });
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    assert.equal(await a.get("v1", "ConfigMap", n, "dst"), undefined, "target deleted");
    assert.ok(await a.get("v1", "ConfigMap", n, "src"), "source untouched");
  });

  it("waits for a target with finalizers of its own before letting the ResourceSync go", async () => {
    const n = await ns("a", "hold");
    await syncedClone(n, { k: "v" });
    await a.mergePatch("v1", "ConfigMap", n, "dst", { metadata: { finalizers: ["example.com/hold"] } });
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitFor(
      "target being deleted",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o?.metadata?.deletionTimestamp,
    );
    await sleep(2500);
    const waiting = await a.get(RS_API, "ResourceSync", n, "rs");
    assert.ok(waiting?.metadata?.finalizers?.includes(FINALIZER), "the ResourceSync waits for its target");
    await a.mergePatch("v1", "ConfigMap", n, "dst", { metadata: { finalizers: null } });
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    assert.equal(await a.get("v1", "ConfigMap", n, "dst"), undefined);
  });

  it("keeps the target on deletion with disable-target-deletion", async () => {
    const n = await ns("a", "keep");
    await syncedClone(n, { k: "v" }, { "sinker.influxdata.io/disable-target-deletion": "true" });
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    await sleep(3000);
    const kept = await a.get("v1", "ConfigMap", n, "dst");
    assert.equal(kept?.data?.k, "v");
    // Its owner reference is removed too, or the garbage collector would delete it after all.
    assert.ok(!kept?.metadata?.ownerReferences?.some((o) => o.uid === rs?.metadata?.uid));
  });

  it("refuses a local cluster-scoped kind without the operator's opt-in", async () => {
    const n = await ns("a", "scoped");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("src"),
        target: { resourceRef: { apiVersion: "v1", kind: "Namespace", name: `stolen-${n}` } },
      }),
    );
    const ready = await waitReady(a, n, "rs", "False", "ClusterScopedNotAllowed");
    assert.match(ready.message, /cluster-scoped/);
    assert.equal(await a.get("v1", "Namespace", undefined, `stolen-${n}`), undefined);
  });

  it("reports a bad mapping as a failure condition and an Event while other ResourceSyncs keep syncing", async () => {
    const n = await ns("a", "badmap");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "bad", {
        source: cm("src"),
        target: cm("dst-bad"),
        mappings: [{ fromFieldPath: "data[?(", toFieldPath: "data.x" }],
      }),
    );
    await a.apply(
      resourceSync(n, "good", {
        source: cm("src"),
        target: cm("dst-good"),
        mappings: [{ fromFieldPath: "data.k", toFieldPath: "data.copied" }],
      }),
    );
    const failing = await waitReady(a, n, "bad", "False", "InvalidJSONPath");
    const rs = await a.get(RS_API, "ResourceSync", n, "bad");
    const rustCompatible = condition(rs, "ResourceSyncFailing");
    assert.equal(rustCompatible?.status, "True");
    assert.equal(rustCompatible?.reason, "ResourceSyncFailing");
    assert.equal(rustCompatible?.message, failing.message);
    assert.equal(rustCompatible?.observedGeneration, rs?.metadata?.generation);
    await waitReady(a, n, "good", "True");
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst-good"))?.data, { copied: "v" });
    assert.equal(await a.get("v1", "ConfigMap", n, "dst-bad"), undefined);
    const events = await a.list("v1", "Event", n);
    assert.ok(events.some((e) => e.reason === "InvalidJSONPath" && e.type === "Warning"));
    await waitFor("the failing ResourceSync counted in sinker_resourcesyncs", async () => {
      const gauge = (await suite.controller.metrics.resourceSyncs.get()).values.find(
        (v) => v.labels.state === "failing",
      );
      return (gauge?.value ?? 0) >= 1;
    });

    // Fixing the spec recovers: Ready True, ResourceSyncFailing turned False with a new transition time.
    const firstFailure = rustCompatible?.lastTransitionTime;
    await a.apply(
      resourceSync(n, "bad", {
        source: cm("src"),
        target: cm("dst-bad"),
        mappings: [{ fromFieldPath: "data.k", toFieldPath: "data.x" }],
      }),
    );
    await waitReady(a, n, "bad", "True");
    const recovered = condition(await a.get(RS_API, "ResourceSync", n, "bad"), "ResourceSyncFailing");
    assert.equal(recovered?.status, "False");
    assert.ok(firstFailure !== undefined);
    // a recovery is worth an Event: it answers the Warning
    await waitFor("a Synced event for the recovery", async () =>
      (await a.list("v1", "Event", n)).some(
        (e) => e.reason === "Synced" && (e.involvedObject as { name: string }).name === "bad",
      ),
    );
  });

  it("reports a missing source and syncs once it appears", async () => {
    const n = await ns("a", "nosrc");
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("later"),
        target: cm("dst"),
      }),
    );
    await waitReady(a, n, "rs", "False", "SourceNotFound");
    await a.apply(configMap(n, "later", { k: "arrived" }));
    await waitReady(a, n, "rs", "True");
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "arrived");
  });
});

describe("across clusters", () => {
  it("clones a ConfigMap from a to b through a kubeconfig Secret, and deletes it with the ResourceSync", async () => {
    const n = await ns("a", "a2b");
    const nb = await ns("b", "a2b");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }, { labels: { team: "x" } }));
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("src"),
        target: { ...cm("dst"), cluster: bRef(nb) },
      }),
    );
    await waitReady(a, n, "rs", "True");
    const target = await b.get("v1", "ConfigMap", nb, "dst");
    assert.deepEqual(target?.data, { k: "v" });
    assert.equal(target?.metadata?.labels?.team, "x");
    assert.equal(target?.metadata?.ownerReferences, undefined, "no owner reference across clusters");
    assert.equal(await a.get("v1", "ConfigMap", n, "dst"), undefined, "nothing written in cluster a");

    // Drift on the remote target is undone too.
    await b.mergePatch("v1", "ConfigMap", nb, "dst", { data: { k: "drifted" } });
    await b.waitFor("remote drift undone", "v1", "ConfigMap", nb, "dst", (o) => o?.data?.k === "v", 5000);

    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    assert.equal(await b.get("v1", "ConfigMap", nb, "dst"), undefined, "remote target deleted");
  });

  it("cleans the remote target up when the whole namespace is deleted, kubeconfig Secret included", async () => {
    const n = await suite.env.createNamespace("a", "nsdel");
    const nb = await ns("b", "nsdel");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("src"),
        target: { ...cm("dst"), cluster: bRef(nb) },
      }),
    );
    await waitReady(a, n, "rs", "True");
    assert.ok(await b.get("v1", "ConfigMap", nb, "dst"));
    // The namespace controller deletes the Secret and the ResourceSync together: the Secret is usually gone
    // before Sinker's finalizer runs.
    await suite.env.deleteNamespace("a", n, { wait: true, timeoutMs: 60_000 });
    assert.equal(await b.get("v1", "ConfigMap", nb, "dst"), undefined, "remote target deleted");
  });

  it("syncs b → a with mappings into data and metadata.labels", async () => {
    const n = await ns("a", "b2a");
    const nb = await ns("b", "b2a");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await b.apply(
      configMap(nb, "remote", { remote: "r", foo: "f", unused: "u" }, { labels: { tier: "gold" } }),
    );
    await a.apply(
      resourceSync(n, "rs", {
        source: { ...cm("remote"), cluster: bRef(nb) },
        target: cm("local"),
        mappings: [
          { fromFieldPath: "data.remote", toFieldPath: "data.remote" },
          { fromFieldPath: "data.foo", toFieldPath: "data.bar" },
          { fromFieldPath: "metadata.labels", toFieldPath: "metadata.labels" },
        ],
      }),
    );
    await waitReady(a, n, "rs", "True");
    const target = await a.get("v1", "ConfigMap", n, "local");
    assert.deepEqual(target?.data, { remote: "r", bar: "f" });
    assert.equal(target?.metadata?.labels?.tier, "gold");

    // A change in the remote source propagates through the remote watch.
    await b.apply(configMap(nb, "remote", { remote: "r2", foo: "f" }, { labels: { tier: "gold" } }));
    await a.waitFor(
      "remote change propagated",
      "v1",
      "ConfigMap",
      n,
      "local",
      (o) => o?.data?.remote === "r2",
      5000,
    );
  });

  it("carries a whole ConfigMap in a SinkerContainer and unpacks it in cluster b", async () => {
    const n = await ns("a", "container");
    const nb = await ns("b", "container");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply({
      apiVersion: RS_API,
      kind: "SinkerContainer",
      metadata: { name: "box", namespace: n },
      spec: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { labels: { packed: "yes" } },
        data: { inside: "the box" },
      },
    });
    await a.apply(
      resourceSync(n, "rs", {
        source: { resourceRef: { apiVersion: RS_API, kind: "SinkerContainer", name: "box" } },
        target: { ...cm("unpacked"), cluster: bRef(nb) },
        mappings: [{ fromFieldPath: "spec" }],
      }),
    );
    await waitReady(a, n, "rs", "True");
    const target = await b.get("v1", "ConfigMap", nb, "unpacked");
    assert.deepEqual(target?.data, { inside: "the box" });
    assert.equal(target?.metadata?.labels?.packed, "yes");
  });

  it("allows a cross-namespace kubeconfig Secret only when its annotation matches the whole namespace", async () => {
    const shared = await ns("a", "shared");
    const allowed = await ns("a", "team");
    const nb = await ns("b", "xns");
    await a.apply(
      kubeconfigSecret(shared, "open", suite.env.kubeconfigText("b"), {
        "sinker.influxdata.io/allowed-namespaces": `${allowed}|other`,
      }),
    );
    await a.apply(kubeconfigSecret(shared, "closed", suite.env.kubeconfigText("b")));
    // The allowed name is a substring of this namespace: an unanchored match would let it through.
    const sneaky = await suite.env.createNamespace("a", `x${allowed}`.slice(0, 40));
    suite.track("a", sneaky);
    await a.apply(
      kubeconfigSecret(shared, "substring", suite.env.kubeconfigText("b"), {
        "sinker.influxdata.io/allowed-namespaces": allowed,
      }),
    );
    const spec = (secret: string, target: string) => ({
      source: cm("src"),
      target: {
        ...cm(target),
        cluster: {
          namespace: nb,
          kubeConfig: { secretRef: { name: secret, key: "value", namespace: shared } },
        },
      },
    });
    for (const n of [allowed, sneaky]) await a.apply(configMap(n, "src", { k: n }));
    await a.apply(resourceSync(allowed, "ok", spec("open", "from-allowed")));
    await a.apply(resourceSync(allowed, "no-annotation", spec("closed", "never-1")));
    await a.apply(resourceSync(allowed, "missing", spec("does-not-exist", "never-2")));
    await a.apply(resourceSync(sneaky, "substring", spec("substring", "never-3")));

    await waitReady(a, allowed, "ok", "True");
    assert.equal((await b.get("v1", "ConfigMap", nb, "from-allowed"))?.data?.k, allowed);
    const message = "Referenced Kubeconfig Secret cannot be accessed due to namespace restrictions";
    for (const [n, name] of [
      [allowed, "no-annotation"],
      [allowed, "missing"],
      [sneaky, "substring"],
    ] as const) {
      const ready = await waitReady(a, n, name, "False", "SecretAccessDenied");
      assert.equal(ready.message, message, "every refusal says the same thing");
    }
    for (const name of ["never-1", "never-2", "never-3"])
      assert.equal(await b.get("v1", "ConfigMap", nb, name), undefined);
  });

  it("reports Forbidden for a kubeconfig whose user may not write there, without affecting others", async () => {
    const n = await ns("a", "rbac");
    const nb = await ns("b", "rbac");
    await a.apply(kubeconfigSecret(n, "restricted", suite.env.kubeconfigText("b-restricted")));
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "forbidden", {
        source: cm("src"),
        target: {
          ...cm("dst"),
          cluster: { namespace: nb, kubeConfig: { secretRef: { name: "restricted", key: "value" } } },
        },
      }),
    );
    await a.apply(
      resourceSync(n, "allowed", {
        source: cm("src"),
        target: {
          resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: `dst-${n}` },
          cluster: {
            namespace: "restricted",
            kubeConfig: { secretRef: { name: "restricted", key: "value" } },
          },
        },
      }),
    );
    const ready = await waitReady(a, n, "forbidden", "False", "Forbidden");
    assert.match(ready.message, /forbidden/i);
    await waitReady(a, n, "allowed", "True");
    assert.equal((await b.get("v1", "ConfigMap", "restricted", `dst-${n}`))?.data?.k, "v");
    await a.delete(RS_API, "ResourceSync", n, "allowed");
    await a.waitGone(RS_API, "ResourceSync", n, "allowed");
  });

  it("refuses kubeconfigs that would run a program or read the controller's files", async () => {
    const n = await ns("a", "unsafe");
    const nb = await ns("b", "unsafe");
    await a.apply(configMap(n, "src", { k: "v" }));
    const server = suite.env.server("b");
    const execConfig = `apiVersion: v1
kind: Config
clusters: [{name: b, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: ["-c", "echo pwned"]}}}]
contexts: [{name: c, context: {cluster: b, user: u}}]
current-context: c
`;
    const tokenFileConfig = `apiVersion: v1
kind: Config
clusters: [{name: b, cluster: {server: "${server}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}}]
contexts: [{name: c, context: {cluster: b, user: u}}]
current-context: c
`;
    await a.apply(kubeconfigSecret(n, "exec", execConfig));
    await a.apply(kubeconfigSecret(n, "tokenfile", tokenFileConfig));
    for (const secret of ["exec", "tokenfile"]) {
      await a.apply(
        resourceSync(n, secret, {
          source: cm("src"),
          target: {
            ...cm("dst"),
            cluster: { namespace: nb, kubeConfig: { secretRef: { name: secret, key: "value" } } },
          },
        }),
      );
    }
    assert.match((await waitReady(a, n, "exec", "False", "UnsafeKubeconfig")).message, /exec/);
    assert.match((await waitReady(a, n, "tokenfile", "False", "UnsafeKubeconfig")).message, /token/i);
  });

  it("force-deletes a ResourceSync whose target cluster is down, and only with the annotation", async () => {
    const n = await ns("a", "force");
    const nb = await ns("b", "force");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v" }));
    for (const name of ["plain", "forced"]) {
      await a.apply(
        resourceSync(n, name, {
          source: cm("src"),
          target: {
            resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: `dst-${name}` },
            cluster: bRef(nb),
          },
        }),
      );
      await waitReady(a, n, name, "True");
    }
    await a.mergePatch(RS_API, "ResourceSync", n, "forced", {
      metadata: { annotations: { "sinker.influxdata.io/force-delete": "true" } },
    });
    await suite.env.stopCluster("b");
    try {
      await a.delete(RS_API, "ResourceSync", n, "plain");
      await a.delete(RS_API, "ResourceSync", n, "forced");
      await a.waitGone(RS_API, "ResourceSync", n, "forced", 60_000);
      await sleep(3000);
      const plain = await a.get(RS_API, "ResourceSync", n, "plain");
      assert.ok(plain, "without force-delete the ResourceSync waits for its unreachable target");
      assert.ok(plain.metadata?.finalizers?.includes(FINALIZER));
    } finally {
      await suite.env.startCluster("b");
    }
    // Once cluster b is back, the waiting deletion completes and cleans its target up.
    await a.waitGone(RS_API, "ResourceSync", n, "plain", 90_000);
    assert.equal(await b.get("v1", "ConfigMap", nb, "dst-plain"), undefined);
    assert.ok(
      await b.get("v1", "ConfigMap", nb, "dst-forced"),
      "force-delete left the unreachable target alone",
    );
  });
});
