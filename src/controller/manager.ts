/**
 * The controller manager: wires the ResourceSync informer, the shared watches of sources, targets and kubeconfig
 * Secrets, the work queue and its workers around the reconciler. It owns no sync logic itself.
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
import type { KubeObject } from "../kube/object.ts";
import { RemoteClusters } from "../kube/remote-clusters.ts";
import { withRequestSignal } from "../kube/request-signal.ts";
import { lazyChild } from "../log.ts";
import { ClaimIndex } from "./claims.ts";
import { ClusterShare, defaultClusterShare } from "./cluster-share.ts";
import { watchIdentity } from "./context.ts";
import { DriftState } from "./drift.ts";
import { checkCrd, isEcho, resourceSyncChangeMatters } from "./event-filters.ts";
import { WorkQueue } from "./queue.ts";
import {
  type AppliedMemo,
  outcomeFromStatus,
  type ReconcileContext,
  reconcile,
  writtenSuperseded,
} from "./reconciler.ts";
import { type WatchChange, Watches, type WatchInfo } from "./watches.ts";

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
/** A remote cluster that answered a request this recently counts as reachable, whatever its watches say. */
const REACHABLE_EVIDENCE_MS = 15_000;
/**
 * A key parked on a busy cluster is re-added after this long even when no slot woke it: a safety net only (a
 * freed slot wakes the key parked longest, cluster-share.ts), kept long because each re-add of a key that is
 * still not admitted costs a reconcile's preamble. Jittered, not a failure: no backoff.
 */
const PARKED_RETRY_MS = 10_000;
/** How long stop() waits for in-flight reconciles to notice the cancellation. */
const DRAIN_MS = 5_000;
export const DEFAULT_RESYNC_PERIOD_MS = 10 * 60_000;

