/**
 * Sinker's finalizer on a ResourceSync, its whole lifecycle in one place, in the manner of kube-rs's
 * `finalizer()`: a ResourceSync that is not being deleted gets the finalizer before anything is written for it
 * (then `apply`); one being deleted runs `cleanup`, and the finalizer is removed exactly when the cleanup says
 * it is finished. What the cleanup does is decided by the pure `decideFinalize` (decisions.ts), carried out by
 * cleanup.ts.
 */
import { FINALIZER } from "../api/types.ts";
import { asSinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import { forget, type ReconcileContext } from "./context.ts";
import { patchResourceSync } from "./resourcesync-patch.ts";
import type { ReconcileResult } from "./result.ts";

/** What a cleanup comes to: finished (the finalizer goes, and the ResourceSync with it), or not yet. */
export type Cleanup = { kind: "release" } | { kind: "keep"; result: ReconcileResult };

export interface FinalizerHandlers<T> {
  /** Runs before the finalizer is added; a throw stops it (an invalid spec gets no finalizer). */
  check(rs: KubeObject): T;
  /** The ResourceSync (with the finalizer) is not being deleted. */
  apply(rs: KubeObject, checked: T): Promise<ReconcileResult>;
  /** The ResourceSync (with the finalizer) is being deleted. */
  cleanup(rs: KubeObject): Promise<Cleanup>;
}

export async function finalizer<T>(
  key: string,
  rs: KubeObject,
  ctx: ReconcileContext,
  on: FinalizerHandlers<T>,
): Promise<ReconcileResult> {
  if (rs.metadata?.deletionTimestamp) {
    // Not ours (any more): nothing to clean up that the finalizer did not already do.
    if (!hasFinalizer(rs)) {
      await forget(key, ctx);
      return { kind: "gone" };
    }
    const cleanup = await on.cleanup(rs);
    if (cleanup.kind === "keep") return cleanup.result;
    await removeFinalizer(key, rs, ctx);
    return { kind: "gone" };
  }
  const checked = on.check(rs);
  return on.apply(await addFinalizer(key, rs, ctx), checked);
}

export function hasFinalizer(rs: KubeObject): boolean {
  return Boolean(rs.metadata?.finalizers?.includes(FINALIZER));
}

async function addFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<KubeObject> {
  const finalizers = rs.metadata?.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return rs;
  // The resourceVersion makes the merge patch conditional: a concurrent finalizer change is not lost.
  return patchResourceSync(key, rs, ctx, {
    metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: rs.metadata?.resourceVersion },
  });
}

/** The merge patch that removes Sinker's finalizer; the resourceVersion keeps a concurrent change from being lost. */
export function finalizerRemoval(rs: KubeObject): KubeObject {
  const finalizers = (rs.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
  return { metadata: { finalizers, resourceVersion: rs.metadata?.resourceVersion } };
}

/** The finalizer goes (the ResourceSync with it), and what this process remembers of it. */
async function removeFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<void> {
  try {
    await patchResourceSync(key, rs, ctx, finalizerRemoval(rs));
  } catch (err) {
    if (asSinkerError(err).reason !== "NotFound") throw err;
  }
  await forget(key, ctx);
}
