/**
 * What a set expands into: one ResourceSync per destination ("child"), computed from the set and what the caches
 * say about namespaces and kubeconfig Secrets. Pure functions: the set controller applies the result, and the
 * ResourceSync reconciler calls `grantFor` to check that a child asking for another namespace's source or Secret
 * is exactly what a ClusterResourceSyncSet wants right now.
 *
 * Where children live:
 * - ResourceSyncSet: in the set's namespace, each with a remote target (the tenant's own kubeconfig Secrets);
 * - ClusterResourceSyncSet, local destination N: in N, so the target is in the child's own namespace (its owner
 *   reference to the child is valid) and only the source is elsewhere (granted by the set);
 * - ClusterResourceSyncSet, remote destination: in the source's namespace (the Secret may be elsewhere: granted).
 */
import { createHash } from "node:crypto";
import { type Grant, setOwner } from "../api/ownership.ts";
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_SOURCE_NAMESPACE,
  type AnySet,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ClusterResourceSyncSet,
  FINALIZER,
  GROUP_VERSION,
  LABEL_SET_KIND,
  LABEL_SET_NAME,
  RESOURCE_SYNC_KIND,
  type ResourceSync,
  type ResourceSyncSet,
  type ResourceSyncSpec,
  type TargetRef,
} from "../api/types.ts";
import type { OwnerReference } from "../kube/object.ts";
import { labelsMatch, type NamespaceInfo, namespaceSelected } from "./selector.ts";

export { type Grant, setOwner };

/** A kubeconfig Secret as the set controller caches it: its name and labels only, never its data. */
export interface SecretInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** What the caches know, for one set. */
export interface Destinations {
  /** Every namespace of the local cluster (ClusterResourceSyncSet). */
  namespaces: readonly NamespaceInfo[];
  /** The Secrets of the set's namespace (ResourceSyncSet with a clusterSelector). */
  secrets: readonly SecretInfo[];
  /**
   * The namespaces of a remote cluster, by its kubeconfig Secret (`namespace/name/key`), for a
   * ClusterResourceSyncSet's cluster with a namespaceSelector; undefined while they are not known.
   */
  remoteNamespaces?: (secret: string) => readonly NamespaceInfo[] | undefined;
}

/** What a set wants: its children, and the clusters (`namespace/name` of their Secret) not decided yet. */
export interface Desired {
  children: DesiredChild[];
  /** Clusters whose namespaces are not known right now: their existing children are kept, never pruned. */
  undecided: Set<string>;
}

/** One ResourceSync the set wants. */
export interface DesiredChild {
  namespace: string;
  name: string;
  /** Where the copy goes, for people: the local namespace, or the cluster's Secret and its namespace. */
  destination: { namespace?: string; cluster?: string };
  object: ResourceSync;
}

const NAME_HASH_LENGTH = 10;
const LABEL_VALUE_MAX = 63;

function shortHash(text: string, length: number): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** The set's name as a label value (names longer than a label value may be are shortened with a hash). */
export function setLabelValue(name: string): string {
  if (name.length <= LABEL_VALUE_MAX) return name;
  return `${name.slice(0, LABEL_VALUE_MAX - NAME_HASH_LENGTH - 1).replace(/[-.]+$/, "")}-${shortHash(name, NAME_HASH_LENGTH)}`;
}

/** A child's name: the set's name and a hash of the destination (stable, and unlikely to meet a tenant's name). */
export function childName(set: AnySet, destinationKey: string): string {
  const hash = shortHash(`${set.kind}/${set.metadata.name}/${destinationKey}`, NAME_HASH_LENGTH);
  const prefix = set.metadata.name.slice(0, 253 - NAME_HASH_LENGTH - 1).replace(/[-.]+$/, "");
  return `${prefix}-${hash}`;
}

/** The set's policy for the target's labels and annotations, carried by every child. */
function targetPolicy(set: AnySet): Pick<TargetRef, "labels" | "annotations"> {
  const { labels, annotations } = set.spec.target;
  return { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) };
}

