/**
 * Issue 25: a restart (or a failover) over converged ResourceSyncs writes nothing. Whether a target is in place is
 * decided from what the API holds (the sync record's fieldSetHash, the target itself and its managedFields), not
 * from the memory of the process that applied it; a source or a target changed while Sinker was down is repaired.
 * Requests are counted by the local client (local targets, ResourceSync writes) and by cluster b's audit log
 * (remote targets, written as the audited user `sinker-bench`).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import {
  clusterRef,
  cmRef,
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
const cm = cmRef;
const N = 12;
const RESYNC_MS = 1500;

async function reconciles(ctrl: TestController): Promise<number> {
  const m = await ctrl.metrics.reconcileTotal.get();
  return m.values.reduce((sum, v) => sum + v.value, 0);
}

/** Writes (create, update, patch incl. apply, delete) cluster b's audit log shows in namespace `n`. */
function remoteWrites(n: string): number {
  let count = 0;
  for (const line of readFileSync(suite.env.auditLog("b"), "utf8").split("\n")) {
    if (!line.includes(n)) continue;
    const e = JSON.parse(line) as { stage?: string; verb?: string; objectRef?: { namespace?: string } };
    if (e.stage !== "ResponseComplete" || e.objectRef?.namespace !== n) continue;
    if (["create", "update", "patch", "delete", "deletecollection"].includes(e.verb ?? "")) count++;
  }
  return count;
}

const writes = (requests: Map<string, number>) =>
  ["apply", "patch", "create", "replace", "delete"].reduce((sum, m) => sum + (requests.get(m) ?? 0), 0);

/** N ResourceSyncs (even: a local target, odd: a target in cluster b), all Ready, then the controller stopped. */
async function converged(n: string, nb: string): Promise<void> {
  const ctrl = await suite.startController();
  try {
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.auditedKubeconfigText("b", "sinker-bench")));
    for (let i = 0; i < N; i++) {
      await a.apply(configMap(n, `src-${i}`, { i: String(i) }, { labels: { team: "x" } }));
      await a.apply(
        resourceSync(n, `rs-${i}`, {
          source: cm(`src-${i}`),
          target: i % 2 ? { ...cm(`dst-${i}`), cluster: clusterRef(nb) } : cm(`dst-${i}`),
        }),
      );
    }
    for (let i = 0; i < N; i++) await waitReady(a, n, `rs-${i}`, "True", undefined, 60_000);
  } finally {
    await ctrl.stop();
  }
}

/** Starts a controller counting its requests and waits until every ResourceSync was reconciled twice (a resync). */
async function restarted(requests: Map<string, number>): Promise<TestController> {
  const ctrl = await suite.startController({ requests, resyncPeriodMs: RESYNC_MS });
  await waitFor(
    "every ResourceSync reconciled, then resynced",
    async () => (await reconciles(ctrl)) >= 2 * N,
    {
      timeoutMs: 60_000,
    },
  );
  return ctrl;
}

describe("restart", () => {
  it("over converged ResourceSyncs: no apply, no status write, no other write, local or remote", async () => {
    const n = await suite.ns("a", "restart-quiet");
    const nb = await suite.ns("b", "restart-quiet");
    await converged(n, nb);
    const before = await a.list(RS_API, "ResourceSync", n);
    const remoteBefore = remoteWrites(nb);
    const requests = new Map<string, number>();
    const ctrl = await restarted(requests);
    try {
      const summary = `requests ${JSON.stringify([...requests])}; remote writes ${remoteWrites(nb) - remoteBefore}`;
      process.stderr.write(`# restart over ${N} converged ResourceSyncs: ${summary}\n`);
      assert.equal(requests.get("apply") ?? 0, 0, `no apply: ${summary}`);
      assert.equal(requests.get("patch resourcesyncs/status") ?? 0, 0, `no status write: ${summary}`);
      assert.equal(writes(requests), 0, `no write at all: ${summary}`);
      assert.equal(remoteWrites(nb) - remoteBefore, 0, `no write to cluster b: ${summary}`);
      const now = await a.list(RS_API, "ResourceSync", n);
      assert.deepEqual(
        now.map((o) => [o.metadata?.name, o.metadata?.resourceVersion]),
        before.map((o) => [o.metadata?.name, o.metadata?.resourceVersion]),
        "every ResourceSync unchanged (status, observedGeneration, lastTransitionTime)",
      );
    } finally {
      await deleteResourceSyncs(a, [n]).catch(() => undefined);
      await ctrl.stop();
    }
  });

  it("a source changed, a target changed and a field of the target removed while down: those are repaired, only those", async () => {
    const n = await suite.ns("a", "restart-changed");
    const nb = await suite.ns("b", "restart-changed");
    await converged(n, nb);
    // while no controller runs: a source edited (local and remote target), targets edited, a label removed
    await a.apply(configMap(n, "src-0", { i: "changed" }, { labels: { team: "x" } }));
    await a.apply(configMap(n, "src-1", { i: "changed" }, { labels: { team: "x" } }));
    await a.mergePatch("v1", "ConfigMap", n, "dst-2", { data: { i: "drift" } });
    await b.mergePatch("v1", "ConfigMap", nb, "dst-3", { data: { i: "drift" } });
    await a.mergePatch("v1", "ConfigMap", n, "dst-4", { metadata: { labels: { team: null } } });
    const remoteBefore = remoteWrites(nb);
    const requests = new Map<string, number>();
    const ctrl = await restarted(requests);
    try {
      const t = { timeoutMs: 30_000 };
      await a.waitFor(
        "source change",
        "v1",
        "ConfigMap",
        n,
        "dst-0",
        (o) => o?.data?.i === "changed",
        t.timeoutMs,
      );
      await b.waitFor(
        "remote source change",
        "v1",
        "ConfigMap",
        nb,
        "dst-1",
        (o) => o?.data?.i === "changed",
      );
      await a.waitFor("target repaired", "v1", "ConfigMap", n, "dst-2", (o) => o?.data?.i === "2");
      await b.waitFor("remote target repaired", "v1", "ConfigMap", nb, "dst-3", (o) => o?.data?.i === "3");
      await a.waitFor("label back", "v1", "ConfigMap", n, "dst-4", (o) => o?.metadata?.labels?.team === "x");
      const summary = `requests ${JSON.stringify([...requests])}; remote writes ${remoteWrites(nb) - remoteBefore}`;
      process.stderr.write(`# restart with 5 of ${N} changed: ${summary}\n`);
      assert.equal(requests.get("apply") ?? 0, 3, `one apply per changed local target: ${summary}`);
      assert.equal(remoteWrites(nb) - remoteBefore, 2, `one apply per changed remote target: ${summary}`);
      assert.equal(requests.get("patch resourcesyncs/status") ?? 0, 0, `no status write: ${summary}`);
      for (let i = 5; i < N; i++) await waitReady(a, n, `rs-${i}`, "True");
    } finally {
      await deleteResourceSyncs(a, [n]).catch(() => undefined);
      await ctrl.stop();
    }
  });
});
