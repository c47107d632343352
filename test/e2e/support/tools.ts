/**
 * Runs the command-line tools of test/tools (helm, promtool) and other commands for tests: output captured,
 * never throws on a non-zero exit. Helm keeps its configuration, cache and data in a temporary folder of this
 * test process, so it reads nothing of the machine's.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tool, toolPath } from "../../tools/build.ts";

export interface CmdResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
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

let helmHome: string | undefined;

/** Removes helm's temporary home (for after() hooks). */
export function cleanUpTools(): void {
  if (helmHome) rmSync(helmHome, { recursive: true, force: true });
  helmHome = undefined;
}

export function tool(
  name: Tool,
  args: string[],
  opts: { input?: string; cwd?: string } = {},
): Promise<CmdResult> {
  if (!helmHome) helmHome = mkdtempSync(join(tmpdir(), "sinker-helm-"));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: helmHome,
    HELM_CACHE_HOME: join(helmHome, "cache"),
    HELM_CONFIG_HOME: join(helmHome, "config"),
    HELM_DATA_HOME: join(helmHome, "data"),
  };
  return runCommand(toolPath(name), args, { ...opts, env });
}
