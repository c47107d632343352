/**
 * The set controller's decisions, as pure functions with table tests: which children to apply, which to prune
 * (and which to mark as orphaning first). The set's status from its children is in set-status.ts.
 */
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_SOURCE_NAMESPACE,
  type AnySet,
  annotationIsTrue,
  LABEL_SET_KIND,
  LABEL_SET_NAME,
  type ResourceSync,
} from "../api/types.ts";
import { keyOf, objectKey } from "../kube/object.ts";
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
  /** Children of a cluster whose namespaces are unknown right now: kept, and still counted as destinations. */
  kept: ResourceSync[];
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
  const plan: ChildPlan = { apply: [], taken: [], remove: [], orphanFirst: [], kept: [] };
  const wanted = new Set<string>();
  for (const d of desired) {
    wanted.add(objectKey(d.namespace, d.name));
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
    if (wanted.has(keyOf(child))) continue;
    // a cluster whose namespaces are unknown (unreachable, not listed yet) keeps its copies
    const secretRef = child.spec?.target?.cluster?.kubeConfig?.secretRef;
    if (secretRef && undecided.has(`${secretRef.namespace ?? child.metadata.namespace}/${secretRef.name}`)) {
      plan.kept.push(child);
      continue;
    }
    plan.remove.push(child);
    if (orphan && !annotationIsTrue(child.metadata, ANNOTATION_DISABLE_TARGET_DELETION))
      plan.orphanFirst.push(child);
  }
  return plan;
}

/**
 * The cap on the children one set may create: every child already made is kept (a lowered cap never prunes
 * copies), new ones only up to `cap` in all; the rest are `over`, reported and not made.
 */
export function capChildren(
  desired: readonly DesiredChild[],
  cap: number,
  exists: (d: DesiredChild) => boolean,
): { children: DesiredChild[]; over: DesiredChild[] } {
  if (desired.length <= cap) return { children: [...desired], over: [] };
  let room = cap - desired.filter(exists).length;
  const children: DesiredChild[] = [];
  const over: DesiredChild[] = [];
  for (const d of desired) {
    if (exists(d)) children.push(d);
    else if (room > 0) {
      children.push(d);
      room--;
    } else over.push(d);
  }
  return { children, over };
}
