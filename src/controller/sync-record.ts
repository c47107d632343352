/**
 * The sync record: which target Sinker applied for a ResourceSync, kept in the ResourceSync's status
 * (`status.appliedTarget`), so that what Sinker wrote lives in the API and not in process memory. Finalization,
 * a change of `spec.target` and "delete only what I wrote" are decided from it together with the live objects.
 *
 * A target's identity is its cluster, its API group and kind (not the version: one object is served under
 * several), namespace and name. The cluster is the local one, or one reached through a kubeconfig Secret; which
 * cluster that is, is said by the cluster itself (cluster-identity.ts: its kube-system UID, else its CA, else its
 * server), recorded as `cluster.identity` so that two Secrets (or a Secret and the local cluster) naming one
 * cluster name one target. Records written before identities were recorded compare by Secret reference.
 */

import { parseApiVersion } from "../kube/client.ts";
import { type ClusterFacts, readFacts, sameCluster } from "../kube/cluster-identity.ts";
import { isPlainObject } from "../kube/object.ts";

export interface ClusterIdentity {
  /** The kubeconfig Secret the cluster is reached through; absent: the cluster Sinker runs in. */
  secretRef?: { namespace: string; name: string; key: string };
  /** Which cluster that Secret reaches, as the cluster says (absent: not known, or the local cluster). */
  identity?: ClusterFacts;
}

export interface TargetIdentity {
  cluster: ClusterIdentity;
  apiVersion: string;
  kind: string;
  /** Absent for a cluster-scoped kind. */
  namespace?: string;
  name: string;
}

/** `status.appliedTarget`. */
export interface AppliedTarget extends TargetIdentity {
  /** uid of the object Sinker's apply created or wrote. */
  uid: string;
  /** When Sinker first applied this object (RFC 3339). */
  appliedAt: string;
  /**
   * Hash of the set of fields Sinker's last apply set, not their values (noop-apply.ts `fieldShape`): a target
   * holding the projection's values, applied with these fields, is in place, also after a restart. Absent: an
   * apply that did not say (CreateOnly, an older Sinker).
   */
  fieldSetHash?: string;
}

export function clusterKey(cluster: ClusterIdentity): string {
  const s = cluster.secretRef;
  return s ? `secret:${s.namespace}/${s.name}/${s.key}` : "local";
}

/** A string equal for two identities of the same object in one cluster (whatever the version), cluster aside. */
export function targetObjectKey(t: TargetIdentity): string {
  let group = "";
  try {
    group = parseApiVersion(t.apiVersion).group;
  } catch {
    group = t.apiVersion;
  }
  return `${group}|${t.kind}|${t.namespace ?? ""}|${t.name}`;
}

/** A string equal for two identities reached the same way (same Secret, or both local). */
export function identityKey(t: TargetIdentity): string {
  return `${clusterKey(t.cluster)}|${targetObjectKey(t)}`;
}

/** The facts of a cluster: the recorded identity, the local cluster's, or none (an old record). */
export function factsOf(cluster: ClusterIdentity, local: ClusterFacts | undefined): ClusterFacts | undefined {
  return cluster.secretRef ? cluster.identity : (local ?? cluster.identity);
}

/**
 * Do two clusters name one? By what the clusters say when both are known (`local`: the local cluster's facts);
 * else (a record from before identities were recorded) by how they are reached: the same Secret, or both local.
 */
export function sameClusterOf(a: ClusterIdentity, b: ClusterIdentity, local?: ClusterFacts): boolean {
  const fa = factsOf(a, local);
  const fb = factsOf(b, local);
  if (fa && fb) return sameCluster(fa, fb);
  return clusterKey(a) === clusterKey(b);
}

/** One object: same group, kind, namespace and name, in one cluster (see sameClusterOf). */
export function sameTarget(
  a: TargetIdentity | undefined,
  b: TargetIdentity | undefined,
  local?: ClusterFacts,
): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    targetObjectKey(a) === targetObjectKey(b) &&
    sameClusterOf(a.cluster, b.cluster, local)
  );
}

/** Human-readable, for messages and Events: `ConfigMap ns/name in cluster Secret ns/name`. */
export function describeTarget(t: TargetIdentity): string {
  const s = t.cluster.secretRef;
  const where = s ? ` in the cluster of Secret ${s.namespace}/${s.name}` : "";
  return `${t.kind} ${t.namespace ? `${t.namespace}/` : ""}${t.name}${where}`;
}

/** Reads `status.appliedTarget`; undefined when absent or malformed (then nothing counts as applied by it). */
export function readRecord(status: unknown): AppliedTarget | undefined {
  if (!isPlainObject(status)) return undefined;
  const r = status.appliedTarget;
  if (!isPlainObject(r)) return undefined;
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const apiVersion = str(r.apiVersion);
  const kind = str(r.kind);
  const name = str(r.name);
  const uid = str(r.uid);
  if (!apiVersion || !kind || !name || !uid) return undefined;
  const cluster: ClusterIdentity = {};
  if (isPlainObject(r.cluster) && isPlainObject(r.cluster.secretRef)) {
    const s = r.cluster.secretRef;
    const namespace = str(s.namespace);
    const secretName = str(s.name);
    const key = str(s.key);
    if (!namespace || !secretName || !key) return undefined;
    cluster.secretRef = { namespace, name: secretName, key };
    const identity = readFacts(r.cluster.identity);
    if (identity) cluster.identity = identity;
  }
  const namespace = str(r.namespace);
  const fieldSetHash = str(r.fieldSetHash);
  return {
    cluster,
    apiVersion,
    kind,
    ...(namespace ? { namespace } : {}),
    name,
    uid,
    appliedAt: str(r.appliedAt) ?? "",
    ...(fieldSetHash ? { fieldSetHash } : {}),
  };
}

/**
 * The record after applying `target` (uid from the apply's answer; `fieldSetHash` of what the apply set, absent
 * when no apply said, e.g. CreateOnly): kept as is when nothing changed; a record from before identities were
 * recorded gets the cluster's identity (its appliedAt kept).
 */
export function nextRecord(
  previous: AppliedTarget | undefined,
  target: TargetIdentity,
  uid: string,
  now: Date,
  fieldSetHash?: string,
): AppliedTarget {
  const cluster = recordedCluster(target.cluster);
  if (
    previous &&
    sameTarget(previous, target) &&
    previous.uid === uid &&
    previous.apiVersion === target.apiVersion
  ) {
    const identity = previous.cluster.identity || !cluster.identity ? {} : { cluster };
    const fields =
      fieldSetHash === undefined || previous.fieldSetHash === fieldSetHash ? {} : { fieldSetHash };
    if (Object.keys(identity).length === 0 && Object.keys(fields).length === 0) return previous;
    return { ...previous, ...identity, ...fields };
  }
  return {
    cluster,
    apiVersion: target.apiVersion,
    kind: target.kind,
    ...(target.namespace ? { namespace: target.namespace } : {}),
    name: target.name,
    uid,
    appliedAt: `${now.toISOString().slice(0, 19)}Z`,
    ...(fieldSetHash ? { fieldSetHash } : {}),
  };
}

/** What a record keeps of a cluster: the Secret and the remote cluster's identity (never the local one's). */
function recordedCluster(c: ClusterIdentity): ClusterIdentity {
  if (!c.secretRef) return {};
  return { secretRef: { ...c.secretRef }, ...(c.identity ? { identity: { ...c.identity } } : {}) };
}
