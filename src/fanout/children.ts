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
  type ClusterRef,
  type ClusterResourceSyncSet,
  FINALIZER,
  GROUP_VERSION,
  LABEL_SET_KIND,
  LABEL_SET_NAME,
  RESOURCE_SYNC_KIND,
  type ResourceRef,
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
  /** The objects of the sourceSelector's kind in its namespace (a set with a sourceSelector). */
  sources?: readonly SourceInfo[];
  /** Whether the set already made this child (of colliding children, the one made first keeps its target). */
  exists?: (namespace: string, name: string) => boolean;
}

/** What a set wants: its children, and the clusters (`namespace/name` of their Secret) not decided yet. */
export interface Desired {
  children: DesiredChild[];
  /** Clusters whose namespaces are not known right now: their existing children are kept, never pruned. */
  undecided: Set<string>;
  /** Children not made: another selected source writes the same target. */
  collisions: Collision[];
}

/** One ResourceSync the set wants. */
export interface DesiredChild {
  namespace: string;
  name: string;
  /** Where the copy goes, for people: the local namespace, or the cluster's Secret and its namespace. */
  destination: { namespace?: string; cluster?: string; source?: string };
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

/** One source of a set as its children read it: the named source, or one object the sourceSelector picks. */
export interface SetSource {
  resourceRef: ResourceRef;
  /** ClusterResourceSyncSet: the source's namespace. */
  namespace?: string;
  /** ResourceSyncSet: a remote cluster holding the named source. */
  cluster?: ClusterRef;
  /** The target's reference, its name resolved (a selected source's own name unless the set names one). */
  target: ResourceRef;
  /** Part of each child's name hash: "" for the named source (children keep the names they always had). */
  key: string;
}

/** An object of the sourceSelector's kind and namespace, as the caches show it: name and labels only. */
export interface SourceInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** The sources of a set right now: the named one, or those of `objects` its sourceSelector picks (by name). */
export function setSources(set: AnySet, objects: readonly SourceInfo[]): SetSource[] {
  const target = set.spec.target.resourceRef;
  if (set.spec.source) {
    const named = set.spec.source as { resourceRef: ResourceRef; namespace?: string; cluster?: ClusterRef };
    return [
      {
        resourceRef: named.resourceRef,
        ...(named.namespace !== undefined ? { namespace: named.namespace } : {}),
        ...(named.cluster !== undefined ? { cluster: named.cluster } : {}),
        target,
        key: "",
      },
    ];
  }
  const selector = set.spec.sourceSelector;
  if (!selector) return [];
  const namespace = "namespace" in selector ? (selector.namespace as string) : undefined;
  return objects
    .filter((o) => labelsMatch(selector, o.labels))
    .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
    .map((o) => ({
      resourceRef: { apiVersion: selector.apiVersion, kind: selector.kind, name: o.name },
      ...(namespace !== undefined ? { namespace } : {}),
      target: { apiVersion: target.apiVersion, kind: target.kind, name: target.name || o.name },
      key: `src:${o.name}|`,
    }));
}

function tenantSetChildren(set: ResourceSyncSet, src: SetSource, d: Destinations): DesiredChild[] {
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
      source: { resourceRef: src.resourceRef, ...(src.cluster ? { cluster: src.cluster } : {}) },
      target: {
        resourceRef: src.target,
        ...targetPolicy(set),
        cluster: {
          kubeConfig: { secretRef: { ...secretRef } },
          ...(remoteNs === undefined ? {} : { namespace: remoteNs }),
        },
      },
    };
    const c = child(set, ns, `${src.key}${key}`, spec, {});
    out.set(key, {
      ...c,
      destination: {
        cluster: `${secretNs}/${secretRef.name}`,
        ...(remoteNs ? { namespace: remoteNs } : {}),
        ...(src.key ? { source: src.resourceRef.name } : {}),
      },
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

export function isSourceItself(src: SetSource, namespace: string): boolean {
  const s = src.resourceRef;
  const t = src.target;
  return (
    namespace === src.namespace && s.apiVersion === t.apiVersion && s.kind === t.kind && s.name === t.name
  );
}

export function localChild(set: ClusterResourceSyncSet, src: SetSource, ns: string): DesiredChild {
  const spec: ResourceSyncSpec = {
    source: { resourceRef: src.resourceRef },
    target: { resourceRef: src.target, ...targetPolicy(set) },
  };
  const c = child(set, ns, `${src.key}local|ns:${ns}`, spec, {
    [ANNOTATION_SOURCE_NAMESPACE]: src.namespace ?? "",
  });
  return { ...c, destination: { namespace: ns, ...(src.key ? { source: src.resourceRef.name } : {}) } };
}

/**
 * The remote children of a ClusterResourceSyncSet for one source. `remote` answers a cluster's namespaces
 * (namespaceSelector); `undefined` from it marks the cluster undecided (`namespace/name` of its Secret).
 */
export function remoteChildren(
  set: ClusterResourceSyncSet,
  src: SetSource,
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
        source: { resourceRef: src.resourceRef },
        target: {
          resourceRef: src.target,
          ...targetPolicy(set),
          cluster: {
            kubeConfig: { secretRef: { ...secretRef } },
            ...(remoteNs === undefined ? {} : { namespace: remoteNs }),
          },
        },
      };
      const c = child(set, src.namespace ?? "", `${src.key}${key}`, spec, {});
      out.set(key, {
        ...c,
        destination: {
          cluster: `${secretRef.namespace}/${secretRef.name}`,
          ...(remoteNs ? { namespace: remoteNs } : {}),
          ...(src.key ? { source: src.resourceRef.name } : {}),
        },
      });
    }
  }
  return [...out.values()];
}

