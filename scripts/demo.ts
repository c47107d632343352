/**
 * `npm run demo`: Sinker syncing in and across two local clusters, live in the terminal.
 *
 *   node scripts/demo.ts          run the scenario, then show the ResourceSyncs live until Ctrl-C, then clean up
 *   node scripts/demo.ts --once   run the scenario, check every outcome, clean up, exit 0 (1 on any failure)
 *
 * What it does: starts the test control plane (test/controlplane/testenv.ts: clusters a and b) unless it is
 * already up, installs the CRDs in both clusters, creates a kubeconfig Secret for cluster b in cluster a, starts
 * the real controller (`node src/cli/main.ts`) as a child process against cluster a, applies examples/ in
 * namespace `demo` of both clusters, then times a source edit propagating, drift being undone, a deleted target
 * being re-created, a ClusterResourceSyncSet fanning app-settings out to labelled namespaces and to cluster b,
 * and a ResourceSync deletion cleaning up.
 *
 * It stops only what it started: the controller always; the control plane only when this run started it and no
 * test run uses it; the demo namespaces when the control plane stays up. One demo at a time per .testenv.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Watch } from "@kubernetes/client-node";
import { isBuilt } from "../test/controlplane/build.ts";
import {
  envDir,
  isAlive,
  releaseTestRun,
  repoRoot,
  type TestEnv,
  upForTestRun,
} from "../test/controlplane/testenv.ts";

const USAGE = `usage: node scripts/demo.ts [--once]   (npm run demo [-- --once])
  (no flag)  run the demo scenario, then show the ResourceSyncs live until Ctrl-C, then clean up
  --once     run the scenario, check every outcome, clean up and exit (0 when everything worked)
`;

const NS = "demo"; // in clusters a and b
const REMOTES_NS = "sinker-remotes"; // in cluster a: the kubeconfig Secret of cluster b
/** The fan-out step: a ClusterResourceSyncSet copies app-settings into the namespaces labelled FANOUT_LABEL. */
const FANOUT_SET = "demo-fanout";
const FANOUT_LABEL = "sinker-demo/team";
const FANOUT_NS = ["demo-team-1", "demo-team-2", "demo-team-3"];
const CRSS_PATH = "/apis/sinker.influxdata.io/v1alpha1/clusterresourcesyncsets";
const RS_API = "/apis/sinker.influxdata.io/v1alpha1";
const EXPECTED_SYNCS = [
  "clone-in-cluster",
  "copy-secret-to-cluster-b",
  "mappings-from-cluster-b",
  "sinkercontainer-to-cluster-b",
  "keep-target-on-deletion",
];

// ---------------------------------------------------------------------------------------------------------------
// Output

const tty = process.stdout.isTTY === true;
const color = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = color("32");
const red = color("31");
const bold = color("1");
const dim = color("2");

function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}
function step(title: string): void {
  say();
  say(bold(`== ${title}`));
}
function okLine(msg: string): void {
  say(`${green("✓")} ${msg}`);
}
function rel(path: string): string {
  const r = relative(process.cwd(), path);
  return r.startsWith("..") ? path : r || ".";
}

// ---------------------------------------------------------------------------------------------------------------
// Interruption: the first SIGINT/SIGTERM aborts the scenario (or the live view) and starts the clean-up; npm
// forwards the terminal's Ctrl-C to us as well, so a second signal within a second is the same one. A later
// second signal skips the namespace clean-up; a third exits at once.

const scenarioAbort = new AbortController();
const cleanupAbort = new AbortController();
/** What waits and sleeps obey: the scenario's signal, then the clean-up's (aborted only by a second signal). */
let active: AbortSignal = scenarioAbort.signal;
let signals = 0;
let firstSignalAt = 0;
let forced = false;

function onSignal(sig: NodeJS.Signals): void {
  const now = Date.now();
  if (signals > 0 && now - firstSignalAt < 1000) return;
  signals++;
  if (signals === 1) {
    firstSignalAt = now;
    say();
    say(`${sig}: stopping and cleaning up (Ctrl-C again to skip the namespace clean-up)`);
    scenarioAbort.abort(new Interrupted());
  } else if (signals === 2) {
    forced = true;
    cleanupAbort.abort(new Interrupted());
    say(`${sig}: skipping the namespace clean-up; stopping the processes this demo started`);
  } else {
    say(`${sig}: exiting now`);
    process.exit(130); // the "exit" handler below still kills the controller
  }
}

class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

class Failure extends Error {}

/** Polls `fn` every `intervalMs` until it returns a truthy value; throws Failure(`what`) after `timeoutMs`. */
async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    active.throwIfAborted();
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof Failure) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? ` (last error: ${(lastError as Error).message})` : "";
      throw new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}${detail}`);
    }
    await sleep(intervalMs, undefined, { signal: active });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster access (the testenv's own raw client: fast and precise for timings)

type Obj = {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ uid: string }>;
    managedFields?: Array<{ manager?: string; time?: string }>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  data?: Record<string, string>;
  spec?: {
    source?: Ref;
    target?: Ref;
  };
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
};
type Ref = {
  resourceRef?: { kind?: string; name?: string };
  cluster?: { namespace?: string; kubeConfig?: { secretRef?: { name?: string } } };
};

let env: TestEnv;

const path = {
  cm: (name: string) => `/api/v1/namespaces/${NS}/configmaps/${name}`,
  secret: (name: string) => `/api/v1/namespaces/${NS}/secrets/${name}`,
  rs: (name = "") => `${RS_API}/namespaces/${NS}/resourcesyncs${name ? `/${name}` : ""}`,
  ns: (name: string) => `/api/v1/namespaces/${name}`,
};

async function get(cluster: "a" | "b", p: string): Promise<Obj | undefined> {
  const r = await env.request(cluster, "GET", p);
  if (r.status === 404) return undefined;
  if (r.status !== 200)
    throw new Error(`GET ${p} in cluster ${cluster}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Obj;
}

