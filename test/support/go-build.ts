// Builds Go programs into a cache directory outside the work tree, once per cache key: a temporary directory
// renamed into place at the end, so concurrent builds (several work trees, CI) never see half a result.
// The control plane (test/controlplane/build.ts), the tools (test/tools/build.ts) and the node tier
// (test/node/build.ts) use it, each with a cache key of its own, so one cache never forces another's rebuild.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

/** `$XDG_CACHE_HOME` (or ~/.cache) + sinker/<name>, unless `override` (an environment variable's value) is set. */
export function cacheRootFor(name: string, override: string | undefined): string {
  if (override) return override;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache"), "sinker", name);
}

export type GoBuild = {
  /** Directory to run `go build` in (the module). */
  cwd: string;
  /** Package paths (or ./relative directories) to build. */
  packages: string[];
  ldflags?: string;
  tags?: string;
  /** Build in a temporary copy of the module's go.mod and go.sum: `go` may add the sums of packages the module
   * never built before, and the module's own go.sum (another cache's key) must not change. */
  copyModule?: boolean;
};

export type GoCache = {
  /** For log lines: `[<label> build] ...`. */
  label: string;
  /** Where the result goes (the cache root + key). */
  dir: string;
  /** File names that must exist in `dir` once built. */
  outputs: readonly string[];
  /** The builds, in order, all writing into the same output directory. */
  builds: GoBuild[];
  /** Renames after the build (`go build -o dir/` names a binary after its package's last path element). */
  renames?: Record<string, string>;
  /** Shown before building, e.g. how long it takes. */
  note?: string;
  /** More fields for build-info.json (versions). */
  info?: Record<string, unknown>;
};

export type EnsureResult = { binDir: string; built: boolean; seconds: number };

export function isBuilt(dir: string, outputs: readonly string[]): boolean {
  return outputs.every((o) => existsSync(join(dir, o)));
}

function run(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("go", args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
      process.stderr.write(chunk);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "ENOENT" ? new Error("The Go toolchain (`go`) is not on PATH") : err),
    );
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

async function goBuild(b: GoBuild, out: string, log: (m: string) => void): Promise<void> {
  const args = ["build", "-trimpath"];
  if (b.tags) args.push("-tags", b.tags);
  if (b.ldflags) args.push("-ldflags", b.ldflags);
  args.push("-o", `${out}/`, ...b.packages);
  const goflags = [process.env.GOFLAGS ?? "", "-mod=mod"].join(" ").trim();
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: "0", GOFLAGS: goflags };
  const cwd = b.copyModule ? mkdtempSync(join(tmpdir(), "sinker-go-module-")) : b.cwd;
  try {
    if (b.copyModule) for (const f of ["go.mod", "go.sum"]) copyFileSync(join(b.cwd, f), join(cwd, f));
    let r = await run(cwd, args, env);
    if (
      r.code !== 0 &&
      /sum\.golang\.org|checksum database|GOSUMDB|verifying .*: .*(dial|lookup|timeout)/i.test(r.output)
    ) {
      log("the checksum database is unreachable: retrying with GOSUMDB=off (go.sum still pins every module)");
      r = await run(cwd, args, { ...env, GOSUMDB: "off" });
    }
    if (r.code !== 0)
      throw new Error(`go build ${b.packages.join(" ")} failed (exit ${r.code}); output above`);
  } finally {
    if (b.copyModule) rmSync(cwd, { recursive: true, force: true });
  }
}

/** Builds unless `c.dir` already holds every output. */
export async function ensureGoCache(c: GoCache, opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  const log = (m: string) => process.stderr.write(`[${c.label} build] ${m}\n`);
  const started = Date.now();
  if (isBuilt(c.dir, c.outputs)) {
    if (!opts.quiet) log(`cached: ${c.dir}`);
    return { binDir: c.dir, built: false, seconds: 0 };
  }
  const root = join(c.dir, "..");
  mkdirSync(root, { recursive: true });
  const tmp = `${c.dir}.tmp-${process.pid}-${Date.now()}`;
  mkdirSync(tmp, { recursive: true });
  log(`building ${c.outputs.join(", ")} into ${c.dir}${c.note ? ` (${c.note})` : ""}`);
  try {
    for (const b of c.builds) await goBuild(b, tmp, log);
    for (const [from, to] of Object.entries(c.renames ?? {})) renameSync(join(tmp, from), join(tmp, to));
    if (!isBuilt(tmp, c.outputs)) throw new Error(`go build did not produce all of ${c.outputs.join(", ")}`);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    writeFileSync(
      join(tmp, "build-info.json"),
      `${JSON.stringify({ ...c.info, builtAt: new Date().toISOString(), seconds }, null, 2)}\n`,
    );
    try {
      renameSync(tmp, c.dir);
    } catch (err) {
      // Another build finished first: keep its result.
      if (!isBuilt(c.dir, c.outputs)) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
    log(`built in ${seconds} s: ${c.dir}`);
    return { binDir: c.dir, built: true, seconds };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
