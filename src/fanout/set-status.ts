/**
 * A set's status from its children's conditions, as pure functions with table tests. Destinations (one child
 * each) and clusters (a remote cluster whose namespaces cannot be listed) are counted apart: a cluster that
 * cannot be listed is not a failing destination, and the destinations it had keep being counted meanwhile.
 */
import { MAX_STATUS_FAILURES } from "../api/set-schema.ts";
import {
  type Condition,
  LABEL_SET_KIND,
  LABEL_SET_NAME,
  type ResourceSync,
  type ResourceSyncSetStatus,
  type SetClusterFailure,
  type SetFailure,
} from "../api/types.ts";
import { READY, truncateMessage, withCondition } from "../controller/status.ts";
import { keyOf, objectKey, parseKey } from "../kube/object.ts";
import { type Collision, type DesiredChild, sameJson, setLabelValue } from "./children.ts";

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
  /** Remote clusters whose namespaces cannot be listed (not destinations). */
  failingClusters?: number;
  clusterFailures?: SetClusterFailure[];
  /** Set when the set's own spec or limits are the trouble (InvalidSpec, the child cap...). */
  blocked?: { reason: string; message: string };
}

/** A destination as people read it, from a child already made (for children kept while their cluster is unknown). */
function keptDestination(child: ResourceSync): DesiredChild["destination"] {
  const cluster = child.spec?.target?.cluster;
  const ref = cluster?.kubeConfig?.secretRef;
  return {
    ...(cluster?.namespace ? { namespace: cluster.namespace } : {}),
    ...(ref ? { cluster: `${ref.namespace ?? child.metadata.namespace}/${ref.name}` } : {}),
  };
}

