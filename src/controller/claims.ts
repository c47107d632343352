/**
 * Which ResourceSyncs name which target, derived from the ResourceSync cache (their sync records and specs), so
 * that two ResourceSyncs on one target are told apart without a request: the one that holds it first wins, the
 * others report TargetConflict (docs/spec/resourcesync.md, "Ownership"). An index over the cache, kept up to date
 * from its events: nothing here is truth of its own. The claims are the sync records in the API, so a claim holds
 * across restarts, replicas, tenants and Secrets.
 *
 * One cluster is one cluster whatever Secret reaches it: a record carries its cluster's identity (its
 * kube-system UID, CA, server; see cluster-identity.ts) and is indexed under each of them, the local cluster
 * under its own, so a target reached through another Secret or an alias finds it; `sameTarget` then decides.
 *
 * A spec names its target before any record exists; for a local target the identity assumes a namespaced kind
 * in the ResourceSync's namespace, for a remote one it is known only when `cluster.namespace` is set, and only
 * by its Secret (the cluster's identity is known once it is reached). Targets the spec does not pin down are
 * told apart by their records alone.
 */
import { type ClusterFacts, factKeys, sameCluster } from "../kube/cluster-identity.ts";
import type { KubeObject } from "../kube/object.ts";
import { type Claimant, claimWinner } from "./decisions.ts";
import {
  clusterKey,
  factsOf,
  readRecord,
  sameTarget,
  type TargetIdentity,
  targetObjectKey,
} from "./sync-record.ts";

interface Claim {
  claimant: Claimant;
  target: TargetIdentity;
}

export class ClaimIndex {
  /** The local cluster's identity (a record of a local target carries none). */
  readonly #local: ClusterFacts | undefined;
  /** index key → `rsKey\0n` → claim */
  readonly #byKey = new Map<string, Map<string, Claim>>();
  /** rsKey → index keys it claims under */
  readonly #byRs = new Map<string, string[]>();

  constructor(local?: ClusterFacts) {
    this.#local = local;
  }

  /**
   * Index keys of a target: how it is reached (Secret or local), then its cluster: `local` for the local cluster
   * (also through an alias), else each fact of its identity.
   */
  #keysOf(t: TargetIdentity): string[] {
    const obj = targetObjectKey(t);
    const keys = [clusterKey(t.cluster)];
    const facts = factsOf(t.cluster, this.#local);
    if (facts && this.#local && sameCluster(facts, this.#local)) keys.push("local");
    else if (facts) keys.push(...factKeys(facts));
    return [...new Set(keys)].map((c) => `${c}|${obj}`);
  }

  /** (Re)indexes one ResourceSync from its cached object. */
  update(rs: KubeObject): void {
    const key = `${rs.metadata?.namespace ?? ""}/${rs.metadata?.name ?? ""}`;
    this.remove(key);
    const createdAt = rs.metadata?.creationTimestamp ?? "";
    const claims: Claim[] = [];
    const record = readRecord(rs.status);
    if (record) claims.push({ claimant: { key, appliedAt: record.appliedAt, createdAt }, target: record });
    const fromSpec = specTarget(rs);
    if (fromSpec && !(record && sameTarget(record, fromSpec, this.#local)))
      claims.push({ claimant: { key, createdAt }, target: fromSpec });
    const keys = new Set<string>();
    claims.forEach((c, i) => {
      for (const k of this.#keysOf(c.target)) {
        let m = this.#byKey.get(k);
        if (!m) {
          m = new Map();
          this.#byKey.set(k, m);
        }
        m.set(`${key}\u0000${i}`, c);
        keys.add(k);
      }
    });
    if (keys.size > 0) this.#byRs.set(key, [...keys]);
  }

  /** Drops one ResourceSync; returns the others that named one of its targets (they may write it now). */
  remove(key: string): string[] {
    const others = new Set<string>();
    for (const k of this.#byRs.get(key) ?? []) {
      const m = this.#byKey.get(k);
      for (const id of [...(m?.keys() ?? [])]) if (id.startsWith(`${key}\u0000`)) m?.delete(id);
      if (m?.size === 0) this.#byKey.delete(k);
      for (const c of m?.values() ?? []) others.add(c.claimant.key);
    }
    this.#byRs.delete(key);
    return [...others];
  }

  /** Another ResourceSync that holds this target (in whatever cluster's terms) before `key` does, if any. */
  claimedBy(key: string, target: TargetIdentity, self: Claimant): string | undefined {
    const claimants = new Map<string, Claimant>();
    let indexedSelf: Claimant | undefined;
    for (const k of this.#keysOf(target)) {
      for (const c of this.#byKey.get(k)?.values() ?? []) {
        if (!sameTarget(c.target, target, this.#local)) continue;
        if (c.claimant.key === key) {
          if (c.claimant.appliedAt !== undefined) indexedSelf = c.claimant;
          continue;
        }
        const known = claimants.get(c.claimant.key);
        if (!known || (known.appliedAt === undefined && c.claimant.appliedAt !== undefined))
          claimants.set(c.claimant.key, c.claimant);
      }
    }
    if (claimants.size === 0) return undefined;
    // the reconciling ResourceSync with what it knows now (the cache may lag behind its own record)
    claimants.set(key, indexedSelf !== undefined && self.appliedAt === undefined ? indexedSelf : self);
    const winner = claimWinner([...claimants.values()]);
    return winner === key ? undefined : winner;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/** The target a ResourceSync's spec names, when it is known without discovery or a kubeconfig. */
function specTarget(rs: KubeObject): TargetIdentity | undefined {
  const spec = rs.spec as { target?: Record<string, unknown> } | undefined;
  const target = spec?.target;
  if (!target || typeof target !== "object") return undefined;
  const ref = target.resourceRef as Record<string, unknown> | undefined;
  const apiVersion = str(ref?.apiVersion);
  const kind = str(ref?.kind);
  const name = str(ref?.name);
  if (!apiVersion || !kind || !name) return undefined;
  const rsNamespace = rs.metadata?.namespace ?? "";
  const cluster = target.cluster as
    | { namespace?: unknown; kubeConfig?: { secretRef?: Record<string, unknown> } }
    | undefined;
  if (!cluster) return { cluster: {}, apiVersion, kind, namespace: rsNamespace, name };
  const secretRef = cluster.kubeConfig?.secretRef;
  const namespace = str(cluster.namespace);
  const secretName = str(secretRef?.name);
  const secretKey = str(secretRef?.key);
  if (!namespace || !secretName || !secretKey) return undefined;
  return {
    cluster: {
      secretRef: { namespace: str(secretRef?.namespace) ?? rsNamespace, name: secretName, key: secretKey },
    },
    apiVersion,
    kind,
    namespace,
    name,
  };
}
