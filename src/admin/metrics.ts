/**
 * Prometheus metrics of one Sinker process, on a registry of its own (never prom-client's global one, so tests
 * can create as many as they like).
 *
 * Controller and work-queue series carry controller-runtime's names, labels and buckets, so dashboards and alerts
 * written for controller-runtime operators work unchanged. Label values:
 * - `controller`: always "resourcesync" (CONTROLLER_NAME in src/controller/controller.ts).
 * - `name` (work queue): the same, "resourcesync"; the set controller's queue is "resourcesyncset" (it has no
 *   controller_runtime_* series).
 * - `result` of controller_runtime_reconcile_total: "success" | "error" | "requeue" | "requeue_after".
 * - `state` of sinker_resourcesyncs: "synced" | "failing".
 * - `cluster`: "local" or the remote cluster's label ("secret/<namespace>/<name>", ClusterClient.name).
 * - `reason`: an ErrorReason of src/errors.ts (a fixed, small set: safe as a label).
 *
 * The constructor is long on purpose: one declarative list of every series (name, help, labels, buckets), the
 * one place to read what Sinker exposes.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { EVENT_LOOP_DELAY_NAMES, EventLoopDelay } from "./event-loop-delay.ts";

/** controller-runtime's buckets for controller_runtime_reconcile_time_seconds. */
export const RECONCILE_TIME_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/** controller-runtime's work-queue buckets: exponential, 10 ns to 1000 s (factor 10, 12 buckets). */
export const WORKQUEUE_DURATION_BUCKETS: readonly number[] = Array.from({ length: 12 }, (_, i) =>
  Number((1e-8 * 10 ** i).toPrecision(1)),
);

/** Buckets of sinker_sync_latency_seconds: from a fast local apply to a slow remote cluster with retries. */
export const SYNC_LATENCY_BUCKETS: readonly number[] = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];

export type ReconcileResult = "success" | "error" | "requeue" | "requeue_after";
export type ResourceSyncState = "synced" | "failing";

/** Start times (ms since the epoch) of the items being processed right now, keyed by item. */
export type InFlightProvider = () => ReadonlyMap<string, number>;

/**
 * prom-client's event-loop delay sampler, never woken: its series are replaced by EventLoopDelay's (sampled only
 * while there is work), but collectDefaultMetrics always starts it (a timer of this period, in ms).
 */
const DORMANT_SAMPLER_MS = 2 ** 31 - 1;

export class Metrics {
  readonly registry: Registry;
  /** The event-loop delay series; absent without the default metrics. `busy()` whenever there is work. */
  readonly eventLoopDelay: EventLoopDelay | undefined;

  // ---------------------------------------------------------------- controller-runtime: controller
  /** controller_runtime_reconcile_total{controller, result}: result is a ReconcileResult. */
  readonly reconcileTotal: Counter<"controller" | "result">;
  /** controller_runtime_reconcile_errors_total{controller}. */
  readonly reconcileErrors: Counter<"controller">;
  /** controller_runtime_reconcile_time_seconds{controller}: wall time of one reconcile. */
  readonly reconcileTime: Histogram<"controller">;
  /** controller_runtime_active_workers{controller}: workers inside a reconcile right now. */
  readonly activeWorkers: Gauge<"controller">;
  /** controller_runtime_max_concurrent_reconciles{controller}: the --concurrency setting. */
  readonly maxConcurrentReconciles: Gauge<"controller">;

  // ---------------------------------------------------------------- controller-runtime: work queue
  /** workqueue_depth{name}: keys waiting (not in flight). */
  readonly workqueueDepth: Gauge<"name">;
  /** workqueue_adds_total{name}. */
  readonly workqueueAdds: Counter<"name">;
  /** workqueue_retries_total{name}: rate-limited re-adds. */
  readonly workqueueRetries: Counter<"name">;
  /** workqueue_queue_duration_seconds{name}: time a key waited before a worker took it. */
  readonly workqueueQueueDuration: Histogram<"name">;
  /** workqueue_work_duration_seconds{name}: time a worker spent on a key. */
  readonly workqueueWorkDuration: Histogram<"name">;
  /** workqueue_unfinished_work_seconds{name}: summed age of the work in flight (computed at scrape time). */
  readonly workqueueUnfinishedWork: Gauge<"name">;
  /** workqueue_longest_running_processor_seconds{name}: age of the oldest work in flight (at scrape time). */
  readonly workqueueLongestRunningProcessor: Gauge<"name">;

