import { setOwner } from "../api/ownership.ts";
import {
  ANNOTATION_SOURCE_NAMESPACE,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
} from "../api/types.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { type ClusterFacts, sameCluster } from "../kube/cluster-identity.ts";
import type { KubeObject } from "../kube/object.ts";
import { checkSecretAccess } from "../kube/remote-clusters.ts";
import type { ReconcileContext } from "./context.ts";
import { trackFailure } from "./reachability.ts";
import type { RefSet } from "./ref-set.ts";
import { GrantUndecided } from "./result.ts";
import type { AppliedTarget, ClusterIdentity, TargetIdentity } from "./sync-record.ts";
import type { WatchRef } from "./watches.ts";

/** Where one end (source or target) of a ResourceSync lives, resolved. */
export interface ResolvedEnd {
  client: ClusterClient;
  cluster: ClusterIdentity;
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
  local: boolean;
}

/** A resolved end with its cluster's identity (`cluster.identity` set for a remote one). */
export interface IdentifiedEnd extends ResolvedEnd {
  /** Which cluster the client reaches, as the cluster says (cluster-identity.ts). */
  facts: ClusterFacts;
}

/** Completes a resolved end with its cluster's identity (cached per client: its first use costs one GET). */
export async function identify(end: ResolvedEnd, ctx: ReconcileContext): Promise<IdentifiedEnd> {
  const facts = await factsOf(end.client, ctx);
  return {
    ...end,
    cluster: end.cluster.secretRef ? { ...end.cluster, identity: facts } : end.cluster,
    facts,
  };
}

/** The identity of the cluster a client reaches (fetched once per client; a failure counts as unreachable). */
export function factsOf(client: ClusterClient, ctx: ReconcileContext): Promise<ClusterFacts> {
  return trackFailure(client, ctx, ctx.remoteClusters.identities.of(client));
}

/** The client of a cluster: the local one, or the one of a kubeconfig Secret (access checked before watching). */
export async function clusterClient(
  key: string,
  cluster: ClusterIdentity,
  rsNamespace: string,
  refs: RefSet,
  ctx: ReconcileContext,
  opts: { secretGoneFallback: boolean; grantedSecretNamespace?: string },
): Promise<{ client: ClusterClient; namespace: string | undefined }> {
  const secretRef = cluster.secretRef;
  if (!secretRef) return { client: ctx.local, namespace: undefined };
  const secretResource = await ctx.local.resolve("v1", "Secret");
  const ref: WatchRef = {
    client: ctx.local,
    resource: secretResource,
    namespace: secretRef.namespace,
    name: secretRef.name,
    single: true,
  };
  const crossNamespace =
    secretRef.namespace !== rsNamespace && opts.grantedSecretNamespace !== secretRef.namespace;
  try {
    if (crossNamespace && !ctx.watches.holds(key, ref)) {
      // Another namespace's Secret is watched only once this ResourceSync may use it: one GET, the check, then
      // a watch of that one Secret.
      checkSecretAccess(
        await ctx.local.get(secretResource, secretRef.namespace, secretRef.name),
        rsNamespace,
        secretRef.namespace,
      );
    }
    await refs.add(ref);
    const secret = ctx.watches.get(ctx.local, secretResource, secretRef.namespace, secretRef.name);
    try {
      // a Secret granted by a ClusterResourceSyncSet is checked as if it were in the child's own namespace
      const granted = opts.grantedSecretNamespace === secretRef.namespace;
      checkSecretAccess(secret, granted ? secretRef.namespace : rsNamespace, secretRef.namespace);
    } catch (err) {
      if (crossNamespace) await refs.drop(ref);
      throw err;
    }
    const remote = ctx.remoteClusters.clusterFor(secret as KubeObject, secretRef.key);
    ctx.hold?.(remote.client);
    return { client: remote.client, namespace: remote.namespace };
  } catch (err) {
    const reason = asSinkerError(err).reason;
    if (opts.secretGoneFallback && (reason === "SecretNotFound" || reason === "SecretAccessDenied")) {
      // The Secret went first (a namespace being deleted): the client it was last loaded into, if this process
      // still has it, can still clean the recorded target up.
      const last = ctx.remoteClusters.lastClusterFor(secretRef.namespace, secretRef.name, secretRef.key);
      if (last) {
        ctx.hold?.(last.client);
        ctx.logger.info("kubeconfig Secret gone; using the client it was last loaded into");
        return { client: last.client, namespace: last.namespace };
      }
    }
    throw err;
  }
}

/**
 * Resolves one end of the ResourceSync: which cluster (the local one or a kubeconfig Secret's), which resource
 * (through discovery), which namespace. Enforces the tenancy rules of docs/spec/resourcesync.md#remote-clusters.
 */
