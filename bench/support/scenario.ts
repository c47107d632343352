/**
 * One run of the scale scenario against one system under test (Sinker, or the ideal copier), on the running test
 * control plane: N sources exist; N ResourceSyncs are created; then source edits, target drift, an idle window,
 * and the deletion of every ResourceSync. Requests are counted from the API servers' audit logs (the system runs
 * as an audited identity), timings from the benchmark's own watches on the targets, memory and CPU from /proc.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ClusterClient, type ResourceInfo } from "../../src/kube/client.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import { pool } from "../../src/pool.ts";
import { installFinalizerPolicy, removeFinalizerPolicy } from "../../test/controlplane/finalizer-policy.ts";
import type { AuditedUser, TestEnv } from "../../test/controlplane/testenv.ts";
import { AuditLogs, type RequestCounts } from "./audit.ts";
import { type Percentiles, percentiles } from "./figures.ts";
import { TargetObserver } from "./observer.ts";
import { type Sut, SutProcess } from "./sut.ts";

export { IMAGE_ENV, IMAGE_NODE_FLAGS, type Sut } from "./sut.ts";

export interface ScenarioOptions {
  n: number;
  /** Share of ResourceSyncs whose target is in cluster b (0..1). */
  remoteShare: number;
  kind: "ConfigMap" | "Secret";
  mappings: boolean;
  edits: number;
  drifts: number;
  /** Source edits and target drifts per second. */
  rate: number;
  idleSeconds: number;
  /** Extra command-line flags for Sinker (e.g. `--concurrency 16`), to compare settings. */
  sinkerArgs?: string[];
  /** Extra Node flags for Sinker's process (e.g. `--cpu-prof --cpu-prof-dir=prof`), to profile it. */
  sinkerNodeArgs?: string[];
  /** Sinker runs with manifests/finalizer-policy.yaml installed, as the chart installs it (default: true). The
   * ideal copier never does: it removes no finalizer. */
  finalizerPolicy?: boolean;
  log: (msg: string) => void;
}

export interface ScenarioResult {
  sut: Sut;
  n: number;
  convergenceMs: number;
  convergenceRequests: RequestCounts;
  watchesHeld: number;
  propagationMs: Percentiles;
  driftRepairMs: Percentiles;
  idle: { seconds: number; requests: number; cpuSeconds: number };
  peakRssMiB: number;
  startRssMiB: number;
  /** CPU seconds of convergence, edits, drifts, idle and deletion (the first process's start included; the
   * restart phases apart, see `restart`). */
  cpuSeconds: number;
  /** `cpuSeconds` by phase: the start until ready, convergence, source edits and drifts, idle, deletion. */
  cpuByPhase: CpuByPhase;
  deletionMs: number;
  deletionRequests: RequestCounts;
  /** The system killed (SIGKILL) and started again over its N converged ResourceSyncs, nothing changed. */
  restart: RestartFigures;
  /** Killed again; 1 % of the sources (at least one) changed while it was down; started again. */
  restartChanged: RestartFigures & { changed: number };
}

export interface CpuByPhase {
  start: number;
  convergence: number;
  changes: number;
  idle: number;
  deletion: number;
}

export interface RestartFigures {
  /** From the start of the new process until it went through every ResourceSync (and the changed targets hold
   * their new values). */
  ms: number;
  requests: RequestCounts;
  /** Requests that write (create, update, patch, delete), of `requests`. */
  writes: number;
  /** CPU seconds of the new process until then (start-up included). */
  cpuSeconds: number;
}

const USERS: Record<Sut, AuditedUser> = { sinker: "sinker-bench", ideal: "ideal-copier" };
export const RS_RESOURCE: ResourceInfo = {
  apiVersion: "sinker.influxdata.io/v1alpha1",
  group: "sinker.influxdata.io",
  version: "v1alpha1",
  kind: "ResourceSync",
  plural: "resourcesyncs",
  namespaced: true,
};
export const PAYLOAD = "x".repeat(1024);

