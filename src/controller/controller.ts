/**
 * The ResourceSync controller: wires the ResourceSync informer, the shared watches of sources, targets and
 * kubeconfig Secrets and the runtime (work queue, workers) around the reconciler, and starts the set controller
 * beside it on the same caches. It owns no sync logic itself. (The process's manager, admin server, leader
 * election and signals, is cli/run.ts.)
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import { type Fanout, type FanoutOptions, startFanout } from "../fanout/controller.ts";
import type { ClusterClient } from "../kube/client.ts";
import { type ClusterFacts, ClusterIdentities } from "../kube/cluster-identity.ts";
import { ApiEventRecorder } from "../kube/events.ts";
import { Informer, stripForCache } from "../kube/informer.ts";
import { AddressPolicy } from "../kube/kubeconfig-policy.ts";
import { keyOf } from "../kube/object.ts";
import { RemoteClusters } from "../kube/remote-clusters.ts";
import type { WorkQueue } from "../runtime/queue.ts";
import { ControllerRuntime } from "../runtime/runtime.ts";
import { AppliedMemos } from "./applied.ts";
import { ClaimIndex } from "./claims.ts";
import { ClusterHealth } from "./cluster-health.ts";
import { ClusterShare, defaultClusterShare } from "./cluster-share.ts";
import { DriftState } from "./drift.ts";
import { checkCrd } from "./event-filters.ts";
import { keyReconciler } from "./next-step.ts";
import { OutcomeGauge } from "./outcome-gauge.ts";
import { OwnWrites } from "./own-writes.ts";
import { outcomeFromStatus, type ReconcileContext } from "./reconciler.ts";
import { resourceSyncRouting, watchRouting } from "./routing.ts";
import { Watches, type WatchInfo } from "./watches.ts";

export { checkCrd, isEcho, resourceSyncChangeMatters } from "./event-filters.ts";

export const CONTROLLER_NAME = "resourcesync";

export interface ControllerOptions {
  /** Client for the cluster Sinker runs in (impersonation already applied). */
  local: ClusterClient;
  logger: Logger;
  metrics: Metrics;
  /** Reconciles at once (default 8). */
  concurrency: number;
  /**
   * Reconciles in flight at once against one remote API server (`--max-concurrent-reconciles-per-cluster`);
   * default `defaultClusterShare(concurrency)`, half the workers. The local cluster is not limited.
   */
  maxConcurrentPerCluster?: number;
  /** Most children one ResourceSyncSet or ClusterResourceSyncSet may create (--max-children-per-set). */
  maxChildrenPerSet?: number;
  /** Opt-in: allow ResourceSyncs whose local source or target is a cluster-scoped kind. */
  allowClusterScoped: boolean;
  /** Opt-in: allow kubeconfigs from Secrets that run programs, read files or use proxies. */
  allowUnsafeKubeconfigs: boolean;
  responseHeadersTimeoutMs: number;
  /** Extra CIDR ranges remote cluster servers may not be in (`--deny-remote-cidr`; tenant-proofing hook). */
  denyRemoteCidrs?: string[];
  /** Total deadline of one non-watch request to a remote cluster (`--kube-api-request-timeout`; hook). */
  requestTimeoutMs?: number;
  /**
   * Every synced ResourceSync is reconciled again after about this long (±10 % jitter), repairing what a missed
   * event would leave; a resync costs no request while the cached target matches what was applied. Default 10 min.
   */
  resyncPeriodMs?: number;
  /**
   * Widening of local watches (see Watches): at least `at` namespaces and `minShare` of all namespaces in use by
   * one kind → one cluster-wide watch of it. Default 32 and 0.5; `at: 0` turns it off.
   */
  watchWidening?: { at: number; minShare: number };
  /** Informer tuning (tests shorten backoff). */
  informerOptions?: ConstructorParameters<typeof Watches>[0]["informerOptions"];
}

export interface RunningController {
  /** Resolves once the initial list of ResourceSyncs is in the cache (drives /ready). */
  readonly ready: Promise<void>;
  /** False when the controller has silently stopped working (e.g. its ResourceSync watch is dead): drives /live. */
  healthy(): boolean;
  /** The shared informers of sources, targets and kubeconfig Secrets (diagnostics, benchmarks). */
  watchInfo(): WatchInfo[];
  /**
   * Stop taking work, cancel in-flight reconciles (their requests are aborted), close every watch. Called when
   * the process stops and when leadership is lost: after it returns, this controller sends no request.
   */
  stop(): Promise<void>;
}