async function must(
  cluster: "a" | "b",
  method: string,
  p: string,
  body?: unknown,
  ct?: string,
): Promise<void> {
  const r = await env.request(cluster, method, p, body, ct);
  if (r.status < 200 || r.status > 299) {
    throw new Failure(`${method} ${p} in cluster ${cluster}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

async function listSyncs(): Promise<Obj[]> {
  const r = await env.request("a", "GET", path.rs());
  if (r.status !== 200) throw new Error(`listing ResourceSyncs: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { items: Obj[] }).items;
}

function ready(rs: Obj | undefined) {
  return rs?.status?.conditions?.find((c) => c.type === "Ready");
}

/** `kubectl …` through the testenv's kubectl; prints the command (kubeconfig path relative) and fails on error. */
async function kubectl(cluster: "a" | "b", args: string[], opts: { input?: string; quiet?: boolean } = {}) {
  if (!opts.quiet) say(dim(`$ kubectl --kubeconfig ${rel(env.kubeconfigPath(cluster))} ${args.join(" ")}`));
  const r = await env.kubectl(cluster, args, opts.input === undefined ? {} : { input: opts.input });
  active.throwIfAborted();
  if (r.code !== 0) throw new Failure(`kubectl ${args.join(" ")} (cluster ${cluster}) failed:\n${r.stderr}`);
  if (!opts.quiet && r.stdout.trim()) say(dim(r.stdout.trimEnd().replace(/^/gm, "  ")));
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------------------
// The controller process

const logFile = () => join(envDir(), "logs", "sinker-demo.log");
let controller: ChildProcess | undefined;
let controllerExit: Promise<number | string | null> | undefined;
let adminPort = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = a && typeof a !== "string" ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

function logTail(lines = 30): string {
  try {
    return readFileSync(logFile(), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function startSinker(): Promise<void> {
  adminPort = await freePort();
  mkdirSync(join(envDir(), "logs"), { recursive: true });
  const args = [
    join(repoRoot, "src", "cli", "main.ts"),
    "--kubeconfig",
    env.kubeconfigPath("a"),
    "--admin-addr",
    `127.0.0.1:${adminPort}`,
    "--log-format",
    "plain",
  ];
  const fd = openSync(logFile(), "w"); // this run's log only
  try {
    // Its own process group: the terminal's Ctrl-C reaches only the demo, which deletes the ResourceSyncs while
    // the controller still runs (their finalizers need it) and then stops it.
    controller = spawn(process.execPath, args, { cwd: repoRoot, detached: true, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd);
  }
  const child = controller;
  controllerExit = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  child.on("error", () => {});
  writeLock();
  say(
    dim(
      `$ node src/cli/main.ts --kubeconfig ${rel(env.kubeconfigPath("a"))} --admin-addr 127.0.0.1:${adminPort} --log-format plain`,
    ),
  );
  say(`  controller pid ${child.pid}, log ${rel(logFile())}`);
  const t = performance.now();
  await until(
    "the controller's /ready",
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Failure(
          `the controller exited (${child.exitCode ?? child.signalCode}) during start-up; last lines of ${rel(logFile())}:\n${logTail()}`,
        );
      }
      return (await httpStatus(`http://127.0.0.1:${adminPort}/ready`)) === 200;
    },
    30_000,
    50,
  );
  okLine(`controller ready in ${ms(performance.now() - t)} (GET http://127.0.0.1:${adminPort}/ready → 200)`);
}

// Whatever happens (an uncaught error, a third Ctrl-C), the controller, in its own process group, does not outlive
// the demo.
process.on("exit", () => {
  if (controllerRunning()) controller?.kill("SIGKILL");
});

function controllerRunning(): boolean {
  return controller !== undefined && controller.exitCode === null && controller.signalCode === null;
}

async function stopSinker(): Promise<void> {
  const child = controller;
  if (!child?.pid || !controllerExit || child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = new AbortController();
  const code = await Promise.race([
    controllerExit,
    sleep(15_000, "timeout" as const, { signal: timer.signal }).catch(() => "timeout" as const),
  ]);
  timer.abort();
  if (code === "timeout") {
    say(red("the controller did not exit within 15 s of SIGTERM: killing it"));
    child.kill("SIGKILL");
    await controllerExit;
  } else {
    say(`controller stopped (exit code ${code})`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One demo at a time per .testenv; a controller left behind by a killed demo is stopped by the next one.

type Lock = { pid: number; controllerPid?: number };
const lockFile = join(
  tmpdir(),
  `sinker-demo-${createHash("sha256").update(envDir()).digest("hex").slice(0, 16)}.json`,
);

function writeLock(): void {
  const lock: Lock = { pid: process.pid, ...(controller?.pid ? { controllerPid: controller.pid } : {}) };
  writeFileSync(lockFile, JSON.stringify(lock));
}

function isOurController(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => a.endsWith(join("src", "cli", "main.ts"))) && argv.includes("--admin-addr");
  } catch {
    return false;
  }
}

let lockHeld = false;

async function takeLock(): Promise<void> {
  for (;;) {
    try {
      writeFileSync(lockFile, JSON.stringify({ pid: process.pid } satisfies Lock), { flag: "wx" });
      lockHeld = true;
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let old: Lock | undefined;
    try {
      old = JSON.parse(readFileSync(lockFile, "utf8")) as Lock;
    } catch {
      old = undefined; // being written, or garbage: treated as stale below
    }
    if (old && isAlive(old.pid)) {
      throw new Failure(`another demo is running (pid ${old.pid}); stop it first (Ctrl-C in its terminal)`);
    }
    if (old?.controllerPid && isAlive(old.controllerPid) && isOurController(old.controllerPid)) {
      say(`stopping the controller (pid ${old.controllerPid}) left behind by an earlier demo`);
      process.kill(old.controllerPid, "SIGTERM");
      await sleep(2000);
      if (isAlive(old.controllerPid)) process.kill(old.controllerPid, "SIGKILL");
    }
    rmSync(lockFile, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Namespaces

async function deleteDemoObjects(opts: { quiet?: boolean } = {}): Promise<void> {
  // With the controller running, deleting the ResourceSyncs deletes their targets (in b too) and clears the
  // finalizers; without one (left-overs of a killed demo) the finalizers are removed by hand.
  // The set first: its children (one of them in namespace demo) would otherwise be made again.
  if (await get("a", `${CRSS_PATH}/${FANOUT_SET}`).catch(() => undefined)) {
    await env.request("a", "DELETE", `${CRSS_PATH}/${FANOUT_SET}`);
    await until(
      "the fan-out set to be gone",
      async () => !(await get("a", `${CRSS_PATH}/${FANOUT_SET}`)),
      30_000,
      100,
    );
  }
  const syncs = await listSyncs().catch(() => [] as Obj[]);
  if (syncs.length > 0) {
    for (const rs of syncs) {
      const name = rs.metadata?.name ?? "";
      if (!controllerRunning()) {
        await must("a", "PATCH", path.rs(name), { metadata: { finalizers: null } });
      }
      await env.request("a", "DELETE", path.rs(name));
    }
    await until(
      "the demo's ResourceSyncs to be deleted",
      async () => (await listSyncs()).length === 0,
      30_000,
      100,
    ).catch(async (err: Error) => {
      if (err instanceof Interrupted || active.aborted) throw err;
      say(red(`${err.message}: removing their finalizers`));
      for (const rs of await listSyncs()) {
        await env.request("a", "PATCH", path.rs(rs.metadata?.name ?? ""), { metadata: { finalizers: null } });
      }
    });
  }
  const namespaces: Array<["a" | "b", string]> = [
    ["a", NS],
    ["a", REMOTES_NS],
    ["b", NS],
    ...FANOUT_NS.map((n): ["a", string] => ["a", n]),
  ];
  for (const [c, n] of namespaces) await env.request(c, "DELETE", path.ns(n));
  if (!opts.quiet) say(`deleting namespaces ${NS} (a, b) and ${REMOTES_NS} (a); this takes about 5 s`);
  for (const [c, n] of namespaces) {
    await until(
      `namespace ${n} in cluster ${c} to be gone`,
      async () => !(await get(c, path.ns(n))),
      90_000,
      250,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The table of ResourceSyncs

function describeRef(ref: Ref | undefined): string {
  const r = ref?.resourceRef;
  const where = ref?.cluster ? ` @${ref.cluster.kubeConfig?.secretRef?.name ?? "remote"}` : "";
  return `${r?.kind ?? "?"}/${r?.name ?? "?"}${where}`;
}

function table(syncs: Obj[], readyAfter: Map<string, number>, written?: Map<string, string>): string[] {
  const head = [
    "RESOURCESYNC",
    "SOURCE",
    "TARGET",
    "READY",
    "REASON",
    ...(readyAfter.size > 0 ? ["READY AFTER"] : []),
    ...(written ? ["TARGET WRITTEN"] : []),
  ];
  const rows = syncs.map((rs) => {
    const c = ready(rs);
    const name = rs.metadata?.name ?? "";
    const after = readyAfter.get(name);
    return [
      name,
      describeRef(rs.spec?.source),
      describeRef(rs.spec?.target),
      rs.metadata?.deletionTimestamp ? "Deleting" : (c?.status ?? "-"),
      c?.reason ?? "",
      ...(readyAfter.size > 0 ? [after === undefined ? "" : ms(after)] : []),
      ...(written ? [written.get(name) ?? ""] : []),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const lines = [head, ...rows].map((r) =>
    r
      .map((cell, i) => {
        const padded = cell.padEnd(widths[i] ?? 0);
        if (i !== 3) return padded;
        return cell === "True" ? green(padded) : cell === "False" ? red(padded) : padded;
      })
      .join("  ")
      .trimEnd(),
  );
  for (const rs of syncs) {
    const c = ready(rs);
    if (c && c.status !== "True") lines.push(red(`  ${rs.metadata?.name}: ${c.message}`.slice(0, 160)));
  }
  return lines;
}

const PLURALS: Record<string, string> = {
  ConfigMap: "configmaps",
  Secret: "secrets",
  SinkerContainer: "sinkercontainers",
};

/** When Sinker last changed each ResourceSync's target (its managedFields entry, 1 s resolution), or "absent". */
async function targetsWritten(syncs: Obj[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    syncs.map(async (rs) => {
      const t = rs.spec?.target;
      const kind = t?.resourceRef?.kind ?? "";
      const plural = PLURALS[kind];
      if (!plural || !t?.resourceRef?.name) return;
      if (t.cluster && t.cluster.kubeConfig?.secretRef?.name !== "cluster-b") return; // not one of the demo's clusters
      const group = kind === "SinkerContainer" ? RS_API : "/api/v1";
      const cluster = t.cluster ? "b" : "a"; // in this demo, every remote reference is cluster b
      const ns = t.cluster ? (t.cluster.namespace ?? "default") : NS;
      const o = await get(cluster, `${group}/namespaces/${ns}/${plural}/${t.resourceRef.name}`).catch(
        () => null,
      );
      if (o === null) return;
      if (o === undefined) {
        out.set(rs.metadata?.name ?? "", "absent");
        return;
      }
      const entry = o.metadata?.managedFields?.find((f) => f.manager === "sinker.influxdata.io");
      const at = entry?.time ? Date.parse(entry.time) : Number.NaN;
      out.set(
        rs.metadata?.name ?? "",
        Number.isNaN(at) ? "never" : `${Math.max(0, Math.round((Date.now() - at) / 1000))} s ago`,
      );
    }),
  );
  return out;
}

function ms(v: number): string {
  return `${Math.round(v)} ms`;
}

// ---------------------------------------------------------------------------------------------------------------
// The scenario

const timings: Array<[string, number]> = [];
const failures: string[] = [];

/** An outcome to wait for: object `name` in `collection` of `cluster` satisfies `test` (undefined: absent). */
type Expect = { cluster: "a" | "b"; collection: string; name: string; test: (o: Obj | undefined) => boolean };

const coll = {
  cm: `/api/v1/namespaces/${NS}/configmaps`,
  secret: `/api/v1/namespaces/${NS}/secrets`,
  rs: `${RS_API}/namespaces/${NS}/resourcesyncs`,
};

/**
 * Watches every expectation's object (from the resourceVersion of a fresh list, so no event is missed), runs
 * `write`, and resolves with the milliseconds from the write to the watch event that made the last expectation
 * true. An expectation counts only when an event after the write satisfies it, so "restored after a change"
 * is measured at the restore, not at the change.
 */
async function whenAll(write: () => Promise<void>, expects: Expect[], timeoutMs: number): Promise<number> {
  const watches: AbortController[] = [];
  try {
    const states = expects.map(() => ({ ok: false, at: 0 }));
    let notify = () => {};
    let watchError: Error | undefined;
    let armed = false;
    for (const [i, e] of expects.entries()) {
      const selector = `metadata.name=${e.name}`;
      const r = await env.request(
        e.cluster,
        "GET",
        `${e.collection}?fieldSelector=${encodeURIComponent(selector)}`,
      );
      if (r.status !== 200) throw new Failure(`list ${e.collection} in ${e.cluster}: ${r.status}`);
      const rv = (r.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      const st = states[i] as { ok: boolean; at: number };
      watches.push(
        await new Watch(env.kubeConfig(e.cluster)).watch(
          e.collection,
          { fieldSelector: selector, resourceVersion: rv, allowWatchBookmarks: true },
          (phase: string, obj: Obj) => {
            if (phase === "BOOKMARK" || !armed) return;
            if (phase === "ERROR") {
              watchError = new Error(`watch ${e.collection} in ${e.cluster}: ${JSON.stringify(obj)}`);
            } else {
              const ok = e.test(phase === "DELETED" ? undefined : obj);
              if (ok && !st.ok) st.at = performance.now();
              st.ok = ok;
            }
            notify();
          },
          (err: unknown) => {
            if (err && !(err instanceof Error && err.name === "AbortError")) {
              watchError = new Error(
                `watch ${e.collection} in ${e.cluster} closed: ${(err as Error).message}`,
              );
              notify();
            }
          },
        ),
      );
    }
    armed = true;
    const t0 = performance.now();
    await write();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Failure(`no outcome within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const onAbort = () => {
        clearTimeout(timer);
        reject(active.reason);
      };
      active.addEventListener("abort", onAbort, { once: true });
      notify = () => {
        if (watchError) {
          clearTimeout(timer);
          reject(watchError);
        } else if (states.every((st) => st.ok)) {
          clearTimeout(timer);
          active.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      notify();
    });
    const crashed = (controllerExit ?? new Promise<never>(() => {})).then((code) => {
      throw new Failure(
        `the controller exited (code ${code}); last lines of ${rel(logFile())}:\n${logTail(15)}`,
      );
    });
    await Promise.race([done, crashed]);
    return Math.max(...states.map((st) => st.at)) - t0;
  } finally {
    for (const w of watches) w.abort();
  }
}

/** Runs `write` and reports the time until every expectation held, as seen by watches. */
async function timed(
  what: string,
  write: () => Promise<void>,
  expects: Expect[],
  timeoutMs = 20_000,
): Promise<void> {
  try {
    const took = await whenAll(write, expects, timeoutMs);
    timings.push([what, took]);
    okLine(`${what}: ${bold(ms(took))}`);
  } catch (err) {
    if (active.aborted) throw err;
    failures.push(`${what}: ${(err as Error).message}`);
    say(`${red("✗")} ${what}: ${(err as Error).message}`);
  }
}

function check(what: string, ok: boolean, detail: string): void {
  if (ok) {
    okLine(what);
  } else {
    failures.push(`${what}: ${detail}`);
    say(`${red("✗")} ${what}: ${detail}`);
  }
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/**
 * Applies examples/ with kubectl (cluster b's part first) and waits until every ResourceSync is Ready; a watch
 * on the ResourceSyncs records, for each, the time from its creation (ADDED event) to Ready=True.
 */
async function applyExamples(readyAfter: Map<string, number>): Promise<void> {
  await kubectl("b", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples", "cluster-b"))]);
  const firstSeen = new Map<string, number>();
  let allReady = () => {};
  const list = await env.request("a", "GET", coll.rs);
  const rv = (list.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const watch = await new Watch(env.kubeConfig("a")).watch(
    coll.rs,
    { resourceVersion: rv },
    (phase: string, rs: Obj) => {
      const now = performance.now();
      const name = rs?.metadata?.name ?? "";
      if (phase === "ADDED" && !firstSeen.has(name)) firstSeen.set(name, now);
      if (
        phase !== "DELETED" &&
        ready(rs)?.status === "True" &&
        !readyAfter.has(name) &&
        firstSeen.has(name)
      ) {
        readyAfter.set(name, now - (firstSeen.get(name) ?? now));
        allReady();
      }
    },
    () => {},
  );
  try {
    await kubectl("a", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples"))]);
    await new Promise<void>((resolve, reject) => {
      controllerExit?.then((code) => reject(new Failure(`the controller exited (code ${code})`)));
      const timer = setTimeout(
        () => reject(new Failure("not every ResourceSync became Ready within 60 s")),
        60_000,
      );
      const onAbort = () => {
        clearTimeout(timer);
        reject(active.reason);
      };
      active.addEventListener("abort", onAbort, { once: true });
      allReady = () => {
        if (EXPECTED_SYNCS.every((n) => readyAfter.has(n))) {
          clearTimeout(timer);
          active.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      allReady();
    });
  } catch (err) {
    if (active.aborted) throw err;
    for (const line of table(await listSyncs(), readyAfter)) say(line);
    throw new Failure(`${(err as Error).message}; last lines of ${rel(logFile())}:\n${logTail(15)}`);
  } finally {
    watch.abort();
  }
}

async function scenario(): Promise<void> {
  step("Installing the CRDs in clusters a and b");
  const crds = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, "src", "cli", "main.ts"), "manifests"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Failure(`sinker manifests: exit ${code}`)),
    );
  });
  for (const c of ["a", "b"] as const) {
    say(
      dim(
        `$ node src/cli/main.ts manifests | kubectl --kubeconfig ${rel(env.kubeconfigPath(c))} apply --server-side -f -`,
      ),
    );
    await kubectl(c, ["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: crds,
      quiet: true,
    });
    await kubectl(
      c,
      [
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/resourcesyncs.sinker.influxdata.io",
        "crd/sinkercontainers.sinker.influxdata.io",
        "crd/resourcesyncsets.sinker.influxdata.io",
        "crd/clusterresourcesyncsets.sinker.influxdata.io",
      ],
      { quiet: true },
    );
  }
  okLine(
    "CRDs resourcesyncs, sinkercontainers, resourcesyncsets, clusterresourcesyncsets established in a and b",
  );

  step(`Namespaces, and a kubeconfig Secret for cluster b in cluster a`);
  if (
    (await get("a", path.ns(NS))) ||
    (await get("b", path.ns(NS))) ||
    (await get("a", path.ns(REMOTES_NS)))
  ) {
    say(`cleaning up what an earlier demo left behind`);
    await deleteDemoObjects({ quiet: true });
  }
  await kubectl("a", ["create", "namespace", NS]);
  await kubectl("b", ["create", "namespace", NS]);
  await kubectl("a", ["create", "namespace", REMOTES_NS]);
  await kubectl("a", [
    "-n",
    REMOTES_NS,
    "create",
    "secret",
    "generic",
    "cluster-b",
    `--from-file=value=${rel(env.kubeconfigPath("b"))}`,
  ]);
  // A Secret in another namespace than the ResourceSyncs: it must name the namespaces allowed to use it.
  await kubectl("a", [
    "-n",
    REMOTES_NS,
    "annotate",
    "secret",
    "cluster-b",
    `sinker.influxdata.io/allowed-namespaces=${NS}`,
  ]);

  step("Starting the controller against cluster a");
  await startSinker();

  step("Applying examples/ (namespace demo)");
  const readyAfter = new Map<string, number>();
  await applyExamples(readyAfter);
  const syncs = await listSyncs();
  for (const line of table(syncs, readyAfter)) say(line);
  say(dim("(READY AFTER: from the ResourceSync's creation to Ready=True, as seen by a watch)"));
  for (const name of EXPECTED_SYNCS) {
    const c = ready(syncs.find((s) => s.metadata?.name === name));
    check(
      `${name} Ready`,
      c?.status === "True" && c.reason === "Synced",
      `Ready condition ${JSON.stringify(c)}`,
    );
  }

  step("What the examples produced");
  const copy = await get("a", path.cm("app-settings-copy"));
  check(
    "clone-in-cluster: ConfigMap app-settings-copy in a = app-settings (data and labels)",
    copy?.data?.greeting === "hello" &&
      copy.data["log-level"] === "info" &&
      copy.metadata?.labels?.app === "demo",
    JSON.stringify(copy?.data),
  );
  const secretB = await get("b", path.secret("db-credentials"));
  check(
    "copy-secret-to-cluster-b: Secret db-credentials in b has the source's username and password",
    secretB?.data?.username === b64("app") && secretB.data.password === b64("not-a-real-password"),
    secretB ? `keys ${Object.keys(secretB.data ?? {}).join(",")}` : "missing",
  );
  const mapped = await get("a", path.cm("demo-mapped"));
  check(
    "mappings-from-cluster-b: ConfigMap demo-mapped in a = {remote, bar} from b's remote-demo, label tier=gold",
    JSON.stringify(mapped?.data) ===
      JSON.stringify({ bar: "renamed on the way", remote: "from cluster b" }) &&
      mapped?.metadata?.labels?.tier === "gold",
    JSON.stringify({ data: mapped?.data, labels: mapped?.metadata?.labels }),
  );
  const unpacked = await get("b", path.cm("unpacked-config"));
  check(
    "sinkercontainer-to-cluster-b: ConfigMap unpacked-config in b unpacked from SinkerContainer packed-config",
    unpacked?.data?.["feature-flags"] === "search=on,beta=off" && unpacked.metadata?.labels?.packed === "yes",
    JSON.stringify(unpacked?.data),
  );
  const handed = await get("a", path.cm("handed-over"));
  check(
    "keep-target-on-deletion: ConfigMap handed-over in a",
    handed?.data?.owner === "team-a",
    JSON.stringify(handed?.data),
  );

  step("A source edit propagating");
  await timed(
    "source edited in a → clone in a updated (clone-in-cluster)",
    () => must("a", "PATCH", path.cm("app-settings"), { data: { greeting: "hello again" } }),
    [
      {
        cluster: "a",
        collection: coll.cm,
        name: "app-settings-copy",
        test: (o) => o?.data?.greeting === "hello again",
      },
    ],
  );
  await timed(
    "source edited in b → mapped copy in a updated (mappings-from-cluster-b)",
    () => must("b", "PATCH", path.cm("remote-demo"), { data: { foo: "edited in b" } }),
    [{ cluster: "a", collection: coll.cm, name: "demo-mapped", test: (o) => o?.data?.bar === "edited in b" }],
  );
  await timed(
    "Secret rotated in a → copy in b updated (copy-secret-to-cluster-b)",
    () => must("a", "PATCH", path.secret("db-credentials"), { stringData: { password: "rotated" } }),
    [
      {
        cluster: "b",
        collection: coll.secret,
        name: "db-credentials",
        test: (o) => o?.data?.password === b64("rotated"),
      },
    ],
  );

  await fanOut();

  step("Drift on a target being undone");
  await timed(
    "target edited by hand in b → change undone (copy-secret-to-cluster-b)",
    () => must("b", "PATCH", path.secret("db-credentials"), { data: { password: b64("tampered") } }),
    [
      {
        cluster: "b",
        collection: coll.secret,
        name: "db-credentials",
        test: (o) => o?.data?.password === b64("rotated"),
      },
    ],
  );
  const oldUid = (await get("b", path.cm("unpacked-config")))?.metadata?.uid;
  await timed(
    "target deleted by hand in b → re-created (sinkercontainer-to-cluster-b)",
    () => must("b", "DELETE", path.cm("unpacked-config")),
    [
      {
        cluster: "b",
        collection: coll.cm,
        name: "unpacked-config",
        test: (o) =>
          o !== undefined && o.metadata?.uid !== oldUid && o.data?.["feature-flags"] === "search=on,beta=off",
      },
    ],
  );

  step("A deletion cleaning up");
  await timed(
    "ResourceSync deleted → its target in b deleted, then the ResourceSync gone (copy-secret-to-cluster-b)",
    () => must("a", "DELETE", path.rs("copy-secret-to-cluster-b")),
    [
      { cluster: "b", collection: coll.secret, name: "db-credentials", test: (o) => o === undefined },
      { cluster: "a", collection: coll.rs, name: "copy-secret-to-cluster-b", test: (o) => o === undefined },
    ],
  );
  const keepUid = (await get("a", path.rs("keep-target-on-deletion")))?.metadata?.uid;
  await timed(
    "ResourceSync with disable-target-deletion deleted → gone, target kept (keep-target-on-deletion)",
    () => must("a", "DELETE", path.rs("keep-target-on-deletion")),
    [{ cluster: "a", collection: coll.rs, name: "keep-target-on-deletion", test: (o) => o === undefined }],
  );
  const kept = await get("a", path.cm("handed-over"));
  check(
    "keep-target-on-deletion: ConfigMap handed-over still there, without an owner reference to the ResourceSync",
    kept?.data?.owner === "team-a" && !kept.metadata?.ownerReferences?.some((o) => o.uid === keepUid),
    JSON.stringify(kept?.metadata?.ownerReferences ?? kept ?? "missing"),
  );

  step("Timings");
  const width = Math.max(...timings.map(([w]) => w.length));
  for (const [what, took] of timings) say(`  ${what.padEnd(width)}  ${ms(took).padStart(7)}`);
  for (const [name, took] of readyAfter)
    say(`  ${`${name} Ready after creation`.padEnd(width)}  ${ms(took).padStart(7)}`);
}

/**
 * Fan-out: a ClusterResourceSyncSet copies app-settings (namespace demo) into every namespace labelled
 * FANOUT_LABEL and into namespace demo of cluster b; namespaces labelled and unlabelled while it runs gain and
 * lose their copy.
 */
async function fanOut(): Promise<void> {
  step("Fan-out: one ConfigMap to every labelled namespace, and to cluster b");
  const [ns1, ns2, ns3] = FANOUT_NS as [string, string, string];
  for (const n of FANOUT_NS) {
    const labels = n === ns3 ? {} : { [FANOUT_LABEL]: "yes" };
    await must("a", "POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: n, labels },
    });
  }
  say(dim(`namespaces ${ns1} and ${ns2} labelled ${FANOUT_LABEL}=yes, ${ns3} not`));
  const copyIn = (cluster: "a" | "b", n: string, test: (o: Obj | undefined) => boolean): Expect => ({
    cluster,
    collection: `/api/v1/namespaces/${n}/configmaps`,
    name: "app-settings",
    test,
  });
  const present = (o: Obj | undefined) => o?.data?.greeting !== undefined;
  const set = {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ClusterResourceSyncSet",
    metadata: { name: FANOUT_SET },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "app-settings" }, namespace: NS },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "app-settings" } },
      namespaceSelector: { matchLabels: { [FANOUT_LABEL]: "yes" } },
      clusters: [
        {
          kubeConfig: { secretRef: { namespace: REMOTES_NS, name: "cluster-b", key: "value" } },
          namespaces: [NS],
        },
      ],
    },
  };
  await timed(
    `ClusterResourceSyncSet ${FANOUT_SET} created → copies in ${ns1}, ${ns2} and in b`,
    () => must("a", "POST", CRSS_PATH, set),
    [copyIn("a", ns1, present), copyIn("a", ns2, present), copyIn("b", NS, present)],
  );
  await timed(
    `namespace ${ns3} labelled → its copy`,
    () =>
      must(
        "a",
        "PATCH",
        path.ns(ns3),
        { metadata: { labels: { [FANOUT_LABEL]: "yes" } } },
        "application/merge-patch+json",
      ),
    [copyIn("a", ns3, present)],
  );
  await timed(
    `namespace ${ns1} unlabelled → its copy deleted`,
    () =>
      must(
        "a",
        "PATCH",
        path.ns(ns1),
        { metadata: { labels: { [FANOUT_LABEL]: null } } },
        "application/merge-patch+json",
      ),
    [copyIn("a", ns1, (o) => o === undefined)],
  );
  await timed(
    "source edited → every copy updated",
    () => must("a", "PATCH", path.cm("app-settings"), { data: { greeting: "hello, fleet" } }),
    [ns2, ns3]
      .map((n) => copyIn("a", n, (o) => o?.data?.greeting === "hello, fleet"))
      .concat(copyIn("b", NS, (o) => o?.data?.greeting === "hello, fleet")),
  );
  const status = await until(
    "the set's status to count 3 synced destinations",
    async () => {
      const s = (await get("a", `${CRSS_PATH}/${FANOUT_SET}`)) as
        | { status?: Record<string, number> }
        | undefined;
      return s?.status?.desired === 3 && s.status.synced === 3 ? s.status : undefined;
    },
    20_000,
    100,
  ).catch(() => undefined);
  check(
    `kubectl get crsyncset ${FANOUT_SET}: DESIRED 3, SYNCED 3, FAILING 0`,
    status !== undefined && status.failing === 0,
    JSON.stringify(status),
  );
  await kubectl("a", ["get", "crsyncset", FANOUT_SET]);
}

// ---------------------------------------------------------------------------------------------------------------
// The live view

async function live(): Promise<void> {
  step("Re-applying examples/ so that every ResourceSync is there to play with");
  await kubectl("a", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples"))]);

  const kc = env.kubectlPath;
  const ka = env.kubeconfigPath("a");
  const kb = env.kubeconfigPath("b");
  step("Poke at it (in another terminal)");
  say(`kubeconfigs: cluster a ${ka}`);
  say(`             cluster b ${kb}`);
  say(`kubectl:     ${kc}`);
  say(`controller:  pid ${controller?.pid}, log ${logFile()}, metrics http://127.0.0.1:${adminPort}/metrics`);
  say();
  say(`  alias ka='${kc} --kubeconfig ${ka}' kb='${kc} --kubeconfig ${kb}'`);
  say(`  ka -n ${NS} get rsync                                  # the ResourceSyncs (short name rsync)`);
  say(`  ka -n ${NS} patch configmap app-settings --type merge -p '{"data":{"greeting":"hi"}}'`);
  say(`  ka -n ${NS} get configmap app-settings-copy -o yaml    # follows the source`);
  say(`  kb -n ${NS} delete configmap unpacked-config           # comes back at once`);
  say(`  kb -n ${NS} edit configmap remote-demo                 # change data.foo: demo-mapped in a follows`);
  say(`  ka -n ${NS} describe rsync mappings-from-cluster-b     # conditions and Events`);
  say(`  ka -n ${NS} delete rsync clone-in-cluster              # deletes app-settings-copy too`);
  say();
  say(bold("Live ResourceSyncs in namespace demo of cluster a (Ctrl-C to stop and clean up):"));
  say(dim("(TARGET WRITTEN: when Sinker last changed the target, from its managedFields entry)"));

  let drawn = 0;
  let last = "";
  while (!active.aborted) {
    if (controller && (controller.exitCode !== null || controller.signalCode !== null)) {
      say(
        red(
          `the controller exited (${controller.exitCode ?? controller.signalCode}); last lines of its log:`,
        ),
      );
      say(logTail());
      throw new Failure("the controller exited");
    }
    let lines: string[];
    try {
      const syncs = await listSyncs();
      lines = table(syncs, new Map(), await targetsWritten(syncs));
    } catch (err) {
      lines = [red(`cannot list ResourceSyncs: ${(err as Error).message}`)];
    }
    if (lines.length === 1) lines.push(dim("(none: `ka -n demo apply -f examples/` brings them back)"));
    const text = lines.join("\n");
    if (tty) {
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[0J`);
      const stamp = dim(`updated ${new Date().toISOString().slice(11, 19)} UTC`);
      process.stdout.write(`${text}\n${stamp}\n`);
      drawn = lines.length + 1;
    } else if (text !== last) {
      say(text);
      say();
    }
    last = text;
    await sleep(1000, undefined, { signal: active }).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== "--once");
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (unknown.length > 0) {
    process.stderr.write(`demo: unknown argument ${unknown[0]}\n${USAGE}`);
    return 2;
  }
  const once = argv.includes("--once");
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  say(bold(`Sinker demo${once ? " (--once: run the scenario, check it, clean up)" : ""}`));
  step("Two local clusters (test control plane)");
  if (!isBuilt()) {
    say(
      "building etcd, kube-apiserver, kube-controller-manager and kubectl from source: first run only (needs Go;",
    );
    say("about 12 minutes on 2 cores, then cached outside the work tree)");
  }
  let started = false;
  let registered = false;
  let code = 0;
  let envUp = false;
  try {
    await takeLock();
    const up = await upForTestRun({ log: (m) => say(dim(`  [testenv] ${m}`)) });
    registered = true;
    env = up.env;
    started = up.started;
    envUp = true;
    okLine(
      started
        ? `clusters a and b started in ${up.seconds.toFixed(1)} s (this demo stops them when it ends)`
        : "clusters a and b already up: reusing them (this demo leaves them running)",
    );
    say(`  cluster a ${env.server("a")}  kubeconfig ${rel(env.kubeconfigPath("a"))}`);
    say(`  cluster b ${env.server("b")}  kubeconfig ${rel(env.kubeconfigPath("b"))}`);
    active.throwIfAborted();

    await scenario();
    if (failures.length > 0) {
      code = 1;
    } else if (!once) {
      await live();
    }
  } catch (err) {
    if (err instanceof Interrupted || active.aborted) {
      code = once ? 130 : 0; // stopping the live view is the normal end; an interrupted check is no pass
    } else {
      code = 1;
      failures.push((err as Error).message);
      if (!(err instanceof Failure)) say(red((err as Error).stack ?? String(err)));
    }
  }

  // Clean-up: only what this run started.
  step("Cleaning up");
  try {
    const othersUse = envUp && readUsers().some((pid) => pid !== process.pid);
    const envStays = !started || othersUse;
    if (envUp && envStays && !forced) {
      await deleteCleanly();
    }
    await stopSinker();
    if (registered) {
      const r = await releaseTestRun({ log: (m) => say(dim(`  [testenv] ${m}`)) });
      say(
        r === "stopped"
          ? "control plane stopped (this demo started it)"
          : "control plane left running (this demo did not start it, or a test run uses it)",
      );
    }
  } catch (err) {
    code = 1;
    failures.push(`clean-up: ${(err as Error).message}`);
    await stopSinker().catch(() => {});
  } finally {
    if (lockHeld) rmSync(lockFile, { force: true });
  }

  say();
  if (failures.length > 0) {
    process.stderr.write(`demo FAILED:\n${failures.map((f) => `  - ${f}`).join("\n")}\n`);
    if (controller && !failures.some((f) => f.includes("last lines of"))) {
      process.stderr.write(`last lines of ${rel(logFile())}:\n${logTail(20)}\n`);
    }
    return 1;
  }
  if (signals > 0) {
    say("demo stopped; everything it started is cleaned up");
    return code;
  }
  say(green(bold(`demo passed: ${timings.length} timed scenarios, every check held`)));
  return code;
}

/** Deletes the demo's objects while the controller still runs; only a second signal interrupts it. */
async function deleteCleanly(): Promise<void> {
  active = cleanupAbort.signal;
  const t = performance.now();
  try {
    await deleteDemoObjects();
    okLine(`demo ResourceSyncs, targets and namespaces deleted in ${ms(performance.now() - t)}`);
  } catch (err) {
    if (!(err instanceof Interrupted) && !cleanupAbort.signal.aborted) throw err;
    say("namespace clean-up skipped");
  }
}

function readUsers(): number[] {
  const dir = join(envDir(), "users");
  try {
    return readdirSync(dir)
      .map(Number)
      .filter((pid) => pid > 0 && isAlive(pid));
  } catch {
    return [];
  }
}

process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

const exitCode = await main(process.argv.slice(2));
process.exitCode = exitCode;
// Everything this demo opened is closed by now; should a stray handle remain, do not hang on it.
setTimeout(() => process.exit(exitCode), 2000).unref();
