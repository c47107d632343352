/**
 * The sync record: which target Sinker applied for a ResourceSync, kept in the ResourceSync's status
 * (`status.appliedTarget`), so that what Sinker wrote lives in the API and not in process memory. Finalization,
 * a change of `spec.target` and "delete only what I wrote" are decided from it together with the live objects.
 *
 * A target's identity is its cluster (the local one, or the kubeconfig Secret reference it is reached through),
 * its API group and kind (not the version: one object is served under several), namespace and name.
 */
import { parseApiVersion } from "../kube/client.ts";
import { isPlainObject } from "../kube/object.ts";

export interface ClusterIdentity {
  /** The kubeconfig Secret the cluster is reached through; absent: the cluster Sinker runs in. */
  secretRef?: { namespace: string; name: string; key: string };
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
}

export function clusterKey(cluster: ClusterIdentity): string {
  const s = cluster.secretRef;
  return s ? `secret:${s.namespace}/${s.name}/${s.key}` : "local";
}

/** A string equal for two identities of the same object (whatever the version). */
export function identityKey(t: TargetIdentity): string {
  let group = "";
  try {
    group = parseApiVersion(t.apiVersion).group;
  } catch {
    group = t.apiVersion;
  }
  return `${clusterKey(t.cluster)}|${group}|${t.kind}|${t.namespace ?? ""}|${t.name}`;
}

export function sameTarget(a: TargetIdentity | undefined, b: TargetIdentity | undefined): boolean {
  return a !== undefined && b !== undefined && identityKey(a) === identityKey(b);
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
  }
  const namespace = str(r.namespace);
  return {
    cluster,
    apiVersion,
    kind,
    ...(namespace ? { namespace } : {}),
    name,
    uid,
    appliedAt: str(r.appliedAt) ?? "",
  };
}

/** The record after applying `target` (uid from the apply's answer): kept as is when nothing changed. */
export function nextRecord(
  previous: AppliedTarget | undefined,
  target: TargetIdentity,
  uid: string,
  now: Date,
): AppliedTarget {
  if (
    previous &&
    sameTarget(previous, target) &&
    previous.uid === uid &&
    previous.apiVersion === target.apiVersion
  )
    return previous;
  return {
    cluster: target.cluster.secretRef ? { secretRef: { ...target.cluster.secretRef } } : {},
    apiVersion: target.apiVersion,
    kind: target.kind,
    ...(target.namespace ? { namespace: target.namespace } : {}),
    name: target.name,
    uid,
    appliedAt: `${now.toISOString().slice(0, 19)}Z`,
  };
}
