/**
 * Cluster identity that belongs to the cluster, not to the Secret or the URL a cluster is reached through
 * (docs/security.md#cluster-identity). Two kubeconfigs name one cluster when the cluster says so:
 *
 * 1. the UID of its `kube-system` namespace (the community's cluster ID, the one KEP-2149's
 *    `cluster.clusterset.k8s.io` ClusterProperty builds on), when the kubeconfig's user may read it;
 * 2. else the CA the kubeconfig trusts for the server (sha256 of its certificates): every alias of one server
 *    (`localhost`, `127.0.0.1`, a DNS name, another port of a proxy) has the same CA, but two clusters signed by
 *    one CA look the same;
 * 3. else (no CA in the kubeconfig: the system's trust roots) the server's origin (scheme, host, port), which
 *    an alias does change.
 *
 * `sameCluster` compares the strongest fact both sides know. The facts of a client are fetched once per client
 * (one GET of `kube-system`; a remote client is cached per Secret uid + resourceVersion, so a changed Secret is
 * asked again) and never per reconcile.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { asSinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "./client.ts";
import type { KubeConfig } from "./client-node.ts";

/** What is known about which cluster a client talks to (opaque strings; nothing from a Secret in clear). */
export interface ClusterFacts {
  /** UID of the cluster's kube-system namespace. */
  kubeSystemUID?: string;
  /** sha256 (hex) of the CA certificates the kubeconfig trusts for the server. */
  caSHA256?: string;
  /** sha256 (hex) of the server's origin (scheme, lower-case host, port). */
  serverSHA256?: string;
}

/**
 * Do two sets of facts name one cluster? The strongest fact both know decides; nothing in common: no. Two UIDs
 * decide unless both CAs are known and differ: a server that answers with another cluster's UID (a tenant's own
 * server) must also be trusted through that cluster's CA to be taken for it.
 */
export function sameCluster(a: ClusterFacts, b: ClusterFacts): boolean {
  if (a.kubeSystemUID && b.kubeSystemUID) {
    const caDiffers = a.caSHA256 !== undefined && b.caSHA256 !== undefined && a.caSHA256 !== b.caSHA256;
    return a.kubeSystemUID === b.kubeSystemUID && !caDiffers;
  }
  if (a.caSHA256 && b.caSHA256) return a.caSHA256 === b.caSHA256;
  if (a.serverSHA256 && b.serverSHA256) return a.serverSHA256 === b.serverSHA256;
  return false;
}

/** Index keys of the facts: two facts that `sameCluster` may call the same share at least one key. */
export function factKeys(f: ClusterFacts): string[] {
  const keys: string[] = [];
  if (f.kubeSystemUID) keys.push(`uid:${f.kubeSystemUID}`);
  if (f.caSHA256) keys.push(`ca:${f.caSHA256}`);
  if (f.serverSHA256) keys.push(`server:${f.serverSHA256}`);
  return keys;
}

