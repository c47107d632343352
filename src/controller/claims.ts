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
 * by its Secret: which cluster that Secret reaches is what this process learnt when it last reached it
 * (`secretFacts`), so a spec claim through another Secret of the same cluster counts once its Secret was
 * reached. Until then, a ResourceSync that would hold the target and was never reconciled (its own first
 * reconcile reaches its cluster) is waited for, briefly (`awaitedClaimant`): two new ResourceSyncs naming one
 * object through two Secrets do not both write it. Targets the spec does not pin down are told apart by their
 * records alone.
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
  /** The ResourceSync has a status: it was reconciled at least once (by any Sinker). */
  reconciled: boolean;
}

/** Which cluster a kubeconfig Secret reaches, as far as this process knows (no request). */
export type SecretFacts = (secretRef: {
  namespace: string;
  name: string;
  key: string;
}) => ClusterFacts | undefined;

/** How long after its creation a never-reconciled ResourceSync is waited for (`awaitedClaimant`). */
export const AWAIT_CLAIMANT_MS = 30_000;

/** The index key, by the object alone (`targetObjectKey`), of claims through a Secret whose cluster they do not record. */
function unresolvedKey(objectKey: string): string {
  return `unresolved|${objectKey}`;
}

export class ClaimIndex {
  /** The local cluster's identity (a record of a local target carries none). */
  readonly #local: ClusterFacts | undefined;
  /** index key → `rsKey\0n` → claim */
  readonly #byKey = new Map<string, Map<string, Claim>>();
  /** rsKey → index keys it claims under */
  readonly #byRs = new Map<string, string[]>();

  readonly #secretFacts: SecretFacts | undefined;

  constructor(local?: ClusterFacts, secretFacts?: SecretFacts) {
    this.#local = local;
    this.#secretFacts = secretFacts;
  }

  /** The target with its cluster's identity filled in from what this process knows of its Secret. */
  #known(t: TargetIdentity): TargetIdentity {
    const ref = t.cluster.secretRef;
    if (!ref || t.cluster.identity || !this.#secretFacts) return t;
    const identity = this.#secretFacts(ref);
    return identity ? { ...t, cluster: { ...t.cluster, identity } } : t;
  }

  /**
   * Index keys of a target: how it is reached (Secret or local), then its cluster: `local` for the local cluster
   * (also through an alias), else each fact of its identity.
   */
  #keysOf(t: TargetIdentity, obj = targetObjectKey(t)): string[] {
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
    const reconciled = rs.status !== undefined && rs.status !== null;
    const claims: Claim[] = [];
    const record = readRecord(rs.status);
    if (record)
      claims.push({ claimant: { key, appliedAt: record.appliedAt, createdAt }, target: record, reconciled });
    const fromSpec = specTarget(rs);
    if (fromSpec && !(record && sameTarget(record, fromSpec, this.#local)))
      claims.push({ claimant: { key, createdAt }, target: fromSpec, reconciled });
    const keys = new Set<string>();
    claims.forEach((c, i) => {
      const obj = targetObjectKey(c.target);
      const claimKeys = this.#keysOf(c.target, obj);
      if (c.target.cluster.secretRef && !c.target.cluster.identity) claimKeys.push(unresolvedKey(obj));
      for (const k of claimKeys) {
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
    const obj = targetObjectKey(target);
    for (const k of [...this.#keysOf(target, obj), unresolvedKey(obj)]) {
      for (const c of this.#byKey.get(k)?.values() ?? []) {
        if (!sameTarget(this.#known(c.target), target, this.#local)) continue;
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

  /**
   * Another ResourceSync that names the same object through a Secret whose cluster this process has not reached
   * yet, was never reconciled, was created less than AWAIT_CLAIMANT_MS before `now`, and would hold the target
   * before `self` if that Secret reaches the same cluster: `key` waits for its first reconcile rather than write
   * a target that may be the other's. The bound keeps a ResourceSync that never gets reconciled from blocking
   * another tenant for long. undefined: nobody to wait for.
   */
  awaitedClaimant(key: string, target: TargetIdentity, self: Claimant, now: number): string | undefined {
    if (!this.#secretFacts) return undefined;
    for (const c of this.#byKey.get(unresolvedKey(targetObjectKey(target)))?.values() ?? []) {
      if (c.claimant.key === key || c.reconciled) continue;
      if (this.#known(c.target).cluster.identity) continue;
      // |age|: a clock behind the API server's (a creationTimestamp "in the future") must not stretch the bound
      const age = Math.abs(now - Date.parse(c.claimant.createdAt));
      if (!(age < AWAIT_CLAIMANT_MS)) continue;
      if (claimWinner([c.claimant, self]) === c.claimant.key) return c.claimant.key;
    }
    return undefined;
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
