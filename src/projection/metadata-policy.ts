/**
 * Which labels and annotations reach the target. GitOps tools recognise "their" objects by
 * tracking labels and annotations; copied onto a target, those make the tool prune the copy or report its
 * application out of sync. So by default the projection drops a documented list of tool-tracking keys, and a
 * ResourceSync can narrow (include), widen (include names a listed key exactly), drop (exclude) and add keys.
 *
 * The policy applies to the labels and annotations of the object Sinker applies, whatever wrote them there (a
 * clone, a from-only mapping unpacking an object, a mapping of `metadata.labels` or of one key): one rule, and
 * nothing a mapping writes can smuggle a tracking key past it. Pure: no I/O.
 */
import type { MetadataRule } from "../api/types.ts";
import { SinkerError } from "../errors.ts";
import { isPlainObject } from "../kube/object.ts";
import type { WorkBudget } from "./budget.ts";

/**
 * Keys GitOps and packaging tools use to track the objects they own, never copied unless `include` names them
 * exactly. An entry ending in `*` matches every key starting with what precedes it. Applies to labels and
 * annotations alike (each tool owns its keys in both).
 */
export const TOOL_TRACKING_KEYS: readonly string[] = [
  // Argo CD: label tracking (its recommended custom key), annotation tracking, multi-instance installs
  "argocd.argoproj.io/instance",
  "argocd.argoproj.io/tracking-id",
  "argocd.argoproj.io/installation-id",
  // Flux: kustomize-controller's and helm-controller's ownership labels (and their annotations)
  "kustomize.toolkit.fluxcd.io/*",
  "helm.toolkit.fluxcd.io/*",
  // Helm: the release an object belongs to, and who manages it (a copy is managed by Sinker, not the source's
  // manager, whatever the value)
  "meta.helm.sh/*",
  "app.kubernetes.io/managed-by",
  // kapp (Carvel) and Rancher Fleet (wrangler's object sets) prune by these labels
  "kapp.k14s.io/app",
  "kapp.k14s.io/association",
  "objectset.rio.cattle.io/*",
  // kubectl's client-side apply record (also never applied, whatever the policy says)
  "kubectl.kubernetes.io/last-applied-configuration",
];

/** A compiled list of keys and prefixes: exact keys in a set, prefixes in a list. */
interface KeyMatcher {
  exact: Set<string>;
  prefixes: string[];
}

function compile(entries: readonly string[]): KeyMatcher {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const e of entries) {
    if (e.endsWith("*")) prefixes.push(e.slice(0, -1));
    else exact.add(e);
  }
  return { exact, prefixes };
}

function matches(m: KeyMatcher, key: string): boolean {
  return m.exact.has(key) || m.prefixes.some((p) => key.startsWith(p));
}

const TOOL_MATCHER = compile(TOOL_TRACKING_KEYS);
const NONE = compile([]);

/** Does the default list drop this key (when `include` does not name it exactly)? */
export function isToolTrackingKey(key: string): boolean {
  return matches(TOOL_MATCHER, key);
}

/**
 * The labels (or annotations) the target gets: `values` (what the clone or the mappings produced) filtered by
 * `rule` and the default list, then `rule.add` on top. Returns undefined when nothing is left. A value that is
 * not an object (a mapping wrote a string at metadata.labels) is an error. Work (keys × patterns) is charged to
 * `budget` when given.
 */
export function applyMetadataRule(
  values: unknown,
  rule: MetadataRule | undefined,
  field: "labels" | "annotations",
  budget?: WorkBudget,
): Record<string, unknown> | undefined {
  if (values != null && !isPlainObject(values)) {
    throw new SinkerError("InvalidFieldPath", `metadata.${field} of the target must be an object`);
  }
  const include = rule?.include == null ? undefined : compile(rule.include);
  const exclude = rule?.exclude == null ? NONE : compile(rule.exclude);
  const out: Record<string, unknown> = {};
  const keys = values ? Object.keys(values) : [];
  const patterns =
    1 + TOOL_MATCHER.prefixes.length + exclude.prefixes.length + (include?.prefixes.length ?? 0);
  budget?.spend(keys.length * patterns);
  for (const key of keys) {
    if (include && !matches(include, key)) continue;
    if (matches(exclude, key)) continue;
    if (matches(TOOL_MATCHER, key) && !include?.exact.has(key)) continue;
    define(out, key, (values as Record<string, unknown>)[key]);
  }
  const add = rule?.add;
  if (add) for (const key of Object.keys(add)) define(out, key, add[key]);
  return Object.keys(out).length > 0 ? out : undefined;
}

/** An own field, also for `__proto__` (plain assignment otherwise: faster). */
function define(obj: Record<string, unknown>, name: string, value: unknown): void {
  if (name === "__proto__")
    Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
  else obj[name] = value;
}