/** Reads facts kept in the API (a sync record); undefined when there are none. */
export function readFacts(v: unknown): ClusterFacts | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const hex = (x: unknown) => (typeof x === "string" && /^[0-9a-f]{64}$/.test(x) ? x : undefined);
  const uid = typeof o.kubeSystemUID === "string" && o.kubeSystemUID.length <= 64 ? o.kubeSystemUID : "";
  const facts: ClusterFacts = {
    ...(uid ? { kubeSystemUID: uid } : {}),
    ...(hex(o.caSHA256) ? { caSHA256: hex(o.caSHA256) as string } : {}),
    ...(hex(o.serverSHA256) ? { serverSHA256: hex(o.serverSHA256) as string } : {}),
  };
  return factKeys(facts).length > 0 ? facts : undefined;
}

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 over the sorted DER of each certificate of a PEM bundle (the raw bytes when it holds none). */
export function caFingerprint(pem: Buffer): string {
  const text = pem.toString("latin1");
  const ders = [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map(
    (m) => sha256(Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64")),
  );
  if (ders.length === 0) return sha256(pem);
  return sha256([...new Set(ders)].sort().join("\n"));
}

/** `https://host:port`, host lower-case without a trailing dot, the default port written out. */
export function serverOrigin(server: string): string {
  try {
    const url = new URL(server);
    const host = url.hostname.toLowerCase().replace(/\.$/, "");
    const port = url.port || (url.protocol === "http:" ? "80" : "443");
    return `${url.protocol}//${host}:${port}`;
  } catch {
    return server;
  }
}

/** What a kubeconfig itself says about its cluster (no request): its CA and server. */
export function kubeconfigFacts(kc: KubeConfig): ClusterFacts {
  const cluster = kc.getCurrentCluster();
  const facts: ClusterFacts = {};
  if (!cluster) return facts;
  let ca: Buffer | undefined;
  if (cluster.caData) ca = Buffer.from(cluster.caData, "base64");
  else if (cluster.caFile) {
    try {
      ca = readFileSync(cluster.caFile); // the operator's own kubeconfig (files are refused in tenants' ones)
    } catch {
      ca = undefined;
    }
  }
  if (ca && ca.length > 0) facts.caSHA256 = caFingerprint(ca);
  facts.serverSHA256 = sha256(serverOrigin(cluster.server));
  return facts;
}

const NAMESPACES: ResourceInfo = {
  apiVersion: "v1",
  group: "",
  version: "v1",
  kind: "Namespace",
  plural: "namespaces",
  namespaced: false,
};

/** Answers that mean "this user may not read kube-system" (or there is none), not "the cluster is down". */
const NOT_READABLE = new Set(["Forbidden", "Unauthorized", "NotFound"]);

/** What each client's kubeconfig says, registered where the client is made (a property of the client). */
const staticFacts = new WeakMap<ClusterClient, ClusterFacts>();

/** Records what the client's kubeconfig says (its CA, its server) for its identity. */
export function registerKubeConfig(client: ClusterClient, kc: KubeConfig): void {
  staticFacts.set(client, kubeconfigFacts(kc));
}

/**
 * The facts of each client: what its kubeconfig says (registered when the client is made), completed with the
 * kube-system UID on the first `of` (one GET; a failure other than "not readable" is not cached).
 */
export class ClusterIdentities {
  readonly #resolved = new WeakMap<ClusterClient, Promise<ClusterFacts>>();
  readonly #known = new WeakMap<ClusterClient, ClusterFacts>();

  /** The client's facts, fetched once. Throws when kube-system cannot be asked (unreachable, timeout). */
  of(client: ClusterClient): Promise<ClusterFacts> {
    let p = this.#resolved.get(client);
    if (!p) {
      p = this.#fetch(client);
      this.#resolved.set(client, p);
      p.catch(() => this.#resolved.delete(client));
    }
    return p;
  }

  /** The facts already fetched for the client, if any (no request). */
  known(client: ClusterClient): ClusterFacts | undefined {
    return this.#known.get(client);
  }

  /**
   * What the per-cluster share of workers is keyed by, known without a request: the CA (all aliases and users
   * of one server share it), else the server's origin.
   */
  shareKey(client: ClusterClient): string {
    const ca = staticFacts.get(client)?.caSHA256;
    return ca ? `ca:${ca}` : serverOrigin(client.server);
  }

  async #fetch(client: ClusterClient): Promise<ClusterFacts> {
    const facts: ClusterFacts = {
      ...(staticFacts.get(client) ?? { serverSHA256: sha256(serverOrigin(client.server)) }),
    };
    try {
      const ns = await client.get(NAMESPACES, undefined, "kube-system");
      const uid = ns?.metadata?.uid;
      if (typeof uid === "string" && uid !== "") facts.kubeSystemUID = uid;
    } catch (err) {
      if (!NOT_READABLE.has(asSinkerError(err).reason)) throw err;
    }
    this.#known.set(client, facts);
    return facts;
  }
}
