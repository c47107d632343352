/**
 * The reconciler: a plain async function of (ResourceSync key, context) → result, in the manner of
 * controller-runtime. It reads the ResourceSync, the kubeconfig Secrets, the source and the target from informer
 * caches, computes the target with the pure projection, server-side-applies it, and writes the status (with the
 * sync record, see sync-record.ts) when it changed. What to write, delete or release is decided by the pure
 * functions of decisions.ts from the API's state, never from process memory. Every failure is a SinkerError
 * whose stable reason becomes the Ready condition's reason.
 */
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  annotationIsTrue,
  FINALIZER,
  type ResourceSync,
  type WritePolicy,
} from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterFacts } from "../kube/cluster-identity.ts";
import type { KubeObject } from "../kube/object.ts";
import { project } from "../projection/index.ts";
import { ClusterBusy } from "./cluster-share.ts";
import { contestMessage } from "./contest.ts";
import {
  forget,
  GrantUndecided,
  liveOf,
  patchResourceSync,
  type ReconcileContext,
  type ReconcileResult,
  RefSet,
  ResourceSyncConflict,
  track,
  writtenSuperseded,
} from "./context.ts";
import {
  ANNOTATION_ADOPT_TARGET,
  decideTargetChange,
  decideWrite,
  type ObjectRef,
  sameObject,
} from "./decisions.ts";
import { CONTESTED, writeTarget } from "./drift.ts";
import { deleteOldTarget, finalize, keepOldTarget, sweepLocalLeftovers } from "./finalize.ts";
import { releaseFromOwner } from "./release.ts";
import {
  createOnlyMessage,
  describeEnd,
  factsOf,
  type IdentifiedEnd,
  identify,
  identityOf,
  inSyncMessage,
  resolveEnd,
  watchRef,
} from "./resolve.ts";
import {
  findCondition,
  nextStatus,
  type Outcome,
  READY,
  type SyncStatus,
  statusDiffers,
  syncedEventWorthIt,
} from "./status.ts";
import { type AppliedTarget, nextRecord, readRecord, sameTarget } from "./sync-record.ts";
import { decideWriteAction } from "./write-policy.ts";
import { createTarget, replaceOrFail, type WriteInput } from "./write-target.ts";

export type { AppliedMemo, ReconcileContext, ReconcileResult, ReconcilerOptions } from "./context.ts";
export { liveOf, rvNewer, watchIdentity, writtenSuperseded } from "./context.ts";

/** Our own write of the ResourceSync met a concurrent change: the new version is on its way through the watch. */
const RS_CONFLICT_RETRY_MS = 200;
/** A set's grant waits for a remote cluster's namespaces to be listed (no status written meanwhile). */
const GRANT_UNDECIDED_RETRY_MS = 2_000;

export async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
  const [namespace, name] = splitKey(key);
  const rs = latest(key, ctx.resourceSyncs.get(namespace, name), ctx);
  if (!rs) {
    // Gone from the API server: nothing to clean up that the finalizer did not already do.
    await forget(key, ctx);
    return { kind: "gone" };
  }
  const refs = new RefSet(key, ctx);
  try {
    if (rs.metadata?.deletionTimestamp) return await finalize(key, rs, refs, ctx);
    return await sync(key, rs, refs, ctx);
  } catch (err) {
    if (err instanceof ResourceSyncConflict) return { kind: "requeue", afterMs: RS_CONFLICT_RETRY_MS };
    if (err instanceof GrantUndecided) return { kind: "requeue", afterMs: GRANT_UNDECIDED_RETRY_MS };
    if (err instanceof ClusterBusy) return { kind: "busy", server: err.server };
    const error = asSinkerError(err);
    if (error.reason !== "Cancelled") await reportFailure(key, rs, error, ctx);
    return { kind: "failed", error };
  }
}

/** The newer of the cached ResourceSync and our own last write of it. */
function latest(key: string, cached: KubeObject | undefined, ctx: ReconcileContext): KubeObject | undefined {
  const mine = ctx.written.get(key);
  if (!mine) return cached;
  if (!writtenSuperseded(mine, cached)) return mine;
  ctx.written.delete(key); // gone, another object of that name now, or the cache caught up
  return cached;
}

