/**
 * The cleanup of a ResourceSync being deleted (the `cleanup` of finalizer.ts): the objects it may have to clean up
 * (the recorded target, and the spec's when it differs) are resolved and looked up in the caches, the pure
 * `decideFinalize` says what to do, and this carries it out. Its outcome is a value: finished (the finalizer
 * goes) or not yet, with the result (waiting for a target's watch, or failed).
 */
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_FORCE_DELETE,
  annotationIsTrue,
} from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import { ClusterBusy } from "./cluster-share.ts";
import type { ReconcileContext } from "./context.ts";
import { type Candidate, decideFinalize, type FinalizeFacts } from "./decisions.ts";
import type { Cleanup } from "./finalizer.ts";
import { hasFinalizer } from "./finalizer.ts";
import { liveOf, watchIdentity } from "./live-target.ts";
import { track } from "./reachability.ts";
import type { RefSet } from "./ref-set.ts";
import { noObjectOfUnknownKind, releaseFromOwner } from "./release.ts";
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
const waiting: Cleanup = { kind: "keep", result: { kind: "waiting", afterMs: WAIT_SAFETY_MS } };
const failed = (error: SinkerError): Cleanup => ({ kind: "keep", result: { kind: "failed", error } });

/** Candidates with the ends they resolved to (an unresolved one has none). */
type Resolved = Map<Candidate, ResolvedEnd>;

/**
 * A failure that says the object cannot be reached (the candidate is unresolved), as a value. A busy share of the
 * cluster's workers is not one: it goes on (thrown) and the key is parked.
 */
async function settle<T>(p: Promise<T>): Promise<T | SinkerError> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof ClusterBusy) throw err;
    return asSinkerError(err);
  }
}

/** Deletion: clean the target up (unless told not to); finished when the ResourceSync may go. */
export async function cleanup(
  key: string,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<Cleanup> {
  const record = readRecord(rs.status);
  const disable = annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  const resolved: Resolved = new Map();
  const candidates = disable ? [] : await candidatesOf(key, rs, record, resolved, refs, ctx);
  const facts: FinalizeFacts = {
    hasFinalizer: hasFinalizer(rs),
    disableTargetDeletion: disable,
    forceDelete: annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE),
    record,
    candidates,
  };
  return carryOut(key, rs, facts, resolved, ctx);
}

