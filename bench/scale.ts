/**
 * Scale benchmark: Sinker beside an ideal copier (bench/ideal-copier.ts) on the same test control plane, the
 * same scenario (bench/support/scenario.ts), every figure of Sinker's printed as a ratio to the ideal's.
 * Starts the test control plane when it is not running (and stops it again afterwards).
 *
 *   npm run bench -- [--n 1000] [--remote-share 0] [--kind ConfigMap|Secret] [--mappings]
 *                    [--edits 200] [--drifts 50] [--rate 50] [--idle-seconds 60] [--sut sinker,ideal]
 *                    [--json bench-results.json] [--sinker-args="--concurrency 16"] [--no-finalizer-policy]
 *                    [--sinker-node-args="--cpu-prof --cpu-prof-dir=prof"] [--runs 1] [--background-load 0]
 *
 * `--background-load CORES` runs CORES busy loops (pure computation, no I/O) beside both systems' runs alike: how
 * a busy node changes Sinker's figures against the ideal copier's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { releaseTestRun, upForTestRun } from "../test/controlplane/testenv.ts";
import { medianRun, type Run, ratio } from "./support/runs.ts";
import { runScenario, type ScenarioOptions, type ScenarioResult, type Sut } from "./support/scenario.ts";

const USAGE =
  "usage: npm run bench -- [--n N] [--remote-share 0..1] [--kind ConfigMap|Secret] [--mappings] " +
  "[--edits N] [--drifts N] [--rate N] [--idle-seconds S] [--sut sinker,ideal] [--json FILE] " +
  '[--sinker-args="--concurrency 16"] [--no-finalizer-policy] [--sinker-node-args="--cpu-prof"] [--runs K] ' +
  "[--background-load CORES]";

interface Options {
  scenario: Omit<ScenarioOptions, "log">;
  suts: Sut[];
  json: string;
  runs: number;
  backgroundLoad: number;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "1000" },
      "remote-share": { type: "string", default: "0" },
      kind: { type: "string", default: "ConfigMap" },
      mappings: { type: "boolean", default: false },
      edits: { type: "string" },
      drifts: { type: "string" },
      rate: { type: "string", default: "50" },
      "idle-seconds": { type: "string", default: "60" },
      sut: { type: "string", default: "ideal,sinker" },
      json: { type: "string", default: "bench-results.json" },
      "sinker-args": { type: "string", default: "" },
      "sinker-node-args": { type: "string", default: "" },
      "no-finalizer-policy": { type: "boolean", default: false },
      runs: { type: "string", default: "1" },
      "background-load": { type: "string", default: "0" },
    },
  });
  const int = (name: string, v: string | undefined, min: number) => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < min) throw new Error(`--${name} must be an integer ≥ ${min}`);
    return x;
  };
  const n = int("n", values.n, 1);
  const share = Number(values["remote-share"]);
  if (!(share >= 0 && share <= 1)) throw new Error("--remote-share must be between 0 and 1");
  if (values.kind !== "ConfigMap" && values.kind !== "Secret")
    throw new Error("--kind must be ConfigMap or Secret");
  const suts = (values.sut ?? "").split(",").filter((s): s is Sut => s === "sinker" || s === "ideal");
  if (suts.length === 0) throw new Error("--sut must name sinker, ideal or both");
  return {
    scenario: {
      n,
      remoteShare: share,
      kind: values.kind,
      mappings: values.mappings ?? false,
      edits: int("edits", values.edits ?? String(Math.min(n, 200)), 1),
      drifts: int("drifts", values.drifts ?? String(Math.min(n, 50)), 1),
      rate: int("rate", values.rate, 1),
      idleSeconds: int("idle-seconds", values["idle-seconds"], 1),
      sinkerArgs: (values["sinker-args"] ?? "").split(" ").filter((a) => a !== ""),
      sinkerNodeArgs: (values["sinker-node-args"] ?? "").split(" ").filter((a) => a !== ""),
      finalizerPolicy: !values["no-finalizer-policy"],
    },
    suts,
    json: values.json ?? "bench-results.json",
    runs: int("runs", values.runs, 1),
    backgroundLoad: int("background-load", values["background-load"], 0),
  };
}

type Row = [string, (r: ScenarioResult) => number, number];

/** The rows of the table: label, figure, decimals. */
const ROWS: Row[] = [
  ["convergence (s)", (r) => r.convergenceMs / 1000, 2],
  ["requests during convergence", (r) => r.convergenceRequests.total, 0],
  ["  per ResourceSync", (r) => r.convergenceRequests.total / r.n, 2],
  ["propagation p50 (ms)", (r) => r.propagationMs.p50, 1],
  ["propagation p90 (ms)", (r) => r.propagationMs.p90, 1],
  ["propagation p99 (ms)", (r) => r.propagationMs.p99, 1],
  ["propagation max (ms)", (r) => r.propagationMs.max, 1],
  ["drift repair p50 (ms)", (r) => r.driftRepairMs.p50, 1],
  ["drift repair p99 (ms)", (r) => r.driftRepairMs.p99, 1],
  ["watches held", (r) => r.watchesHeld, 0],
  ["requests while idle (per min)", (r) => (r.idle.requests * 60) / r.idle.seconds, 1],
  ["CPU while idle (s per min)", (r) => (r.idle.cpuSeconds * 60) / r.idle.seconds, 2],
  ["RSS at start (MiB)", (r) => r.startRssMiB, 0],
  ["peak RSS (MiB)", (r) => r.peakRssMiB, 0],
  ["CPU, whole run (s)", (r) => r.cpuSeconds, 2],
  ["  start until ready", (r) => r.cpuByPhase.start, 2],
  ["  convergence", (r) => r.cpuByPhase.convergence, 2],
  ["  source edits and drifts", (r) => r.cpuByPhase.changes, 2],
  ["  idle window", (r) => r.cpuByPhase.idle, 2],
  ["  deletion", (r) => r.cpuByPhase.deletion, 2],
  ["deletion of all (s)", (r) => r.deletionMs / 1000, 2],
  ["requests during deletion", (r) => r.deletionRequests.total, 0],
  ["restart, nothing changed: writes", (r) => r.restart.writes, 0],
  ["  requests", (r) => r.restart.requests.total, 0],
  ["  time until through all (s)", (r) => r.restart.ms / 1000, 2],
  ["  CPU of the new process (s)", (r) => r.restart.cpuSeconds, 2],
  ["restart, 1 % of sources changed: writes", (r) => r.restartChanged.writes, 0],
  ["  requests", (r) => r.restartChanged.requests.total, 0],
  ["  time until through all (s)", (r) => r.restartChanged.ms / 1000, 2],
  ["  CPU of the new process (s)", (r) => r.restartChanged.cpuSeconds, 2],
];

