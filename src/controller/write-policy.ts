/**
 * The write policy and replacement on an immutable change
 * (docs/spec/resourcesync.md#write-policy-and-immutable-fields), as pure decisions over what the API says (the
 * spec, the live target, the apply's refusal, status.replacement). write-target.ts does what they decide.
 *
 * - `writePolicy: Apply` (default): server-side apply on every change, as always.
 * - `writePolicy: CreateOnly`: create the target whenever it is absent, never update an existing one. "Absent"
 *   is read from the target's watch, so it holds across restarts with nothing kept in memory: a target deleted
 *   by hand is created again (from the source as it is then), once per deletion.
 * - `onImmutableChange: Replace`: an apply refused because a field is immutable deletes the object Sinker wrote
 *   (uid precondition) and creates it again, at most MAX_REPLACE_ATTEMPTS times per source resourceVersion and
 *   ResourceSync generation. The count lives in status.replacement and is written before each attempt, so a
 *   crash or restart cannot reset it into a loop (a co-owning writer that flips the field back would otherwise
 *   make Sinker delete and re-create forever, as Kyverno PR #15857 did).
 */
import type { ImmutableChangePolicy, WritePolicy } from "../api/types.ts";
import { SinkerError } from "../errors.ts";
import { isPlainObject } from "../kube/object.ts";
import type { LiveTarget } from "./decisions.ts";

/** Replacements per source version and generation before Sinker gives up until one of them changes. */
export const MAX_REPLACE_ATTEMPTS = 3;

export type WriteAction = "apply" | "create" | "leave";

/**
 * What to do with a target Sinker may write (ownership is decided first, by decideWrite): apply it, create it
 * (CreateOnly, absent), or leave it as it is (CreateOnly, present; also while it is being deleted: its deletion
 * event brings the ResourceSync back, and it is created then).
 */
export function decideWriteAction(policy: WritePolicy, live: LiveTarget): WriteAction {
  if (policy === "Apply") return "apply";
  return live.exists ? "leave" : "create";
}

/** `status.replacement`. */
export interface ReplacementRecord {
  generation?: number;
  sourceResourceVersion?: string;
  attempts: number;
  lastAttemptTime?: string;
}

/** Reads `status.replacement`; undefined when absent or malformed (then no attempt counts). */
export function readReplacement(status: unknown): ReplacementRecord | undefined {
  if (!isPlainObject(status) || !isPlainObject(status.replacement)) return undefined;
  const r = status.replacement;
  if (typeof r.attempts !== "number" || !Number.isInteger(r.attempts) || r.attempts < 0) return undefined;
  return {
    attempts: r.attempts,
    ...(typeof r.generation === "number" ? { generation: r.generation } : {}),
    ...(typeof r.sourceResourceVersion === "string"
      ? { sourceResourceVersion: r.sourceResourceVersion }
      : {}),
    ...(typeof r.lastAttemptTime === "string" ? { lastAttemptTime: r.lastAttemptTime } : {}),
  };
}

export interface ReplaceFacts {
  policy: ImmutableChangePolicy;
  /** Why the apply failed. */
  error: SinkerError;
  live: LiveTarget;
  /** The live target is the object Sinker wrote for this ResourceSync (isOurs). */
  ours: boolean;
  /**
   * The ResourceSync carries adopt-target: its target may have existed before Sinker wrote it. Once applied, an
   * adopted object has Sinker's field manager and the record's uid like one Sinker created, so only the
   * annotation tells them apart; such a target is never deleted for a replacement.
   */
  adopt: boolean;
  previous: ReplacementRecord | undefined;
  generation: number | undefined;
  sourceResourceVersion: string | undefined;
}

export type ReplaceDecision =
  /** Report this error (the apply's own, or why Sinker does not replace). */
  | { kind: "fail"; error: SinkerError }
  /** Record `record` in status, then delete the object with this uid and create it again. */
  | { kind: "replace"; uid: string; fields: readonly string[]; record: ReplacementRecord };

const FIELD_HINT = "set spec.onImmutableChange: Replace to have Sinker delete and re-create the target";

/** After an apply failed: replace the target, or report why not. */
export function decideReplace(f: ReplaceFacts, now: Date): ReplaceDecision {
  const fields = f.error.immutableFields;
  if (fields === undefined) return { kind: "fail", error: f.error };
  const named = fields.length > 0 ? `immutable field ${fields.join(", ")}` : "an immutable field";
  const withMessage = (reason: SinkerError["reason"], message: string) =>
    new SinkerError(reason, message, { status: f.error.status ?? 422, immutableFields: fields });
  if (f.policy !== "Replace")
    return { kind: "fail", error: withMessage("Invalid", `${f.error.message} (${FIELD_HINT})`) };
  if (!f.live.exists || f.live.deleting) {
    // Gone or going since the apply: the next reconcile creates it.
    return { kind: "fail", error: withMessage("Conflict", `target is being deleted; ${named} changed`) };
  }
  if (!f.ours || f.adopt) {
    return {
      kind: "fail",
      error: withMessage(
        "Invalid",
        `${f.error.message} (not replaced: the target may have been adopted (adopt-target) rather than created ` +
          "by Sinker, and Sinker deletes only what it created)",
      ),
    };
  }
  const same =
    f.previous !== undefined &&
    f.previous.generation === f.generation &&
    f.previous.sourceResourceVersion === f.sourceResourceVersion;
  const attempts = same ? (f.previous?.attempts ?? 0) : 0;
  if (attempts >= MAX_REPLACE_ATTEMPTS) {
    return {
      kind: "fail",
      error: withMessage(
        "ReplaceLimitReached",
        `the target was replaced ${attempts} times for this source version and is still refused (${named}); ` +
          "Sinker replaces it again when the source or the ResourceSync changes",
      ),
    };
  }
  return {
    kind: "replace",
    uid: f.live.uid,
    fields,
    record: {
      ...(f.generation !== undefined ? { generation: f.generation } : {}),
      ...(f.sourceResourceVersion !== undefined ? { sourceResourceVersion: f.sourceResourceVersion } : {}),
      attempts: attempts + 1,
      lastAttemptTime: `${now.toISOString().slice(0, 19)}Z`,
    },
  };
}
