/** Access to the demo's two clusters through the test control plane's raw client and kubectl. */
import type { TestEnv } from "../../test/controlplane/testenv.ts";
import { NS, RS_API } from "./constants.ts";
import { active, Failure } from "./interrupt.ts";
import { dim, rel, say } from "./output.ts";

// Cluster access (the testenv's own raw client: fast and precise for timings)

export type Obj = {
  metadata?: {
    name?: string;
    uid?: string;
    labels?: Record<string, string>;
    ownerReferences?: Array<{ uid: string }>;
    managedFields?: Array<{ manager?: string; time?: string }>;
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  data?: Record<string, string>;
  spec?: {
    source?: Ref;
    target?: Ref;
  };
  status?: { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
};
export type Ref = {
  resourceRef?: { kind?: string; name?: string };
  cluster?: { namespace?: string; kubeConfig?: { secretRef?: { name?: string } } };
};

export let env: TestEnv;

export const path = {
  cm: (name: string) => `/api/v1/namespaces/${NS}/configmaps/${name}`,
  secret: (name: string) => `/api/v1/namespaces/${NS}/secrets/${name}`,
  rs: (name = "") => `${RS_API}/namespaces/${NS}/resourcesyncs${name ? `/${name}` : ""}`,
  ns: (name: string) => `/api/v1/namespaces/${name}`,
};

export async function get(cluster: "a" | "b", p: string): Promise<Obj | undefined> {
  const r = await env.request(cluster, "GET", p);
  if (r.status === 404) return undefined;
  if (r.status !== 200)
    throw new Error(`GET ${p} in cluster ${cluster}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Obj;
}

export async function must(
  cluster: "a" | "b",
  method: string,
  p: string,
  body?: unknown,
  ct?: string,
): Promise<void> {
  const r = await env.request(cluster, method, p, body, ct);
  if (r.status < 200 || r.status > 299) {
    throw new Failure(`${method} ${p} in cluster ${cluster}: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

export async function listSyncs(): Promise<Obj[]> {
  const r = await env.request("a", "GET", path.rs());
  if (r.status !== 200) throw new Error(`listing ResourceSyncs: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { items: Obj[] }).items;
}

export function ready(rs: Obj | undefined) {
  return rs?.status?.conditions?.find((c) => c.type === "Ready");
}

/** `kubectl …` through the testenv's kubectl; prints the command (kubeconfig path relative) and fails on error. */
export async function kubectl(
  cluster: "a" | "b",
  args: string[],
  opts: { input?: string; quiet?: boolean } = {},
) {
  if (!opts.quiet) say(dim(`$ kubectl --kubeconfig ${rel(env.kubeconfigPath(cluster))} ${args.join(" ")}`));
  const r = await env.kubectl(cluster, args, opts.input === undefined ? {} : { input: opts.input });
  active.throwIfAborted();
  if (r.code !== 0) throw new Failure(`kubectl ${args.join(" ")} (cluster ${cluster}) failed:\n${r.stderr}`);
  if (!opts.quiet && r.stdout.trim()) say(dim(r.stdout.trimEnd().replace(/^/gm, "  ")));
  return r.stdout;
}

/** The control plane the demo runs against (set once it is up). */
export function setEnv(e: TestEnv): void {
  env = e;
}
