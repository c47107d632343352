/**
 * Writer contests, as pure decisions. A *repair* is an apply that undoes someone else's change of the target
 * while the source projects what was applied last (drift, not a source change). Another writer that keeps
 * rewriting fields Sinker owns (a second field manager, another ResourceSync, another controller) turns every
 * repair into a new change of theirs: left alone, the two write back and forth as fast as the API server lets
 * them. A few repairs within a short window mark the target *contested*: from then on a repair waits an
 * exponentially growing delay, and the contest ends once a repair has held (nobody rewrote the target) for a
 * quiet period, after which drift is repaired at once again. Source changes are never delayed.
 *
 * The state lives in memory as an optimisation; what must survive a restart is the `Ready` condition with
 * reason `TargetContested`, from which `restoredContest` starts again at the first delay.
 */

export interface ContestPolicy {
  /** Repairs within `windowMs` that mark a contest. */
  threshold: number;
  windowMs: number;
  /** First delay between repairs once contested; doubles after each contested repair, up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  /** A contested repair that nobody undoes for this long ends the contest. */
  quietMs: number;
}

export const DEFAULT_CONTEST_POLICY: ContestPolicy = {
  threshold: 3,
  windowMs: 30_000,
  baseMs: 5_000,
  maxMs: 5 * 60_000,
  quietMs: 10_000,
};

export interface ContestState {
  /** Times of the latest repairs within the window (at most `threshold`). */
  repairs: number[];
  contested: boolean;
  /** While contested: the delay before the next repair. */
  delayMs: number;
  /** While contested: no repair before this time. */
  nextRepairAt: number;
  lastRepairAt: number;
  /** Who rewrote the target last (a field manager, or a description), for the condition and Event. */
  writer: string;
}

export type RepairDecision = { kind: "repair" } | { kind: "hold"; retryInMs: number };

/** Whether a repair may be sent now, or must wait (contested and its delay not yet over). */
export function decideRepair(state: ContestState | undefined, now: number): RepairDecision {
  if (!state?.contested || now >= state.nextRepairAt) return { kind: "repair" };
  return { kind: "hold", retryInMs: state.nextRepairAt - now };
}

/**
 * The state after a repair was sent at `now` against `writer`. `detected`: this repair marked the contest.
 * `checkInMs`: when to look again (the quiet period: did the repair hold?); undefined when not contested.
 */
export function afterRepair(
  state: ContestState | undefined,
  now: number,
  writer: string,
  policy: ContestPolicy = DEFAULT_CONTEST_POLICY,
): { state: ContestState; detected: boolean; checkInMs?: number } {
  const repairs = [...(state?.repairs ?? []), now].filter((t) => now - t < policy.windowMs);
  const recent = repairs.slice(-policy.threshold);
  if (state?.contested) {
    const delayMs = Math.min(policy.maxMs, state.delayMs * 2);
    return {
      state: {
        repairs: recent,
        contested: true,
        delayMs,
        nextRepairAt: now + state.delayMs,
        lastRepairAt: now,
        writer,
      },
      detected: false,
      checkInMs: policy.quietMs,
    };
  }
  if (recent.length >= policy.threshold) {
    return {
      state: {
        repairs: recent,
        contested: true,
        delayMs: Math.min(policy.maxMs, policy.baseMs * 2),
        nextRepairAt: now + policy.baseMs,
        lastRepairAt: now,
        writer,
      },
      detected: true,
      checkInMs: policy.quietMs,
    };
  }
  return {
    state: {
      repairs: recent,
      contested: false,
      delayMs: policy.baseMs,
      nextRepairAt: 0,
      lastRepairAt: now,
      writer,
    },
    detected: false,
  };
}

/**
 * A reconcile found nothing to repair (the target holds what Sinker applied). A contest ends once the last
 * repair held for the quiet period (`ended`); before that it stays (`retryInMs`: when to look again). A state
 * without a contest is kept only while its repairs are within the window.
 */
export function afterCalm(
  state: ContestState | undefined,
  now: number,
  policy: ContestPolicy = DEFAULT_CONTEST_POLICY,
): { state: ContestState | undefined; ended: boolean; retryInMs?: number } {
  if (!state) return { state: undefined, ended: false };
  if (!state.contested) {
    const repairs = state.repairs.filter((t) => now - t < policy.windowMs);
    return { state: repairs.length > 0 ? { ...state, repairs } : undefined, ended: false };
  }
  const quietFor = now - state.lastRepairAt;
  if (quietFor >= policy.quietMs) return { state: undefined, ended: true };
  return { state, ended: false, retryInMs: policy.quietMs - quietFor };
}

/** After a restart, a ResourceSync whose status says TargetContested starts contested again at the first delay. */
export function restoredContest(
  now: number,
  writer: string,
  policy: ContestPolicy = DEFAULT_CONTEST_POLICY,
): ContestState {
  return {
    repairs: [],
    contested: true,
    delayMs: policy.baseMs,
    nextRepairAt: now + policy.baseMs,
    lastRepairAt: now,
    writer,
  };
}

/** Longest field manager name shown in a condition or Event (the API server does not bound it tightly). */
const MAX_WRITER = 128;

/**
 * Who rewrote the target, from its (cached) managedFields: the most recent entry of another manager, else
 * Sinker's own manager (another ResourceSync or another Sinker writing the same object). Control characters are
 * replaced and the name is cut, as it is written into status and Events.
 */
export function otherWriter(
  managedFields: ReadonlyArray<{ manager?: string; time?: string }> | undefined,
  self: string,
): string {
  let best: { manager: string; time: string } | undefined;
  for (const m of managedFields ?? []) {
    if (!m.manager || m.manager === self) continue;
    const time = m.time ?? "";
    if (!best || time > best.time) best = { manager: m.manager, time };
  }
  if (!best) return `another writer with Sinker's field manager ${self} (another ResourceSync or controller)`;
  const clean = [...best.manager].map((c) => (c < " " || c === "\u007f" ? "?" : c)).join("");
  return `field manager "${clean.length > MAX_WRITER ? `${clean.slice(0, MAX_WRITER)}...` : clean}"`;
}

export function contestMessage(target: string, writer: string): string {
  return (
    `target ${target} is contested: ${writer} keeps rewriting fields Sinker applies; Sinker repairs it with ` +
    "back-off until the other writer stops"
  );
}
