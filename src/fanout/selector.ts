/**
 * Label selectors as Kubernetes defines them (metav1.LabelSelector: matchLabels and matchExpressions, all of
 * which must hold), and the namespace selection of a ClusterResourceSyncSet on top. Pure functions.
 */
import type { LabelSelector, NamespaceSelector } from "../api/types.ts";

/** Whether the selector says anything: an absent or empty selector selects nothing here (never "everything"). */
export function selectorIsEmpty(selector: LabelSelector | undefined): boolean {
  return (
    selector === undefined ||
    (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)
  );
}

/** Whether `labels` satisfy every requirement of a non-empty selector (an empty one matches nothing). */
export function labelsMatch(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>>,
): boolean {
  if (selector === undefined || selectorIsEmpty(selector)) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(labels[req.key] as string)) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[req.key] as string)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        // an operator the schema does not allow: the requirement cannot hold
        return false;
    }
  }
  return true;
}

export interface NamespaceInfo {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** Being deleted (deletionTimestamp set or phase Terminating). */
  terminating: boolean;
}

/** A namespace is selected when it matches the labels or is included by name, is not excluded, and lives. */
export function namespaceSelected(selector: NamespaceSelector | undefined, ns: NamespaceInfo): boolean {
  if (selector === undefined || ns.terminating) return false;
  if (selector.exclude?.includes(ns.name)) return false;
  return Boolean(selector.include?.includes(ns.name)) || labelsMatch(selector, ns.labels);
}