export function controllerReference(set: AnySet): OwnerReference {
  return {
    apiVersion: GROUP_VERSION,
    kind: set.kind,
    name: set.metadata.name,
    uid: set.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

function child(
  set: AnySet,
  namespace: string,
  destinationKey: string,
  spec: ResourceSyncSpec,
  extraAnnotations: Record<string, string>,
): Pick<DesiredChild, "namespace" | "name" | "object"> {
  const name = childName(set, destinationKey);
  const annotations: Record<string, string> = { ...extraAnnotations };
  if ((set.spec.pruning ?? "Delete") === "Orphan") annotations[ANNOTATION_DISABLE_TARGET_DELETION] = "true";
  const mappings = set.spec.mappings ?? [];
  return {
    namespace,
    name,
    object: {
      apiVersion: GROUP_VERSION,
      kind: RESOURCE_SYNC_KIND,
      metadata: {
        name,
        namespace,
        labels: { [LABEL_SET_NAME]: setLabelValue(set.metadata.name), [LABEL_SET_KIND]: set.kind },
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        ownerReferences: [controllerReference(set)],
        // Sinker's finalizer comes with the child, so the child's first reconcile need not write it (a write less).
        finalizers: [FINALIZER],
      },
      spec: {
        ...spec,
        ...(mappings.length > 0 ? { mappings } : {}),
        ...(set.spec.writePolicy ? { writePolicy: set.spec.writePolicy } : {}),
        ...(set.spec.onImmutableChange ? { onImmutableChange: set.spec.onImmutableChange } : {}),
      },
    },
  };
}

function tenantSetChildren(set: ResourceSyncSet, d: Destinations): DesiredChild[] {
  const ns = set.metadata.namespace;
  const out = new Map<string, DesiredChild>();
  const add = (
    secretRef: { name: string; key: string; namespace?: string },
    remoteNs: string | undefined,
  ) => {
    const secretNs = secretRef.namespace ?? ns;
    const key = `cluster:${secretNs}/${secretRef.name}/${secretRef.key}|ns:${remoteNs ?? ""}`;
    if (out.has(key)) return;
    const spec: ResourceSyncSpec = {
      source: set.spec.source,
      target: {
        resourceRef: set.spec.target.resourceRef,
        ...targetPolicy(set),
        cluster: {
          kubeConfig: { secretRef: { ...secretRef } },
          ...(remoteNs === undefined ? {} : { namespace: remoteNs }),
        },
      },
    };
    const c = child(set, ns, key, spec, {});
    out.set(key, {
      ...c,
      destination: { cluster: `${secretNs}/${secretRef.name}`, ...(remoteNs ? { namespace: remoteNs } : {}) },
    });
  };
  for (const cluster of set.spec.clusters ?? []) add(cluster.kubeConfig.secretRef, cluster.namespace);
  const selector = set.spec.clusterSelector;
  if (selector) {
    for (const secret of [...d.secrets].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (labelsMatch(selector, secret.labels))
        add({ name: secret.name, key: selector.key }, selector.namespace);
    }
  }
  return [...out.values()];
}

function isSourceItself(set: ClusterResourceSyncSet, namespace: string): boolean {
  const s = set.spec.source.resourceRef;
  const t = set.spec.target.resourceRef;
  return (
    namespace === set.spec.source.namespace &&
    s.apiVersion === t.apiVersion &&
    s.kind === t.kind &&
    s.name === t.name
  );
}

function localChild(set: ClusterResourceSyncSet, ns: string): DesiredChild {
  const spec: ResourceSyncSpec = {
    source: { resourceRef: set.spec.source.resourceRef },
    target: { resourceRef: set.spec.target.resourceRef, ...targetPolicy(set) },
  };
  const c = child(set, ns, `local|ns:${ns}`, spec, {
    [ANNOTATION_SOURCE_NAMESPACE]: set.spec.source.namespace,
  });
  return { ...c, destination: { namespace: ns } };
}

/**
 * The remote children of a ClusterResourceSyncSet. `remote` answers a cluster's namespaces (namespaceSelector);
 * `undefined` from it marks the cluster undecided (`namespace/name` of its Secret).
 */
function remoteChildren(
  set: ClusterResourceSyncSet,
  remote: Destinations["remoteNamespaces"],
  undecided: Set<string>,
  clusters = set.spec.clusters ?? [],
): DesiredChild[] {
  const out = new Map<string, DesiredChild>();
  for (const cluster of clusters) {
    const secretRef = cluster.kubeConfig.secretRef;
    const names = new Set<string>(cluster.namespaces ?? []);
    const selector = cluster.namespaceSelector;
    if (selector) {
      const known = remote?.(`${secretRef.namespace}/${secretRef.name}/${secretRef.key}`);
      if (known === undefined) undecided.add(`${secretRef.namespace}/${secretRef.name}`);
      for (const ns of known ?? []) if (namespaceSelected(selector, ns)) names.add(ns.name);
    }
    const namespaces: Array<string | undefined> =
      names.size > 0 ? [...names].sort() : selector ? [] : [undefined];
    for (const remoteNs of namespaces) {
      const key = `cluster:${secretRef.namespace}/${secretRef.name}/${secretRef.key}|ns:${remoteNs ?? ""}`;
      if (out.has(key)) continue;
      const spec: ResourceSyncSpec = {
        source: { resourceRef: set.spec.source.resourceRef },
        target: {
          resourceRef: set.spec.target.resourceRef,
          ...targetPolicy(set),
          cluster: {
            kubeConfig: { secretRef: { ...secretRef } },
            ...(remoteNs === undefined ? {} : { namespace: remoteNs }),
          },
        },
      };
      const c = child(set, set.spec.source.namespace, key, spec, {});
      out.set(key, {
        ...c,
        destination: {
          cluster: `${secretRef.namespace}/${secretRef.name}`,
          ...(remoteNs ? { namespace: remoteNs } : {}),
        },
      });
    }
  }
  return [...out.values()];
}

/** Every ResourceSync the set wants right now, in a stable order. */
export function desiredChildren(set: AnySet, d: Destinations): Desired {
  const undecided = new Set<string>();
  if (set.kind !== CLUSTER_RESOURCE_SYNC_SET_KIND) return { children: tenantSetChildren(set, d), undecided };
  const local = d.namespaces
    .filter((ns) => namespaceSelected(set.spec.namespaceSelector, ns) && !isSourceItself(set, ns.name))
    .map((ns) => localChild(set, ns.name))
    .sort((a, b) => (a.namespace < b.namespace ? -1 : 1));
  return { children: [...local, ...remoteChildren(set, d.remoteNamespaces, undecided)], undecided };
}

/** Deep equality of JSON values, ignoring the order of object keys (the API server may reorder them). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => Object.hasOwn(bo, k) && sameJson(ao[k], bo[k]));
}

/**
 * Whether `rs` is, right now, exactly a child that the ClusterResourceSyncSet owning it (by uid) wants: same
 * name, namespace, spec and annotations, for a destination the set selects. Only then does it get the set's
 * grant; anything else (a hand-made copy in another namespace, an edited child, a set that no longer selects the
 * namespace) is a plain ResourceSync.
 */
export function grantFor(
  rs: ResourceSync,
  lookupSet: (name: string) => ClusterResourceSyncSet | undefined,
  namespace: (name: string) => NamespaceInfo | undefined,
  remoteNamespaces: Destinations["remoteNamespaces"],
): Grant | "undecided" | undefined {
  const owner = setOwner(rs);
  if (!owner || owner.kind !== CLUSTER_RESOURCE_SYNC_SET_KIND) return undefined;
  const set = lookupSet(owner.name);
  if (!set || set.metadata.uid !== owner.uid || set.metadata.deletionTimestamp) return undefined;
  const ns = rs.metadata.namespace ?? "";
  const candidates: DesiredChild[] = [];
  const nsInfo = namespace(ns);
  if (nsInfo && namespaceSelected(set.spec.namespaceSelector, nsInfo) && !isSourceItself(set, ns))
    candidates.push(localChild(set, ns));
  // Only the set's entries for the child's own Secret: one candidate per namespace there, not the whole set.
  const undecided = new Set<string>();
  const ref = rs.spec.target.cluster?.kubeConfig.secretRef;
  if (ns === set.spec.source.namespace && ref) {
    const clusters = (set.spec.clusters ?? []).filter((c) => sameJson(c.kubeConfig.secretRef, ref));
    candidates.push(...remoteChildren(set, remoteNamespaces, undecided, clusters));
  }
  const match = candidates.find(
    (c) =>
      c.name === rs.metadata.name &&
      sameJson(c.object.spec, rs.spec) &&
      sameJson(c.object.metadata.annotations ?? {}, pickAnnotations(rs, c.object.metadata.annotations ?? {})),
  );
  // A remote namespace a selector may pick, while that cluster's namespaces are not known yet: ask again later
  if (!match) return undecided.size > 0 ? "undecided" : undefined;
  const secretNs = match.object.spec.target.cluster?.kubeConfig.secretRef.namespace;
  return {
    ...(match.destination.cluster === undefined ? { sourceNamespace: set.spec.source.namespace } : {}),
    ...(secretNs !== undefined ? { secretNamespace: secretNs } : {}),
  };
}

/** The child's values of the annotations the set sets (others, e.g. kubectl's, do not matter). */
function pickAnnotations(rs: ResourceSync, wanted: Record<string, string>): Record<string, string> {
  const have = rs.metadata.annotations ?? {};
  const out: Record<string, string> = {};
  for (const k of [...Object.keys(wanted), ANNOTATION_SOURCE_NAMESPACE, ANNOTATION_DISABLE_TARGET_DELETION]) {
    if (have[k] !== undefined) out[k] = have[k];
  }
  return out;
}
