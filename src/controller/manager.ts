/**
 * The controller manager: wires the ResourceSync informer, the shared watches of sources, targets and kubeconfig
 * Secrets, the work queue and its workers around the reconciler. It owns no sync logic itself.
 */
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import { FIELD_MANAGER, FINALIZER, GROUP_VERSION, RESOURCE_SYNC_KIND } from "../api/types.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { ApiEventRecorder } from "../kube/events.ts";
import { Informer } from "../kube/informer.ts";
import { AddressPolicy } from "../kube/kubeconfig-policy.ts";
import type { KubeObject } from "../kube/object.ts";
import { RemoteClusters } from "../kube/remote-clusters.ts";
import { WorkQueue } from "./queue.ts";
import { outcomeFromStatus, type ReconcileContext, reconcile } from "./reconciler.ts";
import { Watches, type WatchInfo } from "./watches.ts";

export const CONTROLLER_NAME = "resourcesync";

export interface ControllerOptions {
  /** Client for the cluster Sinker runs in (impersonation already applied). */
  local: ClusterClient;
  logger: Logger;
  metrics: Metrics;
  /** Reconciles at once (default 8). */
  concurrency: number;
  /** Opt-in: allow ResourceSyncs whose local source or target is a cluster-scoped kind. */
  allowClusterScoped: boolean;
  /** Opt-in: allow kubeconfigs from Secrets that run programs, read files or use proxies. */
  allowUnsafeKubeconfigs: boolean;
  responseHeadersTimeoutMs: number;
  /** Extra CIDR ranges remote cluster servers may not be in (`--deny-remote-cidr`; tenant-proofing hook). */
  denyRemoteCidrs?: string[];
  /** Total deadline of one non-watch request to a remote cluster (`--kube-api-request-timeout`; hook). */
  requestTimeoutMs?: number;
}

export interface RunningController {
  /** Resolves once the initial list of ResourceSyncs is in the cache (drives /ready). */
  readonly ready: Promise<void>;
  /** False when the controller has silently stopped working (e.g. its ResourceSync watch is dead): drives /live. */
  healthy(): boolean;
  /** The shared informers of sources, targets and kubeconfig Secrets (diagnostics, benchmarks). */
  watchInfo(): WatchInfo[];
  /** Stop taking work, let in-flight reconciles finish (bounded), close every watch. */
  stop(): Promise<void>;
}

/** How long the ResourceSync watch may stay broken before /live reports the process as stalled. */
const STALL_AFTER_MS = 5 * 60_000;
/** How long stop() waits for in-flight reconciles before abandoning them. */
const DRAIN_MS = 5_000;

/**
 * Checks that ResourceSyncs can be listed (else throws a SinkerError whose message says
 * "CRD is not queryable ... Is the CRD installed?") and starts the controller.
 */
