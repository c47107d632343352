// Builds helm and promtool from the Go wrapper module next to this file, once, into a cache outside the work tree
// keyed by go.mod + go.sum (as test/controlplane/build.ts does for the control plane, with a key of its own so
// the two never force each other's rebuild).
//
//   node test/tools/build.ts            build if missing, print the binary directory
//   SINKER_TOOLS_CACHE=/some/dir        cache root (default: $XDG_CACHE_HOME or ~/.cache, + sinker/tools)
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type EnsureResult, ensureGoCache } from "../support/go-build.ts";

export type { EnsureResult };

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

/** Builds helm and promtool unless the cache holds them. Safe to run concurrently (temporary dir, then rename). */
export function ensureTools(opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  const dir = binDir();
  const built = isBuilt(dir);
  const helmVersion = built ? "" : requiredVersion("helm.sh/helm/v4");
  const promVersion = built ? "" : requiredVersion("github.com/prometheus/prometheus");
  return ensureGoCache(
    {
      label: "tools",
      dir,
      outputs: packages.map((p) => p.name),
      builds: [
        {
          cwd: moduleDir,
          packages: packages.map((p) => p.pkg),
          tags: BUILD_TAGS,
          ldflags: `-s -w -X helm.sh/helm/v4/internal/version.version=${helmVersion}`,
        },
      ],
      note: `helm ${helmVersion} and promtool (prometheus module ${promVersion}); on 2 cores about 4 minutes from nothing; later runs reuse it`,
      info: { helm: helmVersion, prometheus: promVersion },
    },
    opts,
  );
}

if (import.meta.main) {
  try {
    const r = await ensureTools();
    process.stdout.write(`${r.binDir}\n`);
  } catch (err) {
    process.stderr.write(`[tools build] error: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
