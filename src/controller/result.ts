/**
 * What one reconcile of a ResourceSync comes to (controller.ts maps it to the runtime's `Next`), and the three
 * signals that still travel as exceptions from deep in a reconcile (a busy cluster share, an undecided grant, a
 * conflict on our own write of the ResourceSync): `resultOfThrow` turns every throw into a result, in one place.
 */
import { asSinkerError, type SinkerError } from "../errors.ts";
import { ClusterBusy } from "./cluster-share.ts";

export type ReconcileResult =
  | { kind: "synced" }
  | { kind: "gone" }
  /** Nothing to do until a watch reports a change (e.g. a target being deleted); afterMs: a safety net. */
  | { kind: "waiting"; afterMs: number }
  | { kind: "requeue"; afterMs: number }
  /** Another writer keeps rewriting the target (drift.ts): status reported; look again after afterMs. */
  | { kind: "contested"; afterMs: number }
  /** The share of workers for this remote server is in use (cluster-share.ts): nothing was sent; park the key. */
  | { kind: "busy"; server: string }
  | { kind: "failed"; error: SinkerError };

/** A 409 on a write of the ResourceSync itself (not on a target). */
export class ResourceSyncConflict extends Error {}

/** A set's grant cannot be decided yet (the remote cluster's namespaces are not listed): try again later. */
export class GrantUndecided extends Error {}

/** Our own write of the ResourceSync met a concurrent change: the new version is on its way through the watch. */
const RS_CONFLICT_RETRY_MS = 200;
/** A set's grant waits for a remote cluster's namespaces to be listed (no status written meanwhile). */
const GRANT_UNDECIDED_RETRY_MS = 2_000;

/** The result of a reconcile that threw `err`: one of the three signals above, else a failure. */
export function resultOfThrow(err: unknown): ReconcileResult {
  if (err instanceof ResourceSyncConflict) return { kind: "requeue", afterMs: RS_CONFLICT_RETRY_MS };
  if (err instanceof GrantUndecided) return { kind: "requeue", afterMs: GRANT_UNDECIDED_RETRY_MS };
  if (err instanceof ClusterBusy) return { kind: "busy", server: err.server };
  return { kind: "failed", error: asSinkerError(err) };
}
