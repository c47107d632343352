// Placeholder: the controller manager is being written (issue 4). The interface below is the seam that
// src/cli/run.ts codes against.
import type { Logger } from "pino";
import type { Metrics } from "../admin/metrics.ts";
import type { ClusterClient } from "../kube/client.ts";

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
}

export interface RunningController {
  /** Resolves once the initial list of ResourceSyncs is in the cache (drives /ready). */
  readonly ready: Promise<void>;
  /** False when the controller has silently stopped working (e.g. its ResourceSync watch is dead): drives /live. */
  healthy(): boolean;
  /** Stop taking work, let in-flight reconciles finish (bounded), close every watch. */
  stop(): Promise<void>;
}

/**
 * Checks that ResourceSyncs can be listed (else throws a SinkerError whose message contains
 * "CRD is not queryable ... Is the CRD installed?") and starts the controller.
 */
export declare function startController(options: ControllerOptions): Promise<RunningController>;