/** The recorded target, then the spec's when it differs, each resolved and looked up (live, claims). */
async function candidatesOf(
  key: string,
  rs: KubeObject,
  record: AppliedTarget | undefined,
  resolved: Resolved,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<Candidate[]> {
  const candidates: Candidate[] = [];
  if (record) {
    const c: Candidate = { target: record };
    const end = await settle(resolveRecorded(key, record, rs, refs, ctx));
    if (end instanceof SinkerError) {
      c.unresolved = end;
      if (end.reason === "ClusterChanged") ctx.events.record(rs, "Warning", "ClusterChanged", end.message);
    } else resolved.set(c, end);
    candidates.push(c);
  }
  const parsed = validateResourceSync(rs);
  if (parsed.ok) {
    const end = await settle(resolveEnd(parsed.value, "target", refs, ctx).then((e) => identify(e, ctx)));
    // the spec's target cannot be reached: nothing was applied there without a record (see decideFinalize)
    if (!(end instanceof SinkerError)) {
      const id = identityOf(parsed.value, end);
      if (!sameTarget(id, record)) {
        const c: Candidate = { target: id };
        resolved.set(c, end);
        candidates.push(c);
      }
    }
  }
  for (const c of candidates) {
    const end = resolved.get(c);
    if (!end) continue;
    const looked = await settle(lookUp(key, rs, record, c, end, refs, ctx));
    if (looked instanceof SinkerError) c.unresolved = looked;
  }
  return candidates;
}

/** The candidate's live object (watched from now on) and the ResourceSync that claims it, if another. */
async function lookUp(
  key: string,
  rs: KubeObject,
  record: AppliedTarget | undefined,
  c: Candidate,
  end: ResolvedEnd,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<void> {
  await refs.add(watchRef(end));
  c.live = liveOf(ctx.watches.get(end.client, end.resource, end.namespace, end.name), rs.metadata?.uid);
  const claimedBy = ctx.claims.claimedBy(key, c.target, {
    key,
    createdAt: rs.metadata?.creationTimestamp ?? "",
    ...(record && sameTarget(record, c.target) ? { appliedAt: record.appliedAt } : {}),
  });
  if (claimedBy !== undefined) c.claimedBy = claimedBy;
}

/**
 * Carries out decideFinalize's actions. Decided again after a target the API server removed at once: each round
 * returns, or marks one more candidate gone, so it ends.
 */
async function carryOut(
  key: string,
  rs: KubeObject,
  facts: FinalizeFacts,
  resolved: Resolved,
  ctx: ReconcileContext,
): Promise<Cleanup> {
  const log = ctx.logger;
  for (;;) {
    const action = decideFinalize(facts);
    switch (action.kind) {
      case "none": // no finalizer: finalizer.ts does not call the cleanup then
        return { kind: "keep", result: { kind: "gone" } };
      case "orphan":
        log.info("target deletion disabled by annotation; leaving the target in place");
        await orphanLocalTargets(rs, facts.record, ctx);
        return { kind: "release" };
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
        return { kind: "release" };
      case "force-release":
        return forceRelease(rs, action.error, ctx);
      case "fail":
        return failed(deletionError(action.error));
      case "wait":
        return waiting;
      case "delete": {
        const candidate = facts.candidates.find((c) => c.target === action.target);
        const end = candidate && resolved.get(candidate);
        if (!candidate || !end)
          return failed(new SinkerError("Internal", "no client for the target to delete"));
        const outcome = await deleteTarget(key, rs, action, end, ctx);
        if (outcome !== "deleted") return outcome;
        candidate.live = { exists: false };
      }
    }
  }
}

/** Deletes the target (uid precondition): "deleted" when the API server removed it at once. */
async function deleteTarget(
  key: string,
  rs: KubeObject,
  action: { target: TargetIdentity; uid: string },
  end: ResolvedEnd,
  ctx: ReconcileContext,
): Promise<Cleanup | "deleted"> {
  // Background: the target goes at once unless it has finalizers of its own; its dependents (if any) are
  // removed by the garbage collector afterwards, off this critical path.
  // debug: the line that says the deletion is done ("finalizer removed", its why) is the info one; two lines
  // per deleted ResourceSync cost a tenth of a deletion's CPU (written synchronously)
  ctx.logger.debug({ target: describeTarget(action.target) }, "deleting target");
  const outcome = await settle(
    track(
      end.client,
      ctx,
      end.client.delete(end.resource, end.namespace, end.name, {
        propagationPolicy: "Background",
        preconditions: { uid: action.uid },
      }),
    ),
  );
  if (outcome instanceof SinkerError) {
    // the uid precondition failed: another object of that name now; the watch brings it
    if (outcome.reason === "Conflict") return waiting;
    if (annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE)) return forceRelease(rs, outcome, ctx);
    return failed(deletionError(outcome));
  }
  // Still there (finalizers of its own): its watch reports it gone. Removed at once, as the API server's
  // answer says: decided again now, as that watch event would make it, without a second reconcile.
  if (outcome === "pending") return waiting;
  ctx.applied.deletedTarget(key, watchIdentity(end), action.uid);
  return "deleted";
}

function deletionError(error: SinkerError): SinkerError {
  return new SinkerError(error.reason, `deleting the target: ${error.message}`, { cause: error });
}

/** force-delete: the target cannot be reached, so the ResourceSync goes without it (recorded as an Event). */
function forceRelease(rs: KubeObject, error: SinkerError, ctx: ReconcileContext): Cleanup {
  ctx.logger.warn(
    { reason: error.reason, error: error.message },
    "target unreachable; finalizer removed (force-delete)",
  );
  ctx.events.record(rs, "Warning", "ForceDeleted", `target not deleted: ${error.message}`);
  return { kind: "release" };
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