function table(results: Partial<Record<Sut, ScenarioResult>>): string {
  const ideal = results.ideal;
  const sinker = results.sinker;
  const lines = [["figure", "ideal copier", "Sinker", "Sinker / ideal"]];
  for (const [label, get, decimals] of ROWS) {
    const i = ideal ? get(ideal) : Number.NaN;
    const s = sinker ? get(sinker) : Number.NaN;
    const ratio = Number.isFinite(i) && Number.isFinite(s) && i > 0 ? `${(s / i).toFixed(2)}×` : "";
    lines.push([label, fmt(i, decimals), fmt(s, decimals), ratio]);
  }
  const widths = lines[0]?.map((_, c) => Math.max(...lines.map((l) => (l[c] ?? "").length))) ?? [];
  return lines
    .map((l) =>
      l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    )
    .join("\n");
}

function fmt(x: number, decimals: number): string {
  return Number.isFinite(x) ? x.toFixed(decimals) : "-";
}

function breakdown(r: ScenarioResult): string {
  const parts = Object.entries(r.convergenceRequests.byVerbResource)
    .sort((x, y) => y[1] - x[1])
    .map(([what, count]) => `${what} ${count}`);
  return `${r.sut} requests during convergence: ${parts.join(", ") || "none"}`;
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof options>;
  try {
    parsed = options();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const { scenario, suts, json, runs, backgroundLoad } = parsed;
  const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
  const { env } = await upForTestRun({ log });
  const all: Run[] = [];
  const burners = Array.from({ length: backgroundLoad }, burner);
  try {
    for (let run = 0; run < runs; run++) {
      // every other run in the opposite order, so that a control plane slowing down over the runs (etcd's
      // history grows) does not always favour the same system
      const order = run % 2 === 0 ? suts : [...suts].reverse();
      const results: Partial<Record<Sut, ScenarioResult>> = {};
      for (const sut of order) {
        if (runs > 1) log(`run ${run + 1} of ${runs}: ${sut}`);
        results[sut] = await runScenario(env, sut, { ...scenario, log });
      }
      all.push(results);
    }
  } finally {
    for (const b of burners) b.kill("SIGKILL");
    await releaseTestRun({ log });
  }
  const results = medianRun(all);
  const header =
    `N = ${scenario.n} ${scenario.kind}s (1 KiB), ${Math.round(scenario.remoteShare * 100)} % of targets in cluster b, ` +
    `${scenario.mappings ? "2 mappings" : "clone"}; ${scenario.edits} source edits and ${scenario.drifts} drifts ` +
    `at ${scenario.rate}/s; idle window ${scenario.idleSeconds} s; Sinker ` +
    `${scenario.finalizerPolicy ? "with" : "without"} the finalizer policy (manifests/finalizer-policy.yaml)` +
    (runs > 1 ? `; the run with the median convergence ratio of ${runs}` : "") +
    (backgroundLoad > 0 ? `; ${backgroundLoad} core(s) kept busy by a background CPU burner` : "");
  process.stdout.write(`${header}\n\n${table(results)}\n\n`);
  if (runs > 1) process.stdout.write(`${ratiosPerRun(all)}\n\n`);
  for (const r of Object.values(results)) process.stdout.write(`${breakdown(r)}\n`);
  writeFileSync(json, `${JSON.stringify({ scenario, backgroundLoad, results, runs: all }, null, 2)}\n`);
  process.stdout.write(`\nfigures written to ${json}\n`);
  return 0;
}

/** One busy loop in a process of its own: pure computation, no I/O, no memory growth. */
function burner(): ChildProcess {
  const loop = "let x = 0; for (;;) { x = (x * 1103515245 + 12345) % 2147483648; }";
  return spawn(process.execPath, ["-e", loop], { stdio: "ignore" });
}

function ratiosPerRun(all: readonly Run[]): string {
  const line = (label: string, get: (x: ScenarioResult) => number) =>
    `${label} Sinker / ideal per run: ${all.map((r) => `${ratio(r, get).toFixed(2)}×`).join(" ")}`;
  return [
    line("convergence", (x) => x.convergenceMs),
    line("propagation p99", (x) => x.propagationMs.p99),
    line("deletion", (x) => x.deletionMs),
    line("CPU", (x) => x.cpuSeconds),
  ].join("\n");
}

process.exitCode = await main();
