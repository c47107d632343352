/**
 * A real `sinker` process (bin/sinker.js, the image's entry point) for tests: json log records parsed line by
 * line, the admin server's address from its log, /metrics parsed as Prometheus text, signals and exit.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";

const BIN = join(repoRoot, "bin", "sinker.js");
const running = new Set<Sinker>();

/** SIGKILLs every sinker a test started and did not stop (for after() hooks). */
export function killAllSinkers(): void {
  for (const s of running) s.proc.kill("SIGKILL");
}

export type LogRecord = Record<string, unknown> & { msg?: string; module?: string; level?: string };

export class Sinker {
  readonly proc: ChildProcess;
  readonly records: LogRecord[] = [];
  readonly badLines: string[] = [];
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  #buf = "";

  /** `opts`: another entry point and working directory (e.g. a reproduced image), and an environment that
   * replaces this process's instead of extending it. */
  constructor(
    args: string[],
    extraEnv: NodeJS.ProcessEnv = {},
    opts: { bin?: string; cwd?: string; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {},
  ) {
    this.proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? BIN, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...(opts.env ?? process.env), SINKER_LOG: "", ...extraEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(this);
    this.proc.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      this.#buf += chunk;
      let nl = this.#buf.indexOf("\n");
      while (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          this.records.push(JSON.parse(line) as LogRecord);
        } catch {
          this.badLines.push(line);
        }
        if (process.env.SINKER_TEST_LOG) process.stderr.write(`# ${line}\n`);
        nl = this.#buf.indexOf("\n");
      }
    });
    this.proc.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) =>
      this.proc.on("exit", (code, signal) => {
        running.delete(this);
        resolve({ code, signal, at: Date.now() });
      }),
    );
  }

  hasLog(pred: (r: LogRecord) => boolean): boolean {
    return this.records.some(pred);
  }

  async waitLog(what: string, pred: (r: LogRecord) => boolean, timeoutMs = 20_000): Promise<LogRecord> {
    return waitFor(
      `${what} (stderr: ${this.stderr.slice(-300)})`,
      async () => {
        if (this.proc.exitCode !== null)
          throw new Error(`sinker exited with ${this.proc.exitCode}: ${this.stderr}`);
        return this.records.find(pred);
      },
      { timeoutMs, intervalMs: 50 },
    );
  }

  async adminUrl(): Promise<string> {
    const r = await this.waitLog("admin server address", (r) => r.msg === "admin server listening");
    return `http://${String(r.address)}`;
  }

  async status(path: string): Promise<number> {
    return (await fetch(`${await this.adminUrl()}${path}`)).status;
  }

  async metrics(): Promise<PrometheusFamily[]> {
    const res = await fetch(`${await this.adminUrl()}/metrics`);
    assert.equal(res.status, 200);
    return parsePrometheusTextFormat(await res.text());
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const f = (await this.metrics()).find((x) => x.name === name);
    const s = f?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    return s ? Number(s.value ?? s.count ?? s.buckets?.["+Inf"] ?? Number.NaN) : Number.NaN;
  }

  async terminate(signal: NodeJS.Signals = "SIGTERM") {
    const t0 = Date.now();
    this.proc.kill(signal);
    const r = await this.exited;
    return { ...r, ms: r.at - t0 };
  }
}

/** Runs sinker to completion (for start-up failures); kills it after 120 s (generous for a loaded machine). */
export async function runToExit(args: string[]) {
  const s = new Sinker(args);
  const timer = setTimeout(() => s.proc.kill("SIGKILL"), 120_000);
  const r = await s.exited;
  clearTimeout(timer);
  return { code: r.code, stderr: s.stderr, records: s.records };
}