/** How long the ResourceSync watch may stay broken before /live reports the process as stalled. */
const STALL_AFTER_MS = 5 * 60_000;
export const DEFAULT_RESYNC_PERIOD_MS = 10 * 60_000;

/**
 * Checks that ResourceSyncs can be listed (else throws a SinkerError whose message says
 * "CRD is not queryable ... Is the CRD installed?") and starts the controller.
 */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { local, metrics, logger } = options;
  const resourceSyncResource = await checkCrd(local);
  const resyncMs = options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;
  const runtime = new ControllerRuntime({
    name: CONTROLLER_NAME,
    logger,
    concurrency: options.concurrency,
    metrics,
    controllerMetrics: true,
  });
  const queue = runtime.queue;
  const share = new ClusterShare(
    options.maxConcurrentPerCluster ?? defaultClusterShare(options.concurrency),
    (key) => queue.add(key),
  );
  /** When a watched source or target changed, per key, for the source-change → applied latency. */
  const changedAt = new Map<string, number>();
  const applied = new AppliedMemos();
  const drift = new DriftState();
  drift.onContested = (n) => metrics.contestedResourceSyncs.set(n);
  const gauge = new OutcomeGauge(metrics);
  const health = new ClusterHealth(metrics, local);

  // The set controller starts last (it reads the caches below); events before route to the ResourceSyncs only.
  let fanout: Fanout | undefined;
  const watches = newWatches(options, {
    namespaceCount: () => fanout?.namespaceCount() ?? Number.POSITIVE_INFINITY,
    ...watchRouting({ queue, applied, drift, changedAt, fanout: () => fanout }),
  });
  const identities = new ClusterIdentities();
  const remoteClusters = newRemoteClusters(options, identities);
  const claims = new ClaimIndex(await localFacts(identities, options), (ref) => {
    const reached = remoteClusters.lastClusterFor(ref.namespace, ref.name, ref.key);
    return reached ? identities.known(reached.client) : undefined;
  });
  const written = new OwnWrites();
  const resourceSyncs = new Informer({
    client: local,
    resource: resourceSyncResource,
    logger: logger.child({ module: "sinker::informer", resource: "resourcesyncs" }),
    transform: stripForCache,
  });
  resourceSyncs.onEvent(
    resourceSyncRouting({
      queue,
      written,
      claims,
      gauge,
      fanout: () => fanout,
      remembers: (key) => applied.has(key) || watches.hasRefs(key),
    }),
  );
  const events = new ApiEventRecorder(local, logger.child({ module: "sinker::events" }), hostname());
  fanout = await startSets(options, { events, resourceSyncs, resourceSyncResource, remoteClusters, watches });

  const ctx: ReconcileContext = {
    local,
    resourceSyncs,
    resourceSyncResource,
    watches,
    remoteClusters,
    events,
    options: { allowClusterScoped: options.allowClusterScoped },
    logger,
    written,
    claims,
    applied,
    drift,
    ...reconcileHooks(queue, metrics, changedAt, health),
    ...(fanout ? { grant: fanout.grant } : {}),
  };

  health.start({ resourceSyncs, watches, remoteClusters, moreClients: () => fanout?.clients() ?? [] });
  metrics.maxConcurrentPerCluster.set(share.limit);
  resourceSyncs.start();
  const ready = resourceSyncs.synced.then(() => {
    // Status was written by an earlier run: the gauge is right before the first reconcile.
    for (const rs of resourceSyncs.list()) {
      const outcome = outcomeFromStatus(rs);
      if (outcome) gauge.set(keyOf(rs), outcome.ok);
    }
    logger.info({ resourceSyncs: resourceSyncs.list().length }, "initial ResourceSync list received");
  });
  // A child of a ClusterResourceSyncSet is granted its source only against the set and namespace caches; until
  // they are filled its grant is undecided and it waits (fanout.grant), while every other ResourceSync syncs.
  const nextBackoff = (key: string) => queue.nextBackoff(key);
  runtime.start(
    keyReconciler({ ctx, share, signal: runtime.signal, metrics, gauge, changedAt, resyncMs, nextBackoff }),
  );
  return running({ ready, runtime, health, resourceSyncs, watches, remoteClusters, fanout, logger });
}

