/**
 * Kept means kept (docs/spec/resourcesync.md#kept-means-kept): whenever Sinker leaves a local target in place
 * (disable-target-deletion on deletion or on a change of spec.target, a set's pruning Orphan), the target must
 * carry no ownerReference to the ResourceSync, or the garbage collector deletes it once the ResourceSync is gone.
 * Only Sinker's own reference is removed, with a JSON patch that tests it first, so other owners and concurrent
 * writers are never disturbed.
 */

import { asSinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { KubeObject } from "../kube/object.ts";

export type JsonPatchOp = { op: "test"; path: string; value: unknown } | { op: "remove"; path: string };

/**
 * The JSON patch removing the ownerReference to `ownerUid` from `obj`: undefined when it has none. Each removal
 * is preceded by a test of that entry's uid, so a list changed meanwhile makes the patch fail instead of removing
 * another owner's entry. Entries are removed from the last to the first (indices stay valid).
 */
export function ownerReferenceRemoval(
  obj: KubeObject | undefined,
  ownerUid: string,
): JsonPatchOp[] | undefined {
  if (ownerUid === "") return undefined;
  const refs = obj?.metadata?.ownerReferences ?? [];
  const ops: JsonPatchOp[] = [];
  for (let i = refs.length - 1; i >= 0; i--) {
    if (refs[i]?.uid !== ownerUid) continue;
    ops.push({ op: "test", path: `/metadata/ownerReferences/${i}/uid`, value: ownerUid });
    ops.push({ op: "remove", path: `/metadata/ownerReferences/${i}` });
  }
  return ops.length > 0 ? ops : undefined;
}

/** A failed test op (the list changed between our read and our patch) is worth a fresh read, a few times. */
const ATTEMPTS = 3;

/**
 * Removes the ownerReference to `ownerUid` from the object, when it has one. Returns whether it removed one
 * ("none": no such reference, or no such object). Throws what the API server answered after the last attempt.
 */
export async function releaseFromOwner(
  client: ClusterClient,
  resource: ResourceInfo,
  namespace: string | undefined,
  name: string,
  ownerUid: string,
): Promise<"released" | "none"> {
  for (let attempt = 1; ; attempt++) {
    const live = await client.get(resource, namespace, name);
    const patch = ownerReferenceRemoval(live, ownerUid);
    if (!patch) return "none";
    try {
      await client.patch(resource, namespace, name, patch, "json");
      return "released";
    } catch (err) {
      const reason = asSinkerError(err).reason;
      if (reason === "NotFound") return "none";
      // 422 from a failed test op, 409 from a concurrent update: read again
      if ((reason !== "Invalid" && reason !== "Conflict") || attempt >= ATTEMPTS) throw err;
    }
  }
}

/** A kind the cluster no longer serves has no object left to release. */
export function noObjectOfUnknownKind(err: unknown): undefined {
  if (asSinkerError(err).reason === "UnknownKind") return undefined;
  throw err;
}
