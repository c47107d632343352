// Builds helm and promtool from the Go wrapper module next to this file, once, into a cache outside the work tree
// keyed by go.mod + go.sum (as test/controlplane/build.ts does for the control plane, with a key of its own so
// the two never force each other's rebuild).
//
//   node test/tools/build.ts            build if missing, print the binary directory
//   SINKER_TOOLS_CACHE=/some/dir        cache root (default: $XDG_CACHE_HOME or ~/.cache, + sinker/tools)
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const moduleDir: string = import.meta.dirname;

/** The tools and the Go packages they come from (`go build -o dir/` names each after its last path element). */
const packages = [
  { pkg: "helm.sh/helm/v4/cmd/helm", name: "helm" },
  { pkg: "github.com/prometheus/prometheus/cmd/promtool", name: "promtool" },
] as const;

export type Tool = (typeof packages)[number]["name"];

/** remove_all_sd: promtool without the cloud service discoveries (AWS, Azure, GCE, ...), which it needs only
 * to check scrape configs, never rules; it keeps the build small. */
const BUILD_TAGS = "remove_all_sd";

export function cacheRoot(): string {
  const explicit = process.env.SINKER_TOOLS_CACHE;
  if (explicit) return explicit;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache"), "sinker", "tools");
}

export function cacheKey(): string {
  const h = createHash("sha256");
  h.update(readFileSync(join(moduleDir, "go.mod")));
  h.update("\0");
  h.update(readFileSync(join(moduleDir, "go.sum")));
  h.update("\0");
  h.update(BUILD_TAGS);
  return h.digest("hex").slice(0, 16);
}

export function binDir(): string {
  return join(cacheRoot(), cacheKey());
}

export function isBuilt(dir: string = binDir()): boolean {
  return packages.every((p) => existsSync(join(dir, p.name)));
}

/** Path of a built tool (throws when the tools are not built: run ensureTools first). */
export function toolPath(tool: Tool): string {
  const dir = binDir();
  if (!isBuilt(dir)) throw new Error(`${tool} is not built: run \`node test/tools/build.ts\``);
  return join(dir, tool);
}

/** The version go.mod requires of a module, for the version ldflags. */
function requiredVersion(module: string): string {
  const gomod = readFileSync(join(moduleDir, "go.mod"), "utf8");
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const m = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, "m").exec(gomod);
  if (!m?.[1]) throw new Error(`test/tools/go.mod does not require ${module}`);
  return m[1];
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("go", args, { cwd: moduleDir, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
      process.stderr.write(chunk);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "ENOENT"
          ? new Error(
              "The Go toolchain (`go`) is not on PATH: it builds helm and promtool from test/tools/go.mod",
            )
          : err,
      ),
    );
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

function log(msg: string): void {
  process.stderr.write(`[tools build] ${msg}\n`);
}

export type EnsureResult = { binDir: string; built: boolean; seconds: number };

/** Builds helm and promtool unless the cache holds them. Safe to run concurrently (temporary dir, then rename). */
export async function ensureTools(opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  const started = Date.now();
  const dir = binDir();
  if (isBuilt(dir)) {
    if (!opts.quiet) log(`cached: ${dir}`);
    return { binDir: dir, built: false, seconds: 0 };
  }
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.tmp-${cacheKey()}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  const helmVersion = requiredVersion("helm.sh/helm/v4");
  const promVersion = requiredVersion("github.com/prometheus/prometheus");
  log(`building helm ${helmVersion} and promtool (prometheus module ${promVersion}) into ${dir}`);
  log("(on 2 cores: about 4 minutes from nothing; later runs reuse it)");
  const ldflags = `-s -w -X helm.sh/helm/v4/internal/version.version=${helmVersion}`;
  const args = [
    "build",
    "-trimpath",
    "-tags",
    BUILD_TAGS,
    "-ldflags",
    ldflags,
    "-o",
    `${tmp}/`,
    ...packages.map((p) => p.pkg),
  ];
  const goflags = [process.env.GOFLAGS ?? "", "-mod=mod"].join(" ").trim();
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: "0", GOFLAGS: goflags };
  try {
    let r = await run(args, env);
    if (r.code !== 0 && /sum\.golang\.org|checksum database|GOSUMDB/i.test(r.output)) {
      log("the checksum database is unreachable: retrying with GOSUMDB=off (go.sum still pins every module)");
      r = await run(args, { ...env, GOSUMDB: "off" });
    }
    if (r.code !== 0) throw new Error(`go build failed (exit ${r.code}); output above`);
    if (!isBuilt(tmp)) throw new Error(`go build did not produce helm and promtool in ${tmp}`);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    writeFileSync(
      join(tmp, "build-info.json"),
      `${JSON.stringify({ helm: helmVersion, prometheus: promVersion, builtAt: new Date().toISOString(), seconds }, null, 2)}\n`,
    );
    try {
      renameSync(tmp, dir);
    } catch (err) {
      if (!isBuilt(dir)) throw err;
      rmSync(tmp, { recursive: true, force: true });
    }
    log(`built in ${seconds} s: ${dir}`);
    return { binDir: dir, built: true, seconds };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

if (import.meta.main) {
  try {
    const r = await ensureTools();
    process.stdout.write(`${r.binDir}\n`);
  } catch (err) {
    log(`error: ${(err as Error).message}`);
    process.exit(1);
  }
}
