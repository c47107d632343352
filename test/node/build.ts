// Builds what the node tier adds to the test control plane: the kubelet and kube-scheduler (from the control
// plane's own Go wrapper module, same go.mod, go.sum and version flags; `go` adds the sums of two small modules
// the control plane never needed, in a temporary copy of the module) and the
// pause program of the sandbox image (test/node/pause). They go into a cache of their own, keyed by the wrapper
// module and the pause sources, so the control plane's cache key never changes because of this tier.
//
//   node test/node/build.ts                 build if missing, print the binary directory
//   SINKER_NODE_CACHE=/some/dir             cache root (default: $XDG_CACHE_HOME or ~/.cache, + sinker/node)
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { moduleDir as controlplaneModule, versionLdflags } from "../controlplane/build.ts";
import { cacheRootFor, type EnsureResult, ensureGoCache, type GoCache } from "../support/go-build.ts";

const pauseDir = join(import.meta.dirname, "pause");

export const nodeBinaries = ["kubelet", "kube-scheduler", "pause"] as const;

export function cacheKey(): string {
  const h = createHash("sha256");
  for (const f of [
    join(controlplaneModule, "go.mod"),
    join(controlplaneModule, "go.sum"),
    join(pauseDir, "go.mod"),
    join(pauseDir, "main.go"),
  ]) {
    h.update(readFileSync(f));
    h.update("\0");
  }
  return h.digest("hex").slice(0, 16);
}

export function binDir(): string {
  return join(cacheRootFor("node", process.env.SINKER_NODE_CACHE), cacheKey());
}

function spec(): GoCache {
  return {
    label: "node",
    dir: binDir(),
    outputs: nodeBinaries,
    note: "about 1 minute on 2 cores once the control plane is built; later runs reuse it",
    builds: [
      {
        cwd: controlplaneModule,
        packages: ["k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-scheduler"],
        ldflags: versionLdflags(),
        copyModule: true,
      },
      { cwd: pauseDir, packages: ["."], ldflags: "-s -w" },
    ],
  };
}

export function ensureNodeBinaries(opts: { quiet?: boolean } = {}): Promise<EnsureResult> {
  return ensureGoCache(spec(), opts);
}

if (import.meta.main) {
  try {
    const r = await ensureNodeBinaries();
    process.stdout.write(`${r.binDir}\n`);
  } catch (err) {
    process.stderr.write(`[node build] error: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
