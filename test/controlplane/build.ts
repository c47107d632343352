// Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from the Go wrapper
// module next to this file, once, into a cache outside the work tree keyed by go.mod + go.sum, so clean clones
// and CI runs on the same machine reuse it.
//
//   node test/controlplane/build.ts          build if missing, print the binary directory
//   SINKER_CONTROLPLANE_CACHE=/some/dir      cache root (default: $XDG_CACHE_HOME or ~/.cache, + sinker/controlplane)
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { type EnsureResult, ensureGoCache, type GoCache } from "../support/go-build.ts";

export const moduleDir: string = import.meta.dirname;

/** Names of the binaries in a built directory. */
export const binaries = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"] as const;

/** Go packages built, in the order of `binaries`; `go build -o dir/` names each after its import path's last
 * element with a major-version suffix dropped, so etcd comes out as `server`. */
const packages = [
  { pkg: "go.etcd.io/etcd/server/v3", out: "server", name: "etcd" },
  { pkg: "k8s.io/kubernetes/cmd/kube-apiserver", out: "kube-apiserver", name: "kube-apiserver" },
  {
    pkg: "k8s.io/kubernetes/cmd/kube-controller-manager",
    out: "kube-controller-manager",
    name: "kube-controller-manager",
  },
  { pkg: "k8s.io/kubernetes/cmd/kubectl", out: "kubectl", name: "kubectl" },
] as const;

export function cacheRoot(): string {
  const explicit = process.env.SINKER_CONTROLPLANE_CACHE;
  if (explicit) return explicit;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), ".cache"), "sinker", "controlplane");
}

/** Short hash of the wrapper module's go.mod and go.sum: what the binaries are built from. */
export function cacheKey(): string {
  const h = createHash("sha256");
  h.update(readFileSync(join(moduleDir, "go.mod")));
  h.update("\0");
  h.update(readFileSync(join(moduleDir, "go.sum")));
  return h.digest("hex").slice(0, 16);
}

/** Directory the binaries for the current go.mod/go.sum live in (whether built yet or not). */
export function binDir(): string {
  return join(cacheRoot(), cacheKey());
}

export function isBuilt(dir: string = binDir()): boolean {
  return binaries.every((b) => existsSync(join(dir, b)));
}

/** Kubernetes version the wrapper requires, for the version ldflags (without them /version reports junk). */
export function kubernetesVersion(): string {
  const gomod = readFileSync(join(moduleDir, "go.mod"), "utf8");
  const m = /^\s*(?:require\s+)?k8s\.io\/kubernetes\s+(v\d+\.\d+\.\d+\S*)/m.exec(gomod);
  if (!m?.[1]) throw new Error("test/controlplane/go.mod does not require k8s.io/kubernetes");
  return m[1];
}

/** The ldflags every Kubernetes binary of the wrapper module is built with (the node tier's too). */
export function versionLdflags(): string {
  const kver = kubernetesVersion();
  const mm = /^v(\d+)\.(\d+)/.exec(kver);
  return [
    "-s",
    "-w",
    `-X k8s.io/component-base/version.gitVersion=${kver}`,
    `-X k8s.io/component-base/version.gitMajor=${mm?.[1] ?? ""}`,
    `-X k8s.io/component-base/version.gitMinor=${mm?.[2] ?? ""}`,
  ].join(" ");
}

type RunResult = { code: number; output: string };

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, echo: boolean): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: moduleDir, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 200_000) output = output.slice(-100_000);
      if (echo) process.stderr.write(chunk);
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

async function goVersion(): Promise<string> {
  try {
    const r = await run("go", ["version"], process.env, false);
    if (r.code !== 0) throw new Error(r.output.trim());
    return r.output.trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") {
      throw new Error(
        "The Go toolchain (`go`) is not on PATH. It is needed once to build the test control plane " +
          "(etcd, kube-apiserver, kube-controller-manager, kubectl) from test/controlplane/go.mod; " +
          "install Go (see the `go` directive in that file for the minimum version) and retry.",
      );
    }
    throw err;
  }
}

function log(msg: string): void {
  process.stderr.write(`[controlplane build] ${msg}\n`);
}

export type { EnsureResult };

/** Builds the binaries unless the cache already holds them. Safe to run concurrently: each build writes into its
 * own temporary directory, renamed into place at the end. */
export async function ensureBinaries(opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  const dir = binDir();
  if (isBuilt(dir)) return ensureGoCache(spec(dir, "", ""), opts);
  const gover = await goVersion();
  const kver = kubernetesVersion();
  return ensureGoCache(spec(dir, kver, gover), opts);
}

function spec(dir: string, kver: string, gover: string): GoCache {
  return {
    label: "controlplane",
    dir,
    outputs: binaries,
    builds: [{ cwd: moduleDir, packages: packages.map((p) => p.pkg), ldflags: kver ? versionLdflags() : "" }],
    renames: Object.fromEntries(packages.filter((p) => p.out !== p.name).map((p) => [p.out, p.name])),
    note:
      `Kubernetes ${kver} with ${gover}; on 2 cores: about 12 minutes from nothing, 6 with the Go modules ` +
      "already downloaded; later runs reuse it",
    info: { kubernetes: kver, go: gover },
  };
}

if (import.meta.main) {
  try {
    const r = await ensureBinaries();
    process.stdout.write(`${r.binDir}\n`);
  } catch (err) {
    log(`error: ${(err as Error).message}`);
    process.exit(1);
  }
}
