/**
 * What a reconcile works with: the caches, clients and recorders, and what this process remembers between
 * reconciles (its own writes, its applies, contests); `forget` drops the last of a ResourceSync no longer managed.
 */
import type { Logger } from "pino";
import type { Grant } from "../api/ownership.ts";
import type { ResourceSync } from "../api/types.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer } from "../kube/informer.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import type { AppliedMemos } from "./applied.ts";
import type { ClaimIndex } from "./claims.ts";
import type { DriftState } from "./drift.ts";
import type { OwnWrites } from "./own-writes.ts";
import type { Watches } from "./watches.ts";

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
  applied: AppliedMemos;
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

/** Sinker no longer manages this ResourceSync: drop its watches and what this process remembers of it. */
export async function forget(key: string, ctx: ReconcileContext): Promise<void> {
  ctx.applied.delete(key);
  ctx.drift.forget(key);
  await ctx.watches.release(key);
}
