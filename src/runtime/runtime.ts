/**
 * One controller runtime for both controllers (the ResourceSync controller and the set controller), in the
 * manner of controller-runtime's reconcileHandler and kube-rs's applier: a work queue, workers that take one key
 * at a time, a reconcile whose result says what comes next (`Next`), the work-queue and controller metrics, and
 * the drain on stop. Each controller is wiring around it: what changes add keys, and what a key's reconcile does.
 *
 * Every request of a reconcile carries the runtime's cancellation (kube/request-signal.ts): after `stop()` no
 * reconcile of this runtime sends anything.
 */
import type { Logger } from "pino";
import type { Metrics, ReconcileResult } from "../admin/metrics.ts";
import { withRequestSignal } from "../kube/request-signal.ts";
import { type BackoffOptions, type QueueObserver, WorkQueue } from "./queue.ts";

/** What happens to a key after its reconcile. */
export type Next =
  /** Done: the backoff is reset and nothing is scheduled (the key's next event brings it back). */
  | { kind: "done" }
  /** Done for now: the backoff is reset and the key comes back after `ms`. */
  | { kind: "requeue-after"; ms: number }
  /** Not done, not failed (e.g. a conflict on our own write): back after `ms`, the backoff kept as it is. */
  | { kind: "retry-after"; ms: number }
  /** Failed: back after the key's own exponential backoff. */
  | { kind: "rate-limited" };

export interface Step {
  next: Next;
  /**
   * The `result` of controller_runtime_reconcile_total (with controller metrics on). Absent: not a reconcile in
   * that series' sense (it sent nothing, e.g. a parked key): neither counted nor timed.
   */
  counted?: ReconcileResult;
}

export interface RuntimeOptions {
  /** The controller's name: `controller` label of the controller series, `name` label of the work-queue series. */
  name: string;
  logger: Logger;
  /** Workers (reconciles at once). */
  concurrency: number;
  /** Called when a reconcile throws (not while stopping); the key is retried after its backoff either way. */
  onThrow?(key: string, err: unknown): void;
  metrics?: Metrics;
  /** Also the controller_runtime_* series (reconciles, errors, time, active workers); else the queue's only. */
  controllerMetrics?: boolean;
  backoff?: Partial<BackoffOptions>;
  /** How long stop() waits for in-flight reconciles to notice the cancellation (default 5 s). */
  drainMs?: number;
}

const DEFAULT_DRAIN_MS = 5_000;

/** `ms` ± 10 %: keys that came in together (a restart, a resync) do not come back together. */
export function jittered(ms: number): number {
  return Math.round(ms * (0.9 + Math.random() * 0.2));
}

export class ControllerRuntime {
  readonly queue: WorkQueue;
  readonly #options: RuntimeOptions;
  readonly #cancel = new AbortController();
  #workers: Promise<void>[] = [];
  #reconcile: (key: string) => Promise<Step> = async () => ({ next: { kind: "done" } });
  #untrack: (() => void) | undefined;

  constructor(options: RuntimeOptions) {
    this.#options = options;
    const { metrics, name } = options;
    this.queue = new WorkQueue({
      ...(metrics ? { observer: queueObserver(metrics, name) } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    if (metrics) {
      metrics.initQueue(name);
      if (options.controllerMetrics)
        metrics.maxConcurrentReconciles.set({ controller: name }, options.concurrency);
    }
  }

  /** Aborted by stop(): every request of every in-flight reconcile is cancelled. */
  get signal(): AbortSignal {
    return this.#cancel.signal;
  }

  /**
   * Starts the workers (keys added before wait for them) with the controller's reconcile of one key. A throw is a
   * bug (or, for a controller that throws its failures, a failure): retried after the key's backoff.
   */
  start(reconcile: (key: string) => Promise<Step>): void {
    this.#reconcile = reconcile;
    this.#untrack = this.#options.metrics?.trackInFlight(this.#options.name, () => this.queue.inFlight());
    this.#workers = Array.from({ length: Math.max(1, this.#options.concurrency) }, () => this.#worker());
  }

  /**
   * Stops taking work and cancels in-flight reconciles, then waits (bounded) for them to end. Resolves whether
   * they all did; the keys of those that did not are logged.
   */
  async stop(): Promise<boolean> {
    if (this.#cancel.signal.aborted) return true;
    // First: no request of this controller may reach a server any more (a new leader may be writing).
    this.#cancel.abort();
    this.#untrack?.();
    this.queue.shutdown();
    const drainMs = this.#options.drainMs ?? DEFAULT_DRAIN_MS;
    const drained = await Promise.race([
      Promise.all(this.#workers).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), drainMs).unref()),
    ]);
    if (!drained)
      this.#options.logger.warn(
        { inFlight: [...this.queue.inFlight().keys()] },
        "abandoning in-flight reconciles",
      );
    return drained;
  }

  async #worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.#process(key);
    }
  }

  async #process(key: string): Promise<void> {
    const { metrics, name: controller, controllerMetrics } = this.#options;
    const counting = controllerMetrics ? metrics : undefined;
    const started = process.hrtime.bigint();
    let timed = true;
    counting?.activeWorkers.inc({ controller });
    try {
      const step = await withRequestSignal(this.#cancel.signal, () => this.#reconcile(key));
      if (this.#cancel.signal.aborted) return;
      this.#apply(key, step.next);
      if (step.counted === undefined) timed = false;
      else counting?.reconcileTotal.inc({ controller, result: step.counted });
      if (step.counted === "error") counting?.reconcileErrors.inc({ controller });
    } catch (err) {
      if (this.#cancel.signal.aborted) return;
      this.queue.addRateLimited(key);
      counting?.reconcileTotal.inc({ controller, result: "error" });
      counting?.reconcileErrors.inc({ controller });
      this.#options.onThrow?.(key, err);
    } finally {
      counting?.activeWorkers.dec({ controller });
      if (timed)
        counting?.reconcileTime.observe({ controller }, Number(process.hrtime.bigint() - started) / 1e9);
      this.queue.done(key);
    }
  }

  #apply(key: string, next: Next): void {
    switch (next.kind) {
      case "done":
        this.queue.forget(key);
        break;
      case "requeue-after":
        this.queue.forget(key);
        this.queue.addAfter(key, next.ms);
        break;
      case "retry-after":
        this.queue.addAfter(key, next.ms);
        break;
      case "rate-limited":
        this.queue.addRateLimited(key);
        break;
    }
  }
}

/** The work-queue series of the queue `name`. */
function queueObserver(metrics: Metrics, name: string): QueueObserver {
  return {
    added: () => {
      metrics.workqueueAdds.inc({ name });
      metrics.eventLoopDelay?.busy();
    },
    retried: () => metrics.workqueueRetries.inc({ name }),
    depth: (n) => metrics.workqueueDepth.set({ name }, n),
    waited: (s) => metrics.workqueueQueueDuration.observe({ name }, s),
    worked: (s) => metrics.workqueueWorkDuration.observe({ name }, s),
  };
}
