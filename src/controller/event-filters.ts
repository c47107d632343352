/**
 * Which watch events are worth a reconcile (the echo of our own apply is not; a status write is not), and the
 * start-up check that the CRD is served. Pure functions and one request, apart from the controller's wiring.
 */
import { FINALIZER, GROUP_VERSION, RESOURCE_SYNC_KIND } from "../api/types.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { KubeObject } from "../kube/object.ts";
import type { AppliedMemo } from "./context.ts";
import { eventIdentity } from "./live-target.ts";
import type { WatchChange } from "./watches.ts";

/**
 * Whether a watch event is the echo of the apply of this same ResourceSync: its object is the ResourceSync's
 * target and carries exactly the resourceVersion that apply returned. Every other change (someone else's, a
 * removal of a field Sinker owns, another ResourceSync's write in a chain) reconciles.
 */
export function isEcho(memo: AppliedMemo | undefined, event: WatchChange): boolean {
  if (!memo || event.type === "deleted") return false;
  const meta = event.object.metadata;
  if (!meta?.name || meta.resourceVersion !== memo.resourceVersion) return false;
  return eventIdentity(event) === memo.target;
}

/** Resolves the ResourceSync resource and lists it once, to fail early when the CRD is missing. */
export async function checkCrd(local: ClusterClient): Promise<ResourceInfo> {
  try {
    const resource = await local.resolve(GROUP_VERSION, RESOURCE_SYNC_KIND);
    await local.list(resource, undefined, { limit: 1 });
    return resource;
  } catch (err) {
    const error = asSinkerError(err);
    throw new SinkerError(
      error.reason,
      `CRD is not queryable (${GROUP_VERSION} ${RESOURCE_SYNC_KIND}): ${error.message}. Is the CRD installed?`,
      { cause: err },
    );
  }
}

/**
 * A ResourceSync change is worth a reconcile when its spec (generation), annotations, owner references (a set's
 * grant follows its controller owner: `--cascade=orphan` removes it) or deletion changed, or when someone removed
 * Sinker's finalizer (it is put back). Status writes and our own finalizer add are not.
 */
export function resourceSyncChangeMatters(old: KubeObject, next: KubeObject): boolean {
  const a = old.metadata ?? {};
  const b = next.metadata ?? {};
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    !sameStringMap(a.annotations, b.annotations) ||
    ((a.ownerReferences?.length ?? 0) + (b.ownerReferences?.length ?? 0) > 0 &&
      JSON.stringify(a.ownerReferences ?? []) !== JSON.stringify(b.ownerReferences ?? [])) ||
    (Boolean(a.finalizers?.includes(FINALIZER)) && !b.finalizers?.includes(FINALIZER))
  );
}

/** Whether two string maps (annotations) hold the same entries; absent and empty are the same. (Every status
 * write comes back as an event, and this runs for each: no JSON round trip.) */
function sameStringMap(
  a: Record<string, string> | undefined,
  b: Record<string, string> | undefined,
): boolean {
  const x = a ?? {};
  const y = b ?? {};
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => Object.hasOwn(y, k) && y[k] === x[k]);
}