/** Resolves when `promise` does, rejects after `ms` naming `what`. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${Math.round(ms / 1000)} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The resource of the benchmark's sources and targets. */
export function objectResource(kind: ScenarioOptions["kind"]): ResourceInfo {
  return {
    apiVersion: "v1",
    group: "",
    version: "v1",
    kind,
    plural: kind === "Secret" ? "secrets" : "configmaps",
    namespaced: true,
  };
}

export async function runScenario(env: TestEnv, sut: Sut, o: ScenarioOptions): Promise<ScenarioResult> {
  const user = USERS[sut];
  const res = objectResource(o.kind);
  const enc = (v: string) => (o.kind === "Secret" ? Buffer.from(v).toString("base64") : v);
  const readValue = (obj: KubeObject) => {
    const data = obj.data as Record<string, string> | undefined;
    return data?.payload === enc(PAYLOAD) ? data?.v : undefined;
  };
  const a = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "a" });
  const b = ClusterClient.fromKubeConfig(env.kubeConfig("b"), { name: "b" });
  const nsA = await env.createNamespace("a", `bench-${sut}`);
  const nsB = await env.createNamespace("b", `bench-${sut}`);
  const dir = mkdtempSync(join(tmpdir(), "sinker-bench-"));
  const audit = new AuditLogs({ a: env.auditLog("a"), b: env.auditLog("b") });
  const remote = (i: number) => i < Math.round(o.n * o.remoteShare);
  const targetEnd = (i: number) =>
    remote(i) ? { cluster: "b", client: b, ns: nsB } : { cluster: "a", client: a, ns: nsA };
  let proc: SutProcess | undefined;
  const observer = new TargetObserver(
    [
      { cluster: "a", client: a, namespace: nsA },
      { cluster: "b", client: b, namespace: nsB },
    ],
    res,
    readValue,
  );
  try {
    // ------------------------------------------------------------------ setup (not measured)
    const kubeconfigA = join(dir, "a.kubeconfig");
    const kubeconfigB = join(dir, "b.kubeconfig");
    writeFileSync(kubeconfigA, env.auditedKubeconfigText("a", user));
    writeFileSync(kubeconfigB, env.auditedKubeconfigText("b", user, nsB));
    const secretRes = await a.resolve("v1", "Secret");
    await a.create(secretRes, nsA, {
      metadata: { name: "cluster-b" },
      stringData: { value: env.auditedKubeconfigText("b", user, nsB) },
    });
    const indexes = Array.from({ length: o.n }, (_, i) => i);
    await pool(indexes, 20, (i) =>
      a.create(res, nsA, {
        metadata: { name: `src-${i}`, labels: { bench: "source" } },
        data: { payload: enc(PAYLOAD), v: enc("0") },
      }),
    );
    await observer.start();
    if (sut === "sinker" && o.finalizerPolicy !== false) await installFinalizerPolicy(env, "a");
    else await removeFinalizerPolicy(env, "a");

    const started = await audit.mark();
    proc = new SutProcess(sut, {
      kubeconfigA,
      kubeconfigB,
      nsA,
      nsB,
      kind: o.kind,
      remote: o.remoteShare > 0,
      sinkerArgs: o.sinkerArgs ?? [],
      sinkerNodeArgs: o.sinkerNodeArgs ?? [],
    });
    await proc.start(120_000);
    const startRssMiB = proc.rssMiB();
    const cpuStart = proc.cpuSeconds();
    o.log(`${sut}: ready (RSS ${startRssMiB.toFixed(0)} MiB); creating ${o.n} ResourceSyncs`);

    // ------------------------------------------------------------------ convergence
    const m0 = await audit.mark();
    const t0 = performance.now();
    const converged = indexes.map((i) => observer.whenValue(targetEnd(i).cluster, `dst-${i}`, enc("0")));
    await pool(indexes, 20, (i) => a.create(RS_RESOURCE, nsA, resourceSync(i, remote(i), nsB, o)));
    const times = await within("convergence", 60_000 + o.n * 100, Promise.all(converged));
    const convergenceMs = Math.max(...times) - t0;
    o.log(`${sut}: converged in ${(convergenceMs / 1000).toFixed(2)} s`);
    if (sut === "sinker") await within("every ResourceSync Ready", 60_000 + o.n * 50, allReady(a, nsA, o.n));
    const m1 = await audit.mark(2000);
    const convergenceRequests = audit.requests(user, m0, m1);
    const watchesHeld = audit.openWatches(user, started, m1);
    const cpuConverged = proc.cpuSeconds();

    // ------------------------------------------------------------------ propagation of source edits
    const spread = (count: number, offset: number) =>
      Array.from(
        { length: Math.min(count, o.n) },
        (_, k) => (Math.floor((k * o.n) / Math.min(count, o.n)) + offset) % o.n,
      );
    const edited = spread(o.edits, 0);
    const propagation = await paced(edited, o.rate, async (i) => {
      const seen = observer.whenValue(targetEnd(i).cluster, `dst-${i}`, enc("1"));
      const sent = performance.now();
      await a.patch(res, nsA, `src-${i}`, { data: { v: enc("1") } }, "merge");
      return (await within(`propagation to dst-${i}`, 120_000, seen)) - sent;
    });
    o.log(`${sut}: ${edited.length} source edits propagated`);

    // ------------------------------------------------------------------ drift repair
    const editedSet = new Set(edited);
    const drifted = spread(o.drifts, 1);
    const drift = await paced(drifted, o.rate, async (i) => {
      const end = targetEnd(i);
      const expected = enc(editedSet.has(i) ? "1" : "0");
      const repaired = observer.whenValue(end.cluster, `dst-${i}`, expected, { after: enc("drift") });
      const sent = performance.now();
      await end.client.patch(res, end.ns, `dst-${i}`, { data: { v: enc("drift") } }, "merge", {
        fieldManager: "bench-drift",
      });
      return (await within(`drift repair of dst-${i}`, 120_000, repaired)) - sent;
    });
    o.log(`${sut}: ${drifted.length} drifts undone`);

    // ------------------------------------------------------------------ idle
    const i0 = await audit.mark(2000);
    const cpuIdle0 = proc.cpuSeconds();
    await sleep(o.idleSeconds * 1000);
    const cpuIdle1 = proc.cpuSeconds();
    const i1 = await audit.mark();
    const idle = {
      seconds: o.idleSeconds,
      requests: audit.requests(user, i0, i1).total,
      cpuSeconds: cpuIdle1 - cpuIdle0,
    };

    // ------------------------------------------------------------------ restarts
    const restartOf = async (changed: readonly number[]): Promise<RestartFigures> => {
      const sut = proc as SutProcess;
      // killed, as a node lost or an OOM kill does; a profiled Sinker is stopped (SIGTERM) so it writes its profile
      const profiled = (o.sinkerNodeArgs ?? []).some((a) => a.startsWith("--cpu-prof"));
      await sut.stop(profiled ? "SIGTERM" : "SIGKILL");
      const r0 = await audit.mark();
      // while it is down: some sources change
      await pool(changed, 20, (i) => a.patch(res, nsA, `src-${i}`, { data: { v: enc("2") } }, "merge"));
      const seen = changed.map((i) => observer.whenValue(targetEnd(i).cluster, `dst-${i}`, enc("2")));
      const t = performance.now();
      await sut.start(120_000);
      await within("changed targets after the restart", 60_000 + o.n * 50, Promise.all(seen));
      await sut.settled(o.n, 60_000 + o.n * 50);
      const ms = performance.now() - t;
      const cpu = sut.processCpuSeconds();
      const r1 = await audit.mark(2000);
      return restartFigures(audit.requests(user, r0, r1), ms, cpu);
    };
    const restart = await restartOf([]);
    o.log(`${sut}: restarted, nothing changed: ${restart.writes} writes`);
    const changed = spread(Math.max(1, Math.round(o.n / 100)), 2);
    const restartChanged = { ...(await restartOf(changed)), changed: changed.length };
    o.log(`${sut}: restarted, ${changed.length} sources changed: ${restartChanged.writes} writes`);

    // ------------------------------------------------------------------ deletion
    const d0 = await audit.mark();
    const cpuDeletion0 = proc.processCpuSeconds();
    const td = performance.now();
    const gone = indexes.map((i) => observer.whenGone(targetEnd(i).cluster, `dst-${i}`));
    await pool(indexes, 20, (i) => a.delete(RS_RESOURCE, nsA, `rs-${i}`));
    const goneTimes = await within("deletion of every target", 60_000 + o.n * 200, Promise.all(gone));
    await within("every ResourceSync gone", 60_000 + o.n * 200, noneLeft(a, nsA));
    const deletionMs = Math.max(performance.now() - td, Math.max(...goneTimes) - td);
    const d1 = await audit.mark(2000);
    o.log(`${sut}: deleted in ${(deletionMs / 1000).toFixed(2)} s`);

    const cpuDeletion = proc.processCpuSeconds() - cpuDeletion0;
    const result: ScenarioResult = {
      sut,
      n: o.n,
      convergenceMs,
      convergenceRequests,
      watchesHeld,
      propagationMs: percentiles(propagation),
      driftRepairMs: percentiles(drift),
      idle,
      peakRssMiB: proc.peakRssMiB(),
      startRssMiB,
      // the run's CPU: the first process until the restarts (its start included), then the deletion
      cpuSeconds: cpuIdle1 + cpuDeletion,
      cpuByPhase: {
        start: cpuStart,
        convergence: cpuConverged - cpuStart,
        changes: cpuIdle0 - cpuConverged,
        idle: cpuIdle1 - cpuIdle0,
        deletion: cpuDeletion,
      },
      deletionMs,
      deletionRequests: audit.requests(user, d0, d1),
      restart,
      restartChanged,
    };
    return result;
  } finally {
    await proc?.stop("SIGTERM");
    await observer.stop();
    await removeFinalizerPolicy(env, "a").catch(() => {});
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
    await Promise.all([env.deleteNamespace("a", nsA), env.deleteNamespace("b", nsB)]).catch(() => {});
  }
}

