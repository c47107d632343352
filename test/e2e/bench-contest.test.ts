// The contest benchmark (npm run bench:contest) at a tiny size: it keeps working and prints every figure.
// (The figures themselves are for people; see docs/performance.md.)
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../controlplane/testenv.ts";
import { type CmdResult, runCommand } from "../support/run-command.ts";

function run(args: string[]): Promise<CmdResult> {
  return runCommand(process.execPath, [join(repoRoot, "bench", "contest.ts"), ...args], {
    cwd: repoRoot,
    timeoutMs: 580_000,
  });
}

test("npm run bench:contest at a tiny size prints each figure", { timeout: 600_000 }, async () => {
  const r = await run(["--contested-seconds=5", "--edits=1"]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stderr}\n${r.stdout}`);
  const figures = [
    /time to detect \(Ready=False TargetContested\):\s+\d+ ms/,
    /Sinker's writes before detection:\s+\d+ in \d+ ms \(\d+\/min\)/,
    /Sinker's writes once detected:\s+\d+ in \d+ s \(\d+\/min\)/,
    /flips of the other writer in all:\s+\d+/,
    /writer stopped → Ready=True again:\s+\d+ ms/,
    /then one hand edit repaired after:\s+\d+ ms/,
    /ring of two ResourceSyncs \(clone\), 1 user edit\(s\) of cm1:\n\s+Sinker's writes per edit:\s+\d+\n\s+user's value kept \(never seen reverted\):\s+[01] of 1/,
    /ring of two ResourceSyncs \(mapping\), 1 user edit\(s\) of cm1:\n\s+Sinker's writes per edit:\s+\d+\n\s+user's value kept \(never seen reverted\):\s+[01] of 1/,
  ];
  for (const f of figures) assert.match(r.stdout, f);
});

test("npm run bench:contest refuses bad flags", async () => {
  const r = await run(["--edits=0"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--edits/);
});
