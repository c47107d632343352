import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_FORCE_DELETE,
  annotationIsTrue,
  FINALIZER,
} from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import { ClusterBusy } from "./cluster-share.ts";
import {
  forget,
  liveOf,
  type ReconcileContext,
  type ReconcileResult,
  type RefSet,
  releaseAndRemoveFinalizer,
  track,
} from "./context.ts";
import { type Candidate, decideFinalize } from "./decisions.ts";
import { releaseFromOwner } from "./release.ts";
import { identify, identityOf, type ResolvedEnd, resolveEnd, resolveRecorded, watchRef } from "./resolve.ts";
import {
  type AppliedTarget,
  describeTarget,
  readRecord,
  sameTarget,
  type TargetIdentity,
} from "./sync-record.ts";

/** Safety net while waiting for a watch to report a target gone (the watch event is what normally ends it). */
const WAIT_SAFETY_MS = 60_000;

/** `spec.target` changed: delete the recorded old target if it is still the object Sinker applied. */
export async function deleteOldTarget(
  key: string,
  rs: KubeObject,
  record: AppliedTarget,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<void> {
  let old: ResolvedEnd;
  try {
    old = await resolveRecorded(key, record, rs, refs, ctx);
  } catch (err) {
    const error = asSinkerError(err);
    if (error.reason !== "ClusterChanged") throw err;
    // the Secret now reaches another cluster: the old target cannot be reached any more, like a new target
    ctx.events.record(rs, "Normal", "OldTargetKept", `target changed; ${error.message}`);
    return;
  }
  // A live read of an object no longer watched (one request, only when the target changes).
  const existing = await track(old.client, ctx, old.client.get(old.resource, old.namespace, old.name));
  if (!existing || existing.metadata?.uid !== record.uid) return;
  await track(
    old.client,
    ctx,
    old.client.delete(old.resource, old.namespace, old.name, {
      propagationPolicy: "Background",
      preconditions: { uid: record.uid },
    }),
  );
  ctx.events.record(
    rs,
    "Normal",
    "OldTargetDeleted",
    `target changed; deleted the old target ${describeTarget(record)}`,
  );
  ctx.logger.info({ target: describeTarget(record) }, "spec.target changed: old target deleted");
}

/**
 * A crash between an apply and the status write that records it, followed by a change of spec.target, would
 * leave the applied object unrecorded. A local one carries an owner reference to its ResourceSync: while the
 * record does not name the current target, other objects of the target's kind in its namespace (from the cache
 * already held) that carry that reference and Sinker's field manager are deleted (uid precondition).
 */
export async function sweepLocalLeftovers(
  rs: KubeObject,
  target: ResolvedEnd,
  ctx: ReconcileContext,
): Promise<void> {
  const uid = rs.metadata?.uid;
  if (!uid) return;
  for (const o of ctx.watches.list(target.client, target.resource, target.namespace)) {
    const name = o.metadata?.name;
    if (!name || name === target.name || o.metadata?.deletionTimestamp) continue;
    const live = liveOf(o, uid);
    if (!live.exists || !live.ownedByThis || !live.appliedBySinker) continue;
    await track(
      target.client,
      ctx,
      target.client.delete(target.resource, target.namespace, name, {
        propagationPolicy: "Background",
        preconditions: { uid: live.uid },
      }),
    );
    const what = `${target.resource.kind} ${target.namespace}/${name}`;
    ctx.events.record(
      rs,
      "Normal",
      "OldTargetDeleted",
      `deleted ${what}, an earlier target of this ResourceSync`,
    );
    ctx.logger.info({ target: what }, "deleted an unrecorded earlier target");
  }
}

/** Deletion: clean the target up (unless told not to), then let the ResourceSync go. */
export async function finalize(
  key: string,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const record = readRecord(rs.status);
  const candidates: Candidate[] = [];
  const resolved = new Map<Candidate, ResolvedEnd>();
  const hasFinalizer = Boolean(rs.metadata?.finalizers?.includes(FINALIZER));
  const disable = annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  if (hasFinalizer && !disable) {
    if (record) {
      const c: Candidate = { target: record };
      try {
        resolved.set(c, await resolveRecorded(key, record, rs, refs, ctx));
      } catch (err) {
        if (err instanceof ClusterBusy) throw err; // not unreachable: its share of workers is in use
        c.unresolved = asSinkerError(err);
        if (c.unresolved.reason === "ClusterChanged")
          ctx.events.record(rs, "Warning", "ClusterChanged", c.unresolved.message);
      }
      candidates.push(c);
    }
    const parsed = validateResourceSync(rs);
    if (parsed.ok) {
      try {
        const end = await identify(await resolveEnd(parsed.value, "target", refs, ctx), ctx);
        const id = identityOf(parsed.value, end);
        if (!sameTarget(id, record)) {
          const c: Candidate = { target: id };
          resolved.set(c, end);
          candidates.push(c);
        }
      } catch (err) {
        if (err instanceof ClusterBusy) throw err;
        // the spec's target cannot be reached: nothing was applied there without a record (see decideFinalize)
      }
    }
    for (const c of candidates) {
      const end = resolved.get(c);
      if (!end) continue;
      try {
        await refs.add(watchRef(end));
        c.live = liveOf(ctx.watches.get(end.client, end.resource, end.namespace, end.name), rs.metadata?.uid);
        const claimedBy = ctx.claims.claimedBy(key, c.target, {
          key,
          createdAt: rs.metadata?.creationTimestamp ?? "",
          ...(record && sameTarget(record, c.target) ? { appliedAt: record.appliedAt } : {}),
        });
        if (claimedBy !== undefined) c.claimedBy = claimedBy;
      } catch (err) {
        if (err instanceof ClusterBusy) throw err; // not unreachable: its share of workers is in use
        c.unresolved = asSinkerError(err);
      }
    }
  }
  const facts = {
    hasFinalizer,
    disableTargetDeletion: disable,
    forceDelete: annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE),
    record,
    candidates,
  };
  const log = ctx.logger;
  // Decided again after a target the API server removed at once: each round returns, or marks one more
  // candidate gone, so it ends.
  for (;;) {
    const action = decideFinalize(facts);
    switch (action.kind) {
      case "none":
        await forget(key, ctx);
        return { kind: "gone" };
      case "orphan":
        log.info("target deletion disabled by annotation; leaving the target in place");
        await orphanLocalTargets(rs, record, ctx);
        await releaseAndRemoveFinalizer(key, rs, ctx);
        return { kind: "gone" };
      case "release":
        if (action.deleted)
          ctx.events.record(
            rs,
            "Normal",
            "TargetDeleted",
            `target ${describeTarget(action.deleted)} deleted`,
          );
        log.info(
          { why: action.why, ...(action.deleted ? { deleted: describeTarget(action.deleted) } : {}) },
          "finalizer removed",
        );
        await releaseAndRemoveFinalizer(key, rs, ctx);
        return { kind: "gone" };
      case "force-release":
        return forceRelease(key, rs, action.error, ctx);
      case "fail":
        throw deletionError(action.error);
      case "wait":
        return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
      case "delete": {
        const candidate = candidates.find((c) => c.target === action.target);
        const end = candidate && resolved.get(candidate);
        if (!candidate || !end) throw new SinkerError("Internal", "no client for the target to delete");
        // Background: the target goes at once unless it has finalizers of its own; its dependents (if any) are
        // removed by the garbage collector afterwards, off this critical path.
        // debug: the line that says the deletion is done ("finalizer removed", its why) is the info one; two lines
        // per deleted ResourceSync cost a tenth of a deletion's CPU (written synchronously)
        log.debug({ target: describeTarget(action.target) }, "deleting target");
        let outcome: "deleted" | "pending" | "notfound";
        try {
          outcome = await track(
            end.client,
            ctx,
            end.client.delete(end.resource, end.namespace, end.name, {
              propagationPolicy: "Background",
              preconditions: { uid: action.uid },
            }),
          );
        } catch (err) {
          const error = asSinkerError(err);
          // the uid precondition failed: another object of that name now; the watch brings it
          if (error.reason === "Conflict") return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
          if (annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE))
            return forceRelease(key, rs, error, ctx);
          throw deletionError(error);
        }
        // Still there (finalizers of its own): its watch reports it gone. Removed at once, as the API server's
        // answer says: decided again now, as that watch event would make it, without a second reconcile.
        if (outcome === "pending") return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
        candidate.live = { exists: false };
        continue;
      }
    }
  }
}

