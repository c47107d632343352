/**
 * The ResourceSync controller: wires the ResourceSync informer, the shared watches of sources, targets and
 * kubeconfig Secrets and the runtime (work queue, workers) around the reconciler, and starts the set controller
 * beside it on the same caches. It owns no sync logic itself. (The process's manager, admin server, leader
 * election and signals, is cli/run.ts.)
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import { type Fanout, startFanout } from "../fanout/controller.ts";
import type { ClusterClient } from "../kube/client.ts";
import { ClusterIdentities } from "../kube/cluster-identity.ts";
import { ApiEventRecorder } from "../kube/events.ts";
import { Informer, stripForCache } from "../kube/informer.ts";
import { AddressPolicy } from "../kube/kubeconfig-policy.ts";
import { keyOf, parseKey } from "../kube/object.ts";
import { RemoteClusters } from "../kube/remote-clusters.ts";
import { ControllerRuntime, type Step } from "../runtime/runtime.ts";
import { ClaimIndex } from "./claims.ts";
import { ClusterHealth } from "./cluster-health.ts";
import { ClusterShare, defaultClusterShare } from "./cluster-share.ts";
import { DriftState } from "./drift.ts";
import { checkCrd, resourceSyncChangeMatters } from "./event-filters.ts";
import { stepOf } from "./next-step.ts";
import { OutcomeGauge } from "./outcome-gauge.ts";
import { OwnWrites } from "./own-writes.ts";
import { type AppliedMemo, outcomeFromStatus, type ReconcileContext, reconcile } from "./reconciler.ts";
import { watchRouting } from "./watch-routing.ts";
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
  const startedAt = Date.now();
  const resyncMs = options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;

  const runtime: ControllerRuntime = new ControllerRuntime({
    name: CONTROLLER_NAME,
    logger,
    concurrency: options.concurrency,
    metrics,
    controllerMetrics: true,
    reconcile: (key) => reconcileKey(key),
  });
  const queue = runtime.queue;
  const share = new ClusterShare(
    options.maxConcurrentPerCluster ?? defaultClusterShare(options.concurrency),
    (key) => queue.add(key),
  );
  /** When a watched source or target changed, per key, for the source-change → applied latency. */
  const changedAt = new Map<string, number>();
  const applied = new Map<string, AppliedMemo>();
  const drift = new DriftState();
  drift.onContested = (n) => metrics.contestedResourceSyncs.set(n);
  const gauge = new OutcomeGauge(metrics);
  const health = new ClusterHealth(metrics, local);

  let fanout: Fanout | undefined;
  const watches = newWatches(options, {
    namespaceCount: () => fanout?.namespaceCount() ?? Number.POSITIVE_INFINITY,
    ...watchRouting({ queue, applied, drift, changedAt, fanout: () => fanout }),
  });

  // The local cluster's identity, once: a remote target reached through an alias of it is the local cluster.
  const identities = new ClusterIdentities();
  const localFacts = await identities.of(local);
  if (!localFacts.kubeSystemUID)
    logger.warn(
      "cannot read namespace kube-system: the local cluster's identity falls back to its CA (see README, cluster identity)",
    );
  const claims = new ClaimIndex(localFacts);
  const written = new OwnWrites();
  const resourceSyncs = new Informer({
    client: local,
    resource: resourceSyncResource,
    logger: logger.child({ module: "sinker::informer", resource: "resourcesyncs" }),
    transform: stripForCache,
  });
  resourceSyncs.onEvent((event) => {
    fanout?.onResourceSync(event);
    const key = keyOf(event.object);
    written.observed(key, event.type === "deleted" ? undefined : event.object);
    if (event.type === "deleted") {
      // a ResourceSync that reported a conflict with this one may take the target over now
      for (const other of claims.remove(key)) queue.add(other);
      gauge.set(key, undefined);
    } else claims.update(event.object);
    if (event.type === "modified" && event.old && !resourceSyncChangeMatters(event.old, event.object)) return;
    queue.add(key);
  });

  const remoteClusters = newRemoteClusters(options, identities);
  const events = new ApiEventRecorder(local, logger.child({ module: "sinker::events" }), hostname());
  fanout = await startFanout({
    local,
    logger,
    metrics,
    events,
    resourceSyncs,
    resourceSyncResource,
    remoteClusters,
    ...(options.informerOptions?.backoff
      ? { informerOptions: { backoff: options.informerOptions.backoff } }
      : {}),
    resyncPeriodMs: resyncMs,
    watches,
    ...(options.maxChildrenPerSet !== undefined ? { maxChildrenPerSet: options.maxChildrenPerSet } : {}),
  });
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
    pending: (key) => queue.pending(key),
    onRepair: () => metrics.driftRepairs.inc(),
    onApplied: (key) => {
      const since = changedAt.get(key);
      changedAt.delete(key);
      if (since !== undefined) metrics.syncLatency.observe((Date.now() - since) / 1000);
    },
    onClusterOutcome: (client, reachable) => health.outcome(client, reachable),
    ...(fanout ? { grant: fanout.grant } : {}),
  };

  const stepDeps = {
    metrics,
    gauge,
    changedAt,
    resyncMs,
    nextBackoff: (key: string) => queue.nextBackoff(key),
  };
  let reconcileSeq = 0;
  /** One reconcile of `key` inside its share of the remote clusters' workers; its result → what comes next. */
  async function reconcileKey(key: string): Promise<Step> {
    const reconcileId = (++reconcileSeq).toString(36);
    const { namespace, name } = parseKey(key);
    const log = logger.child({ module: "sinker::reconciler", namespace, name, reconcileId });
    const lease = share.lease(key);
    const releases: Array<() => void> = [lease.release];
    try {
      const result = await reconcile(key, {
        ...ctx,
        logger: log,
        hold: (client) => {
          lease.enter(remoteClusters.identities.shareKey(client));
          releases.push(remoteClusters.hold(client));
        },
      });
      if (runtime.signal.aborted) return { next: { kind: "done" } }; // stopping: nothing more of this key
      return stepOf(key, result, log, stepDeps);
    } catch (err) {
      // reconcile() turns every failure into a result; this is a bug, kept from killing the worker.
      log.error({ err }, "reconcile crashed");
      return { next: { kind: "rate-limited" }, counted: "error" };
    } finally {
      for (const release of releases) release();
      metrics.parkedKeys.set(share.parked);
    }
  }

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
  runtime.start();

  let stopped = false;
  return {
    ready,
    watchInfo: () => watches.info(),
    healthy() {
      if (stopped) return true;
      const h = resourceSyncs.health();
      if (h.watching) return true;
      return Date.now() - (h.lastSyncAt ?? startedAt) < STALL_AFTER_MS;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // First: no request of this controller may reach a server any more (a new leader may be writing).
      const draining = runtime.stop();
      health.stop();
      await draining;
      await Promise.all([resourceSyncs.stop(), watches.stopAll(), fanout?.stop()]);
      await remoteClusters.closeAll();
      logger.info("controller stopped");
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
