/**
 * Writing the target as the write policy says (decisions in write-policy.ts): a server-side apply, a create that
 * never overwrites (CreateOnly), or a replacement when an apply is refused because a field is immutable.
 */
import { annotationIsTrue, FIELD_MANAGER, type ResourceSync } from "../api/types.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import type { ReconcileContext } from "./context.ts";
import { ANNOTATION_ADOPT_TARGET, isOurs, type LiveTarget } from "./decisions.ts";
import { track } from "./reachability.ts";
import { describeEnd, type ResolvedEnd } from "./resolve.ts";
import { patchResourceSync } from "./resourcesync-patch.ts";
import { type AppliedTarget, sameTarget, type TargetIdentity } from "./sync-record.ts";
import { decideReplace, MAX_REPLACE_ATTEMPTS, readReplacement } from "./write-policy.ts";

export interface WriteInput {
  key: string;
  /** The ResourceSync as last read or written. */
  rs: KubeObject;
  spec: ResourceSync;
  target: ResolvedEnd;
  targetId: TargetIdentity;
  record: AppliedTarget | undefined;
  live: LiveTarget;
  desired: KubeObject;
  source: KubeObject;
}

/** writePolicy CreateOnly, target absent: a plain create, which never overwrites. Returns the new uid. */
export async function createTarget(w: WriteInput, ctx: ReconcileContext): Promise<string> {
  const { target } = w;
  try {
    const created = await track(
      target.client,
      ctx,
      target.client.create(target.resource, target.namespace, w.desired, { fieldManager: FIELD_MANAGER }),
    );
    ctx.onApplied?.(w.key);
    return created.metadata?.uid ?? "";
  } catch (err) {
    if (asSinkerError(err).reason !== "Conflict") throw err;
    // Someone created it since the cache said absent: it is theirs unless the watch says otherwise.
    throw new SinkerError("Conflict", `${describe(w)} appeared before Sinker could create it; not written`, {
      cause: err,
      status: 409,
    });
  }
}

function apply(w: WriteInput, ctx: ReconcileContext): Promise<KubeObject> {
  const { target } = w;
  return track(
    target.client,
    ctx,
    target.client.apply(target.resource, w.desired, { fieldManager: FIELD_MANAGER, force: true }),
  );
}

/** The apply was refused: when it was for an immutable field and the spec opts in, replace the target. */
export async function replaceOrFail(w: WriteInput, err: unknown, ctx: ReconcileContext): Promise<KubeObject> {
  const error = asSinkerError(err);
  if (error.immutableFields === undefined) throw err;
  const decision = decideReplace(
    {
      policy: w.spec.spec.onImmutableChange ?? "Fail",
      error,
      live: w.live,
      ours: isOurs(w.live, sameTarget(w.record, w.targetId) ? w.record : undefined, undefined),
      adopt: annotationIsTrue(w.rs.metadata, ANNOTATION_ADOPT_TARGET),
      previous: readReplacement(w.rs.status),
      generation: w.rs.metadata?.generation,
      sourceResourceVersion: w.source.metadata?.resourceVersion,
    },
    new Date(),
  );
  if (decision.kind === "fail") throw decision.error;
  // Counted before the attempt: a crash half-way cannot reset the bound.
  await patchResourceSync(
    w.key,
    w.rs,
    ctx,
    { status: { replacement: decision.record } },
    { subresource: "status" },
  );
  const { target } = w;
  const what = describe(w);
  const fields = decision.fields.length > 0 ? decision.fields.join(", ") : "an immutable field";
  const outcome = await track(
    target.client,
    ctx,
    target.client.delete(target.resource, target.namespace, target.name, {
      propagationPolicy: "Background",
      preconditions: { uid: decision.uid },
    }),
  );
  if (outcome === "pending") {
    // Its own finalizers hold it: the watch reports it gone, and the next reconcile creates it.
    throw new SinkerError(
      "Conflict",
      `replacing ${what}: the old object is being deleted (${fields} changed)`,
      {
        status: 409,
      },
    );
  }
  const created = await apply(w, ctx);
  ctx.events.record(
    w.rs,
    "Normal",
    "TargetReplaced",
    `deleted and re-created ${what}: ${fields} cannot be updated ` +
      `(attempt ${decision.record.attempts} of ${MAX_REPLACE_ATTEMPTS} for this source version)`,
  );
  ctx.logger.info({ target: what, fields: decision.fields }, "target replaced on an immutable change");
  return created;
}

function describe(w: WriteInput): string {
  return `target ${describeEnd(w.spec.spec.target.resourceRef.kind, w.target)}`;
}