  // ---------------------------------------------------------------- Sinker's own
  /** sinker_resourcesyncs{state}: ResourceSyncs by their last outcome, state "synced" | "failing". */
  readonly resourceSyncs: Gauge<"state">;
  /** sinker_sync_latency_seconds: from a watched source (or target) change to the target applied. */
  readonly syncLatency: Histogram;
  /** sinker_watch_connections{cluster}: open watch streams per cluster. */
  readonly watchConnections: Gauge<"cluster">;
  /** sinker_remote_cluster_reachable{cluster}: 1 when the last request to that cluster got an answer, else 0. */
  readonly remoteClusterReachable: Gauge<"cluster">;
  /** sinker_reconcile_errors_by_reason_total{reason}: failed reconciles by ErrorReason. */
  readonly reconcileErrorsByReason: Counter<"reason">;
  /** sinker_max_concurrent_reconciles_per_cluster: the share of the workers one remote API server may hold. */
  readonly maxConcurrentPerCluster: Gauge;
  /** sinker_parked_reconciles_total: reconciles that found their remote cluster's share in use and parked. */
  readonly parkedReconciles: Counter;
  /** sinker_parked_resourcesyncs: ResourceSyncs parked right now, waiting for a slot of a remote cluster. */
  readonly parkedKeys: Gauge;
  /** sinker_contested_resourcesyncs: ResourceSyncs whose target another writer keeps rewriting (contest.ts). */
  readonly contestedResourceSyncs: Gauge;
  /** sinker_drift_repairs_total: applies that undid another writer's change of a target. */
  readonly driftRepairs: Counter;
  /** sinker_leader{identity?}: 1 while this process holds the leader-election Lease (or runs without election). */
  readonly leader: Gauge;
  /** leader_election_master_status{name}: client-go's leader gauge (name = the Lease), only with --leader-elect. */
  readonly leaderElectionMasterStatus: Gauge<"name">;

  readonly #inFlight = new Map<string, InFlightProvider>();