async function sync(
  key: string,
  cached: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const spec = validated(cached);
  const rs = await ensureFinalizer(key, cached, ctx);
  const sourceEnd = await resolveEnd(spec, "source", refs, ctx);
  const targetEnd = await resolveEnd(spec, "target", refs, ctx);
  // watched first: a cluster that cannot be listed fails here, with its own error, before it is asked who it is
  await refs.add(watchRef(sourceEnd), watchRef(targetEnd));
  const source = await identify(sourceEnd, ctx);
  const target = await identify(targetEnd, ctx);
  const targetId = identityOf(spec, target);
  refuseSelfReference(spec, source, target, await factsOf(ctx.local, ctx), ctx);

  const record = readRecord(rs.status);
  const disable = annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  let nextRec: AppliedTarget | null | undefined;
  switch (decideTargetChange(record, targetId, disable)) {
    case "delete-old":
      if (record) await deleteOldTarget(key, rs, record, refs, ctx);
      nextRec = null;
      break;
    case "forget-old":
      if (record) await keepOldTarget(key, rs, record, refs, ctx);
      nextRec = null;
      break;
    case "none":
      break;
  }
  // (a ResourceSync never retargeted, generation 1 without a record, has nothing to sweep: no cost at creation)
  const retargeted = record ? !sameTarget(record, targetId) : (rs.metadata?.generation ?? 1) > 1;
  if (!disable && target.local && target.resource.namespaced && retargeted) {
    await sweepLocalLeftovers(rs, target, ctx);
  }
  // Narrow the watch set to what this version of the spec needs (drops informers an old spec used).
  await refs.commit();

  const sourceObject = ctx.watches.get(source.client, source.resource, source.namespace, source.name);
  if (!sourceObject) {
    throw new SinkerError(
      "SourceNotFound",
      `source ${describeEnd(spec.spec.source.resourceRef.kind, source)} not found`,
    );
  }
  const desired = project({
    resourceSync: spec,
    source: sourceObject,
    target: { namespace: target.namespace, ownerReference: target.local && target.resource.namespaced },
  });
  const liveObject = ctx.watches.get(target.client, target.resource, target.namespace, target.name);
  const live = liveOf(liveObject, rs.metadata?.uid);
  const currentRecord = nextRec === null ? undefined : record;
  const refusal = decideWrite({
    target: targetId,
    record: currentRecord,
    live,
    adopt: annotationIsTrue(rs.metadata, ANNOTATION_ADOPT_TARGET),
    claimedBy: ctx.claims.claimedBy(key, targetId, {
      key,
      createdAt: rs.metadata?.creationTimestamp ?? "",
      ...(currentRecord && sameTarget(currentRecord, targetId) ? { appliedAt: currentRecord.appliedAt } : {}),
    }),
  });
  if (refusal) throw refusal;
  const input = {
    key,
    rs,
    spec,
    target,
    targetId,
    record: currentRecord,
    live,
    desired,
    source: sourceObject,
  };
  return await writeAndReport({ ...input, sourceEnd: source, liveObject, nextRec }, ctx);
}

/** The step after every check: the target written as the write policy says, and the status reported. */
interface WriteStep extends WriteInput {
  target: IdentifiedEnd;
  sourceEnd: IdentifiedEnd;
  liveObject: KubeObject | undefined;
  /** null: the record of an old target was dropped (spec.target changed). */
  nextRec: AppliedTarget | null | undefined;
}

async function writeAndReport(w: WriteStep, ctx: ReconcileContext): Promise<ReconcileResult> {
  const { key, rs, spec, target, targetId, record, sourceEnd: source } = w;
  const writePolicy = spec.spec.writePolicy ?? "Apply";
  const action = decideWriteAction(writePolicy, w.live);
  if (action !== "apply") {
    // CreateOnly: created when absent, else left as it is (never repaired, so never contested)
    ctx.drift.forget(key);
    // kept means kept: a target never applied again loses this ResourceSync's ownerReference here
    if (
      w.live.exists &&
      w.live.ownedByThis &&
      annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION)
    )
      await track(
        target.client,
        ctx,
        releaseFromOwner(
          target.client,
          target.resource,
          target.namespace,
          target.name,
          rs.metadata?.uid ?? "",
        ),
      );
    const uid = action === "create" ? await createTarget(w, ctx) : w.live.exists ? w.live.uid : "";
    const next = uid ? nextRecord(record, targetId, uid, new Date()) : (w.nextRec ?? undefined);
    await reportSuccess(key, rs, createOnlyMessage(spec, source, target), next, ctx, writePolicy);
    return { kind: "synced" };
  }
  const written = await writeTarget(
    {
      key,
      rs,
      desired: w.desired,
      source,
      sourceObject: w.source,
      target,
      liveObject: w.liveObject,
      recordUid: record?.uid,
      onRefused: (err) => replaceOrFail(w, err, ctx),
    },
    ctx,
  );
  if (written.kind === "defer") return { kind: "requeue", afterMs: written.afterMs };
  const newRecord = written.uid
    ? nextRecord(record, targetId, written.uid, new Date())
    : (w.nextRec ?? undefined);
  if (written.kind === "contested") {
    const message = contestMessage(describeEnd(spec.spec.target.resourceRef.kind, target), written.writer);
    await reportFailure(key, rs, new SinkerError(CONTESTED, message), ctx, newRecord);
    return { kind: "contested", afterMs: written.afterMs };
  }
  await reportSuccess(key, rs, inSyncMessage(spec, source, target), newRecord, ctx, writePolicy);
  return { kind: "synced" };
}