/** A failing destination as the status lists it. */
export function destinationFailure(
  resourceSync: string,
  destination: DesiredChild["destination"],
  reason: string,
  message: string,
): SetFailure {
  return {
    resourceSync,
    ...(destination.namespace ? { namespace: destination.namespace } : {}),
    ...(destination.cluster ? { cluster: destination.cluster } : {}),
    ...(destination.source ? { source: destination.source } : {}),
    reason,
    message: truncateMessage(message),
  };
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

export function summarize(
  desired: readonly DesiredChild[],
  taken: readonly DesiredChild[],
  lookup: (namespace: string, name: string) => ResourceSync | undefined,
  /** Remote clusters whose namespaces cannot be listed right now. */
  clusterFailures: readonly SetClusterFailure[] = [],
  /** Children kept (not pruned, not re-derived) while their cluster's namespaces are unknown. */
  kept: readonly ResourceSync[] = [],
  /** Destinations the set would want but does not make (over the cap, colliding targets): failing, a few listed. */
  refused: { count: number; failures: readonly SetFailure[] } = { count: 0, failures: [] },
): SetSummary {
  const takenKeys = new Set(taken.map((d) => objectKey(d.namespace, d.name)));
  const entries = [
    ...desired.map((d) => ({ key: objectKey(d.namespace, d.name), destination: d.destination })),
    ...kept.map((c) => ({
      key: keyOf(c),
      destination: keptDestination(c),
    })),
  ];
  const summary: SetSummary = {
    desired: entries.length + refused.count,
    synced: 0,
    failing: 0,
    failures: [],
  };
  const failures: SetFailure[] = refused.failures.slice(0, MAX_STATUS_FAILURES);
  summary.failing += refused.count;
  for (const { key, destination } of entries) {
    const failure = (reason: string, message: string): SetFailure =>
      destinationFailure(key, destination, reason, message);
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
    const ref = parseKey(key);
    const s = childState(lookup(ref.namespace ?? "", ref.name));
    if (s.state === "synced") summary.synced++;
    else if (s.state === "failing") {
      summary.failing++;
      failures.push(failure(s.reason ?? "Failing", s.message ?? ""));
    }
  }
  failures.sort(byKey((f) => `${f.resourceSync}|${f.namespace ?? ""}|${f.cluster ?? ""}`));
  summary.failures = failures.slice(0, MAX_STATUS_FAILURES);
  if (clusterFailures.length > 0) {
    summary.failingClusters = clusterFailures.length;
    summary.clusterFailures = [...clusterFailures]
      .sort(byKey((f) => f.cluster))
      .slice(0, MAX_STATUS_FAILURES)
      .map((f) => ({ ...f, message: truncateMessage(f.message) }));
  }
  return summary;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * The Ready condition of a set: True when every destination is synced and every cluster listed (none selected
 * counts as synced), else Failing, ClustersFailing or Progressing; `summary.blocked` when the controller refuses
 * the set itself or stops at a limit.
 */
export function readyCondition(
  summary: SetSummary,
  generation: number | undefined,
  previous: Condition | undefined,
  now: Date,
): Condition {
  const clusters = summary.failingClusters ?? 0;
  const clusterNote = clusters > 0 ? `; ${plural(clusters, "cluster")} failing` : "";
  const [reason, status, message]: [string, "True" | "False", string] = summary.blocked
    ? [summary.blocked.reason, "False", summary.blocked.message]
    : summary.failing > 0
      ? ["Failing", "False", `${summary.failing} of ${summary.desired} destinations failing${clusterNote}`]
      : clusters > 0
        ? [
            "ClustersFailing",
            "False",
            `${summary.synced} of ${summary.desired} destinations synced${clusterNote}`,
          ]
        : summary.synced < summary.desired
          ? ["Progressing", "False", `${summary.synced} of ${summary.desired} destinations synced`]
          : [
              "Synced",
              "True",
              summary.desired === 0
                ? "no destination selected"
                : `all ${summary.desired} destinations synced`,
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
  set: {
    kind: string;
    metadata: { name: string; generation?: number };
    status?: ResourceSyncSetStatus;
  },
  summary: SetSummary,
  now: Date,
): ResourceSyncSetStatus {
  const previous = set.status?.conditions?.find((c) => c?.type === READY);
  const generation = set.metadata.generation;
  return {
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    desired: summary.desired,
    synced: summary.synced,
    failing: summary.failing,
    failures: summary.failures,
    failingClusters: summary.failingClusters ?? 0,
    clusterFailures: summary.clusterFailures ?? [],
    childSelector: `${LABEL_SET_NAME}=${setLabelValue(set.metadata.name)},${LABEL_SET_KIND}=${set.kind}`,
    conditions: [readyCondition(summary, generation, previous, now)],
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
    failingClusters: s?.failingClusters ?? 0,
    clusterFailures: s?.clusterFailures ?? [],
    childSelector: s?.childSelector ?? "",
    conditions: (s?.conditions ?? []).map((c) => ({ ...c })),
  });
  return !sameJson(norm(previous), norm(next));
}

/**
 * The Event a status change is worth: a change of the Ready reason to Synced, Failing or ClustersFailing
 * (Progressing, the state while copies are being made, is not announced).
 */
export function transitionEvent(
  before: Condition | undefined,
  after: Condition,
): { type: "Normal" | "Warning"; reason: string; message: string } | undefined {
  if (before?.reason === after.reason) return undefined;
  if (after.reason === "Synced") return { type: "Normal", reason: "Synced", message: after.message };
  if (after.reason === "Failing")
    return { type: "Warning", reason: "DestinationsFailing", message: after.message };
  if (after.reason === "ClustersFailing")
    return { type: "Warning", reason: "ClustersFailing", message: after.message };
  return undefined;
}

/** Destinations the set selects and does not make: colliding targets and those over the cap (a few listed). */
export function refusedDestinations(
  collisions: readonly Collision[],
  over: readonly DesiredChild[],
  cap = 0,
): { count: number; failures: SetFailure[] } {
  const failures: SetFailure[] = [];
  for (const { child, winner } of collisions.slice(0, MAX_STATUS_FAILURES)) {
    const t = child.object.spec.target.resourceRef;
    failures.push(
      destinationFailure(
        `${child.namespace}/${child.name}`,
        child.destination,
        "TargetCollision",
        `source ${child.destination.source ?? "?"} would write the same ${t.kind} ${t.name} as source ` +
          `${winner.destination.source ?? "?"}, which keeps it: not copied`,
      ),
    );
  }
  for (const d of over.slice(0, MAX_STATUS_FAILURES)) {
    failures.push(
      destinationFailure(
        `${d.namespace}/${d.name}`,
        d.destination,
        "ChildLimitReached",
        `not made: the set has reached the limit of ${cap} children per set (--max-children-per-set)`,
      ),
    );
  }
  return { count: collisions.length + over.length, failures };
}
