/**
 * A ClusterResourceSyncSet's grant to one of its children (another namespace's source, another namespace's
 * kubeconfig Secret): given only to a ResourceSync that is exactly a child the set wants right now. Pure.
 */
import type { Grant } from "../api/ownership.ts";

export type { Grant };

import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_SOURCE_NAMESPACE,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ClusterResourceSyncSet,
  type ResourceSync,
} from "../api/types.ts";
import {
  type DesiredChild,
  type Destinations,
  isSourceItself,
  localChild,
  remoteChildren,
  type SourceInfo,
  sameJson,
  setOwner,
  setSources,
} from "./children.ts";
import { type NamespaceInfo, namespaceSelected } from "./selector.ts";

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
  /** The objects a sourceSelector looks at (undefined while not listed); unused for a named source. */
  sourceObjects: (set: ClusterResourceSyncSet) => readonly SourceInfo[] | undefined = () => [],
): Grant | "undecided" | undefined {
  const owner = setOwner(rs);
  if (!owner || owner.kind !== CLUSTER_RESOURCE_SYNC_SET_KIND) return undefined;
  const set = lookupSet(owner.name);
  if (!set || set.metadata.uid !== owner.uid || set.metadata.deletionTimestamp) return undefined;
  // Only the set's source this child reads (by name), and only while the set selects it
  let objects: readonly SourceInfo[] = [];
  if (!set.spec.source) {
    const listed = sourceObjects(set);
    if (listed === undefined) return "undecided";
    objects = listed.filter((o) => o.name === rs.spec.source.resourceRef.name);
  }
  const src = setSources(set, objects).find((x) => sameJson(x.resourceRef, rs.spec.source.resourceRef));
  if (!src) return undefined;
  const ns = rs.metadata.namespace ?? "";
  const candidates: DesiredChild[] = [];
  const nsInfo = namespace(ns);
  if (nsInfo && namespaceSelected(set.spec.namespaceSelector, nsInfo) && !isSourceItself(src, ns))
    candidates.push(localChild(set, src, ns));
  // Only the set's entries for the child's own Secret: one candidate per namespace there, not the whole set.
  const undecided = new Set<string>();
  const ref = rs.spec.target.cluster?.kubeConfig.secretRef;
  if (ns === src.namespace && ref) {
    const clusters = (set.spec.clusters ?? []).filter((c) => sameJson(c.kubeConfig.secretRef, ref));
    candidates.push(...remoteChildren(set, src, remoteNamespaces, undecided, clusters));
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
    ...(match.destination.cluster === undefined && src.namespace ? { sourceNamespace: src.namespace } : {}),
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