/** The benchmark's ResourceSync number `i` (source `src-i`, target `dst-i`). */
export function resourceSync(
  i: number,
  remote: boolean,
  nsB: string,
  o: Pick<ScenarioOptions, "kind" | "mappings">,
): KubeObject {
  return {
    apiVersion: RS_RESOURCE.apiVersion,
    kind: "ResourceSync",
    metadata: { name: `rs-${i}` },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: o.kind, name: `src-${i}` } },
      target: {
        resourceRef: { apiVersion: "v1", kind: o.kind, name: `dst-${i}` },
        ...(remote
          ? { cluster: { namespace: nsB, kubeConfig: { secretRef: { name: "cluster-b", key: "value" } } } }
          : {}),
      },
      ...(o.mappings
        ? {
            mappings: [
              { fromFieldPath: "data.payload", toFieldPath: "data.payload" },
              { fromFieldPath: "data.v", toFieldPath: "data.v" },
            ],
          }
        : {}),
    },
  };
}

/** What a restart cost: its requests (and how many wrote), how long until done, the new process's CPU. */
function restartFigures(requests: RequestCounts, ms: number, cpuSeconds: number): RestartFigures {
  const writes = Object.entries(requests.byVerbResource)
    .filter(([what]) => /^(create|update|patch|delete|deletecollection) /.test(what))
    .reduce((sum, [, count]) => sum + count, 0);
  return { ms, requests, writes, cpuSeconds };
}

/** Issues `work` for each item at `rate` per second (each one timed by itself); returns what each returned. */
async function paced(
  items: readonly number[],
  rate: number,
  work: (i: number) => Promise<number>,
): Promise<number[]> {
  const pending: Array<Promise<number>> = [];
  const start = performance.now();
  for (const [k, i] of items.entries()) {
    const due = start + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(work(i));
  }
  return (await Promise.all(pending)).map((ms) => Math.max(0, ms));
}

async function allReady(a: ClusterClient, ns: string, n: number): Promise<void> {
  for (;;) {
    const list = await a.list(RS_RESOURCE, ns);
    const ready = list.items.filter((rs) =>
      (
        (rs.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []
      ).some((c) => c.type === "Ready" && c.status === "True"),
    ).length;
    if (ready >= n) return;
    await sleep(250);
  }
}

async function noneLeft(a: ClusterClient, ns: string): Promise<void> {
  for (;;) {
    if ((await a.list(RS_RESOURCE, ns, { limit: 1 })).items.length === 0) return;
    await sleep(100);
  }
}
