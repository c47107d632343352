/**
 * The reconciler's decisions as pure functions of what the API says (the ResourceSync, its sync record, the
 * live target as the watch cache holds it), in the manner of kube-rs' `finalizer` helper: the reconciler
 * gathers the facts, asks here what to do, and does it. Table-driven tests cover every row
 * (test/unit/decisions.test.ts).
 */
import { SinkerError } from "../errors.ts";
import { type ClusterFacts, sameCluster } from "../kube/cluster-identity.ts";
import { type AppliedTarget, describeTarget, sameTarget, type TargetIdentity } from "./sync-record.ts";

/** The live target, as far as ownership is concerned. */
export type LiveTarget =
  | { exists: false }
  | {
      exists: true;
      uid: string;
      /** It has a deletionTimestamp. */
      deleting: boolean;
      /**
       * A managedFields entry of Sinker's field manager: its apply (this Sinker, or the Rust controller) or its
       * create (writePolicy CreateOnly).
       */
      writtenBySinker: boolean;
      /** An ownerReference to this ResourceSync (its uid). */
      ownedByThis: boolean;
    };

/** Is this existing object Sinker's, for this ResourceSync? */
export function isOurs(
  live: LiveTarget,
  record: AppliedTarget | undefined,
  claimedByOther: string | undefined,
): boolean {
  if (!live.exists) return false;
  // another ResourceSync holds it first (its record, maybe through another Secret of the same cluster)
  if (claimedByOther !== undefined) return false;
  if (record && record.uid === live.uid) return true;
  if (live.ownedByThis) return true;
  // Written with Sinker's field manager (the Rust controller, or a crash between apply and status write), and
  // no other ResourceSync records it as its own.
  return live.writtenBySinker;
}

export interface WriteFacts {
  target: TargetIdentity;
  record: AppliedTarget | undefined;
  live: LiveTarget;
  /** The ResourceSync's opt-in annotation to take over an existing object. */
  adopt: boolean;
  /** Another ResourceSync (its namespace/name) that holds this target first. */
  claimedBy: string | undefined;
}

/** May Sinker apply onto the target? undefined: yes; else the error to report (and nothing is written). */
export function decideWrite(f: WriteFacts): SinkerError | undefined {
  const what = describeTarget(f.target);
  if (f.claimedBy !== undefined) {
    return new SinkerError(
      "TargetConflict",
      `target ${what} is already synced by ResourceSync ${f.claimedBy}; this one does not write it`,
    );
  }
  if (!f.live.exists) return undefined;
  if (isOurs(f.live, sameTarget(f.record, f.target) ? f.record : undefined, undefined)) return undefined;
  if (f.adopt) return undefined;
  return new SinkerError(
    "TargetNotOwned",
    `target ${what} exists and was not written by Sinker; set the annotation ` +
      `${ANNOTATION_ADOPT_TARGET}: "true" on the ResourceSync to take it over`,
  );
}

/** One object as a resolved end names it: its cluster (as the cluster says), group, kind, namespace, name. */
export interface ObjectRef {
  facts: ClusterFacts;
  group: string;
  kind: string;
  namespace?: string | undefined;
  name: string;
}

/**
 * Do two ends name one object? In one cluster by its identity, not by the Secret or URL it is reached through
 * (a `localhost` alias of the local cluster is the local cluster).
 */
export function sameObject(a: ObjectRef, b: ObjectRef): boolean {
  return (
    a.group === b.group &&
    a.kind === b.kind &&
    (a.namespace ?? "") === (b.namespace ?? "") &&
    a.name === b.name &&
    sameCluster(a.facts, b.facts)
  );
}

export const ANNOTATION_ADOPT_TARGET = "sinker.influxdata.io/adopt-target";

export type ChangeAction = "none" | "forget-old" | "delete-old";

/** `spec.target` no longer names the recorded target: what happens to the old one. */
export function decideTargetChange(
  record: AppliedTarget | undefined,
  desired: TargetIdentity,
  disableTargetDeletion: boolean,
): ChangeAction {
  if (!record || sameTarget(record, desired)) return "none";
  return disableTargetDeletion ? "forget-old" : "delete-old";
}

