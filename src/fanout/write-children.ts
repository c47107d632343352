/**
 * The set controller's writes of children: applies what the plan says is missing or stale, marks the children
 * pruned with pruning Orphan (disable-target-deletion) before deleting them (uid precondition), and records what
 * changed as an Event on the set. Bounded: at most WRITE_PARALLELISM writes in flight per set.
 */
import type { Logger } from "pino";
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  type AnySet,
  FIELD_MANAGER,
  type ResourceSync,
} from "../api/types.ts";
import { asSinkerError, type SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import { pool } from "../pool.ts";
import type { ChildPlan } from "./plan.ts";

/** Parallel child writes per set reconcile: bounded, so one huge set cannot flood the API server. */
const WRITE_PARALLELISM = 8;

export interface ChildWriter {
  local: ClusterClient;
  /** The ResourceSync resource. */
  resource: ResourceInfo;
  events: EventRecorder;
  log: Logger;
  /** The ResourceSync cache. */
  lookup: (namespace: string, name: string) => ResourceSync | undefined;
}

/** Applies and prunes children as planned; the first failure, if any (the others are retried with it). */
export async function writeChildren(
  w: ChildWriter,
  key: string,
  set: AnySet,
  plan: ChildPlan,
  selected: number,
): Promise<SinkerError | undefined> {
  let failed: SinkerError | undefined;
  const note = (err: unknown) => {
    failed ??= asSinkerError(err);
  };
  // counted before the writes: the cache learns of the new children while they are being made
  const created = plan.apply.filter((d) => !w.lookup(d.namespace, d.name)).length;
  await pool(plan.apply, WRITE_PARALLELISM, (d) =>
    w.local.apply(w.resource, d.object, { fieldManager: FIELD_MANAGER, force: true }).then(() => {}),
  ).catch(note);
  const orphanFirst = new Set(plan.orphanFirst);
  await pool(plan.remove, WRITE_PARALLELISM, async (child) => {
    const ns = child.metadata.namespace ?? "";
    if (orphanFirst.has(child)) {
      await w.local.patch(
        w.resource,
        ns,
        child.metadata.name,
        { metadata: { annotations: { [ANNOTATION_DISABLE_TARGET_DELETION]: "true" } } },
        "merge",
      );
    }
    await w.local.delete(w.resource, ns, child.metadata.name, {
      preconditions: { uid: child.metadata.uid ?? "" },
      propagationPolicy: "Background",
    });
  }).catch(note);
  if (plan.apply.length > 0 || plan.remove.length > 0) {
    w.log.info({ set: key, added: plan.apply.length, removed: plan.remove.length }, "children changed");
    if (created > 0 || plan.remove.length > 0)
      w.events.record(
        set,
        "Normal",
        "DestinationsChanged",
        `${created} destination(s) added, ${plan.remove.length} removed` +
          (plan.remove.length > 0 && (set.spec.pruning ?? "Delete") === "Orphan"
            ? " (their copies kept, without owner reference: pruning Orphan)"
            : "") +
          `; ${selected} selected`,
      );
  }
  return failed;
}
