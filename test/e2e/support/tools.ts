/**
 * Runs the command-line tools of test/tools (helm, promtool) and other commands for tests: output captured,
 * never throws on a non-zero exit. Helm keeps its configuration, cache and data in a temporary folder of this
 * test process, so it reads nothing of the machine's.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CmdResult, runCommand } from "../../support/run-command.ts";
import { type Tool, toolPath } from "../../tools/build.ts";

export { type CmdResult, runCommand };

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
