/**
 * The ResourceSync controller's side of the runtime: one reconcile of a key (inside its share of a remote
 * cluster's workers), and what its result means for the key (the runtime's `Next` and the reconcile counter's
 * result), the state gauge, the metrics and the log.
 */
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import { parseKey } from "../kube/object.ts";
import { lazyChild } from "../log.ts";
import { jittered, type Step } from "../runtime/runtime.ts";
import type { ClusterShare } from "./cluster-share.ts";
import type { ReconcileContext } from "./context.ts";
import type { OutcomeGauge } from "./outcome-gauge.ts";
import { reconcile } from "./reconciler.ts";
import type { ReconcileResult } from "./result.ts";

/**
 * A key parked on a busy cluster is re-added after this long even when no slot woke it: a safety net only (a
 * freed slot wakes the key parked longest, cluster-share.ts), kept long because each re-add of a key that is
 * still not admitted costs a reconcile's preamble. Jittered, not a failure: no backoff.
 */
const PARKED_RETRY_MS = 10_000;

export interface StepDeps {
  metrics: Metrics;
  gauge: OutcomeGauge;
  /** When a watched source or target changed, per key (forgotten with the key). */
  changedAt: Map<string, number>;
  resyncMs: number;
  /** The delay of the key's next rate-limited retry (for the log). */
  nextBackoff(key: string): number;
}

export function stepOf(key: string, result: ReconcileResult, log: Logger, d: StepDeps): Step {
  switch (result.kind) {
    case "synced":
      d.gauge.set(key, true);
      log.debug("synced");
      return { next: { kind: "requeue-after", ms: jittered(d.resyncMs) }, counted: "success" };
    case "gone":
      d.changedAt.delete(key);
      d.gauge.set(key, undefined);
      log.debug("no longer managed");
      return { next: { kind: "done" }, counted: "success" };
    case "waiting":
      return { next: { kind: "requeue-after", ms: result.afterMs }, counted: "requeue_after" };
    case "contested":
      // the contest's own back-off (contest.ts), not the failure back-off
      d.gauge.set(key, false);
      log.debug({ retryInMs: result.afterMs }, "target contested");
      return { next: { kind: "requeue-after", ms: result.afterMs }, counted: "requeue_after" };
    case "requeue":
      return { next: { kind: "retry-after", ms: result.afterMs }, counted: "requeue_after" };
    case "busy":
      // Not a failure: no backoff, no status; a freed slot on that server (or the timer) brings it back.
      // Nor a reconcile in controller-runtime's series (it did nothing): counted apart.
      d.metrics.parkedReconciles.inc();
      log.debug("the remote cluster's share of workers is in use; parked"); // (no URL: Secret data)
      return { next: { kind: "retry-after", ms: jittered(PARKED_RETRY_MS) } };
    case "failed":
      d.gauge.set(key, false);
      d.metrics.reconcileErrorsByReason.inc({ reason: result.error.reason });
      log.warn({ reason: result.error.reason, retryInMs: d.nextBackoff(key) }, result.error.message);
      return { next: { kind: "rate-limited" }, counted: "error" };
  }
}

export interface KeyReconcilerDeps extends StepDeps {
  ctx: ReconcileContext;
  share: ClusterShare;
  /** Aborted when the controller stops. */
  signal: AbortSignal;
}

/** The runtime's reconcile: one reconcile of a key inside its share of the remote clusters' workers → its Step. */
export function keyReconciler(d: KeyReconcilerDeps): (key: string) => Promise<Step> {
  const { ctx, share } = d;
  let reconcileSeq = 0;
  const reconcilerLog = ctx.logger.child({ module: "sinker::reconciler" });
  return async (key) => {
    const reconcileId = (++reconcileSeq).toString(36);
    const { namespace, name } = parseKey(key);
    // made only when a line is logged at an enabled level (most reconciles log nothing)
    const log = lazyChild(reconcilerLog, () => ({ namespace, name, reconcileId }));
    const lease = share.lease(key);
    const releases: Array<() => void> = [lease.release];
    try {
      const result = await reconcile(key, {
        ...ctx,
        logger: log,
        hold: (client) => {
          lease.enter(ctx.remoteClusters.identities.shareKey(client));
          releases.push(ctx.remoteClusters.hold(client));
        },
      });
      if (d.signal.aborted) return { next: { kind: "done" } }; // stopping: nothing more of this key
      return stepOf(key, result, log, d);
    } catch (err) {
      // reconcile() turns every failure into a result; this is a bug, kept from killing the worker.
      log.error({ err }, "reconcile crashed");
      return { next: { kind: "rate-limited" }, counted: "error" };
    } finally {
      for (const release of releases) release();
      d.metrics.parkedKeys.set(share.parked);
    }
  };
}
