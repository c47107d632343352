/**
 * What this process last applied for each ResourceSync, and the one owner of it: drift.ts records each apply,
 * the watch routing asks whether a change of a watched object is the echo of that apply (or a change of the
 * target a contested repair holds), and `forget` drops a ResourceSync no longer managed. An optimisation only:
 * what Sinker did lives in the API (the sync record), so a restart without it decides the same.
 */
import type { AppliedMemo } from "./context.ts";
import { isEcho } from "./event-filters.ts";
import { watchIdentity } from "./live-target.ts";
import type { WatchChange } from "./watches.ts";

export class AppliedMemos {
  readonly #memos = new Map<string, AppliedMemo>();

  get(key: string): AppliedMemo | undefined {
    return this.#memos.get(key);
  }

  set(key: string, memo: AppliedMemo): void {
    this.#memos.set(key, memo);
  }

  delete(key: string): void {
    this.#memos.delete(key);
  }

  /** Whether a watched object's change is the echo of this process's own last apply for `key`. */
  isEcho(key: string, event: WatchChange): boolean {
    return isEcho(this.#memos.get(key), event);
  }

  /** Whether a watched object's change is about the object `key` applied last (its target). */
  isTarget(key: string, event: WatchChange): boolean {
    const memo = this.#memos.get(key);
    if (!memo) return false;
    const meta = event.object.metadata;
    return (
      watchIdentity({
        client: { id: event.clientId },
        resource: event.resource,
        namespace: meta?.namespace,
        name: meta?.name ?? "",
      }) === memo.target
    );
  }
}
