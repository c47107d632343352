/**
 * Writing the target: whether to apply at all (nothing changed, or the live object already holds the
 * projection), whether the apply is a source change or a drift repair, and for repairs the contest rules
 * (contest.ts) and the ring rule (cycles.ts). The reconciler hands over the resolved ends and the projection;
 * this module sends at most one apply and says what the status should report.
 */
import { createHash } from "node:crypto";
import { FIELD_MANAGER } from "../api/types.ts";
import type { ErrorReason } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import {
  afterCalm,
  afterRepair,
  type ContestState,
  DEFAULT_CONTEST_POLICY,
  decideRepair,
  otherWriter,
  restoredContest,
} from "./contest.ts";
import type { ReconcileContext } from "./context.ts";
import { FlowGraph, ringInMotion, ringThrough } from "./cycles.ts";
import { isSinkerApply, watchIdentity } from "./live-target.ts";
import { coveredBy, fieldShape } from "./noop-apply.ts";
import { track } from "./reachability.ts";
import type { ResolvedEnd } from "./resolve.ts";
import { findCondition, READY, type SyncStatus } from "./status.ts";

/** A repair held back while a change travels round its ring is looked at again after this long. */
const RING_RETRY_MS = 250;
/** ... but never held back longer than this in a row (a member that never reads its source must not block). */
const RING_MAX_DEFER_MS = 10_000;
export const CONTESTED: ErrorReason = "TargetContested";

/** What this process remembers about writers of targets (contests, rings): an optimisation, lost on restart. */
export class DriftState {
  readonly flows = new FlowGraph();
  readonly #contests = new Map<string, ContestState>();
  readonly #deferredSince = new Map<string, number>();
  #contested = 0;
  /** Called when the number of contested ResourceSyncs changes (the metric). */
  onContested?: (count: number) => void;

  contest(key: string): ContestState | undefined {
    return this.#contests.get(key);
  }

