import { asSinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import type { ReconcileContext } from "./context.ts";
import { ResourceSyncConflict } from "./result.ts";

/**
 * A merge patch of the ResourceSync (its metadata, or its status subresource); the answer is remembered as this
 * ResourceSync's own write. A 409 means a newer version is on its way.
 */
export async function patchResourceSync(
  key: string,
  rs: KubeObject,
  ctx: ReconcileContext,
  body: KubeObject,
  opts: { subresource?: "status" } = {},
): Promise<KubeObject> {
  try {
    const out = await ctx.local.patch(
      ctx.resourceSyncResource,
      rs.metadata?.namespace,
      rs.metadata?.name ?? "",
      body,
      "merge",
      opts,
    );
    ctx.written.remember(key, out);
    return out;
  } catch (err) {
    if (asSinkerError(err).reason === "Conflict") throw new ResourceSyncConflict();
    throw err;
  }
}
