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
 *
 * This file is the entry point (arguments, the order of things, clean-up); the parts are in scripts/demo/:
 * output, interrupt (signals and waits), cluster (access to a and b), supervision (the controller process, the
 * lock, the demo's objects), timing (timed outcomes and checks), scenario and fanout-step, live-view.
 */
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { isBuilt } from "../test/controlplane/build.ts";
import { envDir, isAlive, releaseTestRun, upForTestRun } from "../test/controlplane/testenv.ts";
import { env, setEnv } from "./demo/cluster.ts";
import {
  active,
  cleanupAbort,
  enterCleanup,
  Failure,
  forced,
  Interrupted,
  onSignal,
  signals,
} from "./demo/interrupt.ts";
import { live, ms } from "./demo/live-view.ts";
import { bold, dim, green, okLine, red, rel, say, step } from "./demo/output.ts";
import { scenario } from "./demo/scenario.ts";
import {
  controller,
  deleteDemoObjects,
  lockFile,
  lockHeld,
  logFile,
  logTail,
  stopSinker,
  takeLock,
} from "./demo/supervision.ts";
import { failures, timings } from "./demo/timing.ts";

const USAGE = `usage: node scripts/demo.ts [--once]   (npm run demo [-- --once])
  (no flag)  run the demo scenario, then show the ResourceSyncs live until Ctrl-C, then clean up
  --once     run the scenario, check every outcome, clean up and exit (0 when everything worked)
`;

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
    setEnv(up.env);
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
  enterCleanup();
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
