/**
 * Kept means kept (docs/spec/resourcesync.md#kept-means-kept) against the real control plane and its garbage
 * collector: whenever Sinker leaves a copy in place (disable-target-deletion on deletion or on a change of
 * spec.target, a set's pruning Orphan, a set deleted with --cascade=orphan), the copy carries no ownerReference to
 * a ResourceSync and survives the deletion of the ResourceSync or set. The garbage collector's pass is observed
 * through a canary: a ConfigMap owned by the same ResourceSync, which it must delete; the kept copy must still be
 * there after that.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import { cmRef, configMap, type Obj, RS_API, resourceSync, waitReady } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: true });
const { a } = suite;
const cm = cmRef;
const KEEP = { "sinker.influxdata.io/disable-target-deletion": "true" };
const GC_MS = 60_000;

const refsTo = (o: Obj | undefined, uid: string | undefined) =>
  (o?.metadata?.ownerReferences ?? []).filter((r) => r.uid === uid);

async function events(n: string, name: string) {
  return (await a.list("v1", "Event", n)).filter(
    (e) => (e.involvedObject as { name?: string }).name === name,
  ) as Array<{ reason?: string; message?: string }>;
}

/** A ConfigMap the garbage collector must delete once `owner` is gone (proof that it has acted). */
async function canary(n: string, owner: Obj): Promise<string> {
  const name = `canary-${randomBytes(3).toString("hex")}`;
  await a.apply(
    configMap(
      n,
      name,
      {},
      {
        ownerReferences: [
          {
            apiVersion: owner.apiVersion ?? "",
            kind: owner.kind ?? "",
            name: owner.metadata?.name ?? "",
            uid: owner.metadata?.uid ?? "",
          },
        ],
      },
    ),
  );
  return name;
}

/** Deletes a ResourceSync (with this propagation) and waits until it and its canary are gone. */
async function deleteAndCollect(
  n: string,
  name: string,
  propagation: "Background" | "Foreground" = "Background",
) {
  const rs = await a.get(RS_API, "ResourceSync", n, name);
  assert.ok(rs);
  const bird = await canary(n, rs);
  const r = await suite.env.request("a", "DELETE", `/apis/${RS_API}/namespaces/${n}/resourcesyncs/${name}`, {
    propagationPolicy: propagation,
  });
  assert.ok(r.status === 200 || r.status === 202, JSON.stringify(r.body));
  await a.waitGone(RS_API, "ResourceSync", n, name, GC_MS);
  await a.waitGone("v1", "ConfigMap", n, bird, GC_MS);
}

describe("disable-target-deletion", () => {
  it("the target carries no owner reference while it holds, and survives a Foreground deletion", async () => {
    const n = await suite.ns("a", "kept-fg");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("dst") }));
    await waitReady(a, n, "rs", "True");
    const rs = await a.get(RS_API, "ResourceSync", n, "rs");
    assert.equal(refsTo(await a.get("v1", "ConfigMap", n, "dst"), rs?.metadata?.uid).length, 1);
    // the annotation added later: Sinker stops applying the reference, and server-side apply removes it
    await a.mergePatch(RS_API, "ResourceSync", n, "rs", { metadata: { annotations: KEEP } });
    await a.waitFor("owner reference removed", "v1", "ConfigMap", n, "dst", (o) =>
      o && refsTo(o, rs?.metadata?.uid).length === 0 ? o : undefined,
    );
    // Foreground: the garbage collector deletes dependents before the owner, whatever Sinker's finalizer does
    await deleteAndCollect(n, "rs", "Foreground");
    const kept = await a.get("v1", "ConfigMap", n, "dst");
    assert.equal(kept?.data?.k, "v", "the kept target survives");
    assert.ok((await events(n, "rs")).some((e) => e.reason === "TargetKept"));
  });

  it("a retarget in the same edit releases the old target, which survives the ResourceSync's deletion", async () => {
    const n = await suite.ns("a", "kept-retarget");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("first") }));
    await waitReady(a, n, "rs", "True");
    const uid = (await a.get(RS_API, "ResourceSync", n, "rs"))?.metadata?.uid;
    assert.equal(refsTo(await a.get("v1", "ConfigMap", n, "first"), uid).length, 1);
    // another owner on the old target must stay untouched
    const other = await a.apply(configMap(n, "other-owner", {}));
    await a.mergePatch("v1", "ConfigMap", n, "first", {
      metadata: {
        ownerReferences: [
          ...((await a.get("v1", "ConfigMap", n, "first"))?.metadata?.ownerReferences ?? []),
          { apiVersion: "v1", kind: "ConfigMap", name: "other-owner", uid: other.metadata?.uid ?? "" },
        ],
      },
    });
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: cm("second") }, KEEP));
    await a.waitFor("second", "v1", "ConfigMap", n, "second", (o) => o?.data?.k === "v");
    const first = await a.waitFor("old target released", "v1", "ConfigMap", n, "first", (o) =>
      o && refsTo(o, uid).length === 0 ? o : undefined,
    );
    assert.deepEqual(
      first.metadata?.ownerReferences?.map((r) => r.name),
      ["other-owner"],
      "only Sinker's reference is removed",
    );
    const kept = await waitFor("OldTargetKept Event", async () =>
      (await events(n, "rs")).find((e) => e.reason === "OldTargetKept"),
    );
    assert.match(kept.message ?? "", /first left in place and released/);
    // without the other owner, nothing but Sinker's own reference could keep the garbage collector away
    const live = await a.get("v1", "ConfigMap", n, "first");
    await a.mergePatch("v1", "ConfigMap", n, "first", {
      metadata: {
        ownerReferences: (live?.metadata?.ownerReferences ?? []).filter((r) => r.name !== "other-owner"),
      },
    });
    await deleteAndCollect(n, "rs");
    assert.ok(await a.get("v1", "ConfigMap", n, "first"), "the old target survives");
    assert.ok(await a.get("v1", "ConfigMap", n, "second"), "the current target survives");
  });
});