/**
 * Checks that ResourceSyncs can be listed (else throws a SinkerError whose message says
 * "CRD is not queryable ... Is the CRD installed?") and starts the controller.
 */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { local, metrics } = options;
  const logger = options.logger;
  const resourceSyncResource = await checkCrd(local);
  const startedAt = Date.now();
  const resyncMs = options.resyncPeriodMs ?? DEFAULT_RESYNC_PERIOD_MS;
  /** Fired by stop(): every request of every in-flight reconcile is aborted (see request-signal.ts). */
  const cancel = new AbortController();

  const queue = new WorkQueue({
    observer: {
      added: () => metrics.workqueueAdds.inc({ name: CONTROLLER_NAME }),
      retried: () => metrics.workqueueRetries.inc({ name: CONTROLLER_NAME }),
      depth: (n) => metrics.workqueueDepth.set({ name: CONTROLLER_NAME }, n),
      waited: (s) => metrics.workqueueQueueDuration.observe({ name: CONTROLLER_NAME }, s),
      worked: (s) => metrics.workqueueWorkDuration.observe({ name: CONTROLLER_NAME }, s),
    },
  });
  const share = new ClusterShare(
    options.maxConcurrentPerCluster ?? defaultClusterShare(options.concurrency),
    (key) => queue.add(key),
  );
  /** When a watched source or target changed, per key, for the source-change → applied latency. */
  const changedAt = new Map<string, number>();
  const applied = new Map<string, AppliedMemo>();
  const drift = new DriftState();
  drift.onContested = (n) => metrics.contestedResourceSyncs.set(n);

  const widening = options.watchWidening ?? { at: 32, minShare: 0.5 };
  let fanout: Fanout | undefined;
  const watches = new Watches({
    logger: logger.child({ module: "sinker::watches" }),
    ...(widening.at > 0
      ? {
          widening: {
            local,
            at: widening.at,
            minShare: widening.minShare,
            namespaceCount: () => fanout?.namespaceCount() ?? Number.POSITIVE_INFINITY,
          },
        }
      : {}),
    ...(options.informerOptions ? { informerOptions: options.informerOptions } : {}),
    onRecovered: (keys) => {
      for (const key of keys)
        if (fanout?.ownsWatchKey(key)) fanout.onWatch(key);
        else queue.add(key);
    },
    onTrouble: (keys) => {
      for (const key of keys)
        if (fanout?.ownsWatchKey(key)) fanout.onWatch(key);
        else queue.add(key);
    },
    onChange: (keys, event) => {
      const now = Date.now();
      for (const key of keys) {
        // a set's sources (sourceSelector) share these watches
        if (fanout?.ownsWatchKey(key)) {
          fanout.onWatch(key, event);
          continue;
        }
        const memo = applied.get(key);
        if (isEcho(memo, event)) continue;
        // a contested repair waits for its timer: the other writer's changes of the target need not wake it
        if (drift.holding(key, now) && memo && isTargetOf(memo, event)) continue;
        if (!changedAt.has(key)) changedAt.set(key, now);
        queue.add(key);
      }
    },
  });

  // The local cluster's identity, once: a remote target reached through an alias of it is the local cluster.
  const identities = new ClusterIdentities();
  const localFacts = await identities.of(local);
  if (!localFacts.kubeSystemUID)
    logger.warn(
      "cannot read namespace kube-system: the local cluster's identity falls back to its CA (see README, cluster identity)",
    );
  const claims = new ClaimIndex(localFacts);
  const resourceSyncs = new Informer({
    client: local,
    resource: resourceSyncResource,
    logger: logger.child({ module: "sinker::informer", resource: "resourcesyncs" }),
    transform: stripForCache,
  });
  /** Our own last write of each ResourceSync until the cache catches up (see ReconcileContext.written). */
  const written = new Map<string, KubeObject>();
  resourceSyncs.onEvent((event) => {
    fanout?.onResourceSync(event);
    const key = keyOf(event.object);
    // Forget our own write as soon as the cache has caught up, not at the next reconcile (10 min later)
    const mine = written.get(key);
    if (mine && writtenSuperseded(mine, event.type === "deleted" ? undefined : event.object))
      written.delete(key);
    if (event.type === "deleted") {
      // a ResourceSync that reported a conflict with this one may take the target over now
      for (const other of claims.remove(key)) queue.add(other);
      setOutcome(key, undefined);
    } else claims.update(event.object);
    if (event.type === "modified" && event.old && !resourceSyncChangeMatters(event.old, event.object)) return;
    queue.add(key);
  });

  const remoteClusters = new RemoteClusters({
    allowUnsafeKubeconfigs: options.allowUnsafeKubeconfigs,
    responseHeadersTimeoutMs: options.responseHeadersTimeoutMs,
    logger: logger.child({ module: "sinker::remote-clusters" }),
    addressPolicy: new AddressPolicy(options.denyRemoteCidrs ?? []),
    ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    identities,
  });
  /** Remote cluster name → when a request to it was last answered (reachability). */
  const lastAnswerAt = new Map<string, number>();
  const ctx: ReconcileContext = {
    local,
    resourceSyncs,
    resourceSyncResource,
    watches,
    remoteClusters,
    events: new ApiEventRecorder(local, logger.child({ module: "sinker::events" }), hostname()),
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
    onClusterOutcome: (client, reachable) => {
      if (client === local) return;
      if (reachable) lastAnswerAt.set(client.name, Date.now());
      metrics.remoteClusterReachable.set({ cluster: client.name }, reachable ? 1 : 0);
    },
  };

  fanout = await startFanout({
    local,
    logger,
    events: ctx.events,
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
  if (fanout) ctx.grant = fanout.grant;

  // The state gauge, kept by counting transitions (never a walk over every ResourceSync).
  const outcomes = new Map<string, boolean>();
  const counts = { synced: 0, failing: 0 };
  function setOutcome(key: string, ok: boolean | undefined) {
    const before = outcomes.get(key);
    if (before === ok) return;
    if (before !== undefined) counts[before ? "synced" : "failing"]--;
    if (ok === undefined) outcomes.delete(key);
    else {
      outcomes.set(key, ok);
      counts[ok ? "synced" : "failing"]++;
    }
    metrics.resourceSyncs.set({ state: "synced" }, counts.synced);
    metrics.resourceSyncs.set({ state: "failing" }, counts.failing);
  }

  const jittered = (ms: number) => Math.round(ms * (0.9 + Math.random() * 0.2));

  let reconcileSeq = 0;
  const reconcilerLog = logger.child({ module: "sinker::reconciler" });
  async function worker(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const reconcileId = (++reconcileSeq).toString(36);
      const [namespace, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      const log = lazyChild(reconcilerLog, () => ({ namespace, name, reconcileId }));
      const started = process.hrtime.bigint();
      const lease = share.lease(key);
      let parked = false;
      const releases: Array<() => void> = [lease.release];
      metrics.activeWorkers.inc({ controller: CONTROLLER_NAME });
      try {
        const result = await withRequestSignal(cancel.signal, () =>
          reconcile(key, {
            ...ctx,
            logger: log,
            hold: (client) => {
              lease.enter(remoteClusters.identities.shareKey(client));
              releases.push(remoteClusters.hold(client));
            },
          }),
        );
        if (cancel.signal.aborted) break;
        switch (result.kind) {
          case "synced":
            queue.forget(key);
            queue.addAfter(key, jittered(resyncMs));
            setOutcome(key, true);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "success" });
            log.debug("synced");
            break;
          case "gone":
            queue.forget(key);
            changedAt.delete(key);
            setOutcome(key, undefined);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "success" });
            log.debug("no longer managed");
            break;
          case "waiting":
            queue.forget(key);
            queue.addAfter(key, result.afterMs);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "requeue_after" });
            break;
          case "contested":
            // the contest's own back-off (contest.ts), not the failure back-off
            queue.forget(key);
            queue.addAfter(key, result.afterMs);
            setOutcome(key, false);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "requeue_after" });
            log.debug({ retryInMs: result.afterMs }, "target contested");
            break;
          case "requeue":
            queue.addAfter(key, result.afterMs);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "requeue_after" });
            break;
          case "busy":
            // Not a failure: no backoff, no status; a freed slot on that server (or the timer) brings it back.
            // Nor a reconcile in controller-runtime's series (it did nothing): counted apart.
            parked = true;
            queue.addAfter(key, jittered(PARKED_RETRY_MS));
            metrics.parkedReconciles.inc();
            log.debug("the remote cluster's share of workers is in use; parked"); // (no URL: Secret data)
            break;
          case "failed": {
            const delay = queue.addRateLimited(key);
            setOutcome(key, false);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "error" });
            metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
            metrics.reconcileErrorsByReason.inc({ reason: result.error.reason });
            log.warn({ reason: result.error.reason, retryInMs: delay }, result.error.message);
            break;
          }
        }
      } catch (err) {
        // reconcile() turns every failure into a result; this is a bug, kept from killing the worker.
        queue.addRateLimited(key);
        metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "error" });
        metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
        log.error({ err }, "reconcile crashed");
      } finally {
        for (const release of releases) release();
        metrics.parkedKeys.set(share.parked);
        metrics.activeWorkers.dec({ controller: CONTROLLER_NAME });
        if (!parked)
          metrics.reconcileTime.observe(
            { controller: CONTROLLER_NAME },
            Number(process.hrtime.bigint() - started) / 1e9,
          );
        queue.done(key);
      }
    }
  }

  const connectionTimer = setInterval(() => {
    metrics.watchConnections.reset();
    for (const [cluster, n] of watches.connections()) metrics.watchConnections.set({ cluster }, n);
    metrics.watchConnections.inc({ cluster: local.name }, resourceSyncs.health().watching ? 1 : 0);
    // Reachability from the remote watches too: one that cannot connect says the cluster is unreachable.
    for (const w of watches.info()) {
      if (w.cluster === local.name) continue;
      if (w.health.watching) metrics.remoteClusterReachable.set({ cluster: w.cluster }, 1);
      else if (
        w.health.consecutiveFailures > 0 &&
        w.health.lastErrorReason === "ClusterUnreachable" &&
        // a request answered meanwhile says more than a watch still waiting out its reconnect backoff
        Date.now() - (lastAnswerAt.get(w.cluster) ?? 0) > REACHABLE_EVIDENCE_MS
      )
        metrics.remoteClusterReachable.set({ cluster: w.cluster }, 0);
    }
    // Clients of rotated or no longer referenced kubeconfigs: close their connections (not while a reconcile
    // holds them); a cluster left without a client loses its series.
    const before = remoteClusters.clusterNames();
    const inUse = watches.clientsInUse();
    for (const c of fanout?.clients() ?? []) inUse.add(c);
    void remoteClusters.prune(inUse).then(() => {
      const after = remoteClusters.clusterNames();
      for (const name of before)
        if (!after.has(name)) {
          metrics.remoteClusterReachable.remove({ cluster: name });
          lastAnswerAt.delete(name);
        }
    });
  }, 5_000);
  connectionTimer.unref();

  metrics.maxConcurrentReconciles.set({ controller: CONTROLLER_NAME }, options.concurrency);
  metrics.maxConcurrentPerCluster.set(share.limit);
  // The series exists from the start (0 until the first refresh), so a dashboard shows no gap after a restart.
  metrics.watchConnections.set({ cluster: local.name }, 0);
  const untrackInFlight = metrics.trackInFlight(CONTROLLER_NAME, () => queue.inFlight());
  resourceSyncs.start();
  const ready = resourceSyncs.synced.then(() => {
    // Status was written by an earlier run: the gauge is right before the first reconcile.
    for (const rs of resourceSyncs.list()) {
      const outcome = outcomeFromStatus(rs);
      if (outcome) setOutcome(keyOf(rs), outcome.ok);
    }
    logger.info({ resourceSyncs: resourceSyncs.list().length }, "initial ResourceSync list received");
  });
  // A child of a ClusterResourceSyncSet is granted its source only against the set and namespace caches; until
  // they are filled its grant is undecided and it waits (fanout.grant), while every other ResourceSync syncs.
  const workers = Array.from({ length: Math.max(1, options.concurrency) }, () => worker());

  let stopped = false;
  return {
    ready,
    watchInfo: () => watches.info(),
    healthy() {
      if (stopped) return true;
      const health = resourceSyncs.health();
      if (health.watching) return true;
      const since = health.lastSyncAt ?? startedAt;
      return Date.now() - since < STALL_AFTER_MS;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // First: no request of this controller may reach a server any more (a new leader may be writing).
      cancel.abort();
      clearInterval(connectionTimer);
      untrackInFlight();
      queue.shutdown();
      const drained = await Promise.race([
        Promise.all(workers).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), DRAIN_MS).unref()),
      ]);
      if (!drained)
        logger.warn({ inFlight: [...queue.inFlight().keys()] }, "abandoning in-flight reconciles");
      await Promise.all([resourceSyncs.stop(), watches.stopAll(), fanout?.stop()]);
      await remoteClusters.closeAll();
      logger.info("controller stopped");
    },
  };
}

/** Whether a watch event is about the object a ResourceSync applied last (its target). */
function isTargetOf(memo: AppliedMemo, event: WatchChange): boolean {
  const meta = event.object.metadata;
  return (
    watchIdentity({
      client: { id: event.clientId },
      resource: event.resource,
      namespace: meta?.namespace,
      name: meta?.name ?? "",
    }) === memo.target
  );
}

function keyOf(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}
