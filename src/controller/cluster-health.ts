/**
 * Every 5 s: the watch-connection gauge, the reachability of remote clusters as their watches see it, and the
 * pruning of clients of rotated or no longer referenced kubeconfigs.
 */
import type { Metrics } from "../admin/metrics.ts";
import type { ClusterClient } from "../kube/client.ts";
import type { Informer } from "../kube/informer.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import type { Watches } from "./watches.ts";

/** A remote cluster that answered a request this recently counts as reachable, whatever its watches say. */
const REACHABLE_EVIDENCE_MS = 15_000;
const REFRESH_MS = 5_000;

export class ClusterHealth {
  /** Remote cluster name → when a request to it was last answered. */
  readonly #lastAnswerAt = new Map<string, number>();
  readonly #metrics: Metrics;
  readonly #local: ClusterClient;
  #timer: NodeJS.Timeout | undefined;

  constructor(metrics: Metrics, local: ClusterClient) {
    this.#metrics = metrics;
    this.#local = local;
    // The series exists from the start (0 until the first refresh), so a dashboard shows no gap after a restart.
    metrics.watchConnections.set({ cluster: local.name }, 0);
  }

  /** The outcome of a request to a cluster (ReconcileContext.onClusterOutcome). */
  outcome(client: ClusterClient, reachable: boolean): void {
    if (client === this.#local) return;
    if (reachable) this.#lastAnswerAt.set(client.name, Date.now());
    this.#metrics.remoteClusterReachable.set({ cluster: client.name }, reachable ? 1 : 0);
  }

  start(sources: {
    resourceSyncs: Informer;
    watches: Watches;
    remoteClusters: RemoteClusters;
    /** Remote clients in use outside the watches (the set controller's). */
    moreClients: () => Iterable<ClusterClient>;
  }): void {
    this.#timer = setInterval(() => this.#refresh(sources), REFRESH_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #refresh(s: Parameters<ClusterHealth["start"]>[0]): void {
    const metrics = this.#metrics;
    metrics.watchConnections.reset();
    for (const [cluster, n] of s.watches.connections()) metrics.watchConnections.set({ cluster }, n);
    metrics.watchConnections.inc({ cluster: this.#local.name }, s.resourceSyncs.health().watching ? 1 : 0);
    // Reachability from the remote watches too: one that cannot connect says the cluster is unreachable.
    for (const w of s.watches.info()) {
      if (w.cluster === this.#local.name) continue;
      if (w.health.watching) metrics.remoteClusterReachable.set({ cluster: w.cluster }, 1);
      else if (
        w.health.consecutiveFailures > 0 &&
        w.health.lastErrorReason === "ClusterUnreachable" &&
        // a request answered meanwhile says more than a watch still waiting out its reconnect backoff
        Date.now() - (this.#lastAnswerAt.get(w.cluster) ?? 0) > REACHABLE_EVIDENCE_MS
      )
        metrics.remoteClusterReachable.set({ cluster: w.cluster }, 0);
    }
    // Clients of rotated or no longer referenced kubeconfigs: close their connections (not while a reconcile
    // holds them); a cluster left without a client loses its series.
    const before = s.remoteClusters.clusterNames();
    const inUse = s.watches.clientsInUse();
    for (const c of s.moreClients()) inUse.add(c);
    void s.remoteClusters.prune(inUse).then(() => {
      const after = s.remoteClusters.clusterNames();
      for (const name of before)
        if (!after.has(name)) {
          metrics.remoteClusterReachable.remove({ cluster: name });
          this.#lastAnswerAt.delete(name);
        }
    });
  }
}
