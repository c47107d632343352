/**
 * Which set owns a ResourceSync, and what a set may grant its children: API-level facts that both the set
 * controller (fanout/) and the ResourceSync reconciler (controller/) use, kept here so neither imports the other.
 */
import type { OwnerReference } from "../kube/object.ts";
import { CLUSTER_RESOURCE_SYNC_SET_KIND, GROUP_VERSION, RESOURCE_SYNC_SET_KIND } from "./types.ts";

/** The controller owner reference of a ResourceSync, when a set of either kind made it. */
export function setOwner(rs: {
  metadata?: { ownerReferences?: OwnerReference[] };
}): OwnerReference | undefined {
  return rs.metadata?.ownerReferences?.find(
    (o) =>
      o.controller === true &&
      o.apiVersion === GROUP_VERSION &&
      (o.kind === CLUSTER_RESOURCE_SYNC_SET_KIND || o.kind === RESOURCE_SYNC_SET_KIND),
  );
}

/** What a ClusterResourceSyncSet lets one of its children do beyond a plain ResourceSync. */
export interface Grant {
  /** Read the source in this namespace instead of the child's own. */
  sourceNamespace?: string;
  /** Use the kubeconfig Secret of this namespace without the allowed-namespaces annotation. */
  secretNamespace?: string;
}
