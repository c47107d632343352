// Helpers of the node tier's tests: pods, the Lease, requests from inside a node's network namespace, the
// processes behind a container, and what the API server's audit log says Sinker's ServiceAccount did.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { runCmd, type TestEnv, waitFor } from "../controlplane/testenv.ts";
import { type NodeState, readNodeState } from "./nodes.ts";

// biome-ignore lint/suspicious/noExplicitAny: raw Kubernetes JSON
export type Json = any;

export function nodes(env: TestEnv): NodeState[] {
  const t = readNodeState(env.state.dir);
  if (!t?.complete) throw new Error("the node tier is not up: `npm run testenv -- up --node`");
  return t.nodes;
}

export async function kubectl(env: TestEnv, args: string[], input?: string): Promise<string> {
  const r = await env.kubectl("a", args, input === undefined ? {} : { input });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} (exit ${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

export async function getJson(env: TestEnv, path: string): Promise<Json> {
  const r = await env.request("a", "GET", path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function pods(env: TestEnv, namespace: string): Promise<Json[]> {
  return (await getJson(env, `/api/v1/namespaces/${namespace}/pods`)).items;
}

export function isReady(pod: Json): boolean {
  return (
    pod.metadata.deletionTimestamp === undefined &&
    (pod.status?.conditions ?? []).some((c: Json) => c.type === "Ready" && c.status === "True")
  );
}

/** Waits until `count` pods of the namespace are Ready (and no others exist), returns them. */
export function waitReadyPods(env: TestEnv, namespace: string, count: number, timeoutMs = 180_000) {
  return waitFor(
    `${count} Ready pods in ${namespace}`,
    async () => {
      const all = await pods(env, namespace);
      const ready = all.filter(isReady);
      return ready.length === count && all.length === count ? ready : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

export async function leaseHolder(
  env: TestEnv,
  namespace: string,
  name = "sinker",
): Promise<string | undefined> {
  const r = await env.request(
    "a",
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`,
  );
  return r.status === 200 ? r.body.spec?.holderIdentity : undefined;
}

/** `GET http://127.0.0.1:<port><path>` from inside the network namespace of the node that runs `pod`. */
export async function getInNode(
  env: TestEnv,
  pod: Json,
  path: string,
  port = 8080,
): Promise<{ status: number; body: string }> {
  const node = nodes(env).find((n) => n.name === pod.spec.nodeName);
  if (!node) throw new Error(`pod ${pod.metadata.name} is on no test node (${pod.spec.nodeName})`);
  const script =
    `fetch("http://127.0.0.1:${port}${path}").then(async (r) => ` +
    "process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))";
  const r = await runCmd("nsenter", [`--net=/run/netns/${node.netns}`, "--", process.execPath, "-e", script]);
  if (r.code !== 0) throw new Error(`GET ${path} in ${node.name}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The metric `name`'s value in a Prometheus text exposition (first sample). */
export function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

/** PID (on the machine) of the main process of `pod`'s container `container`. */
export async function containerPid(env: TestEnv, pod: Json, container = "sinker"): Promise<number> {
  const node = nodes(env).find((n) => n.name === pod.spec.nodeName);
  const status = (pod.status?.containerStatuses ?? []).find((c: Json) => c.name === container);
  const id = String(status?.containerID ?? "").replace(/^containerd:\/\//, "");
  if (!node || !id) throw new Error(`no running container ${container} in pod ${pod.metadata.name}`);
  const r = await runCmd("ctr", ["--address", node.socket, "-n", "k8s.io", "tasks", "ls"]);
  const line = r.stdout.split("\n").find((l) => l.startsWith(id));
  const pid = Number(line?.split(/\s+/)[1]);
  if (!pid) throw new Error(`containerd of ${node.name} runs no task ${id}`);
  return pid;
}

/** Real uid and whether `/` is mounted read-only, for a process. */
export function processFacts(pid: number): { uid: number; rootReadOnly: boolean } {
  const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  const root = readFileSync(`/proc/${pid}/mountinfo`, "utf8")
    .split("\n")
    .find((l) => l.split(" ")[4] === "/");
  const options = root?.split(" ")[5] ?? "";
  return { uid, rootReadOnly: options.split(",").includes("ro") };
}

/** The audit log's events (Metadata level) of one user on cluster a, received at `sinceMs` or later. */
export function auditEvents(env: TestEnv, user: string, sinceMs = 0): Json[] {
  const text = readFileSync(join(env.state.dir, "logs", "audit-a.log"), "utf8");
  const out: Json[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes(user)) continue;
    try {
      const e = JSON.parse(line);
      if (e.user?.username === user && Date.parse(e.requestReceivedTimestamp) >= sinceMs) out.push(e);
    } catch {
      // a line being written
    }
  }
  return out;
}

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

/** Every (group, resource, verb) that `rules` grant and no audit event used, as "group/resource verb". */
export function unusedGrants(rules: Rule[], events: Json[]): string[] {
  const used = new Set(
    events.map((e) => {
      const o = e.objectRef ?? {};
      const resource = o.subresource ? `${o.resource}/${o.subresource}` : o.resource;
      return `${o.apiGroup ?? ""}/${resource} ${e.verb}`;
    }),
  );
  const unused: string[] = [];
  for (const r of rules)
    for (const g of r.apiGroups)
      for (const res of r.resources)
        for (const v of r.verbs) {
          const key = `${g}/${res} ${v}`;
          if (!used.has(key)) unused.push(key);
        }
  return [...new Set(unused)].sort();
}
