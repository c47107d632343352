/**
 * spec.target changed: the old target is deleted (when it is still the object Sinker applied), or, under
 * disable-target-deletion, kept and released; and local leftovers of an unrecorded earlier target are swept.
 */
import { asSinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import type { ReconcileContext } from "./context.ts";
import { liveOf } from "./live-target.ts";
import { track } from "./reachability.ts";
import type { RefSet } from "./ref-set.ts";
import { noObjectOfUnknownKind, releaseFromOwner } from "./release.ts";
import { type ResolvedEnd, resolveRecorded } from "./resolve.ts";
import { type AppliedTarget, describeTarget } from "./sync-record.ts";

/** The recorded target a changed `spec.target` leaves behind, with what its handling needs. */
export interface OldTarget {
  key: string;
  rs: KubeObject;
  record: AppliedTarget;
  refs: RefSet;
  ctx: ReconcileContext;
}

/** `spec.target` changed: the old target is deleted ("delete-old") or kept and released ("forget-old"). */
export function leaveOldTarget(change: "delete-old" | "forget-old", old: OldTarget): Promise<void> {
  return change === "delete-old" ? deleteOldTarget(old) : keepOldTarget(old);
}

/** `spec.target` changed: delete the recorded old target if it is still the object Sinker applied. */
async function deleteOldTarget({ key, rs, record, refs, ctx }: OldTarget): Promise<void> {
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
    if (!live.exists || !live.ownedByThis || !live.writtenBySinker) continue;
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

/**
 * spec.target changed under disable-target-deletion: the old target stays, released from the ResourceSync (a local
 * one loses its ownerReference to it), and an Event says so. Throws when the release fails: the record still names
 * the old target, so the next attempt releases it again.
 */
async function keepOldTarget({ key, rs, record, refs, ctx }: OldTarget): Promise<void> {
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
