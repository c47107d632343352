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
  type ResourceSync,
  type WritePolicy,
} from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { SinkerError } from "../errors.ts";
import type { ClusterFacts } from "../kube/cluster-identity.ts";
import { type KubeObject, parseKey } from "../kube/object.ts";
import { project } from "../projection/index.ts";
import { cleanup } from "./cleanup.ts";
import { contestMessage } from "./contest.ts";
import { forget, type ReconcileContext } from "./context.ts";
import {
  ANNOTATION_ADOPT_TARGET,
  decideTargetChange,
  decideWrite,
  type ObjectRef,
  sameObject,
} from "./decisions.ts";
import { CONTESTED, writeTarget } from "./drift.ts";
import { finalizer } from "./finalizer.ts";
import { liveOf } from "./live-target.ts";
import { leaveOldTarget, sweepLocalLeftovers } from "./old-targets.ts";
import { track } from "./reachability.ts";
import { RefSet } from "./ref-set.ts";
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
import { patchResourceSync } from "./resourcesync-patch.ts";
import { type ReconcileResult, resultOfThrow } from "./result.ts";
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

/** How soon a ResourceSync waiting for another's first reconcile (claims.ts `awaitedClaimant`) looks again. */
const AWAIT_CLAIMANT_RETRY_MS = 1_000;

export type { AppliedMemo, ReconcileContext, ReconcilerOptions } from "./context.ts";
export type { ReconcileResult } from "./result.ts";

export async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
  const { namespace, name } = parseKey(key);
  const rs = ctx.written.latest(key, ctx.resourceSyncs.get(namespace, name));
  if (!rs) {
    // Gone from the API server: nothing to clean up that the finalizer did not already do.
    await forget(key, ctx);
    return { kind: "gone" };
  }
  const refs = new RefSet(key, ctx);
  let result: ReconcileResult;
  try {
    result = await finalizer(key, rs, ctx, {
      check: validated,
      apply: (withFinalizer, spec) => sync(key, withFinalizer, spec, refs, ctx),
      cleanup: (deleting) => cleanup(key, deleting, refs, ctx),
    });
  } catch (err) {
    result = resultOfThrow(err);
  }
  if (result.kind === "failed" && result.error.reason !== "Cancelled")
    await reportFailure(key, rs, result.error, ctx);
  return result;
}

async function sync(
  key: string,
  rs: KubeObject,
  spec: ResourceSync,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
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
  const change = decideTargetChange(record, targetId, disable);
  if (change !== "none") {
    if (record) await leaveOldTarget(change, { key, rs, record, refs, ctx });
    nextRec = null;
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
  const self = {
    key,
    createdAt: rs.metadata?.creationTimestamp ?? "",
    ...(currentRecord && sameTarget(currentRecord, targetId) ? { appliedAt: currentRecord.appliedAt } : {}),
  };
  const claimedBy = ctx.claims.claimedBy(key, targetId, self);
  const awaited =
    claimedBy === undefined ? ctx.claims.awaitedClaimant(key, targetId, self, Date.now()) : undefined;
  if (awaited !== undefined) {
    ctx.logger.debug(
      { other: awaited },
      "target may be another ResourceSync's: waiting for its first reconcile",
    );
    return { kind: "requeue", afterMs: AWAIT_CLAIMANT_RETRY_MS };
  }
  const refusal = decideWrite({
    target: targetId,
    record: currentRecord,
    live,
    adopt: annotationIsTrue(rs.metadata, ANNOTATION_ADOPT_TARGET),
    claimedBy,
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
      recordFields: record?.fieldSetHash,
      onRefused: (err) => replaceOrFail(w, err, ctx),
    },
    ctx,
  );
  if (written.kind === "defer") return { kind: "requeue", afterMs: written.afterMs };
  const newRecord = written.uid
    ? nextRecord(record, targetId, written.uid, new Date(), written.fields || undefined)
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
