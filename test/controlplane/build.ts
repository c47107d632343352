// Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from the Go wrapper
// module next to this file, once, into a cache outside the work tree keyed by go.mod + go.sum, so clean clones
// and CI runs on the same machine reuse it.
//
//   node test/controlplane/build.ts          build if missing, print the binary directory
//   SINKER_CONTROLPLANE_CACHE=/some/dir      cache root (default: $XDG_CACHE_HOME or ~/.cache, + sinker/controlplane)
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

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

export type EnsureResult = { binDir: string; built: boolean; seconds: number };

/** Builds the binaries unless the cache already holds them. Safe to run concurrently: each build writes into its
 * own temporary directory, renamed into place at the end. */
export async function ensureBinaries(opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  const started = Date.now();
  const dir = binDir();
  if (isBuilt(dir)) {
    if (!opts.quiet) log(`cached: ${dir}`);
    return { binDir: dir, built: false, seconds: 0 };
  }
  const gover = await goVersion();
  const kver = kubernetesVersion();
  const root = cacheRoot();
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.tmp-${cacheKey()}-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  log(`building etcd, kube-apiserver, kube-controller-manager, kubectl (Kubernetes ${kver}) with ${gover}`);
  log(
    `into ${dir} (on 2 cores: about 12 minutes from nothing, 6 with the Go modules already downloaded; later runs reuse it)`,
  );
  const args = [
    "build",
    "-trimpath",
    "-ldflags",
    versionLdflags(),
    "-o",
    `${tmp}/`,
    ...packages.map((p) => p.pkg),
  ];
  const goflags = [process.env.GOFLAGS ?? "", "-mod=mod"].join(" ").trim();
  const env: NodeJS.ProcessEnv = { ...process.env, CGO_ENABLED: "0", GOFLAGS: goflags };
  try {
    let r = await run("go", args, env, true);
    if (
      r.code !== 0 &&
      /sum\.golang\.org|checksum database|GOSUMDB|verifying .*: .*(dial|lookup|timeout)/i.test(r.output)
    ) {
      log("the checksum database is unreachable: retrying with GOSUMDB=off (go.sum still pins every module)");
      r = await run("go", args, { ...env, GOSUMDB: "off" }, true);
    }
    if (r.code !== 0) throw new Error(`go build failed (exit ${r.code}); output above`);
    for (const p of packages) {
      if (p.out !== p.name) renameSync(join(tmp, p.out), join(tmp, p.name));
    }
    if (!isBuilt(tmp)) throw new Error(`go build did not produce all of ${binaries.join(", ")} in ${tmp}`);
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    writeFileSync(
      join(tmp, "build-info.json"),
      `${JSON.stringify({ kubernetes: kver, go: gover, builtAt: new Date().toISOString(), seconds }, null, 2)}\n`,
    );
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another build finished first: keep its result.
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
    const r = await ensureBinaries();
    process.stdout.write(`${r.binDir}\n`);
  } catch (err) {
    log(`error: ${(err as Error).message}`);
    process.exit(1);
  }
}
