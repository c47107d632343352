import type { Logger } from "pino";
import type { Grant } from "../api/ownership.ts";
import { FIELD_MANAGER, type ResourceSync } from "../api/types.ts";
import { asSinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import type { ClaimIndex } from "./claims.ts";
import type { LiveTarget } from "./decisions.ts";
import type { DriftState } from "./drift.ts";
import type { OwnWrites } from "./own-writes.ts";
import { ResourceSyncConflict } from "./result.ts";
import type { Watches, WatchRef } from "./watches.ts";

export interface ReconcilerOptions {
  allowClusterScoped: boolean;
}

/** What this process last applied for a ResourceSync: lets a resync cost nothing. An optimisation only. */
export interface AppliedMemo {
  /** `watchIdentity` of the target. */
  target: string;
  /** resourceVersion the apply returned. */
  resourceVersion: string;
  /** Hash of the applied projection. */
  hash: string;
  /** Hash of the set of fields it sets (noop-apply.ts `fieldShape`). */
  shape?: string;
}

export interface ReconcileContext {
  local: ClusterClient;
  /** Cache of every ResourceSync in the local cluster. */
  resourceSyncs: Informer;
  resourceSyncResource: ResourceInfo;
  watches: Watches;
  remoteClusters: RemoteClusters;
  events: EventRecorder;
  options: ReconcilerOptions;
  logger: Logger;
  /** Our own last write of each ResourceSync until the cache catches up. */
  written: OwnWrites;
  /** Which ResourceSyncs name which target (from the ResourceSync cache). */
  claims: ClaimIndex;
  /** Per ResourceSync, what this process last applied (see AppliedMemo). */
  applied: Map<string, AppliedMemo>;
  /** Called after a successful apply (metrics: sync latency). */
  onApplied?: (key: string) => void;
  /** Contests and rings of ResourceSyncs (drift.ts): in memory, an optimisation. */
  drift: DriftState;
  /** Whether a ResourceSync is queued or being reconciled (the ring rule of cycles.ts). */
  pending?: (key: string) => boolean;
  /** Called after an apply that undid another writer's change (metrics). */
  onRepair?: (key: string) => void;
  /**
   * Marks a remote client as in use by this reconcile (it is not pruned before the reconcile ends) and takes a
   * slot of its server's share of the workers: throws ClusterBusy (cluster-share.ts) when that share is in use.
   */
  hold?: (client: ClusterClient) => void;
  /**
   * What a ClusterResourceSyncSet grants one of its children (another namespace's source or kubeconfig Secret),
   * decided against the set and namespace caches; absent when fan-out is off.
   */
  grant?: (rs: ResourceSync) => Grant | "undecided" | undefined;
  /** Called with the outcome of requests to a cluster (metrics: remote cluster reachability). */
  onClusterOutcome?: (client: ClusterClient, reachable: boolean) => void;
}

/**
 * A merge patch of the ResourceSync (its metadata, or its status subresource); the answer is remembered as this
 * ResourceSync's own write. A 409 means a newer version is on its way.
 */
export async function patchResourceSync(
  key: string,
  rs: KubeObject,
  ctx: ReconcileContext,
  body: KubeObject,
  opts: { subresource?: "status" } = {},
): Promise<KubeObject> {
  try {
    const out = await ctx.local.patch(
      ctx.resourceSyncResource,
      rs.metadata?.namespace,
      rs.metadata?.name ?? "",
      body,
      "merge",
      opts,
    );
    ctx.written.remember(key, out);
    return out;
  } catch (err) {
    if (asSinkerError(err).reason === "Conflict") throw new ResourceSyncConflict();
    throw err;
  }
}

/** Sinker no longer manages this ResourceSync: drop its watches and what this process remembers of it. */
export async function forget(key: string, ctx: ReconcileContext): Promise<void> {
  ctx.applied.delete(key);
  ctx.drift.forget(key);
  await ctx.watches.release(key);
}

/**
 * Like track, for calls that may be answered from a cache (discovery): only a failure says something about the
 * cluster, a cache hit does not prove it is reachable.
 */
export async function trackFailure<T>(
  client: ClusterClient,
  ctx: ReconcileContext,
  p: Promise<T>,
): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (asSinkerError(err).reason === "ClusterUnreachable") ctx.onClusterOutcome?.(client, false);
    throw err;
  }
}

/** Records the outcome of a request to a cluster (reachability metric) and passes its result on. */
export async function track<T>(client: ClusterClient, ctx: ReconcileContext, p: Promise<T>): Promise<T> {
  try {
    const out = await p;
    ctx.onClusterOutcome?.(client, true);
    return out;
  } catch (err) {
    const reason = asSinkerError(err).reason;
    if (reason !== "Cancelled") ctx.onClusterOutcome?.(client, reason !== "ClusterUnreachable");
    throw err;
  }
}

/** The live target as decisions.ts sees it, from the cached object. */
export function liveOf(object: KubeObject | undefined, rsUid: string | undefined): LiveTarget {
  if (!object) return { exists: false };
  const meta = object.metadata ?? {};
  return {
    exists: true,
    uid: meta.uid ?? "",
    deleting: Boolean(meta.deletionTimestamp),
    appliedBySinker: (meta.managedFields ?? []).some(
      (m) => m.manager === FIELD_MANAGER && m.operation === "Apply",
    ),
    ownedByThis: rsUid !== undefined && (meta.ownerReferences ?? []).some((o) => o.uid === rsUid),
  };
}

/** Names one object in one client (instance): what the echo filter and the applied memo compare. */
export function watchIdentity(end: {
  client: { id: number };
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
}): string {
  const r = end.resource;
  return `${end.client.id}|${r.group}/${r.plural}|${r.namespaced ? (end.namespace ?? "") : ""}|${end.name}`;
}

/**
 * The watch references of one reconcile. They only grow while the reconcile resolves things (also across a
 * failed attempt: a failing ResourceSync keeps its watches), and `commit` narrows them to exactly what a
 * complete resolution needed.
 */
export class RefSet {
  private readonly refs: WatchRef[] = [];
  private readonly key: string;
  private readonly ctx: ReconcileContext;

  constructor(key: string, ctx: ReconcileContext) {
    this.key = key;
    this.ctx = ctx;
  }

  async add(...refs: WatchRef[]): Promise<void> {
    this.refs.push(...refs);
    await this.ctx.watches.addRefs(this.key, refs);
  }

  async drop(ref: WatchRef): Promise<void> {
    const i = this.refs.findIndex(
      (r) =>
        r.client === ref.client &&
        r.resource === ref.resource &&
        r.namespace === ref.namespace &&
        r.name === ref.name,
    );
    if (i >= 0) this.refs.splice(i, 1);
    await this.ctx.watches.dropRef(this.key, ref);
  }

  async commit(): Promise<void> {
    await this.ctx.watches.setRefs(this.key, this.refs);
  }
}