export async function startController(options: ControllerOptions): Promise<RunningController> {
  const { local, metrics } = options;
  const logger = options.logger;
  const resourceSyncResource = await checkCrd(local);
  const startedAt = Date.now();

  const queue = new WorkQueue({
    observer: {
      added: () => metrics.workqueueAdds.inc({ name: CONTROLLER_NAME }),
      retried: () => metrics.workqueueRetries.inc({ name: CONTROLLER_NAME }),
      depth: (n) => metrics.workqueueDepth.set({ name: CONTROLLER_NAME }, n),
      waited: (s) => metrics.workqueueQueueDuration.observe({ name: CONTROLLER_NAME }, s),
      worked: (s) => metrics.workqueueWorkDuration.observe({ name: CONTROLLER_NAME }, s),
    },
  });
  /** When a watched source or target changed, per key, for the source-change → applied latency. */
  const changedAt = new Map<string, number>();

  const watches = new Watches({
    logger: logger.child({ module: "sinker::watches" }),
    onChange: (keys, event) => {
      if (event.type === "modified" && isOwnWrite(event.object)) return;
      const now = Date.now();
      for (const key of keys) {
        if (!changedAt.has(key)) changedAt.set(key, now);
        queue.add(key);
      }
    },
  });

  const resourceSyncs = new Informer({
    client: local,
    resource: resourceSyncResource,
    logger: logger.child({ module: "sinker::informer", resource: "resourcesyncs" }),
  });
  resourceSyncs.onEvent((event) => {
    const key = keyOf(event.object);
    if (event.type === "modified" && event.old && !resourceSyncChangeMatters(event.old, event.object)) return;
    queue.add(key);
  });

  const ctx: ReconcileContext = {
    local,
    resourceSyncs,
    resourceSyncResource,
    watches,
    remoteClusters: new RemoteClusters({
      allowUnsafeKubeconfigs: options.allowUnsafeKubeconfigs,
      responseHeadersTimeoutMs: options.responseHeadersTimeoutMs,
      logger: logger.child({ module: "sinker::remote-clusters" }),
      addressPolicy: new AddressPolicy(options.denyRemoteCidrs ?? []),
      ...(options.requestTimeoutMs ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
    }),
    events: new ApiEventRecorder(local, logger.child({ module: "sinker::events" }), hostname()),
    options: { allowClusterScoped: options.allowClusterScoped },
    logger,
    lastOutcome: new Map(),
    watchRefs: new Map(),
    lastTargets: new Map(),
    onApplied: (key) => {
      const since = changedAt.get(key);
      changedAt.delete(key);
      if (since !== undefined) metrics.syncLatency.observe((Date.now() - since) / 1000);
    },
    onClusterReachability: (cluster, reachable) =>
      metrics.remoteClusterReachable.set({ cluster }, reachable ? 1 : 0),
  };

  function updateStateGauge() {
    let synced = 0;
    let failing = 0;
    for (const outcome of ctx.lastOutcome.values()) outcome.ok ? synced++ : failing++;
    metrics.resourceSyncs.set({ state: "synced" }, synced);
    metrics.resourceSyncs.set({ state: "failing" }, failing);
  }

  let reconcileSeq = 0;
  async function worker(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const reconcileId = (++reconcileSeq).toString(36);
      const [namespace, name] = [key.slice(0, key.indexOf("/")), key.slice(key.indexOf("/") + 1)];
      const log = logger.child({ module: "sinker::reconciler", namespace, name, reconcileId });
      const started = process.hrtime.bigint();
      metrics.activeWorkers.inc({ controller: CONTROLLER_NAME });
      try {
        const result = await reconcile(key, { ...ctx, logger: log });
        switch (result.kind) {
          case "synced":
            queue.forget(key);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "success" });
            log.debug("synced");
            break;
          case "gone":
            queue.forget(key);
            changedAt.delete(key);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "success" });
            log.debug("no longer managed");
            break;
          case "requeue":
            queue.addAfter(key, result.afterMs);
            metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: "requeue_after" });
            break;
          case "failed": {
            const delay = queue.addRateLimited(key);
            // Also failures while deleting, which write no status.
            ctx.lastOutcome.set(key, { ok: false, reason: result.error.reason });
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
        metrics.activeWorkers.dec({ controller: CONTROLLER_NAME });
        metrics.reconcileTime.observe(
          { controller: CONTROLLER_NAME },
          Number(process.hrtime.bigint() - started) / 1e9,
        );
        updateStateGauge();
        queue.done(key);
      }
    }
  }

  const connectionTimer = setInterval(() => {
    metrics.watchConnections.reset();
    for (const [cluster, n] of watches.connections()) metrics.watchConnections.set({ cluster }, n);
    metrics.watchConnections.inc({ cluster: local.name }, resourceSyncs.health().watching ? 1 : 0);
    // Clients of rotated or no longer referenced kubeconfigs: close their connections.
    // The clients kept for deleting targets whose kubeconfig Secret is gone count as in use too.
    const inUse = watches.clientsInUse();
    for (const target of ctx.lastTargets.values()) inUse.add(target.client);
    void ctx.remoteClusters.prune(inUse);
  }, 5_000);
  connectionTimer.unref();

  metrics.maxConcurrentReconciles.set({ controller: CONTROLLER_NAME }, options.concurrency);
  const untrackInFlight = metrics.trackInFlight(CONTROLLER_NAME, () => queue.inFlight());
  resourceSyncs.start();
  const ready = resourceSyncs.synced.then(() => {
    // Status was written by an earlier run: seed the outcomes so the gauge is right before the first reconcile.
    for (const rs of resourceSyncs.list()) {
      const outcome = outcomeFromStatus(rs);
      if (outcome) ctx.lastOutcome.set(keyOf(rs), outcome);
    }
    updateStateGauge();
    logger.info({ resourceSyncs: resourceSyncs.list().length }, "initial ResourceSync list received");
  });
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
      clearInterval(connectionTimer);
      untrackInFlight();
      queue.shutdown();
      const drained = await Promise.race([
        Promise.all(workers).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), DRAIN_MS).unref()),
      ]);
      if (!drained)
        logger.warn({ inFlight: [...queue.inFlight().keys()] }, "abandoning in-flight reconciles");
      await Promise.all([resourceSyncs.stop(), watches.stopAll()]);
      await ctx.remoteClusters.closeAll();
      logger.info("controller stopped");
    },
  };
}

/** Resolves the ResourceSync resource and lists it once, to fail early when the CRD is missing. */
async function checkCrd(local: ClusterClient): Promise<ResourceInfo> {
  try {
    const resource = await local.resolve(GROUP_VERSION, RESOURCE_SYNC_KIND);
    await local.list(resource, undefined, { limit: 1 });
    return resource;
  } catch (err) {
    const error = asSinkerError(err);
    throw new SinkerError(
      error.reason,
      `CRD is not queryable (${GROUP_VERSION} ${RESOURCE_SYNC_KIND}): ${error.message}. Is the CRD installed?`,
      { cause: err },
    );
  }
}

function keyOf(object: KubeObject): string {
  return `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
}

/**
 * Whether the newest managedFields entry is Sinker's own apply: such a change is the echo of our own write and
 * is not chased. Only a strictly newest entry counts, so a change by someone else in the same second still
 * triggers a (harmless, idempotent) reconcile.
 */
export function isOwnWrite(object: KubeObject): boolean {
  const entries = object.metadata?.managedFields ?? [];
  let newest: { time: string; ours: boolean } | undefined;
  for (const entry of entries) {
    if (entry.subresource) continue;
    const time = entry.time ?? "";
    const ours = entry.manager === FIELD_MANAGER && entry.operation === "Apply";
    if (!newest || time > newest.time) newest = { time, ours };
    else if (time === newest.time && !ours) newest = { time, ours: false };
  }
  return newest?.ours ?? false;
}

/**
 * A ResourceSync change is worth a reconcile when its spec (generation), annotations or deletion changed, or
 * when someone removed Sinker's finalizer (it is put back). Status writes and our own finalizer add are not.
 */
export function resourceSyncChangeMatters(old: KubeObject, next: KubeObject): boolean {
  const a = old.metadata ?? {};
  const b = next.metadata ?? {};
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {}) ||
    (Boolean(a.finalizers?.includes(FINALIZER)) && !b.finalizers?.includes(FINALIZER))
  );
}
