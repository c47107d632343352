// The scale benchmark (npm run bench) at N = 20, half of the targets in cluster b: it keeps working, measures
// both systems, and its figures are plausible. (The figures themselves are for people; see README Performance.)
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { ScenarioResult } from "../../bench/support/scenario.ts";
import { repoRoot } from "../controlplane/testenv.ts";

const dir = mkdtempSync(join(tmpdir(), "sinker-bench-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, "bench", "scale.ts"), ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

test("npm run bench at N = 20, twice: both systems converge, every figure is measured", {
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
    `--json=${json}`,
  ]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  assert.match(r.stdout, /figure\s+ideal copier\s+Sinker\s+Sinker \/ ideal/);
  assert.match(r.stdout, /convergence \(s\)\s+\d+\.\d+\s+\d+\.\d+\s+\d+\.\d+×/);
  assert.match(r.stdout, /convergence Sinker \/ ideal per run: \d+\.\d+× \d+\.\d+×/);
  const out = JSON.parse(readFileSync(json, "utf8")) as {
    results: Record<"ideal" | "sinker", ScenarioResult>;
    runs: Array<Record<"ideal" | "sinker", ScenarioResult>>;
  };
  assert.equal(out.runs.length, 2);
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
  }
  // Sinker writes status (and a finalizer): requests the ideal copier does not make
  assert.ok(out.results.sinker.convergenceRequests.byVerbResource["patch resourcesyncs/status"]);
});
