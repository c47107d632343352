/**
 * Helpers of the Kubernetes-access-layer e2e tests (test/e2e/kube-*.test.ts): etcd compaction (to provoke
 * 410 Gone), counting this process's TCP connections to an API server, polling.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { TestEnv } from "../../controlplane/testenv.ts";

/**
 * Compacts the shared etcd so that every resourceVersion handed out before this call, of both clusters, is gone.
 * A write of its own first moves the revision past the newest one an API server has seen: compacting at the
 * current revision would keep that revision itself, and a watch from it would still be served.
 */
export async function compactEtcd(env: TestEnv): Promise<number> {
  const etcd = `http://127.0.0.1:${env.state.etcd.port}`;
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const put = await fetch(`${etcd}/v3/kv/put`, {
    method: "POST",
    body: JSON.stringify({ key: b64("sinker-testenv/compact-probe"), value: b64(String(Date.now())) }),
  });
  if (!put.ok) throw new Error(`etcd put failed: ${put.status} ${await put.text()}`);
  const { header } = (await put.json()) as { header: { revision: string } };
  const r = await fetch(`${etcd}/v3/kv/compaction`, {
    method: "POST",
    body: JSON.stringify({ revision: header.revision, physical: true }),
  });
  if (!r.ok) throw new Error(`etcd compaction failed: ${r.status} ${await r.text()}`);
  return Number(header.revision);
}

/** The API server port of a cluster of the test environment. */
export function apiserverPort(env: TestEnv, cluster: "a" | "b"): number {
  return Number(new URL(env.state.clusters[cluster].server).port);
}

/**
 * ESTABLISHED TCP connections from THIS process to 127.0.0.1:<port> (Linux /proc), or undefined elsewhere.
 * Counts sockets whose inode is one of our file descriptors.
 */
export function tcpConnectionsTo(port: number): number | undefined {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return undefined;
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      const remote = cols[2];
      const state = cols[3];
      const inode = cols[9];
      if (!remote || !inode) continue;
      if (remote.endsWith(`:${hexPort}`) && state === "01" && inodes.has(inode)) n++;
    }
  }
  return n;
}

export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Watch requests the API server of `cluster` holds open right now for `resource` (core group) at `scope`
 * ("namespace" or "cluster"), from its own `apiserver_longrunning_requests` gauge: the server's view of a watch
 * connection, independent of client-side connection pooling.
 */
export async function openWatches(
  env: TestEnv,
  cluster: "a" | "b",
  resource: string,
  scope: "namespace" | "cluster",
): Promise<number> {
  const r = await env.request(cluster, "GET", "/metrics");
  if (r.status !== 200 || typeof r.body !== "string") throw new Error(`GET /metrics: ${r.status}`);
  let total = 0;
  for (const line of r.body.split("\n")) {
    if (!line.startsWith("apiserver_longrunning_requests{")) continue;
    const labels = line.slice(line.indexOf("{") + 1, line.lastIndexOf("}"));
    const want = [`resource="${resource}"`, `scope="${scope}"`, 'verb="WATCH"', 'group=""', 'subresource=""'];
    if (want.every((w) => labels.split(",").includes(w)))
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}
