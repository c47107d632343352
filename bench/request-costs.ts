/**
 * What each request of the scale benchmark costs the API server: kube-apiserver's and etcd's CPU (user + system,
 * from /proc) for N requests of one kind, 8 at a time, divided by N, less what they spend idle over the same
 * time; each step measured in every round, the median of the rounds printed. The requests are the ones each
 * system makes (Sinker's target and status are built by Sinker's own projection and status functions), and the
 * floor they set on Sinker / ideal for the benchmark's bulk phases is printed below them
 * (bench/support/request-prices.ts). Starts the test control plane when it is not running (and stops it again).
 *
 *   npm run bench:requests -- [--n 1000] [--rounds 3] [--json request-costs.json]
 *
 * The benchmark's own requests (create and DELETE of a ResourceSync) go as the control plane's admin, the
 * systems' as the audited benchmark user, as in `npm run bench`.
 */
import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { FIELD_MANAGER, FINALIZER } from "../src/api/types.ts";
import { validateResourceSync } from "../src/api/validate.ts";
import { finalizerRemoval } from "../src/controller/finalizer.ts";
import { inSyncMessage } from "../src/controller/resolve.ts";
import { nextStatus } from "../src/controller/status.ts";
import { describeTarget, nextRecord, type TargetIdentity } from "../src/controller/sync-record.ts";
import { ClusterClient } from "../src/kube/client.ts";
import { KubeConfig } from "../src/kube/client-node.ts";
import { ApiEventRecorder } from "../src/kube/events.ts";
import type { KubeObject } from "../src/kube/object.ts";
import { createLogger } from "../src/log.ts";
import { pool } from "../src/pool.ts";
import { project } from "../src/projection/index.ts";
import { installFinalizerPolicy, removeFinalizerPolicy } from "../test/controlplane/finalizer-policy.ts";
import { releaseTestRun, type TestEnv, upForTestRun } from "../test/controlplane/testenv.ts";
import { cpuSeconds } from "./support/figures.ts";
import { floors, medianPrices, type Price, STEPS, type Step } from "./support/request-prices.ts";
import { objectResource, PAYLOAD, RS_RESOURCE, resourceSync } from "./support/scenario.ts";

const USAGE = "usage: npm run bench:requests -- [--n N] [--rounds R] [--json FILE]";
const CONCURRENCY = 8;

const CONFIGMAP = objectResource("ConfigMap");

/** CPU of kube-apiserver (cluster a) and etcd, in ms. */
function controlPlaneCpuMs(env: TestEnv): { api: number; etcd: number } {
  const api = env.state.clusters.a.apiserver?.pid;
  const etcd = env.state.etcd.proc?.pid;
  if (api === undefined || etcd === undefined) throw new Error("the test control plane is not running");
  return { api: cpuSeconds(api) * 1000, etcd: cpuSeconds(etcd) * 1000 };
}

/** Runs `request` for every index, CONCURRENCY at a time, and returns its price per request. */
async function price(env: TestEnv, n: number, request: (i: number) => Promise<unknown>): Promise<Price> {
  // what the control plane spends on its own (controllers' resyncs, leases) over a second, to subtract
  await sleep(500);
  const i0 = controlPlaneCpuMs(env);
  const ti = performance.now();
  await sleep(1000);
  const i1 = controlPlaneCpuMs(env);
  const idleMs = performance.now() - ti;
  const idle = { api: (i1.api - i0.api) / idleMs, etcd: (i1.etcd - i0.etcd) / idleMs };

  const c0 = controlPlaneCpuMs(env);
  const t0 = performance.now();
  await pool(
    Array.from({ length: n }, (_, i) => i),
    CONCURRENCY,
    request,
  );
  const elapsed = performance.now() - t0;
  const c1 = controlPlaneCpuMs(env);
  const per = (used: number, idleRate: number) => Math.max(0, used - idleRate * elapsed) / n;
  return { apiMs: per(c1.api - c0.api, idle.api), etcdMs: per(c1.etcd - c0.etcd, idle.etcd) };
}

