/**
 * manifests/finalizer-policy.yaml (a MutatingAdmissionPolicy that adds Sinker's finalizer to each new
 * ResourceSync) on a test cluster: installed where a test or the benchmark measures Sinker as it ships, and
 * removed where it must not act (the benchmark's ideal copier removes no finalizer).
 */
import { join } from "node:path";
import { FINALIZER } from "../../src/api/types.ts";
import { type ClusterName, repoRoot, type TestEnv, waitFor } from "./testenv.ts";

export const FINALIZER_POLICY_FILE = join(repoRoot, "manifests", "finalizer-policy.yaml");

async function kubectl(env: TestEnv, cluster: ClusterName, args: string[], input?: string): Promise<string> {
  const r = await env.kubectl(cluster, args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} (cluster ${cluster}): ${r.stderr}`);
  return r.stdout;
}

/** Whether a server-side dry-run create of a ResourceSync comes back with Sinker's finalizer. */
async function acting(env: TestEnv, cluster: ClusterName): Promise<boolean> {
  const probe = JSON.stringify({
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "finalizer-policy-probe", namespace: "default" },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "s" } },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "t" } },
    },
  });
  const out = await kubectl(env, cluster, ["create", "--dry-run=server", "-o", "json", "-f", "-"], probe);
  const created = JSON.parse(out) as { metadata?: { finalizers?: string[] } };
  return (created.metadata?.finalizers ?? []).includes(FINALIZER);
}

/** Applies the policy and waits until the API server acts on it (it compiles policies asynchronously). */
export async function installFinalizerPolicy(env: TestEnv, cluster: ClusterName): Promise<void> {
  await kubectl(env, cluster, ["apply", "--server-side", "-f", FINALIZER_POLICY_FILE]);
  await waitFor(`the finalizer policy to act in cluster ${cluster}`, () => acting(env, cluster));
}

/** Deletes the policy and waits until the API server no longer acts on it. */
export async function removeFinalizerPolicy(env: TestEnv, cluster: ClusterName): Promise<void> {
  await kubectl(env, cluster, ["delete", "--ignore-not-found", "-f", FINALIZER_POLICY_FILE]);
  await waitFor(
    `the finalizer policy to stop acting in cluster ${cluster}`,
    async () => !(await acting(env, cluster)),
  );
}
