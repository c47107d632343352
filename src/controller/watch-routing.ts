/**
 * Where a change seen by the shared watches goes: to the set controller when the watch user is one of its sets
 * (a sourceSelector's sources), else to the ResourceSync's key in the queue, unless it is the echo of Sinker's own
 * apply or a contested target's change while its repair waits for its timer.
 */
import type { WorkQueue } from "../runtime/queue.ts";
import type { AppliedMemo } from "./context.ts";
import type { DriftState } from "./drift.ts";
import { isEcho } from "./event-filters.ts";
import { watchIdentity } from "./live-target.ts";
import type { WatchChange, Watches } from "./watches.ts";

/** The part of the set controller that takes the changes of its sets' sources. */
export interface WatchUserRouter {
  /** Whether a key of the shared watches is one of the set controller's, not a ResourceSync. */
  ownsWatchKey(key: string): boolean;
  onWatch(key: string, change?: WatchChange): void;
}

export interface RoutingDeps {
  queue: WorkQueue;
  applied: ReadonlyMap<string, AppliedMemo>;
  drift: DriftState;
  /** When a watched source or target changed, per key (the source-change → applied latency). */
  changedAt: Map<string, number>;
  /** The set controller, once started (undefined before, or with fan-out off). */
  fanout(): WatchUserRouter | undefined;
}

type Routes = Pick<ConstructorParameters<typeof Watches>[0], "onRecovered" | "onTrouble" | "onChange">;

export function watchRouting(d: RoutingDeps): Routes {
  const toOwner = (key: string, change?: WatchChange) => {
    const fanout = d.fanout();
    if (fanout?.ownsWatchKey(key)) fanout.onWatch(key, change);
    else d.queue.add(key);
  };
  return {
    onRecovered: (keys) => {
      for (const key of keys) toOwner(key);
    },
    onTrouble: (keys) => {
      for (const key of keys) toOwner(key);
    },
    onChange: (keys, event) => {
      const now = Date.now();
      const fanout = d.fanout();
      for (const key of keys) {
        // a set's sources (sourceSelector) share these watches
        if (fanout?.ownsWatchKey(key)) {
          fanout.onWatch(key, event);
          continue;
        }
        const memo = d.applied.get(key);
        if (isEcho(memo, event)) continue;
        // a contested repair waits for its timer: the other writer's changes of the target need not wake it
        if (d.drift.holding(key, now) && memo && isTargetOf(memo, event)) continue;
        if (!d.changedAt.has(key)) d.changedAt.set(key, now);
        d.queue.add(key);
      }
    },
  };
}

/** Whether a watch event is about the object a ResourceSync applied last (its target). */
function isTargetOf(memo: AppliedMemo, event: WatchChange): boolean {
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