interface Options {
  n: number;
  rounds: number;
  json: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "1000" },
      rounds: { type: "string", default: "3" },
      json: { type: "string", default: "request-costs.json" },
    },
  });
  const int = (name: string, v: string | undefined) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be an integer ≥ 1`);
    return x;
  };
  return { n: int("n", values.n), rounds: int("rounds", values.rounds), json: values.json ?? "" };
}

interface Clients {
  /** The benchmark's own identity (not audited), as in `npm run bench`. */
  admin: ClusterClient;
  /** The systems' identity (audited, as Sinker's and the ideal's are in `npm run bench`). */
  system: ClusterClient;
  events: ApiEventRecorder;
}

function clients(env: TestEnv): Clients {
  const admin = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "a" });
  const kc = new KubeConfig();
  kc.loadFromString(env.auditedKubeconfigText("a", "sinker-bench"));
  const system = ClusterClient.fromKubeConfig(kc, { name: "a" });
  const logger = createLogger({ level: "warn", format: "plain" }, process.stderr);
  return { admin, system, events: new ApiEventRecorder(system, logger, "bench") };
}

/** One round (`tag` names it in the log): every step once, in fresh namespaces. */
async function round(
  env: TestEnv,
  c: Clients,
  n: number,
  tag: string,
  log: (m: string) => void,
): Promise<Map<Step, Price>> {
  const prices = new Map<Step, Price>();
  const step = async (name: Step, request: (i: number) => Promise<unknown>) => {
    const p = await price(env, n, request);
    prices.set(name, p);
    log(`${tag} ${name}: ${p.apiMs.toFixed(2)} ms`);
  };
  const idealTarget = (ns: string, i: number): KubeObject => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `dst-${i}`, namespace: ns },
    data: { payload: PAYLOAD, v: "0" },
  });
  const source = (ns: string, i: number): KubeObject => ({
    ...idealTarget(ns, i),
    metadata: { name: `src-${i}`, namespace: ns },
  });
  const createRs = (ns: string) => (i: number) =>
    c.admin.create(RS_RESOURCE, ns, resourceSync(i, false, "", { kind: "ConfigMap", mappings: false }));
  const deleteRs = (ns: string) => (i: number) => c.admin.delete(RS_RESOURCE, ns, `rs-${i}`);

  const nsIdeal = await env.createNamespace("a", "bench-requests-ideal");
  const nsSinker = await env.createNamespace("a", "bench-requests-sinker");
  try {
    // the ideal copier's requests, and the benchmark's, with no policy and no finalizer
    await removeFinalizerPolicy(env, "a");
    await step("create ResourceSync", createRs(nsIdeal));
    await step("apply target (ideal)", (i) =>
      c.system.apply(CONFIGMAP, idealTarget(nsIdeal, i), { fieldManager: "ideal-copier", force: true }),
    );
    await step("delete ResourceSync", deleteRs(nsIdeal));
    await step("delete target (ideal)", (i) =>
      c.system.delete(CONFIGMAP, nsIdeal, `dst-${i}`, { propagationPolicy: "Background" }),
    );

    // Sinker's, as it ships (the policy adds the finalizer at creation) and as its reconciler builds them
    await installFinalizerPolicy(env, "a");
    const created = new Map<number, KubeObject>();
    await step("create ResourceSync, finalizer policy acting", async (i) => {
      const rs = await createRs(nsSinker)(i);
      if (!rs.metadata?.finalizers?.includes(FINALIZER)) throw new Error("the finalizer policy did not act");
      created.set(i, rs);
    });
    const identity = (i: number): TargetIdentity => ({
      cluster: {},
      apiVersion: "v1",
      kind: "ConfigMap",
      namespace: nsSinker,
      name: `dst-${i}`,
    });
    const applied = new Map<number, KubeObject>();
    await step("apply target (Sinker)", async (i) => {
      const checked = validateResourceSync(created.get(i));
      if (!checked.ok) throw new Error(`rs-${i} is not a valid ResourceSync`);
      const desired = project({
        resourceSync: checked.value,
        source: source(nsSinker, i),
        target: { namespace: nsSinker, ownerReference: true },
      });
      applied.set(i, await c.system.apply(CONFIGMAP, desired, { fieldManager: FIELD_MANAGER, force: true }));
    });
    await step("status patch", (i) => {
      const rs = created.get(i);
      const record = nextRecord(undefined, identity(i), applied.get(i)?.metadata?.uid ?? "", new Date());
      const checked = validateResourceSync(rs);
      if (!checked.ok) throw new Error(`rs-${i} is not a valid ResourceSync`);
      const end = (name: string) => ({ client: c.system, local: true, namespace: nsSinker, name });
      const message = inSyncMessage(checked.value, end(`src-${i}`), end(`dst-${i}`));
      const status = nextStatus(
        undefined,
        rs?.metadata?.generation,
        { ok: true, message },
        new Date(),
        record,
      );
      return c.system.patch(RS_RESOURCE, nsSinker, `rs-${i}`, { status }, "merge", { subresource: "status" });
    });
    await step("delete ResourceSync with finalizer", async (i) => {
      if ((await deleteRs(nsSinker)(i)) !== "pending") throw new Error(`rs-${i} went without its finalizer`);
    });
    // the ResourceSyncs as Sinker's cache holds them now (deletionTimestamp set); one list, not priced
    const deleting = new Map(
      (await c.admin.list(RS_RESOURCE, nsSinker)).items.map((rs) => [rs.metadata?.name ?? "", rs] as const),
    );
    await step("delete target (Sinker)", (i) =>
      c.system.delete(CONFIGMAP, nsSinker, `dst-${i}`, {
        propagationPolicy: "Background",
        preconditions: { uid: applied.get(i)?.metadata?.uid ?? "" },
      }),
    );
    await step("create Event", (i) =>
      c.events.post(
        deleting.get(`rs-${i}`) ?? {},
        "Normal",
        "TargetDeleted",
        `target ${describeTarget(identity(i))} deleted`,
      ),
    );
    await step("finalizer patch, last finalizer", (i) =>
      c.system.patch(
        RS_RESOURCE,
        nsSinker,
        `rs-${i}`,
        finalizerRemoval(deleting.get(`rs-${i}`) ?? {}),
        "merge",
      ),
    );
  } finally {
    await removeFinalizerPolicy(env, "a").catch(() => undefined);
    // waited for: the namespace controller's deletions would be counted in the next round's prices
    const gone = { wait: true, timeoutMs: 300_000 };
    await env.deleteNamespace("a", nsIdeal, gone).catch(() => undefined);
    await env.deleteNamespace("a", nsSinker, gone).catch(() => undefined);
  }
  return prices;
}

function table(prices: ReadonlyMap<Step, Price>, o: Options): string {
  const rows = STEPS.flatMap((s) => {
    const p = prices.get(s);
    return p ? [[s, p.apiMs.toFixed(2), p.etcdMs.toFixed(2)]] : [];
  });
  const lines = [
    [`request (N = ${o.n}, ${CONCURRENCY} at a time, median of ${o.rounds})`, "API server (ms)", "etcd (ms)"],
    ...rows,
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...lines.map((l) => (l[c] ?? "").length)));
  return lines
    .map((l) => l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))))
    .map((l) => l.join("  "))
    .join("\n");
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = options();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const log = (msg: string) => process.stderr.write(`[bench:requests] ${msg}\n`);
  const { env } = await upForTestRun({ log });
  const rounds: Array<Map<Step, Price>> = [];
  try {
    const c = clients(env);
    for (let r = 1; r <= o.rounds; r++) rounds.push(await round(env, c, o.n, `round ${r}:`, log));
  } finally {
    await releaseTestRun({ log });
  }
  const prices = medianPrices(rounds);
  const fl = floors(prices);
  const floorLines = fl.map(
    (f) =>
      `${f.phase}: the ideal's requests cost the API server ${f.idealMs.toFixed(2)} ms per ResourceSync, ` +
      `Sinker's ${f.sinkerMs.toFixed(2)} ms: floor of Sinker / ideal ${f.ratio.toFixed(2)}×`,
  );
  // each round's own floors, for the spread (the medians above are taken per request, not per floor)
  const perRound = rounds.map(floors);
  if (rounds.length > 1) {
    for (const [i, f] of fl.entries()) {
      const each = perRound.map((r) => `${(r[i]?.ratio ?? Number.NaN).toFixed(2)}×`).join(" ");
      floorLines.push(`${f.phase} floor per round: ${each}`);
    }
  }
  process.stdout.write(`${table(prices, o)}\n\n${floorLines.join("\n")}\n`);
  writeFileSync(
    o.json,
    `${JSON.stringify(
      {
        n: o.n,
        prices: Object.fromEntries(prices),
        floors: fl,
        rounds: rounds.map((r, i) => ({ prices: Object.fromEntries(r), floors: perRound[i] })),
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`\nfigures written to ${o.json}\n`);
  return 0;
}

process.exitCode = await main();
