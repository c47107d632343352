/**
 * A 409 is retried at once only when it comes from the ResourceSync's own write (a newer version is on its way
 * through the watch); a 409 from the target is a failure like any other, so it backs off. Runs reconcile()
 * on a fake context: caches and clients as plain objects.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { FINALIZER } from "../../src/api/types.ts";
import { AppliedMemos } from "../../src/controller/applied.ts";
import { ClaimIndex } from "../../src/controller/claims.ts";
import { DriftState } from "../../src/controller/drift.ts";
import { OwnWrites } from "../../src/controller/own-writes.ts";
import { type ReconcileContext, reconcile } from "../../src/controller/reconciler.ts";
import type { Watches } from "../../src/controller/watches.ts";
import { SinkerError } from "../../src/errors.ts";
import type { ClusterClient, ResourceInfo } from "../../src/kube/client.ts";
import { ClusterIdentities } from "../../src/kube/cluster-identity.ts";
import type { Informer } from "../../src/kube/informer.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import type { RemoteClusters } from "../../src/kube/remote-clusters.ts";

const configMaps: ResourceInfo = {
  apiVersion: "v1",
  group: "",
  version: "v1",
  kind: "ConfigMap",
  plural: "configmaps",
  namespaced: true,
};
const resourceSyncs: ResourceInfo = {
  apiVersion: "sinker.influxdata.io/v1alpha1",
  group: "sinker.influxdata.io",
  version: "v1alpha1",
  kind: "ResourceSync",
  plural: "resourcesyncs",
  namespaced: true,
};

const rs: KubeObject = {
  apiVersion: "sinker.influxdata.io/v1alpha1",
  kind: "ResourceSync",
  metadata: {
    name: "rs",
    namespace: "ns",
    uid: "rs-uid",
    generation: 1,
    resourceVersion: "5",
    finalizers: [FINALIZER],
  },
  spec: {
    source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } },
    target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" } },
  },
};
const source: KubeObject = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "src", namespace: "ns" },
  data: { k: "v" },
};

function fakeContext(failures: { apply?: SinkerError; statusPatch?: SinkerError }): ReconcileContext {
  const local = {
    name: "local",
    id: 1,
    server: "https://local",
    resolve: async (apiVersion: string) => (apiVersion === "v1" ? configMaps : resourceSyncs),
    apply: async (_res: ResourceInfo, obj: KubeObject) => {
      if (failures.apply) throw failures.apply;
      return { ...obj, metadata: { ...obj.metadata, uid: "dst-uid", resourceVersion: "7" } };
    },
    patch: async (_res: ResourceInfo, _ns: string, _name: string, body: KubeObject) => {
      if (failures.statusPatch) throw failures.statusPatch;
      return { ...rs, ...body, metadata: { ...rs.metadata, resourceVersion: "6" } };
    },
    get: async () => undefined,
  } as unknown as ClusterClient;
  const watches = {
    addRefs: async () => {},
    setRefs: async () => {},
    get: (_c: unknown, _r: unknown, _ns: string, name: string) => (name === "src" ? source : undefined),
    live: () => true,
    list: () => [],
    holds: () => false,
  } as unknown as Watches;
  return {
    local,
    resourceSyncs: { get: () => rs } as unknown as Informer,
    resourceSyncResource: resourceSyncs,
    watches,
    remoteClusters: { identities: new ClusterIdentities() } as unknown as RemoteClusters,
    events: { record: () => {} },
    options: { allowClusterScoped: false },
    drift: new DriftState(),
    logger: pino({ level: "silent" }),
    written: new OwnWrites(),
    claims: new ClaimIndex(),
    applied: new AppliedMemos(),
  };
}

describe("reconcile: which 409 is retried at once", () => {
  it("a 409 from the target's apply is a failure (backoff), reported with reason Conflict", async () => {
    const result = await reconcile(
      "ns/rs",
      fakeContext({ apply: new SinkerError("Conflict", "conflict on the target") }),
    );
    assert.equal(result.kind, "failed");
    assert.equal(result.kind === "failed" ? result.error.reason : "", "Conflict");
  });

  it("a 409 on the ResourceSync's own status write is retried shortly (its newer version is coming)", async () => {
    const result = await reconcile(
      "ns/rs",
      fakeContext({ statusPatch: new SinkerError("Conflict", "modified") }),
    );
    assert.deepEqual(result, { kind: "requeue", afterMs: 200 });
  });

  it("without failures it syncs, and records the applied target", async () => {
    const ctx = fakeContext({});
    assert.deepEqual(await reconcile("ns/rs", ctx), { kind: "synced" });
    const written = ctx.written.get("ns/rs");
    const record = (written?.status as { appliedTarget?: { uid: string; name: string } } | undefined)
      ?.appliedTarget;
    assert.equal(record?.uid, "dst-uid");
    assert.equal(record?.name, "dst");
  });
});
