/**
 * What this process last applied for each ResourceSync, and the one owner of it: drift.ts records each apply,
 * the watch routing asks whether a change of a watched object is the echo of that apply (or a change of the
 * target a contested repair holds), and `forget` drops a ResourceSync no longer managed. An optimisation only:
 * what Sinker did lives in the API (the sync record), so a restart without it decides the same.
 */
import type { AppliedMemo } from "./context.ts";
import { isEcho } from "./event-filters.ts";
import { eventIdentity } from "./live-target.ts";
import type { WatchChange } from "./watches.ts";

export class AppliedMemos {
  readonly #memos = new Map<string, AppliedMemo>();
  /** Per ResourceSync being finalized: the target this process just deleted (watchIdentity and uid). */
  readonly #deleted = new Map<string, { target: string; uid: string }>();

  get(key: string): AppliedMemo | undefined {
    return this.#memos.get(key);
  }

  set(key: string, memo: AppliedMemo): void {
    this.#memos.set(key, memo);
  }

  delete(key: string): void {
    this.#memos.delete(key);
    this.#deleted.delete(key);
  }

  /** Whether anything is remembered of `key` (a ResourceSync not yet forgotten). */
  has(key: string): boolean {
    return this.#memos.has(key) || this.#deleted.has(key);
  }

  /**
   * Records that this process's DELETE removed `key`'s target at once (the API server said so): the watch's
   * DELETED event of that object (that uid) is then the echo of it, and wakes nobody.
   */
  deletedTarget(key: string, target: string, uid: string): void {
    this.#deleted.set(key, { target, uid });
  }

  /**
   * Whether a watched object's change is the echo of this process's own last apply for `key`, or the removal of
   * the target this process just deleted for it.
   */
  isEcho(key: string, event: WatchChange): boolean {
    if (event.type === "deleted") {
      const d = this.#deleted.get(key);
      return d !== undefined && d.uid === event.object.metadata?.uid && eventIdentity(event) === d.target;
    }
    return isEcho(this.#memos.get(key), event);
  }

  /** Whether a watched object's change is about the object `key` applied last (its target). */
  isTarget(key: string, event: WatchChange): boolean {
    const memo = this.#memos.get(key);
    return memo !== undefined && eventIdentity(event) === memo.target;
  }
}