  setContest(key: string, state: ContestState | undefined): void {
    const before = this.#contests.get(key)?.contested ?? false;
    if (state) this.#contests.set(key, state);
    else this.#contests.delete(key);
    const after = state?.contested ?? false;
    if (before !== after) {
      this.#contested += after ? 1 : -1;
      this.onContested?.(this.#contested);
    }
  }

  /** While a contested repair waits: a change of the target need not wake the ResourceSync (its timer will). */
  holding(key: string, now: number): boolean {
    const s = this.#contests.get(key);
    return s?.contested === true && now < s.nextRepairAt;
  }

  deferral(key: string, now: number): number {
    const since = this.#deferredSince.get(key);
    if (since === undefined) this.#deferredSince.set(key, now);
    return since === undefined ? 0 : now - since;
  }

  undefer(key: string): void {
    this.#deferredSince.delete(key);
  }

  forget(key: string): void {
    this.setContest(key, undefined);
    this.#deferredSince.delete(key);
    this.flows.remove(key);
  }
}

export interface TargetWrite {
  key: string;
  rs: KubeObject;
  desired: KubeObject;
  source: ResolvedEnd;
  sourceObject: KubeObject;
  target: ResolvedEnd;
  liveObject: KubeObject | undefined;
  /** uid of the sync record that holds for this target, if any. */
  recordUid: string | undefined;
  /** That record's fieldSetHash: what the last apply set, when this process does not remember it (a restart). */
  recordFields?: string | undefined;
  /** The apply was refused: what to do instead (write-target.ts replaces on an immutable change), or rethrow. */
  onRefused?: (err: unknown) => Promise<KubeObject>;
}

export type WriteOutcome =
  /** In place (applied now, or nothing to do); `fields`: the fieldSetHash of the object's last apply. */
  | { kind: "synced"; uid: string; fields: string }
  /** A repair waits for a change travelling round a ring of ResourceSyncs. */
  | { kind: "defer"; afterMs: number }
  /** Another writer keeps rewriting the target: report it, look again after `afterMs`. */
  | { kind: "contested"; uid: string; writer: string; afterMs: number; fields: string };

export async function writeTarget(w: TargetWrite, ctx: ReconcileContext): Promise<WriteOutcome> {
  const { key, desired, target, liveObject } = w;
  const drift = ctx.drift;
  const now = Date.now();
  const hash = createHash("sha1").update(JSON.stringify(desired)).digest("base64");
  const shape = fieldShape(desired);
  const targetWatch = watchIdentity(target);
  const memo = ctx.applied.get(key);
  const sameTarget = memo?.target === targetWatch;
  const liveRv = liveObject?.metadata?.resourceVersion;
  const liveUid = liveObject?.metadata?.uid ?? "";
  observe(w, targetWatch, now, ctx);
  // a cache that no longer follows its cluster (watch down) proves nothing: apply, and learn the truth
  const trusted =
    w.recordUid === liveUid &&
    ctx.watches.live(target.client, target.resource, target.namespace, target.name);
  const unchanged = sameTarget && memo.hash === hash && liveRv === memo.resourceVersion;
  // what the last apply set: remembered, or after a restart as the sync record says (then only an object that
  // carries Sinker's apply counts)
  const lastShape = sameTarget ? memo.shape : memo ? undefined : recordedShape(w);
  const inPlace =
    lastShape === shape &&
    liveObject !== undefined &&
    !liveObject.metadata?.deletionTimestamp &&
    coveredBy(withoutType(desired), liveObject);
  if (trusted && (unchanged || inPlace)) {
    if (!unchanged) {
      ctx.applied.set(key, { target: targetWatch, resourceVersion: liveRv ?? "", hash, shape });
      drift.flows.update(key, liveRv ? { appliedRv: liveRv } : {});
    }
    drift.undefer(key);
    return calm(key, liveUid, shape, now, ctx);
  }

  // The source projects what was applied last, yet the target differs: someone else changed it.
  const repair = sameTarget && memo.hash === hash;
  const held = repair ? holdRepair(w, now, ctx) : undefined;
  if (held) return held;
  drift.undefer(key);
  const result = await track(
    target.client,
    ctx,
    target.client.apply(target.resource, desired, { fieldManager: FIELD_MANAGER, force: true }),
  ).catch((err: unknown) => {
    if (!w.onRefused) throw err;
    return w.onRefused(err);
  });
  const appliedRv = result.metadata?.resourceVersion ?? "";
  ctx.applied.set(key, { target: targetWatch, resourceVersion: appliedRv, hash, shape });
  drift.flows.update(key, { appliedRv });
  ctx.onApplied?.(key);
  // an apply that changed the object undid another writer's change
  if (repair && appliedRv !== liveRv) recordRepair(key, liveObject, now, ctx);
  const uid = result.metadata?.uid ?? "";
  const state = drift.contest(key);
  if (!state?.contested) return { kind: "synced", uid, fields: shape };
  // look again when the next repair is due, or when the quiet period after this one is over
  const afterMs = Math.min(DEFAULT_CONTEST_POLICY.quietMs, Math.max(1_000, state.nextRepairAt - now));
  return { kind: "contested", uid, writer: state.writer, afterMs, fields: shape };
}

/** The fieldSetHash of the sync record, when the live target is that record's object and carries Sinker's apply. */
function recordedShape(w: TargetWrite): string | undefined {
  const live = w.liveObject;
  if (!live || !w.recordFields || live.metadata?.uid !== w.recordUid) return undefined;
  return (live.metadata?.managedFields ?? []).some(isSinkerApply) ? w.recordFields : undefined;
}

/** Records where this ResourceSync reads and writes (rings), and a contest its status reports (a restart). */
function observe(w: TargetWrite, targetWatch: string, now: number, ctx: ReconcileContext): void {
  const drift = ctx.drift;
  const sourceRv = w.sourceObject.metadata?.resourceVersion;
  const before = drift.flows.get(w.key);
  drift.flows.set(w.key, {
    source: watchIdentity(w.source),
    target: targetWatch,
    ...(sourceRv ? { sourceRv } : {}),
    ...(before?.target === targetWatch && before.appliedRv ? { appliedRv: before.appliedRv } : {}),
  });
  if (!drift.contest(w.key) && readyReason(w.rs) === CONTESTED) {
    // restarted during a contest: the status says so, start again at the first delay
    const writer = otherWriter(w.liveObject?.metadata?.managedFields, FIELD_MANAGER);
    drift.setContest(w.key, restoredContest(now, writer));
  }
}

/** A repair waits while a change travels round its ring, or while its contest's delay runs. */
function holdRepair(w: TargetWrite, now: number, ctx: ReconcileContext): WriteOutcome | undefined {
  const drift = ctx.drift;
  const ring = ringThrough(drift.flows, w.key);
  const liveRv = w.liveObject?.metadata?.resourceVersion;
  const sourceRv = w.sourceObject.metadata?.resourceVersion;
  if (
    ring &&
    ringInMotion(drift.flows, ring, liveRv, sourceRv, ctx.pending ?? (() => false)) &&
    drift.deferral(w.key, now) < RING_MAX_DEFER_MS
  ) {
    return { kind: "defer", afterMs: RING_RETRY_MS };
  }
  const state = drift.contest(w.key);
  const decision = decideRepair(state, now);
  if (decision.kind === "repair" || !state) return undefined;
  return {
    kind: "contested",
    uid: w.liveObject?.metadata?.uid ?? "",
    writer: state.writer,
    afterMs: decision.retryInMs,
    fields: ctx.applied.get(w.key)?.shape ?? w.recordFields ?? "",
  };
}

function recordRepair(
  key: string,
  liveObject: KubeObject | undefined,
  now: number,
  ctx: ReconcileContext,
): void {
  const writer = liveObject
    ? otherWriter(liveObject.metadata?.managedFields, FIELD_MANAGER)
    : "a writer that deletes the target";
  ctx.drift.setContest(key, afterRepair(ctx.drift.contest(key), now, writer).state);
  ctx.onRepair?.(key);
}

/** Nothing to write: a contest ends once the last repair held for the quiet period. */
function calm(key: string, uid: string, fields: string, now: number, ctx: ReconcileContext): WriteOutcome {
  const before = ctx.drift.contest(key);
  const { state, retryInMs } = afterCalm(before, now);
  ctx.drift.setContest(key, state);
  if (state?.contested && before)
    return { kind: "contested", uid, writer: before.writer, afterMs: retryInMs ?? 1_000, fields };
  return { kind: "synced", uid, fields };
}

/** The projection without apiVersion and kind: the same object by construction, and listed objects lack them. */
function withoutType(desired: KubeObject): KubeObject {
  const { apiVersion: _v, kind: _k, ...rest } = desired;
  return rest;
}

function readyReason(rs: KubeObject): string | undefined {
  return findCondition(rs.status as SyncStatus | undefined, READY)?.reason;
}
