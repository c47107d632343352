/**
 * The process of a system under test (Sinker, or the ideal copier): started, waited for, measured from /proc,
 * killed. A run may kill and start it again (the restart phase): CPU and peak memory are then summed and maxed
 * over every process of the run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "../../test/controlplane/testenv.ts";
import { cpuSeconds, memoryMiB } from "./figures.ts";

export type Sut = "sinker" | "ideal";

/**
 * Node flags of the image's ENTRYPOINT (Dockerfile), given to both systems so that memory figures are those of
 * Sinker as shipped and compare like with like; test/unit/bench-flags.test.ts keeps the two in step.
 */
export const IMAGE_NODE_FLAGS = ["--max-semi-space-size=2", "--heap-growing-percent=30"];

/** The environment the image sets for the runtime (Dockerfile `ENV`), given to both systems alike. */
export const IMAGE_ENV: Readonly<Record<string, string>> = { NODE_ENV: "production", MALLOC_ARENA_MAX: "2" };

export interface SutConfig {
  kubeconfigA: string;
  kubeconfigB: string;
  nsA: string;
  nsB: string;
  kind: string;
  remote: boolean;
  sinkerArgs: string[];
  sinkerNodeArgs: string[];
}

export class SutProcess {
  readonly sut: Sut;
  readonly #config: SutConfig;
  #proc: ChildProcess | undefined;
  #out = "";
  #err = "";
  /** CPU seconds and peak RSS of the processes of this run that were killed already. */
  #cpuBefore = 0;
  #peakBefore = 0;

  constructor(sut: Sut, config: SutConfig) {
    this.sut = sut;
    this.#config = config;
  }

  get pid(): number {
    return this.#proc?.pid ?? 0;
  }

  /** Starts the process and resolves once it is ready (Sinker: /ready answers 200; the ideal copier: "ready"). */
  async start(timeoutMs: number): Promise<void> {
    this.#out = "";
    this.#err = "";
    const proc = spawnSut(this.sut, this.#config);
    this.#proc = proc;
    proc.stdout?.setEncoding("utf8").on("data", (c: string) => {
      if (this.#out.length < 1_000_000) this.#out += c;
    });
    proc.stderr?.setEncoding("utf8").on("data", (c: string) => {
      if (this.#err.length < 100_000) this.#err += c;
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (proc.exitCode !== null)
        throw new Error(`${this.sut} exited with ${proc.exitCode}: ${this.#err.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${this.sut} not ready within ${timeoutMs / 1000} s`);
      if (this.sut === "ideal" && this.#out.includes("ready\n")) return;
      if (this.sut === "sinker") {
        const address = this.#admin();
        const r = address ? await fetch(`http://${address}/ready`).catch(() => undefined) : undefined;
        if (r?.status === 200) return;
      }
      await sleep(100);
    }
  }

  /**
   * Resolves once the process went through every one of its `n` ResourceSyncs and has nothing queued. Sinker: its
   * reconcile counter reached n and its work queue is empty; the ideal copier: it printed "settled".
   */
  async settled(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`${this.sut} not settled within ${timeoutMs / 1000} s`);
      if (this.sut === "ideal" && this.#out.includes("settled\n")) return;
      if (this.sut === "sinker") {
        const m = await this.#metrics();
        if (m && sum(m, "controller_runtime_reconcile_total") >= n && sum(m, "workqueue_depth") === 0) return;
      }
      await sleep(100);
    }
  }

  /** CPU seconds (user + system) of every process of this run so far. */
  cpuSeconds(): number {
    return this.#cpuBefore + (this.running() ? cpuSeconds(this.pid) : 0);
  }

  /** CPU seconds of the current process only. */
  processCpuSeconds(): number {
    return this.running() ? cpuSeconds(this.pid) : 0;
  }

  /** Peak RSS (MiB) of every process of this run so far. */
  peakRssMiB(): number {
    return Math.max(this.#peakBefore, this.running() ? memoryMiB(this.pid).peak : 0);
  }

  rssMiB(): number {
    return this.running() ? memoryMiB(this.pid).now : 0;
  }

  running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** SIGKILL (a crash, a node lost) or SIGTERM (a rolling update); its CPU and memory are kept for the run. */
  async stop(signal: "SIGKILL" | "SIGTERM"): Promise<void> {
    const proc = this.#proc;
    if (!proc || !this.running()) return;
    this.#cpuBefore += cpuSeconds(this.pid);
    this.#peakBefore = Math.max(this.#peakBefore, memoryMiB(this.pid).peak);
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(signal);
    await Promise.race([exited, sleep(10_000)]);
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGKILL");
      await exited;
    }
  }

  #admin(): string | undefined {
    return adminAddress(this.#out);
  }

  async #metrics(): Promise<string | undefined> {
    const address = this.#admin();
    if (!address) return undefined;
    const r = await fetch(`http://${address}/metrics`).catch(() => undefined);
    return r?.status === 200 ? await r.text() : undefined;
  }
}

/** The sum of every series of a metric in Prometheus text. */
function sum(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

function spawnSut(sut: Sut, c: SutConfig): ChildProcess {
  // Both with Node's compile cache where Sinker keeps it by default (bin/sinker.js): set from the start, it also
  // covers the ideal copier's entry point, a TypeScript file that would otherwise be stripped at every start
  const env = {
    ...process.env,
    ...IMAGE_ENV,
    SINKER_LOG: "",
    NODE_COMPILE_CACHE: join(tmpdir(), "node-compile-cache"),
  };
  const args =
    sut === "sinker"
      ? [
          join(repoRoot, "bin", "sinker.js"),
          "--kubeconfig",
          c.kubeconfigA,
          "--admin-addr",
          "127.0.0.1:0",
          "--log-format",
          "json",
          ...c.sinkerArgs,
        ]
      : [
          join(repoRoot, "bench", "ideal-copier.ts"),
          "--kubeconfig-a",
          c.kubeconfigA,
          "--namespace",
          c.nsA,
          "--kind",
          c.kind,
          ...(c.remote ? ["--kubeconfig-b", c.kubeconfigB, "--remote-namespace", c.nsB] : []),
        ];
  const nodeArgs = sut === "sinker" ? c.sinkerNodeArgs : [];
  return spawn(process.execPath, [...IMAGE_NODE_FLAGS, ...nodeArgs, ...args], {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** The admin server's address from Sinker's JSON log lines. */
function adminAddress(log: string): string | undefined {
  for (const line of log.split("\n")) {
    if (!line.includes("admin server listening")) continue;
    try {
      const record = JSON.parse(line) as { msg?: string; address?: string };
      if (record.msg === "admin server listening") return record.address;
    } catch {
      // a partial line: read again on the next poll
    }
  }
  return undefined;
}
