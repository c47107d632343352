/**
 * The set controller's decisions, as pure functions with table tests: which children to apply, which to prune
 * (and which to mark as orphaning first), and the set's status from its children's conditions.
 */
import { MAX_STATUS_FAILURES } from "../api/set-schema.ts";
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_SOURCE_NAMESPACE,
  type AnySet,
  annotationIsTrue,
  type Condition,
  LABEL_SET_KIND,
  LABEL_SET_NAME,
  type ResourceSync,
  type ResourceSyncSetStatus,
  type SetFailure,
} from "../api/types.ts";
import { READY, truncateMessage, withCondition } from "../controller/status.ts";
import { type DesiredChild, sameJson, setOwner } from "./children.ts";

export interface ChildPlan {
  /** Children to server-side apply (missing, or not what the set wants). */
  apply: DesiredChild[];
  /** Children whose name is held by a ResourceSync the set did not make: reported, never taken over. */
  taken: DesiredChild[];
  /** Children of this set no destination wants any more: deleted (uid precondition). */
  remove: ResourceSync[];
  /** Of `remove`: those to mark with disable-target-deletion before deleting them (pruning: Orphan). */
  orphanFirst: ResourceSync[];
}

const MANAGED_ANNOTATIONS = [ANNOTATION_SOURCE_NAMESPACE, ANNOTATION_DISABLE_TARGET_DELETION];

/** Whether the existing child already is what the set wants (spec, the set's labels and annotations, owner). */
export function childUpToDate(existing: ResourceSync, want: DesiredChild): boolean {
  const meta = existing.metadata;
  const wantMeta = want.object.metadata;
  if (!sameJson(existing.spec, want.object.spec)) return false;
  for (const key of [LABEL_SET_NAME, LABEL_SET_KIND]) {
    if (meta.labels?.[key] !== wantMeta.labels?.[key]) return false;
  }
  for (const key of MANAGED_ANNOTATIONS) {
    if (meta.annotations?.[key] !== wantMeta.annotations?.[key]) return false;
  }
  const owner = setOwner(existing);
  return owner !== undefined && sameJson(owner, wantMeta.ownerReferences?.[0]);
}

export function planChildren(
  set: AnySet,
  desired: readonly DesiredChild[],
  owned: readonly ResourceSync[],
  lookup: (namespace: string, name: string) => ResourceSync | undefined,
  undecided: ReadonlySet<string> = new Set(),
): ChildPlan {
  const uid = set.metadata.uid;
  const plan: ChildPlan = { apply: [], taken: [], remove: [], orphanFirst: [] };
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(`${d.namespace}/${d.name}`);
    const existing = lookup(d.namespace, d.name);
    if (!existing) plan.apply.push(d);
    else if (setOwner(existing)?.uid !== uid) plan.taken.push(d);
    else if (existing.metadata.deletionTimestamp)
      continue; // a new one follows once it is gone
    else if (!childUpToDate(existing, d)) plan.apply.push(d);
  }
  const orphan = (set.spec.pruning ?? "Delete") === "Orphan";
  for (const child of owned) {
    if (setOwner(child)?.uid !== uid || child.metadata.deletionTimestamp) continue;
    if (wanted.has(`${child.metadata.namespace}/${child.metadata.name}`)) continue;
    // a cluster whose namespaces are unknown (unreachable, not listed yet) keeps its copies
    const secretRef = child.spec?.target?.cluster?.kubeConfig?.secretRef;
    if (secretRef && undecided.has(`${secretRef.namespace ?? child.metadata.namespace}/${secretRef.name}`))
      continue;
    plan.remove.push(child);
    if (orphan && !annotationIsTrue(child.metadata, ANNOTATION_DISABLE_TARGET_DELETION))
      plan.orphanFirst.push(child);
  }
  return plan;
}

export type ChildState = "synced" | "failing" | "pending";

/** A child is synced when Ready is True for its current generation, failing when Ready is False. */
export function childState(child: ResourceSync | undefined): {
  state: ChildState;
  reason?: string;
  message?: string;
} {
  if (!child) return { state: "pending" };
  const ready = child.status?.conditions?.find((c) => c?.type === READY);
  if (!ready) return { state: "pending" };
  const current = child.status?.observedGeneration === child.metadata.generation;
  if (ready.status === "True") return { state: current ? "synced" : "pending" };
  if (ready.status === "False") return { state: "failing", reason: ready.reason, message: ready.message };
  return { state: "pending" };
}