/**
 * Source == target, or a target that is the ResourceSync itself, are refused (TargetIsSource): the same object in the
 * same cluster, whatever Secret or alias of the server each end is reached through.
 */
function refuseSelfReference(
  spec: ResourceSync,
  source: IdentifiedEnd,
  target: IdentifiedEnd,
  localFacts: ClusterFacts,
  ctx: ReconcileContext,
): void {
  const end = (e: IdentifiedEnd): ObjectRef => ({
    facts: e.facts,
    group: e.resource.group,
    kind: e.resource.kind,
    namespace: e.namespace,
    name: e.name,
  });
  if (sameObject(end(target), end(source))) {
    throw new SinkerError(
      "TargetIsSource",
      "the target is the source itself; a ResourceSync cannot sync an object onto itself",
    );
  }
  const self: ObjectRef = {
    facts: localFacts,
    group: ctx.resourceSyncResource.group,
    kind: ctx.resourceSyncResource.kind,
    namespace: spec.metadata.namespace ?? "",
    name: spec.metadata.name,
  };
  if (sameObject(end(target), self)) {
    throw new SinkerError("TargetIsSource", "the target is this ResourceSync itself");
  }
}

function validated(rs: KubeObject): ResourceSync {
  const result = validateResourceSync(rs);
  if (!result.ok) {
    throw new SinkerError("InvalidSpec", result.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
  }
  return result.value;
}

async function ensureFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<KubeObject> {
  const finalizers = rs.metadata?.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return rs;
  // The resourceVersion makes the merge patch conditional: a concurrent finalizer change is not lost.
  return patchResourceSync(key, rs, ctx, {
    metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: rs.metadata?.resourceVersion },
  });
}

async function reportSuccess(
  key: string,
  rs: KubeObject,
  message: string,
  record: AppliedTarget | null | undefined,
  ctx: ReconcileContext,
  writePolicy: WritePolicy,
): Promise<void> {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (syncedEventWorthIt(ready)) ctx.events.record(rs, "Normal", "Synced", message);
  await writeStatus(key, rs, { ok: true, message, writePolicy }, record, ctx);
}

async function reportFailure(
  key: string,
  rs: KubeObject,
  error: SinkerError,
  ctx: ReconcileContext,
  record?: AppliedTarget | null,
): Promise<void> {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (ready === undefined || ready.status === "True" || ready.reason !== error.reason) {
    ctx.events.record(rs, "Warning", error.reason, error.message);
  }
  try {
    await writeStatus(key, rs, { ok: false, reason: error.reason, message: error.message }, record, ctx);
  } catch (err) {
    ctx.logger.warn(
      { error: err instanceof Error ? err.message : String(err) },
      "could not write failure status",
    );
  }
}

/** Synced or failing, as the status says (the state gauge). */
export function outcomeFromStatus(rs: KubeObject): { ok: boolean; reason?: string } | undefined {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (!ready) return undefined;
  return { ok: ready.status === "True", reason: ready.reason };
}

async function writeStatus(
  key: string,
  rs: KubeObject,
  outcome: Outcome,
  record: AppliedTarget | null | undefined,
  ctx: ReconcileContext,
): Promise<void> {
  const previous = rs.status as SyncStatus | undefined;
  const status = nextStatus(previous, rs.metadata?.generation, outcome, new Date(), record);
  if (!statusDiffers(previous, status)) return;
  await patchResourceSync(key, rs, ctx, { status }, { subresource: "status" });
}

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}