  /**
   * `controller`: the controller / queue name whose series are created at 0 up front (as controller-runtime
   * does), so rates and alerts work before the first reconcile. `defaultMetrics: false` leaves out the process
   * and Node.js runtime metrics.
   */
  constructor(
    options: {
      defaultMetrics?: boolean;
      controller?: string;
      /** Clock for the in-flight gauges, ms since epoch (tests inject a fixed one). */
      now?: () => number;
    } = {},
  ) {
    this.registry = new Registry();
    const clock = options.now ?? Date.now;
    const registers = [this.registry];
    if (options.defaultMetrics !== false) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: DORMANT_SAMPLER_MS });
      for (const name of EVENT_LOOP_DELAY_NAMES) this.registry.removeSingleMetric(name);
      this.eventLoopDelay = new EventLoopDelay(this.registry);
      this.eventLoopDelay.busy(); // starting up is work
    }

    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: [...RECONCILE_TIME_BUCKETS],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers,
    });
    this.maxConcurrentReconciles = new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers,
    });

    this.workqueueDepth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name"],
      registers,
    });
    this.workqueueAdds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name"],
      registers,
    });
    this.workqueueRetries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name"],
      registers,
    });
    this.workqueueQueueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name"],
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    });
    this.workqueueWorkDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name"],
      buckets: [...WORKQUEUE_DURATION_BUCKETS],
      registers,
    });
    const inFlight = this.#inFlight;
    this.workqueueUnfinishedWork = new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help:
        "How many seconds of work has been done that is in progress and hasn't been observed by " +
        "work_duration. Large values indicate stuck threads",
      labelNames: ["name"],
      registers,
      collect() {
        const now = clock();
        for (const [name, provider] of inFlight) {
          let total = 0;
          for (const started of provider().values()) total += Math.max(0, now - started);
          this.set({ name }, total / 1000);
        }
      },
    });
    this.workqueueLongestRunningProcessor = new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running",
      labelNames: ["name"],
      registers,
      collect() {
        const now = clock();
        for (const [name, provider] of inFlight) {
          let longest = 0;
          for (const started of provider().values()) longest = Math.max(longest, now - started);
          this.set({ name }, longest / 1000);
        }
      },
    });

    this.resourceSyncs = new Gauge({
      name: "sinker_resourcesyncs",
      help: 'ResourceSyncs by the outcome of their last reconcile (state "synced" or "failing")',
      labelNames: ["state"],
      registers,
    });
    this.resourceSyncs.set({ state: "synced" }, 0);
    this.resourceSyncs.set({ state: "failing" }, 0);
    this.syncLatency = new Histogram({
      name: "sinker_sync_latency_seconds",
      help: "Seconds from a change of a watched source (or target) to the target applied",
      buckets: [...SYNC_LATENCY_BUCKETS],
      registers,
    });
    this.watchConnections = new Gauge({
      name: "sinker_watch_connections",
      help: "Open watch connections per cluster",
      labelNames: ["cluster"],
      registers,
    });
    this.remoteClusterReachable = new Gauge({
      name: "sinker_remote_cluster_reachable",
      help: "1 when the last request to the cluster got an answer from its API server, 0 when it did not",
      labelNames: ["cluster"],
      registers,
    });
    this.reconcileErrorsByReason = new Counter({
      name: "sinker_reconcile_errors_by_reason_total",
      help: "Failed reconciles by error reason",
      labelNames: ["reason"],
      registers,
    });
    this.maxConcurrentPerCluster = new Gauge({
      name: "sinker_max_concurrent_reconciles_per_cluster",
      help: "Reconciles that may be in flight at once against one remote API server (the per-cluster share)",
      registers,
    });
    this.parkedReconciles = new Counter({
      name: "sinker_parked_reconciles_total",
      help: "Reconciles that found their remote cluster's share of workers in use and were parked (not failures)",
      registers,
    });
    this.parkedKeys = new Gauge({
      name: "sinker_parked_resourcesyncs",
      help: "ResourceSyncs parked right now, waiting for a slot of their remote cluster's share of workers",
      registers,
    });
    this.parkedKeys.set(0);
    this.contestedResourceSyncs = new Gauge({
      name: "sinker_contested_resourcesyncs",
      help: "ResourceSyncs whose target another writer keeps rewriting (Ready=False, reason TargetContested)",
      registers,
    });
    this.contestedResourceSyncs.set(0);
    this.driftRepairs = new Counter({
      name: "sinker_drift_repairs_total",
      help: "Applies that undid another writer's change of a target while its source was unchanged",
      registers,
    });
    this.leader = new Gauge({
      name: "sinker_leader",
      help: "1 while this process is the leader (holds the Lease, or runs without leader election), else 0",
      registers,
    });
    this.leader.set(0);
    this.leaderElectionMasterStatus = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease",
      labelNames: ["name"],
      registers,
    });

    const controller = options.controller ?? "resourcesync";
    for (const result of ["success", "error", "requeue", "requeue_after"] satisfies ReconcileResult[]) {
      this.reconcileTotal.inc({ controller, result }, 0);
    }
    this.reconcileErrors.inc({ controller }, 0);
    this.activeWorkers.set({ controller }, 0);
    this.initQueue(controller);
  }

  /** Creates the series of the work queue `name` at 0 (a second queue's, e.g. the set controller's). */
  initQueue(name: string): void {
    this.workqueueDepth.set({ name }, 0);
    this.workqueueAdds.inc({ name }, 0);
    this.workqueueRetries.inc({ name }, 0);
    this.workqueueUnfinishedWork.set({ name }, 0);
    this.workqueueLongestRunningProcessor.set({ name }, 0);
  }

  /**
   * Feeds workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds for the queue `name`
   * from `provider` (e.g. `() => queue.inFlight()`), read at scrape time. Returns a function that unregisters it.
   */
  trackInFlight(name: string, provider: InFlightProvider): () => void {
    this.#inFlight.set(name, provider);
    return () => {
      if (this.#inFlight.get(name) === provider) {
        this.#inFlight.delete(name);
        this.workqueueUnfinishedWork.set({ name }, 0);
        this.workqueueLongestRunningProcessor.set({ name }, 0);
      }
    };
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
