/**
 * What the demo starts and must stop: the controller process, the one-demo-at-a-time lock, and the demo's
 * objects and namespaces.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { envDir, isAlive, repoRoot } from "../../test/controlplane/testenv.ts";
import { env, get, listSyncs, must, type Obj, path } from "./cluster.ts";
import { CRSS_PATH, FANOUT_NS, FANOUT_SET, NS, REMOTES_NS } from "./constants.ts";
import { active, Failure, Interrupted, until } from "./interrupt.ts";
import { ms } from "./live-view.ts";
import { dim, okLine, red, rel, say } from "./output.ts";

// The controller process

export const logFile = () => join(envDir(), "logs", "sinker-demo.log");
export let controller: ChildProcess | undefined;
export let controllerExit: Promise<number | string | null> | undefined;
export let adminPort = 0;

export function freePort(): Promise<number> {
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

export function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}

export function logTail(lines = 30): string {
  try {
    return readFileSync(logFile(), "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function startSinker(): Promise<void> {
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
    // a second or two when the machine is quiet; generous for a machine busy with other work
    120_000,
    50,
  );
  okLine(`controller ready in ${ms(performance.now() - t)} (GET http://127.0.0.1:${adminPort}/ready → 200)`);
}

// Whatever happens (an uncaught error, a third Ctrl-C), the controller, in its own process group, does not outlive
// the demo.
process.on("exit", () => {
  if (controllerRunning()) controller?.kill("SIGKILL");
});

export function controllerRunning(): boolean {
  return controller !== undefined && controller.exitCode === null && controller.signalCode === null;
}

export async function stopSinker(): Promise<void> {
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

// One demo at a time per .testenv; a controller left behind by a killed demo is stopped by the next one.

export type Lock = { pid: number; controllerPid?: number };
export const lockFile = join(
  tmpdir(),
  `sinker-demo-${createHash("sha256").update(envDir()).digest("hex").slice(0, 16)}.json`,
);

export function writeLock(): void {
  const lock: Lock = { pid: process.pid, ...(controller?.pid ? { controllerPid: controller.pid } : {}) };
  writeFileSync(lockFile, JSON.stringify(lock));
}

export function isOurController(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => a.endsWith(join("src", "cli", "main.ts"))) && argv.includes("--admin-addr");
  } catch {
    return false;
  }
}

export let lockHeld = false;

export async function takeLock(): Promise<void> {
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

// Namespaces

export async function deleteDemoObjects(opts: { quiet?: boolean } = {}): Promise<void> {
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