function deletionError(error: SinkerError): SinkerError {
  return new SinkerError(error.reason, `deleting the target: ${error.message}`, { cause: error });
}

/** force-delete: the target cannot be reached, so the ResourceSync goes without it (recorded as an Event). */
async function forceRelease(
  key: string,
  rs: KubeObject,
  error: SinkerError,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  ctx.logger.warn(
    { reason: error.reason, error: error.message },
    "target unreachable; finalizer removed (force-delete)",
  );
  ctx.events.record(rs, "Warning", "ForceDeleted", `target not deleted: ${error.message}`);
  await releaseAndRemoveFinalizer(key, rs, ctx);
  return { kind: "gone" };
}

/**
 * disable-target-deletion: the local targets (the recorded one, and the spec's when it differs: applied but not
 * yet recorded) keep no ownerReference to the ResourceSync, or the garbage collector would delete them once it is
 * gone, whatever the annotation says. Says so in an Event on the ResourceSync.
 */
async function orphanLocalTargets(
  rs: KubeObject,
  record: AppliedTarget | undefined,
  ctx: ReconcileContext,
): Promise<void> {
  const targets: TargetIdentity[] = [];
  if (record && !record.cluster.secretRef) targets.push(record);
  const parsed = validateResourceSync(rs);
  if (parsed.ok && !parsed.value.spec.target.cluster) {
    const ref = parsed.value.spec.target.resourceRef;
    const id: TargetIdentity = { cluster: {}, ...ref, namespace: rs.metadata?.namespace ?? "" };
    if (!targets.some((t) => sameTarget(t, id))) targets.push(id);
  }
  const uid = rs.metadata?.uid ?? "";
  const kept = record ? [describeTarget(record)] : [];
  const released: string[] = [];
  for (const t of targets) {
    const resource = await ctx.local.resolve(t.apiVersion, t.kind).catch(noObjectOfUnknownKind);
    if (!resource?.namespaced) continue;
    const namespace = rs.metadata?.namespace;
    if ((await releaseFromOwner(ctx.local, resource, namespace, t.name, uid)) === "released")
      released.push(describeTarget({ ...t, namespace }));
  }
  if (kept.length === 0 && released.length === 0) return;
  const what = [...new Set([...kept, ...released])].join(", ");
  ctx.events.record(
    rs,
    "Normal",
    "TargetKept",
    `target deletion disabled: ${what} left in place` +
      (released.length > 0
        ? `; released (owner reference to this ResourceSync removed): ${released.join(", ")}`
        : ""),
  );
}

/**
 * spec.target changed under disable-target-deletion: the old target stays, released from the ResourceSync (a local
 * one loses its ownerReference to it), and an Event says so. Throws when the release fails: the record still names
 * the old target, so the next attempt releases it again.
 */
export async function keepOldTarget(
  key: string,
  rs: KubeObject,
  record: AppliedTarget,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<void> {
  let released = false;
  if (!record.cluster.secretRef) {
    const old = await resolveRecorded(key, record, rs, refs, ctx).catch(noObjectOfUnknownKind);
    if (old?.resource.namespaced) {
      released =
        (await track(
          old.client,
          ctx,
          releaseFromOwner(old.client, old.resource, old.namespace, old.name, rs.metadata?.uid ?? ""),
        )) === "released";
    }
  }
  ctx.events.record(
    rs,
    "Normal",
    "OldTargetKept",
    `target changed; ${describeTarget(record)} left in place` +
      (released ? " and released (owner reference to this ResourceSync removed)" : ""),
  );
}

/** A kind the cluster no longer serves has no object left to release. */
function noObjectOfUnknownKind(err: unknown): undefined {
  if (asSinkerError(err).reason === "UnknownKind") return undefined;
  throw err;
}
