/**
 * Where events go. A change seen by the shared watches: to the set controller when the watch user is one of its
 * sets (a sourceSelector's sources), else to the ResourceSync's key in the queue, unless it is the echo of
 * Sinker's own apply or a contested target's change while its repair waits for its timer. A ResourceSync event:
 * to the set controller, our own writes, the claims, the state gauge, and (when it matters) the queue.
 */
import type { InformerEvent } from "../kube/informer.ts";
import { keyOf } from "../kube/object.ts";
import type { WorkQueue } from "../runtime/queue.ts";
import type { AppliedMemos } from "./applied.ts";
import type { ClaimIndex } from "./claims.ts";
import type { DriftState } from "./drift.ts";
import { resourceSyncChangeMatters } from "./event-filters.ts";
import type { OutcomeGauge } from "./outcome-gauge.ts";
import type { OwnWrites } from "./own-writes.ts";
import type { WatchChange, Watches } from "./watches.ts";

/** The part of the set controller that takes the changes of its sets' sources and the ResourceSync events. */
export interface WatchUserRouter {
  onResourceSync(event: InformerEvent): void;
  /** Whether a key of the shared watches is one of the set controller's, not a ResourceSync. */
  ownsWatchKey(key: string): boolean;
  onWatch(key: string, change?: WatchChange): void;
}

export interface RoutingDeps {
  queue: WorkQueue;
  applied: AppliedMemos;
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
        if (d.applied.isEcho(key, event)) continue;
        // a contested repair waits for its timer: the other writer's changes of the target need not wake it
        if (d.drift.holding(key, now) && d.applied.isTarget(key, event)) continue;
        if (!d.changedAt.has(key)) d.changedAt.set(key, now);
        // seen while this ResourceSync's reconcile is in flight: perhaps the echo of the apply it is making,
        // whose answer (and resourceVersion) is not back yet; it runs again only if that turns out otherwise
        d.queue.add(key, () => !d.applied.isEcho(key, event));
      }
    },
  };
}
export interface ResourceSyncRoutingDeps {
  queue: WorkQueue;
  written: OwnWrites;
  claims: ClaimIndex;
  gauge: OutcomeGauge;
  fanout(): WatchUserRouter | undefined;
  /**
   * Whether this process still remembers a ResourceSync (watch references, an apply memo): one that is not is
   * already forgotten (its finalizer ran here), and its DELETED event has nothing left to reconcile.
   */
  remembers(key: string): boolean;
}

/** The ResourceSync informer's events. */
export function resourceSyncRouting(d: ResourceSyncRoutingDeps): (event: InformerEvent) => void {
  return (event) => {
    d.fanout()?.onResourceSync(event);
    const key = keyOf(event.object);
    d.written.observed(key, event.type === "deleted" ? undefined : event.object);
    if (event.type === "deleted") {
      // a ResourceSync that reported a conflict with this one may take the target over now
      for (const other of d.claims.remove(key)) d.queue.add(other);
      d.gauge.set(key, undefined);
      if (!d.remembers(key)) return;
    } else d.claims.update(event.object);
    if (event.type === "modified" && event.old && !resourceSyncChangeMatters(event.old, event.object)) return;
    d.queue.add(key);
  };
}
