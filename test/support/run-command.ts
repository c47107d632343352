/**
 * Runs a command to its end for a test, a benchmark or the test control plane: output captured, standard input
 * fed when given, killed after a bound, never throwing on a non-zero exit (the caller asserts on `code`). The one
 * spawn-and-collect helper of test/, test/controlplane and bench/.
 */
import { spawn } from "node:child_process";

export interface CmdResult {
  /** The exit code; 128 when a signal ended it, 1 when neither is known. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CmdOptions {
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Written to standard input, which is then closed; without it standard input is /dev/null. */
  input?: string;
  /** Killed (SIGKILL) after this long. Default 120 s. */
  timeoutMs?: number;
}

export function runCommand(cmd: string, args: string[], opts: CmdOptions = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    child.stderr?.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === "ENOENT" ? new Error(`\`${cmd}\` is not installed or not on PATH`) : err);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    if (child.stdin) {
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input);
    }
  });
}