describe("sets", () => {
  async function clusterSet(spec: Record<string, unknown>): Promise<string> {
    const name = `kept-${randomBytes(3).toString("hex")}`;
    suite.trackClusterSet(name);
    await a.apply({ apiVersion: RS_API, kind: "ClusterResourceSyncSet", metadata: { name }, spec });
    return name;
  }

  it("pruning Orphan: the copies of a renamed target survive the set's deletion", async () => {
    const src = await suite.ns("a", "kept-set-src");
    const dst = await suite.ns("a", "kept-set-dst");
    await a.apply(configMap(src, "shared", { k: "v" }));
    const spec = { source: { ...cm("shared"), namespace: src }, namespaceSelector: { include: [dst] } };
    const name = await clusterSet({ ...spec, target: cm("old-copy"), pruning: "Orphan" });
    await a.waitFor("the first copy", "v1", "ConfigMap", dst, "old-copy", (o) => o, GC_MS);
    await a.apply({
      apiVersion: RS_API,
      kind: "ClusterResourceSyncSet",
      metadata: { name },
      spec: { ...spec, target: cm("new-copy"), pruning: "Orphan" },
    });
    await a.waitFor("the renamed copy", "v1", "ConfigMap", dst, "new-copy", (o) => o, GC_MS);
    const [child] = await a.list(RS_API, "ResourceSync", dst);
    assert.ok(child);
    for (const copy of ["old-copy", "new-copy"])
      assert.deepEqual(refsTo(await a.get("v1", "ConfigMap", dst, copy), child.metadata?.uid), [], copy);
    const bird = await canary(dst, child);
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, name);
    await waitFor("the child gone", async () => (await a.list(RS_API, "ResourceSync", dst)).length === 0, {
      timeoutMs: GC_MS,
    });
    await a.waitGone("v1", "ConfigMap", dst, bird, GC_MS);
    assert.ok(await a.get("v1", "ConfigMap", dst, "old-copy"), "the old copy survives");
    assert.ok(await a.get("v1", "ConfigMap", dst, "new-copy"), "the current copy survives");
  });

  it("--cascade=orphan: the children stay and keep their copies in sync", async () => {
    const src = await suite.ns("a", "kept-orph-src");
    const dst = await suite.ns("a", "kept-orph-dst");
    await a.apply(configMap(src, "shared", { k: "v1" }));
    const name = await clusterSet({
      source: { ...cm("shared"), namespace: src },
      target: cm("copy"),
      namespaceSelector: { include: [dst] },
    });
    await a.waitFor("the copy", "v1", "ConfigMap", dst, "copy", (o) => o, GC_MS);
    const r = await suite.env.request("a", "DELETE", `/apis/${RS_API}/clusterresourcesyncsets/${name}`, {
      propagationPolicy: "Orphan",
    });
    assert.ok(r.status === 200 || r.status === 202, JSON.stringify(r.body));
    await a.waitGone(RS_API, "ClusterResourceSyncSet", undefined, name, GC_MS);
    const [child] = await waitFor(
      "the child orphaned",
      async () => {
        const list = await a.list(RS_API, "ResourceSync", dst);
        return list.length === 1 && (list[0]?.metadata?.ownerReferences ?? []).length === 0
          ? list
          : undefined;
      },
      { timeoutMs: GC_MS },
    );
    assert.ok(child);
    const copy = await a.get("v1", "ConfigMap", dst, "copy");
    assert.equal(copy?.data?.k, "v1", "the copy stays");
  });
});
