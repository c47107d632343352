import type { WritePolicy } from "../api/types.ts";
import { truncateMessage } from "../kube/api-message.ts";
import type { AppliedTarget } from "./sync-record.ts";

/**
 * The ResourceSync status as a pure function of the previous status and the outcome of a reconcile, so that
 * the rules (kept lastTransitionTime, observedGeneration, the Rust-compatible ResourceSyncFailing condition and
 * the Ready condition) are unit-tested without a cluster.
 */

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SyncStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  /** The sync record (see sync-record.ts); null in a patch removes it. */
  appliedTarget?: AppliedTarget | null;
  /** The write policy the last success acted under (spec.writePolicy, default Apply). */
  writePolicy?: WritePolicy;
}

export type Outcome =
  | { ok: true; message: string; writePolicy?: WritePolicy }
  | { ok: false; reason: string; message: string };

export const READY = "Ready";
/** The condition the Rust controller reports; kept with the same type and reason for alert compatibility. */
export const FAILING = "ResourceSyncFailing";

export { truncateMessage };

function rfc3339(now: Date): string {
  // metav1.Time has second precision.
  return `${now.toISOString().slice(0, 19)}Z`;
}

/** `conditions` with `next` set, its lastTransitionTime kept while its status holds. */
export function withCondition(
  conditions: Condition[],
  next: Omit<Condition, "lastTransitionTime">,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === next.type);
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : rfc3339(now);
  const condition: Condition = { ...next, lastTransitionTime };
  return previous
    ? conditions.map((c) => (c.type === next.type ? condition : c))
    : [...conditions, condition];
}

/**
 * The status a ResourceSync should have after a reconcile with the given outcome. `record`: the new sync
 * record, null to remove it, undefined to keep the previous one.
 */
export function nextStatus(
  previous: SyncStatus | undefined,
  generation: number | undefined,
  outcome: Outcome,
  now: Date,
  record?: AppliedTarget | null,
): SyncStatus {
  let conditions = (previous?.conditions ?? []).filter((c) => c && typeof c.type === "string");
  const message = truncateMessage(outcome.message);
  if (outcome.ok) {
    conditions = withCondition(
      conditions,
      { type: READY, status: "True", reason: "Synced", message, observedGeneration: generation },
      now,
    );
    // Turned to False rather than removed, as the Rust controller's latest releases do, so alerts clear.
    if (conditions.some((c) => c.type === FAILING)) {
      conditions = withCondition(
        conditions,
        { type: FAILING, status: "False", reason: FAILING, message: "", observedGeneration: generation },
        now,
      );
    }
  } else {
    conditions = withCondition(
      conditions,
      { type: FAILING, status: "True", reason: FAILING, message, observedGeneration: generation },
      now,
    );
    conditions = withCondition(
      conditions,
      { type: READY, status: "False", reason: outcome.reason, message, observedGeneration: generation },
      now,
    );
  }
  const status: SyncStatus = { conditions };
  if (generation !== undefined) status.observedGeneration = generation;
  const writePolicy = (outcome.ok ? outcome.writePolicy : undefined) ?? previous?.writePolicy;
  if (writePolicy) status.writePolicy = writePolicy;
  const applied = record === undefined ? previous?.appliedTarget : record;
  if (applied) status.appliedTarget = applied;
  else if (record === null && previous?.appliedTarget) status.appliedTarget = null;
  return status;
}

/**
 * Whether writing `next` would change anything the API server holds (ignores key order and the order of
 * conditions). Compared field by field rather than through JSON: it runs on every reconcile.
 */
export function statusDiffers(previous: SyncStatus | undefined, next: SyncStatus): boolean {
  return !(
    previous?.observedGeneration === next.observedGeneration &&
    previous?.writePolicy === next.writePolicy &&
    sameJsonValue(previous?.appliedTarget ?? undefined, next.appliedTarget ?? undefined) &&
    sameConditions(previous?.conditions ?? [], next.conditions ?? [])
  );
}

function sameConditions(a: readonly Condition[], b: readonly Condition[]): boolean {
  if (a.length !== b.length) return false;
  const sa = a.length > 1 ? [...a].sort(byType) : a;
  const sb = b.length > 1 ? [...b].sort(byType) : b;
  return sa.every((c, i) => {
    const d = sb[i] as Condition;
    return (
      c.type === d.type &&
      c.status === d.status &&
      c.reason === d.reason &&
      c.message === d.message &&
      c.lastTransitionTime === d.lastTransitionTime &&
      c.observedGeneration === d.observedGeneration
    );
  });
}

function byType(a: Condition, b: Condition): number {
  return String(a.type).localeCompare(String(b.type));
}

/** Equal as JSON documents: key order aside, a property holding undefined counts as absent. */
function sameJsonValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => sameJsonValue(v ?? null, b[i] ?? null));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let defined = 0;
  for (const k of Object.keys(ra)) {
    if (ra[k] === undefined) continue;
    defined++;
    if (!sameJsonValue(ra[k], rb[k])) return false;
  }
  for (const k of Object.keys(rb)) if (rb[k] !== undefined) defined--;
  return defined === 0;
}

export function findCondition(status: SyncStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/**
 * Whether a successful reconcile is worth a `Synced` Event, given the Ready condition before it: only a
 * recovery (Ready was False). A first success is not: the Ready condition already says it, and at N ResourceSyncs
 * its Event would cost N more requests (a quarter of all requests at start-up, measured by `npm run bench`)
 * for a message no one reads; a recovery closes a Warning Event that someone may be looking at.
 */
export function syncedEventWorthIt(readyBefore: Condition | undefined): boolean {
  return readyBefore?.status === "False";
}