/** One object a deleted ResourceSync may have to clean up, with what is known about it. */
export interface Candidate {
  target: TargetIdentity;
  /** The target could not be resolved (its cluster, kubeconfig or kind): why. */
  unresolved?: SinkerError;
  /** The live object (when resolved). */
  live?: LiveTarget;
  claimedBy?: string;
}

export interface FinalizeFacts {
  hasFinalizer: boolean;
  disableTargetDeletion: boolean;
  forceDelete: boolean;
  record: AppliedTarget | undefined;
  /** The recorded target, then (when it differs) the spec's target; empty when there is neither. */
  candidates: Candidate[];
}

export type FinalizeAction =
  | { kind: "none" }
  /** Remove the finalizer; `event` says why, when worth an Event. */
  | { kind: "release"; why: "never-applied" | "gone" | "not-ours"; deleted?: TargetIdentity }
  /** disable-target-deletion: remove Sinker's owner reference from the local target, then the finalizer. */
  | { kind: "orphan" }
  /** Delete this object (uid precondition), then wait for its watch to report it gone. */
  | { kind: "delete"; target: TargetIdentity; uid: string }
  /** The target is being deleted (its own finalizers): wait for its watch. */
  | { kind: "wait"; target: TargetIdentity }
  /** force-delete: give up on an unreachable target. */
  | { kind: "force-release"; error: SinkerError }
  | { kind: "fail"; error: SinkerError };

/**
 * Reasons that mean the recorded object cannot exist any more, or cannot be reached any more (its Secret now
 * reaches another cluster: nothing there is the recorded object).
 */
const GONE_FOR_GOOD = new Set(["UnknownKind", "ClusterChanged"]);

export function decideFinalize(f: FinalizeFacts): FinalizeAction {
  if (!f.hasFinalizer) return { kind: "none" };
  if (f.disableTargetDeletion) return { kind: "orphan" };
  let deleted: TargetIdentity | undefined;
  for (const c of f.candidates) {
    const recorded = f.record !== undefined && sameTarget(f.record, c.target);
    if (c.unresolved) {
      // Not recorded (only the spec's target): nothing provably applied there.
      if (!recorded || GONE_FOR_GOOD.has(c.unresolved.reason)) continue;
      if (f.forceDelete) return { kind: "force-release", error: c.unresolved };
      return { kind: "fail", error: c.unresolved };
    }
    const live = c.live;
    if (!live?.exists) {
      if (recorded) deleted = c.target;
      continue;
    }
    if (!isOurs(live, recorded ? f.record : undefined, c.claimedBy)) continue;
    if (live.deleting) return { kind: "wait", target: c.target };
    return { kind: "delete", target: c.target, uid: live.uid };
  }
  if (f.record === undefined && deleted === undefined) return { kind: "release", why: "never-applied" };
  return deleted ? { kind: "release", why: "gone", deleted } : { kind: "release", why: "not-ours" };
}

/**
 * Of ResourceSyncs that name one target, which one may write it: the one holding it in its record first
 * (earliest appliedAt), else the oldest (creationTimestamp), ties broken by namespace/name. The others report
 * a conflict.
 */
export interface Claimant {
  key: string;
  /** appliedAt of its record when its record names this target. */
  appliedAt?: string;
  createdAt: string;
}

export function claimWinner(claimants: Claimant[]): string | undefined {
  let best: Claimant | undefined;
  const rank = (c: Claimant): [number, string, string] => [
    c.appliedAt !== undefined ? 0 : 1,
    c.appliedAt ?? c.createdAt,
    c.key,
  ];
  for (const c of claimants) {
    if (!best) {
      best = c;
      continue;
    }
    const [a0, a1, a2] = rank(c);
    const [b0, b1, b2] = rank(best);
    if (a0 < b0 || (a0 === b0 && (a1 < b1 || (a1 === b1 && a2 < b2)))) best = c;
  }
  return best?.key;
}
