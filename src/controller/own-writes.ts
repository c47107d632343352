/**
 * The ResourceSync as our own last write returned it (finalizer, status), per key, until the cache has caught up:
 * a decision never rests on a cache older than what we wrote ourselves (no second finalization). The one owner of
 * that memory: the reconciler records its writes here and reads through `latest`, the ResourceSync informer's
 * events let it go as soon as the cache holds the write (not at the next reconcile, 10 min later).
 */
import { FINALIZER } from "../api/types.ts";
import { stripForCache } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";
import { rvNewer } from "../kube/resource-version.ts";

export class OwnWrites {
  readonly #written = new Map<string, KubeObject>();

  /** Our write of the ResourceSync `key`, as the API server answered it. */
  remember(key: string, answer: KubeObject): void {
    // kept as the cache would hold it (no managedFields trees): at N ResourceSyncs this holds up to N
    this.#written.set(key, stripForCache(answer));
  }

  get(key: string): KubeObject | undefined {
    return this.#written.get(key);
  }

  /** The newer of the cached ResourceSync and our own last write of it. */
  latest(key: string, cached: KubeObject | undefined): KubeObject | undefined {
    const mine = this.#written.get(key);
    if (!mine) return cached;
    if (!writtenSuperseded(mine, cached)) return mine;
    this.#written.delete(key); // gone, another object of that name now, or the cache caught up
    return cached;
  }

  /** The cache now holds `cached` for `key` (undefined: deleted): our write is dropped once superseded. */
  observed(key: string, cached: KubeObject | undefined): void {
    const mine = this.#written.get(key);
    if (mine && writtenSuperseded(mine, cached)) this.#written.delete(key);
  }
}

/**
 * Whether our own last write of a ResourceSync (`mine`) is no longer needed beside the cached version: the
 * ResourceSync is gone, is another object of that name now, or the cache has caught up with the write.
 */
export function writtenSuperseded(mine: KubeObject, cached: KubeObject | undefined): boolean {
  if (!cached || cached.metadata?.uid !== mine.metadata?.uid) return true;
  // Removing the last finalizer deletes the object, and the answer carries the resourceVersion it had before,
  // which the cache may hold already: still older than our write while it shows our finalizer, which nobody can
  // add back to an object being deleted. Dropped with the deletion event.
  const finalizerRemoved = (o: KubeObject) =>
    Boolean(o.metadata?.deletionTimestamp) && !(o.metadata?.finalizers ?? []).includes(FINALIZER);
  if (finalizerRemoved(mine) && !finalizerRemoved(cached)) return false;
  return !rvNewer(mine.metadata?.resourceVersion, cached.metadata?.resourceVersion);
}
