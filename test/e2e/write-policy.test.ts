/**
 * Write policies (docs/spec/resourcesync.md#write-policy-and-immutable-fields) against the real control plane:
 * writePolicy CreateOnly (created when absent, never updated; again after a hand deletion; deletion as the
 * annotations say; nothing of it kept in memory across a restart) and onImmutableChange Replace (a Secret's type,
 * an immutable ConfigMap's data; with and without the opt-in; into cluster b; a replacement that keeps failing is
 * bounded).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { restrictedUser, waitFor } from "../controlplane/testenv.ts";
import {
  clusterRef,
  cmRef,
  configMap,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;
const ns = suite.ns;
const BOUND_MS = 60_000;

type Status = {
  writePolicy?: string;
  observedGeneration?: number;
  appliedTarget?: { uid?: string };
  replacement?: { attempts?: number; sourceResourceVersion?: string; generation?: number };
};
const statusOf = (o: Obj | undefined) => (o?.status ?? {}) as Status;

/** Changes the spec (generation + 1) and waits until a reconcile of that generation succeeded: every event
 * before the change has been seen by then. */
async function reconciledAgain(n: string, name: string, spec: Record<string, unknown>): Promise<void> {
  const rs = await a.mergePatch(RS_API, "ResourceSync", n, name, { spec });
  const generation = rs.metadata?.generation ?? 0;
  await a.waitFor(
    `ResourceSync ${n}/${name} reconciled at generation ${generation}`,
    RS_API,
    "ResourceSync",
    n,
    name,
    (o) => statusOf(o).observedGeneration === generation && statusOf(o).writePolicy !== undefined,
    BOUND_MS,
  );
}

