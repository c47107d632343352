/**
 * Which ResourceSyncs name which target, derived from the ResourceSync cache (their sync records and specs),
 * so that two ResourceSyncs on one target are told apart without a request: the one that holds it first wins,
 * the others report TargetConflict (SPEC 3, ownership). An index over the cache, kept up to date from its
 * events: nothing here is truth of its own.
 *
 * A spec names its target before any record exists; for a local target the identity assumes a namespaced kind
 * in the ResourceSync's namespace, for a remote one it is known only when `cluster.namespace` is set. Targets
 * the spec does not pin down are told apart by their records alone.
 */
import type { KubeObject } from "../kube/object.ts";
import { type Claimant, claimWinner } from "./decisions.ts";
import { identityKey, readRecord, type TargetIdentity } from "./sync-record.ts";

export class ClaimIndex {
  /** identity key → rsKey → claimant */
  readonly #byTarget = new Map<string, Map<string, Claimant>>();
  /** rsKey → identity keys it claims */
  readonly #byRs = new Map<string, string[]>();

  /** (Re)indexes one ResourceSync from its cached object. */
  update(rs: KubeObject): void {
    const key = `${rs.metadata?.namespace ?? ""}/${rs.metadata?.name ?? ""}`;
    this.remove(key);
    const createdAt = rs.metadata?.creationTimestamp ?? "";
    const claims = new Map<string, Claimant>();
    const record = readRecord(rs.status);
    if (record) claims.set(identityKey(record), { key, appliedAt: record.appliedAt, createdAt });
    const fromSpec = specTarget(rs);
    if (fromSpec) {
      const k = identityKey(fromSpec);
      if (!claims.has(k)) claims.set(k, { key, createdAt });
    }
    for (const [k, c] of claims) {
      let m = this.#byTarget.get(k);
      if (!m) {
        m = new Map();
        this.#byTarget.set(k, m);
      }
      m.set(key, c);
    }
    if (claims.size > 0) this.#byRs.set(key, [...claims.keys()]);
  }

  /** Drops one ResourceSync; returns the others that named one of its targets (they may write it now). */
  remove(key: string): string[] {
    const others = new Set<string>();
    for (const k of this.#byRs.get(key) ?? []) {
      const m = this.#byTarget.get(k);
      m?.delete(key);
      if (m?.size === 0) this.#byTarget.delete(k);
      for (const other of m?.keys() ?? []) others.add(other);
    }
    this.#byRs.delete(key);
    return [...others];
  }

  /** Another ResourceSync that holds this target before `key` does, if any. */
  claimedBy(key: string, target: TargetIdentity, self: Claimant): string | undefined {
    const m = this.#byTarget.get(identityKey(target));
    const claimants = new Map(m ?? []);
    // the reconciling ResourceSync with what it knows now (the cache may lag behind its own record)
    const indexed = claimants.get(key);
    claimants.set(key, indexed?.appliedAt !== undefined && self.appliedAt === undefined ? indexed : self);
    if (claimants.size < 2) return undefined;
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