export async function resolveEnd(
  rs: ResourceSync,
  end: "source" | "target",
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ResolvedEnd> {
  const spec = rs.spec[end];
  const rsNamespace = rs.metadata.namespace ?? "";
  const { apiVersion, kind, name } = spec.resourceRef;
  const sourceNamespaceAsked = rs.metadata.annotations?.[ANNOTATION_SOURCE_NAMESPACE];
  // A set's grant (see fanout/children.ts) concerns a local source's namespace or a remote target's Secret:
  // decided only for the end it concerns, so once per reconcile at most.
  const grantMatters =
    end === "source"
      ? sourceNamespaceAsked !== undefined
      : spec.cluster !== undefined && setOwner(rs) !== undefined;
  const decided = grantMatters ? ctx.grant?.(rs) : undefined;
  if (decided === "undecided") throw new GrantUndecided();
  const grant = decided;
  if (
    end === "source" &&
    sourceNamespaceAsked !== undefined &&
    grant?.sourceNamespace !== sourceNamespaceAsked
  ) {
    throw new SinkerError(
      "SourceNamespaceNotGranted",
      `the annotation ${ANNOTATION_SOURCE_NAMESPACE} is honoured only on a ResourceSync that a ` +
        "ClusterResourceSyncSet made for a namespace it selects, unchanged",
    );
  }
  if (!spec.cluster) {
    const resource = await ctx.local.resolve(apiVersion, kind);
    if (!resource.namespaced && !ctx.options.allowClusterScoped) {
      throw new SinkerError(
        "ClusterScopedNotAllowed",
        `${end} ${kind} is cluster-scoped; local cluster-scoped kinds need the controller flag --allow-cluster-scoped`,
      );
    }
    return {
      client: ctx.local,
      cluster: {},
      resource,
      namespace: resource.namespaced
        ? end === "source" && grant?.sourceNamespace !== undefined
          ? grant.sourceNamespace
          : rsNamespace
        : undefined,
      name,
      local: true,
    };
  }
  const secretRef = spec.cluster.kubeConfig.secretRef;
  const cluster: ClusterIdentity = {
    secretRef: { namespace: secretRef.namespace ?? rsNamespace, name: secretRef.name, key: secretRef.key },
  };
  const remote = await clusterClient(`${rsNamespace}/${rs.metadata.name}`, cluster, rsNamespace, refs, ctx, {
    secretGoneFallback: rs.metadata.deletionTimestamp !== undefined,
    ...(grant?.secretNamespace !== undefined ? { grantedSecretNamespace: grant.secretNamespace } : {}),
  });
  const resource = await trackFailure(remote.client, ctx, remote.client.resolve(apiVersion, kind));
  return {
    client: remote.client,
    cluster,
    resource,
    namespace: resource.namespaced ? (spec.cluster.namespace ?? remote.namespace ?? "default") : undefined,
    name,
    local: false,
  };
}

/** Resolves the recorded target (its cluster from the record, the kind through discovery). */
export async function resolveRecorded(
  key: string,
  record: AppliedTarget,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ResolvedEnd> {
  const rsNamespace = rs.metadata?.namespace ?? "";
  // A ClusterResourceSyncSet's child may use a Secret of another namespace (its set granted it). By the time the
  // child is finalized its set may be gone or no longer want it, so the grant cannot be checked again; the sync
  // record, which only the controller writes (status), shows the Secret was granted when the target was applied.
  const granted =
    setOwner(rs)?.kind === CLUSTER_RESOURCE_SYNC_SET_KIND ? record.cluster.secretRef?.namespace : undefined;
  const { client } = await clusterClient(key, record.cluster, rsNamespace, refs, ctx, {
    secretGoneFallback: true,
    ...(granted !== undefined ? { grantedSecretNamespace: granted } : {}),
  });
  const facts = await factsOf(client, ctx);
  const recorded = record.cluster.identity;
  if (record.cluster.secretRef && recorded && !sameCluster(recorded, facts)) {
    const s = record.cluster.secretRef;
    throw new SinkerError(
      "ClusterChanged",
      `kubeconfig Secret ${s.namespace}/${s.name} now reaches another cluster than the one the recorded target ` +
        `${record.kind} ${record.namespace ? `${record.namespace}/` : ""}${record.name} was applied to; it is left there`,
    );
  }
  const resource = await trackFailure(client, ctx, client.resolve(record.apiVersion, record.kind));
  return {
    client,
    cluster: record.cluster,
    resource,
    namespace: resource.namespaced ? record.namespace : undefined,
    name: record.name,
    local: !record.cluster.secretRef,
  };
}

export function identityOf(
  _rs: ResourceSync,
  end: Pick<ResolvedEnd, "cluster" | "resource" | "namespace" | "name">,
): TargetIdentity {
  return {
    cluster: end.cluster,
    apiVersion: end.resource.apiVersion,
    kind: end.resource.kind,
    ...(end.namespace ? { namespace: end.namespace } : {}),
    name: end.name,
  };
}

export function watchRef(end: ResolvedEnd): WatchRef {
  return { client: end.client, resource: end.resource, namespace: end.namespace, name: end.name };
}

/** What describeEnd reads of a resolved end. */
export type DescribedEnd = Pick<ResolvedEnd, "namespace" | "name" | "local"> & { client: { name: string } };

export function describeEnd(kind: string, end: DescribedEnd): string {
  const where = end.local ? "" : ` in cluster ${end.client.name}`;
  return `${kind} ${end.namespace ? `${end.namespace}/` : ""}${end.name}${where}`;
}

/** The Ready condition's message after a successful sync. */
export function inSyncMessage(spec: ResourceSync, source: DescribedEnd, target: DescribedEnd): string {
  return `target ${describeEnd(spec.spec.target.resourceRef.kind, target)} is in sync with source ${describeEnd(spec.spec.source.resourceRef.kind, source)}`;
}

/** The Ready condition's message under writePolicy CreateOnly: one message whether it was created now or not. */
export function createOnlyMessage(spec: ResourceSync, source: DescribedEnd, target: DescribedEnd): string {
  return `target ${describeEnd(spec.spec.target.resourceRef.kind, target)} exists (writePolicy CreateOnly: created from source ${describeEnd(spec.spec.source.resourceRef.kind, source)} when absent, never updated)`;
}