describe("writePolicy CreateOnly", () => {
  it("creates the target once, then leaves edits and source changes alone, also after a restart", async () => {
    const n = await ns("a", "create-only");
    await a.apply(configMap(n, "src", { k: "v1" }));
    await a.apply(
      resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst"), writePolicy: "CreateOnly" }),
    );
    const ready = await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
    assert.match(ready.message, /writePolicy CreateOnly/);
    const created = await a.get("v1", "ConfigMap", n, "dst");
    assert.equal(created?.data?.k, "v1");
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    assert.equal(statusOf(rs).writePolicy, "CreateOnly");
    assert.equal(statusOf(rs).appliedTarget?.uid, created?.metadata?.uid, "recorded in the sync record");
    assert.equal(created?.metadata?.ownerReferences?.[0]?.uid, rs?.metadata?.uid, "owner reference as usual");

    // The user edits the target, then the source changes: neither is overwritten.
    await a.mergePatch("v1", "ConfigMap", n, "dst", { data: { k: "mine", extra: "added" } });
    await a.apply(configMap(n, "src", { k: "v2", more: "x" }));
    await reconciledAgain(n, "rs", { onImmutableChange: "Fail" });
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst"))?.data, { k: "mine", extra: "added" });

    // A new controller process knows nothing but what the API says: still not overwritten.
    await suite.controller.stop();
    await suite.startController();
    await reconciledAgain(n, "rs", { onImmutableChange: null });
    const kept = await a.get("v1", "ConfigMap", n, "dst");
    assert.deepEqual(kept?.data, { k: "mine", extra: "added" });
    assert.equal(kept?.metadata?.uid, created?.metadata?.uid);
  });

  it("creates the target again after a hand deletion, from the source as it is then, and records it", async () => {
    const n = await ns("a", "create-again");
    await a.apply(configMap(n, "src", { k: "v1" }));
    await a.apply(
      resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst"), writePolicy: "CreateOnly" }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
    const first = await a.get("v1", "ConfigMap", n, "dst");
    await a.apply(configMap(n, "src", { k: "v2" }));
    await a.delete("v1", "ConfigMap", n, "dst");
    const again = await a.waitFor(
      "target created again",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => (o && o.metadata?.uid !== first?.metadata?.uid ? o : undefined),
      BOUND_MS,
    );
    assert.equal(again.data?.k, "v2", "from the current source");
    await a.waitFor(
      "the new object recorded",
      RS_API,
      "ResourceSync",
      n,
      "rs",
      (o) => statusOf(o).appliedTarget?.uid === again.metadata?.uid,
      BOUND_MS,
    );
    // ... and it is not updated afterwards either.
    await a.apply(configMap(n, "src", { k: "v3" }));
    await reconciledAgain(n, "rs", { onImmutableChange: "Fail" });
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "v2");
  });

  it("deletes the created target with the ResourceSync, or keeps it with disable-target-deletion", async () => {
    const n = await ns("a", "create-delete");
    await a.apply(configMap(n, "src", { k: "v" }));
    const spec = (dst: string) => ({ source: cmRef("src"), target: cmRef(dst), writePolicy: "CreateOnly" });
    await a.apply(resourceSync(n, "deletes", spec("deleted")));
    await a.apply(
      resourceSync(n, "keeps", spec("kept"), { "sinker.influxdata.io/disable-target-deletion": "true" }),
    );
    await waitReady(a, n, "deletes", "True", "Synced", BOUND_MS);
    await waitReady(a, n, "keeps", "True", "Synced", BOUND_MS);
    await a.mergePatch("v1", "ConfigMap", n, "deleted", { data: { edited: "yes" } });
    await a.delete(RS_API, "ResourceSync", n, "deletes");
    await a.delete(RS_API, "ResourceSync", n, "keeps");
    await a.waitGone(RS_API, "ResourceSync", n, "deletes", BOUND_MS);
    await a.waitGone(RS_API, "ResourceSync", n, "keeps", BOUND_MS);
    assert.equal(
      await a.get("v1", "ConfigMap", n, "deleted"),
      undefined,
      "an edited target is still Sinker's",
    );
    const kept = await a.get("v1", "ConfigMap", n, "kept");
    assert.equal(kept?.data?.k, "v");
    assert.deepEqual(kept?.metadata?.ownerReferences ?? [], [], "no owner reference left to collect it");
  });

  it("disable-target-deletion added later releases the created target at once: kept means kept", async () => {
    const n = await ns("a", "create-release");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(
      resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst"), writePolicy: "CreateOnly" }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.metadata?.ownerReferences?.length, 1);
    await a.mergePatch(RS_API, "ResourceSync", n, "rs", {
      metadata: { annotations: { "sinker.influxdata.io/disable-target-deletion": "true" } },
    });
    await a.waitFor(
      "owner reference removed",
      "v1",
      "ConfigMap",
      n,
      "dst",
      (o) => o && (o.metadata?.ownerReferences ?? []).length === 0,
      BOUND_MS,
    );
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs", BOUND_MS);
    assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "v");
  });

  it("a ClusterResourceSyncSet passes it to its children, which act under it", async () => {
    const src = await ns("a", "create-set-src");
    const dest = await ns("a", "create-set-dst");
    await a.apply(configMap(src, "shared", { k: "v1" }));
    const name = `create-only-${dest}`;
    await a.apply({
      apiVersion: RS_API,
      kind: "ClusterResourceSyncSet",
      metadata: { name },
      spec: {
        source: { ...cmRef("shared"), namespace: src },
        target: cmRef("shared"),
        namespaceSelector: { include: [dest] },
        writePolicy: "CreateOnly",
      },
    });
    try {
      const child = await waitFor(
        "the child acting under CreateOnly",
        async () =>
          (await a.list(RS_API, "ResourceSync", dest)).find((o) => statusOf(o).writePolicy === "CreateOnly"),
        { timeoutMs: BOUND_MS },
      );
      assert.equal((child.spec as { writePolicy?: string }).writePolicy, "CreateOnly");
      assert.equal((await a.get("v1", "ConfigMap", dest, "shared"))?.data?.k, "v1");
    } finally {
      await a.delete(RS_API, "ClusterResourceSyncSet", undefined, name);
      await a.waitGone(RS_API, "ClusterResourceSyncSet", undefined, name, BOUND_MS);
    }
  });

  it("recognises a remote target it created but did not record (a crash in between) by its field manager", async () => {
    // The API state such a crash leaves: the object exists in cluster b, created with Sinker's field manager
    // (as createTarget sends it), no owner reference (remote), and no sync record on the ResourceSync.
    const n = await ns("a", "create-crash");
    const nb = await ns("b", "create-crash");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v2" }));
    const posted = await suite.env.request(
      "b",
      "POST",
      `/api/v1/namespaces/${nb}/configmaps?fieldManager=sinker.influxdata.io`,
      configMap(nb, "dst", { k: "v1" }),
    );
    assert.equal(posted.status, 201, JSON.stringify(posted.body));
    const created = posted.body as Obj;
    await a.apply(
      resourceSync(n, "rs", {
        source: cmRef("src"),
        target: { ...cmRef("dst"), cluster: clusterRef(nb) },
        writePolicy: "CreateOnly",
      }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    assert.equal(statusOf(rs).appliedTarget?.uid, created.metadata?.uid, "recorded as Sinker's");
    assert.deepEqual((await b.get("v1", "ConfigMap", nb, "dst"))?.data, { k: "v1" }, "and not updated");
    // Recorded, so deleting the ResourceSync deletes the object Sinker created.
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await b.waitGone("v1", "ConfigMap", nb, "dst", BOUND_MS);
  });

  it("does not take over a target it did not create (TargetNotOwned)", async () => {
    const n = await ns("a", "create-theirs");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(configMap(n, "dst", { theirs: "yes" }));
    await a.apply(
      resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst"), writePolicy: "CreateOnly" }),
    );
    await waitReady(a, n, "rs", "False", "TargetNotOwned", BOUND_MS);
    assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst"))?.data, { theirs: "yes" });
  });
});

/** Waits for an Event of this reason on ResourceSync `rs` of namespace `n` (Events are sent asynchronously). */
function eventOf(n: string, reason: string): Promise<Obj> {
  return waitFor(
    `Event ${reason}`,
    async () =>
      (await a.list("v1", "Event", n)).find(
        (e) => e.reason === reason && (e.involvedObject as { name: string }).name === "rs",
      ),
    { timeoutMs: BOUND_MS },
  );
}

/** A Secret that is valid as Opaque and as kubernetes.io/tls (the keys tls needs). */
function tlsishSecret(n: string, name: string, type: string, crt: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace: n },
    type,
    data: {
      "tls.crt": Buffer.from(crt).toString("base64"),
      "tls.key": Buffer.from("key").toString("base64"),
    },
  };
}