/** What a reconcile tells the controller: queue state, repairs, applies (sync latency), cluster outcomes. */
function reconcileHooks(
  queue: WorkQueue,
  metrics: Metrics,
  changedAt: Map<string, number>,
  health: ClusterHealth,
): Pick<ReconcileContext, "pending" | "onRepair" | "onApplied" | "onClusterOutcome"> {
  return {
    pending: (key) => queue.pending(key),
    onRepair: () => metrics.driftRepairs.inc(),
    onApplied: (key) => {
      const since = changedAt.get(key);
      changedAt.delete(key);
      if (since !== undefined) metrics.syncLatency.observe((Date.now() - since) / 1000);
    },
    onClusterOutcome: (client, reachable) => health.outcome(client, reachable),
  };
}

/** The local cluster's identity, once: a remote target reached through an alias of it is the local cluster. */
async function localFacts(identities: ClusterIdentities, options: ControllerOptions): Promise<ClusterFacts> {
  const facts = await identities.of(options.local);
  if (!facts.kubeSystemUID)
    options.logger.warn(
      "cannot read namespace kube-system: the local cluster's identity falls back to its CA (see docs/security.md, cluster identity)",
    );
  return facts;
}

/** Starts the set controller on the ResourceSync controller's caches (undefined: its CRDs are not installed). */
function startSets(
  options: ControllerOptions,
  shared: Pick<
    FanoutOptions,
    "events" | "resourceSyncs" | "resourceSyncResource" | "remoteClusters" | "watches"
  >,
): Promise<Fanout | undefined> {
  return startFanout({
    local: options.local,
    logger: options.logger,
    metrics: options.metrics,
    ...shared,
    ...(options.informerOptions?.backoff
      ? { informerOptions: { backoff: options.informerOptions.backoff } }
      : {}),
    resyncPeriodMs: options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS,
    ...(options.maxChildrenPerSet !== undefined ? { maxChildrenPerSet: options.maxChildrenPerSet } : {}),
  });
}

/** The running controller: health for /live, and the stop that drains, then closes every watch and client. */
function running(p: {
  ready: Promise<void>;
  runtime: ControllerRuntime;
  health: ClusterHealth;
  resourceSyncs: Informer;
  watches: Watches;
  remoteClusters: RemoteClusters;
  fanout: Fanout | undefined;
  logger: Logger;
}): RunningController {
  const startedAt = Date.now();
  let stopped = false;
  return {
    ready: p.ready,
    watchInfo: () => p.watches.info(),
    healthy() {
      if (stopped) return true;
      const h = p.resourceSyncs.health();
      if (h.watching) return true;
      return Date.now() - (h.lastSyncAt ?? startedAt) < STALL_AFTER_MS;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // First: no request of this controller may reach a server any more (a new leader may be writing).
      const draining = p.runtime.stop();
      p.health.stop();
      await draining;
      await Promise.all([p.resourceSyncs.stop(), p.watches.stopAll(), p.fanout?.stop()]);
      await p.remoteClusters.closeAll();
      p.logger.info("controller stopped");
    },
  };
}

/** The shared watches of sources, targets and kubeconfig Secrets, widened as the options say. */
function newWatches(
  options: ControllerOptions,
  hooks: Pick<ConstructorParameters<typeof Watches>[0], "onRecovered" | "onTrouble" | "onChange"> & {
    namespaceCount: () => number;
  },
): Watches {
  const widening = options.watchWidening ?? { at: 32, minShare: 0.5 };
  const { namespaceCount, ...callbacks } = hooks;
  return new Watches({
    logger: options.logger.child({ module: "sinker::watches" }),
    ...(widening.at > 0
      ? { widening: { local: options.local, at: widening.at, minShare: widening.minShare, namespaceCount } }
      : {}),
    ...(options.informerOptions ? { informerOptions: options.informerOptions } : {}),
    ...callbacks,
  });
}

/** The clients of remote clusters, built from kubeconfig Secrets under the address policy. */
function newRemoteClusters(options: ControllerOptions, identities: ClusterIdentities): RemoteClusters {
  return new RemoteClusters({
    allowUnsafeKubeconfigs: options.allowUnsafeKubeconfigs,
    responseHeadersTimeoutMs: options.responseHeadersTimeoutMs,
    logger: options.logger.child({ module: "sinker::remote-clusters" }),
    addressPolicy: new AddressPolicy(options.denyRemoteCidrs ?? []),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    identities,
  });
}
