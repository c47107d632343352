/**
 * The set controller: keeps, for every ResourceSyncSet and ClusterResourceSyncSet, exactly the child
 * ResourceSyncs its destinations call for, and the set's status from theirs. Everything a copy does (apply, drift
 * repair, finalizer, conditions) is the ResourceSync controller's work; this one only adds and prunes children.
 *
 * Wiring only: what it watches is set-caches.ts, one reconcile is set-reconciler.ts, and both run on the
 * controller runtime (runtime/). Children are read from the ResourceSync cache the ResourceSync controller holds.
 */
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import {
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  GROUP_VERSION,
  RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
} from "../api/types.ts";
import type { WatchChange, Watches } from "../controller/watches.ts";
import { asSinkerError } from "../errors.ts";
import { reduceApiMessage } from "../kube/api-message.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer, InformerEvent } from "../kube/informer.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import { ControllerRuntime, type Step } from "../runtime/runtime.ts";
import type { Grant } from "./grant.ts";
import { SetCaches } from "./set-caches.ts";
import { SetReconciler } from "./set-reconciler.ts";
import { SetSources } from "./set-sources.ts";

export interface FanoutOptions {
  local: ClusterClient;
  logger: Logger;
  /** The work-queue series of the set controller's queue (`name` = SET_CONTROLLER_NAME). */
  metrics?: Metrics;
  events: EventRecorder;
  /** The ResourceSync controller's cache (children are read from it; its events are passed to onResourceSync). */
  resourceSyncs: Informer;
  resourceSyncResource: ResourceInfo;
  /** Clients of remote clusters whose namespaces ClusterResourceSyncSets select by label. */
  remoteClusters: RemoteClusters;
  informerOptions?: { backoff?: { initialMs: number; maxMs: number } };
  /** Every set is reconciled again after about this long (default 10 min). */
  resyncPeriodMs?: number;
  /** The ResourceSync controller's shared watches: a sourceSelector reads its sources through them. */
  watches: Watches;
  /** Most children one set may create (sources × destinations); default DEFAULT_MAX_CHILDREN_PER_SET. */
  maxChildrenPerSet?: number;
}

/** The set controller's name: the `name` of its work-queue series. */
export const SET_CONTROLLER_NAME = "resourcesyncset";

/** Default of --max-children-per-set. */
export const DEFAULT_MAX_CHILDREN_PER_SET = 1000;

export interface Fanout {
  /** Resolves once both set kinds and the namespaces are cached (grants can be decided). */
  readonly synced: Promise<void>;
  /** What a ClusterResourceSyncSet lets this child do, if it is exactly one the set wants (see children.ts);
   * "undecided" until the caches it is decided against are filled. */
  grant(rs: ResourceSync): Grant | "undecided" | undefined;
  /** Fed by the ResourceSync controller with every ResourceSync event. */
  onResourceSync(event: InformerEvent): void;
  /** Whether a key of the shared watches is one of this controller's (a set's sources), not a ResourceSync. */
  ownsWatchKey(key: string): boolean;
  /** A change (or trouble, recovery: no change) of a set's sources seen by the shared watches. */
  onWatch(key: string, change?: WatchChange): void;
  /** Remote clients this controller watches Namespaces through (not to be closed as unused). */
  clients(): ClusterClient[];
  /** Namespaces of the local cluster (from the cache; Infinity before its first list). */
  namespaceCount(): number;
  stop(): Promise<void>;
}

/**
 * Starts the set controller, or returns undefined when the set CRDs are not installed (a cluster upgraded from
 * the Rust controller's two CRDs keeps working, without fan-out).
 */
export async function startFanout(options: FanoutOptions): Promise<Fanout | undefined> {
  const { local, logger } = options;
  let set: ResourceInfo;
  let clusterSet: ResourceInfo;
  try {
    set = await local.resolve(GROUP_VERSION, RESOURCE_SYNC_SET_KIND);
    clusterSet = await local.resolve(GROUP_VERSION, CLUSTER_RESOURCE_SYNC_SET_KIND);
  } catch (err) {
    if (asSinkerError(err).reason !== "UnknownKind") throw err;
    logger.warn("ResourceSyncSet CRDs not installed: fan-out is off (install them from manifests/crds.yaml)");
    return undefined;
  }
  const resources = {
    set,
    clusterSet,
    namespace: await local.resolve("v1", "Namespace"),
    secret: await local.resolve("v1", "Secret"),
  };
  const log = logger.child({ module: "sinker::fanout" });
  const runtime = new ControllerRuntime({
    name: SET_CONTROLLER_NAME,
    logger: log,
    concurrency: 2,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    // a failed request of the set's own writes (status, children): retried after the key's backoff
    onThrow: (key, err) => {
      const e = asSinkerError(err);
      log.warn({ set: key, reason: e.reason }, reduceApiMessage(e.message));
    },
  });
  const caches = new SetCaches({
    local,
    logger,
    resources,
    remoteClusters: options.remoteClusters,
    watches: options.watches,
    ...(options.informerOptions ? { informerOptions: options.informerOptions } : {}),
    queue: runtime.queue,
  });
  const reconciler = new SetReconciler({
    local,
    log,
    events: options.events,
    resourceSyncs: options.resourceSyncs,
    resourceSyncResource: options.resourceSyncResource,
    resources,
    caches,
    queue: runtime.queue,
    resyncMs: options.resyncPeriodMs ?? 10 * 60_000,
    maxChildren: options.maxChildrenPerSet ?? DEFAULT_MAX_CHILDREN_PER_SET,
  });
  // Grants are decided against the set and namespace caches: with ClusterResourceSyncSets present, no
  // ResourceSync is reconciled before the namespaces are in.
  const synced = caches.start();
  runtime.start(async (key): Promise<Step> => ({ next: await reconciler.reconcile(key) }));

  return {
    synced,
    grant: (rs) => caches.grant(rs),
    onResourceSync: (e) => caches.onResourceSync(e),
    ownsWatchKey: (key) => SetSources.owns(key),
    onWatch: (key, change) => caches.sources.onChange(key, change),
    clients: () => caches.remote.clients(),
    namespaceCount: () => caches.namespaceCount(),
    async stop() {
      await runtime.stop();
      await caches.stop();
    },
  };
}