export interface SetSummary {
  desired: number;
  synced: number;
  failing: number;
  failures: SetFailure[];
}

export function summarize(
  desired: readonly DesiredChild[],
  taken: readonly DesiredChild[],
  lookup: (namespace: string, name: string) => ResourceSync | undefined,
  /** Failures of destinations themselves (a remote cluster whose namespaces cannot be listed). */
  destinationFailures: readonly SetFailure[] = [],
): SetSummary {
  const takenKeys = new Set(taken.map((d) => `${d.namespace}/${d.name}`));
  const summary: SetSummary = { desired: desired.length, synced: 0, failing: 0, failures: [] };
  const failures: SetFailure[] = [...destinationFailures];
  summary.failing += destinationFailures.length;
  for (const d of desired) {
    const key = `${d.namespace}/${d.name}`;
    const failure = (reason: string, message: string): SetFailure => ({
      resourceSync: key,
      ...(d.destination.namespace ? { namespace: d.destination.namespace } : {}),
      ...(d.destination.cluster ? { cluster: d.destination.cluster } : {}),
      reason,
      message: truncateMessage(message),
    });
    if (takenKeys.has(key)) {
      summary.failing++;
      failures.push(
        failure(
          "NameTaken",
          "a ResourceSync of this name exists and was not made by this set; it is left alone",
        ),
      );
      continue;
    }
    const s = childState(lookup(d.namespace, d.name));
    if (s.state === "synced") summary.synced++;
    else if (s.state === "failing") {
      summary.failing++;
      failures.push(failure(s.reason ?? "Failing", s.message ?? ""));
    }
  }
  failures.sort((a, b) => (a.resourceSync < b.resourceSync ? -1 : a.resourceSync > b.resourceSync ? 1 : 0));
  summary.failures = failures.slice(0, MAX_STATUS_FAILURES);
  return summary;
}

/**
 * The Ready condition of a set: True when every destination is synced (none selected counts as synced), else
 * Failing or Progressing; `invalid` when the controller refuses the set itself.
 */
export function readyCondition(
  summary: SetSummary,
  generation: number | undefined,
  previous: Condition | undefined,
  now: Date,
  invalid?: { reason: string; message: string },
): Condition {
  const [reason, status, message]: [string, "True" | "False", string] = invalid
    ? [invalid.reason, "False", invalid.message]
    : summary.failing > 0
      ? ["Failing", "False", `${summary.failing} of ${summary.desired} destinations failing`]
      : summary.synced < summary.desired
        ? ["Progressing", "False", `${summary.synced} of ${summary.desired} destinations synced`]
        : [
            "Synced",
            "True",
            summary.desired === 0 ? "no destination selected" : `all ${summary.desired} destinations synced`,
          ];
  const next = {
    type: READY,
    status,
    reason,
    message,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
  return withCondition(previous ? [previous] : [], next, now)[0] as Condition;
}

export function nextSetStatus(
  set: AnySet,
  summary: SetSummary,
  now: Date,
  invalid?: { reason: string; message: string },
): ResourceSyncSetStatus {
  const previous = set.status?.conditions?.find((c) => c?.type === READY);
  const generation = set.metadata.generation;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    desired: summary.desired,
    synced: summary.synced,
    failing: summary.failing,
    failures: summary.failures,
    conditions: [readyCondition(summary, generation, previous, now, invalid)],
  };
}

/** Whether writing `next` changes what the API server holds. */
export function setStatusDiffers(
  previous: ResourceSyncSetStatus | undefined,
  next: ResourceSyncSetStatus,
): boolean {
  const norm = (s: ResourceSyncSetStatus | undefined) => ({
    observedGeneration: s?.observedGeneration,
    desired: s?.desired ?? 0,
    synced: s?.synced ?? 0,
    failing: s?.failing ?? 0,
    failures: s?.failures ?? [],
    conditions: (s?.conditions ?? []).map((c) => ({ ...c })),
  });
  return !sameJson(norm(previous), norm(next));
}

/**
 * The Event a status change is worth: a change of the Ready reason between Synced and Failing (Progressing, the
 * state while copies are being made, is not announced).
 */
export function transitionEvent(
  before: Condition | undefined,
  after: Condition,
): { type: "Normal" | "Warning"; reason: string; message: string } | undefined {
  if (before?.reason === after.reason) return undefined;
  if (after.reason === "Synced") return { type: "Normal", reason: "Synced", message: after.message };
  if (after.reason === "Failing")
    return { type: "Warning", reason: "DestinationsFailing", message: after.message };
  return undefined;
}
