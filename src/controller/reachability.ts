/** The outcome of each request to a cluster, reported for the reachability metric (ReconcileContext.onClusterOutcome). */
import { asSinkerError } from "../errors.ts";
import type { ClusterClient } from "../kube/client.ts";
import type { ReconcileContext } from "./context.ts";

/**
 * Like track, for calls that may be answered from a cache (discovery): only a failure says something about the
 * cluster, a cache hit does not prove it is reachable.
 */
export async function trackFailure<T>(
  client: ClusterClient,
  ctx: ReconcileContext,
  p: Promise<T>,
): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (asSinkerError(err).reason === "ClusterUnreachable") ctx.onClusterOutcome?.(client, false);
    throw err;
  }
}

/** Records the outcome of a request to a cluster (reachability metric) and passes its result on. */
export async function track<T>(client: ClusterClient, ctx: ReconcileContext, p: Promise<T>): Promise<T> {
  try {
    const out = await p;
    ctx.onClusterOutcome?.(client, true);
    return out;
  } catch (err) {
    const reason = asSinkerError(err).reason;
    if (reason !== "Cancelled") ctx.onClusterOutcome?.(client, reason !== "ClusterUnreachable");
    throw err;
  }
}