interface Case {
  /** The source before and after it is replaced. */
  v1: (n: string) => Obj;
  v2: (n: string) => Obj;
  kind: "Secret" | "ConfigMap";
  /** The field the API server refuses. */
  field: string;
  /** The target's content after a replacement. */
  replaced: (o: Obj) => boolean;
}

const secretType: Case = {
  kind: "Secret",
  v1: (n) => tlsishSecret(n, "src", "Opaque", "one"),
  v2: (n) => tlsishSecret(n, "src", "kubernetes.io/tls", "two"),
  field: "type",
  replaced: (o) => (o as { type?: string }).type === "kubernetes.io/tls",
};
const immutableConfigMap: Case = {
  kind: "ConfigMap",
  v1: (n) => ({ ...configMap(n, "src", { version: "1" }), immutable: true }),
  v2: (n) => ({ ...configMap(n, "src", { version: "2" }), immutable: true }),
  field: "data",
  replaced: (o) => o.data?.version === "2",
};

/** A synced target of `c`'s source v1 (into cluster b when `remote`), then the source replaced by v2. */
async function immutableChange(c: Case, remote: boolean, optIn: boolean, prefix: string) {
  const n = await ns("a", prefix);
  const nb = remote ? await ns("b", prefix) : n;
  const there = remote ? b : a;
  if (remote) await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
  await a.apply(c.v1(n));
  const ref = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: c.kind, name } });
  await a.apply(
    resourceSync(n, "rs", {
      source: ref("src"),
      target: { ...ref("dst"), ...(remote ? { cluster: clusterRef(nb) } : {}) },
      ...(optIn ? { onImmutableChange: "Replace" } : {}),
    }),
  );
  await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
  const before = await there.get("v1", c.kind, nb, "dst");
  assert.ok(before);
  // Immutable sources change by being replaced too.
  await a.delete("v1", c.kind, n, "src");
  await a.waitGone("v1", c.kind, n, "src", BOUND_MS);
  await a.apply(c.v2(n));
  return { n, nb, there, before };
}