/** Where a child writes: two children writing the same target collide. */
function targetKey(c: DesiredChild): string {
  const t = c.object.spec.target;
  const ref = t.cluster?.kubeConfig.secretRef;
  const where = ref
    ? `${ref.namespace ?? c.namespace}/${ref.name}/${ref.key}|${t.cluster?.namespace ?? ""}`
    : `local|${c.namespace}`;
  return `${where}|${t.resourceRef.apiVersion}/${t.resourceRef.kind}/${t.resourceRef.name}`;
}

/**
 * Of children writing the same target (two selected sources, one target name), one is kept: the one already made
 * (it is never overwritten by a newcomer), else the first by source name; the others collide.
 */
function splitCollisions(
  children: DesiredChild[],
  exists: (c: DesiredChild) => boolean,
): { children: DesiredChild[]; collisions: Collision[] } {
  const byTarget = new Map<string, DesiredChild[]>();
  for (const c of children) {
    const k = targetKey(c);
    byTarget.set(k, [...(byTarget.get(k) ?? []), c]);
  }
  const losers = new Map<DesiredChild, DesiredChild>();
  for (const group of byTarget.values()) {
    if (group.length < 2) continue;
    const winner = group.find(exists) ?? (group[0] as DesiredChild);
    for (const c of group) if (c !== winner) losers.set(c, winner);
  }
  return {
    children: children.filter((c) => !losers.has(c)),
    collisions: [...losers].map(([child, winner]) => ({ child, winner })),
  };
}

/** A child not made because another source writes its target. */
export interface Collision {
  child: DesiredChild;
  winner: DesiredChild;
}

/** Every ResourceSync the set wants right now, in a stable order. */
export function desiredChildren(set: AnySet, d: Destinations): Desired {
  const undecided = new Set<string>();
  const sources = setSources(set, d.sources ?? []);
  const all: DesiredChild[] = [];
  for (const src of sources) {
    if (set.kind !== CLUSTER_RESOURCE_SYNC_SET_KIND) {
      all.push(...tenantSetChildren(set, src, d));
      continue;
    }
    const local = d.namespaces
      .filter((ns) => namespaceSelected(set.spec.namespaceSelector, ns) && !isSourceItself(src, ns.name))
      .map((ns) => localChild(set, src, ns.name))
      .sort((a, b) => (a.namespace < b.namespace ? -1 : 1));
    all.push(...local, ...remoteChildren(set, src, d.remoteNamespaces, undecided));
  }
  const { children, collisions } = splitCollisions(all, (c) => d.exists?.(c.namespace, c.name) ?? false);
  return { children, undecided, collisions };
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
