// The scale benchmark (npm run bench) at N = 20, half of the targets in cluster b, with its restart phases and one
// core kept busy by the background burner, and the request prices
// (npm run bench:requests) at N = 20: they keep working, measure what they say, and their figures are plausible.
// (The figures themselves are for people; see docs/performance.md.)
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { type Floor, floors, type Price, STEPS, type Step } from "../../bench/support/request-prices.ts";
import type { ScenarioResult } from "../../bench/support/scenario.ts";
import { load, repoRoot } from "../controlplane/testenv.ts";
import { type CmdResult, runCommand } from "../support/run-command.ts";

const dir = mkdtempSync(join(tmpdir(), "sinker-bench-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], script = "scale.ts"): Promise<CmdResult> {
  return runCommand(process.execPath, [join(repoRoot, "bench", script), ...args], {
    cwd: repoRoot,
    timeoutMs: 580_000,
  });
}

test("npm run bench at N = 20, twice, on a busy core: both systems converge, every figure is measured", {
  timeout: 600_000,
}, async () => {
  const json = join(dir, "bench.json");
  const n = 20;
  const r = await run([
    `--n=${n}`,
    "--remote-share=0.5",
    "--edits=10",
    "--drifts=10",
    "--idle-seconds=2",
    "--runs=2",
    "--background-load=1",
    `--json=${json}`,
  ]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  assert.match(r.stdout, /figure\s+ideal copier\s+Sinker\s+Sinker \/ ideal/);
  assert.match(r.stdout, /convergence \(s\)\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+×/);
  assert.match(r.stdout, /convergence Sinker \/ ideal per run: \d+\.\d+× \d+\.\d+×/);
  assert.match(r.stdout, /CPU Sinker \/ ideal per run: \d+\.\d+× \d+\.\d+×/);
  assert.match(r.stdout, /1 core\(s\) kept busy by a background CPU burner/);
  for (const row of ["restart, nothing changed: writes", "restart, 1 % of sources changed: writes"])
    assert.match(r.stdout, new RegExp(`${row}\\s+\\d+\\s+\\d+`), row);
  assert.match(r.stdout, /time until through all \(s\)\s+\d+\.\d+\s+\d+\.\d+/);
  assert.match(r.stdout, /CPU of the new process \(s\)\s+\d+\.\d+\s+\d+\.\d+/);
  const out = JSON.parse(readFileSync(json, "utf8")) as {
    backgroundLoad: number;
    results: Record<"ideal" | "sinker", ScenarioResult>;
    runs: Array<Record<"ideal" | "sinker", ScenarioResult>>;
  };
  assert.equal(out.runs.length, 2);
  assert.equal(out.backgroundLoad, 1);
  assert.ok(out.runs.some((run) => run.sinker.convergenceMs === out.results.sinker.convergenceMs));
  for (const sut of ["ideal", "sinker"] as const) {
    const f = out.results[sut];
    assert.ok(f, `${sut} measured`);
    assert.ok(f.convergenceMs > 0, `${sut} convergence`);
    // every target is written at least once, by the system's own audited identity, on both clusters
    const applies = Object.entries(f.convergenceRequests.byVerbResource)
      .filter(([what]) => what === "patch configmaps")
      .reduce((sum, [, count]) => sum + count, 0);
    assert.ok(applies >= n, `${sut}: ${applies} applies for ${n} targets`);
    assert.equal(f.propagationMs.count, 10);
    assert.equal(f.driftRepairMs.count, 10);
    assert.ok(f.propagationMs.p50 >= 0 && f.propagationMs.max >= f.propagationMs.p99);
    // a ResourceSync watch, the sources' and local targets' namespace, the remote targets' namespace
    assert.ok(f.watchesHeld >= 3, `${sut}: ${f.watchesHeld} watches`);
    assert.ok(f.peakRssMiB > 0 && f.peakRssMiB >= f.startRssMiB);
    assert.ok(f.deletionMs > 0);
    // the whole run's CPU, and the same by phase: the phases partition it (same /proc readings), and the idle
    // phase is the idle figure
    const phases = f.cpuByPhase;
    for (const [phase, cpu] of Object.entries(phases)) assert.ok(cpu >= 0, `${sut}: CPU of ${phase}`);
    assert.ok(phases.start > 0, `${sut}: a start costs CPU`);
    const sum = phases.start + phases.convergence + phases.changes + phases.idle + phases.deletion;
    assert.ok(Math.abs(sum - f.cpuSeconds) < 1e-9, `${sut}: phases ${sum} vs whole run ${f.cpuSeconds}`);
    assert.equal(phases.idle, f.idle.cpuSeconds);
    // the restart phases: killed and started again, then again with 1 % of the sources (here 1) changed
    for (const phase of [f.restart, f.restartChanged]) {
      assert.ok(phase.ms > 0 && phase.cpuSeconds >= 0, `${sut}: restart figures`);
      assert.ok(phase.requests.total >= phase.writes);
    }
    assert.equal(f.restartChanged.changed, 1);
    assert.ok(f.restartChanged.writes >= 1, `${sut}: the changed target written after the restart`);
  }
  // issue 25: a restart over converged ResourceSyncs whose sources and targets did not change writes nothing
  for (const run of out.runs)
    assert.equal(run.sinker.restart.writes, 0, JSON.stringify(run.sinker.restart.requests.byVerbResource));
  // Sinker writes status (and a finalizer): requests the ideal copier does not make
  assert.ok(out.results.sinker.convergenceRequests.byVerbResource["patch resourcesyncs/status"]);
});

test("npm run bench:requests at N = 20: every request priced, both floors printed", {
  timeout: 300_000,
}, async () => {
  const json = join(dir, "request-costs.json");
  const r = await run(["--n=20", "--rounds=1", `--json=${json}`], "request-costs.ts");
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  assert.match(r.stdout, /status patch\s+\d+\.\d+\s+\d+\.\d+/);
  assert.match(r.stdout, /convergence: .* floor of Sinker \/ ideal \d+\.\d+×/);
  assert.match(r.stdout, /deletion: .* floor of Sinker \/ ideal \d+\.\d+×/);
  const out = JSON.parse(readFileSync(json, "utf8")) as {
    prices: Record<Step, Price>;
    floors: Floor[];
    rounds: unknown[];
  };
  assert.equal(out.rounds.length, 1);
  assert.deepEqual(Object.keys(out.prices).sort(), [...STEPS].sort());
  for (const [step, p] of Object.entries(out.prices)) {
    assert.ok(Number.isFinite(p.apiMs) && p.apiMs >= 0, `${step}: ${p.apiMs} ms`);
  }
  assert.deepEqual(
    out.floors.map((f) => f.phase),
    ["convergence", "deletion"],
  );
  // the floors printed are the sums of the prices printed (at N = 20 a price may round to 0 ms on a busy
  // machine: CPU is counted in 10 ms ticks, so no figure is asserted to be positive)
  const again = JSON.parse(
    JSON.stringify(floors(new Map(Object.entries(out.prices) as Array<[Step, Price]>))),
  );
  assert.deepEqual(out.floors, again);
  // the benchmark left no policy acting: a later test's ResourceSyncs are created without the finalizer
  const probe = await load().kubectl("a", ["get", "mutatingadmissionpolicies", "-o", "name"]);
  assert.equal(probe.code, 0, probe.stderr);
  assert.doesNotMatch(probe.stdout, /sinker-resourcesync-finalizer/);
});