describe("onImmutableChange", () => {
  for (const [c, remote] of [
    [secretType, false],
    [immutableConfigMap, true],
  ] as const) {
    const where = remote ? "in cluster b" : "in the local cluster";
    const what =
      c === secretType ? "a Secret's type Opaque → kubernetes.io/tls" : "an immutable ConfigMap's data";

    it(`without the opt-in: ${what} ${where} fails with Invalid naming the field, target untouched`, async () => {
      const { n, nb, there, before } = await immutableChange(c, remote, false, "immutable-fail");
      const ready = await waitReady(a, n, "rs", "False", "Invalid", BOUND_MS);
      assert.match(ready.message, new RegExp(`\\b${c.field}: .*field is immutable`));
      assert.match(ready.message, /onImmutableChange: Replace/);
      const now = await there.get("v1", c.kind, nb, "dst");
      assert.equal(now?.metadata?.uid, before.metadata?.uid);
      assert.equal(c.replaced(now as Obj), false);
    });

    it(`Replace: ${what} ${where} deletes and re-creates the target, with an Event`, async () => {
      const { n, nb, there, before } = await immutableChange(c, remote, true, "immutable-replace");
      const after = await there.waitFor(
        "target re-created with the new content",
        "v1",
        c.kind,
        nb,
        "dst",
        (o) => (o && o.metadata?.uid !== before.metadata?.uid && c.replaced(o) ? o : undefined),
        BOUND_MS,
      );
      await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
      const rs = await a.waitFor(
        "the new object recorded",
        RS_API,
        "ResourceSync",
        n,
        "rs",
        (o) => (statusOf(o).appliedTarget?.uid === after.metadata?.uid ? o : undefined),
        BOUND_MS,
      );
      const src = await a.get("v1", c.kind, n, "src");
      assert.equal(statusOf(rs).replacement?.attempts, 1);
      assert.equal(statusOf(rs).replacement?.sourceResourceVersion, src?.metadata?.resourceVersion);
      const replaced = await eventOf(n, "TargetReplaced");
      assert.match(String(replaced.message), new RegExp(`${c.field} cannot be updated`));
    });
  }

  it("a replacement that keeps failing backs off and stops after 3 attempts per source version", async () => {
    const n = await ns("a", "immutable-bounded");
    const nb = await ns("b", "immutable-bounded");
    // In cluster b, the restricted user may do everything to ConfigMaps of nb except delete them.
    const role = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "no-delete", namespace: nb },
      rules: [
        {
          apiGroups: [""],
          resources: ["configmaps"],
          verbs: ["get", "list", "watch", "create", "update", "patch"],
        },
      ],
    };
    await b.apply(role);
    await b.apply({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "no-delete", namespace: nb },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "no-delete" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: restrictedUser }],
    });
    await a.apply(kubeconfigSecret(n, "restricted", suite.env.kubeconfigText("b-restricted")));
    await a.apply(immutableConfigMap.v1(n));
    await a.apply(
      resourceSync(n, "rs", {
        source: cmRef("src"),
        target: { ...cmRef("dst"), cluster: clusterRef(nb, "restricted") },
        onImmutableChange: "Replace",
      }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND_MS);
    const before = await b.get("v1", "ConfigMap", nb, "dst");
    await a.delete("v1", "ConfigMap", n, "src");
    await a.waitGone("v1", "ConfigMap", n, "src", BOUND_MS);
    await a.apply(immutableConfigMap.v2(n));

    const limit = await waitReady(a, n, "rs", "False", "ReplaceLimitReached", BOUND_MS);
    assert.match(limit.message, /replaced 3 times .*immutable field data/);
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    const src = await a.get("v1", "ConfigMap", n, "src");
    assert.deepEqual(
      { attempts: statusOf(rs).replacement?.attempts, rv: statusOf(rs).replacement?.sourceResourceVersion },
      { attempts: 3, rv: src?.metadata?.resourceVersion },
    );
    // Each failed attempt was reported with its own reason first.
    await eventOf(n, "Forbidden");
    assert.equal((await b.get("v1", "ConfigMap", nb, "dst"))?.metadata?.uid, before?.metadata?.uid);

    // Another reconcile of the same source version and generation (seen in the error counter) makes no fourth
    // attempt.
    const limitCount = async () =>
      (await suite.controller.metrics.reconcileErrorsByReason.get()).values.find(
        (v) => v.labels.reason === "ReplaceLimitReached",
      )?.value ?? 0;
    const counted = await limitCount();
    await a.mergePatch(RS_API, "ResourceSync", n, "rs", { metadata: { annotations: { poke: "1" } } });
    await waitFor("another reconcile", async () => (await limitCount()) > counted, { timeoutMs: BOUND_MS });
    assert.equal(statusOf(await a.get(RS_API, "ResourceSync", n, "rs")).replacement?.attempts, 3);
    assert.equal((await b.get("v1", "ConfigMap", nb, "dst"))?.metadata?.uid, before?.metadata?.uid);

    // A new source version starts a new count.
    await a.delete("v1", "ConfigMap", n, "src");
    await a.waitGone("v1", "ConfigMap", n, "src", BOUND_MS);
    await a.apply({ ...configMap(n, "src", { version: "3" }), immutable: true });
    const src3 = await a.get("v1", "ConfigMap", n, "src");
    await a.waitFor(
      "a new count for the new source version",
      RS_API,
      "ResourceSync",
      n,
      "rs",
      (o) => statusOf(o).replacement?.sourceResourceVersion === src3?.metadata?.resourceVersion,
      BOUND_MS,
    );
  });
});
