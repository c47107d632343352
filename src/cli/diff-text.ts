/**
 * The text of `sinker diff`, pure: the target as it is and as the dry-run apply says it would become, reduced
 * to what a reader compares (no managedFields, status, resourceVersion, ...), Secret values masked, as a
 * unified diff. The line diff itself is the `diff` library's.
 */
import { FILE_HEADERS_ONLY, formatPatch, structuredPatch } from "diff";
import { stringify } from "yaml";
import { LAST_APPLIED_ANNOTATION } from "../api/types.ts";
import { isPlainObject, type KubeObject } from "../kube/object.ts";

/** Metadata the API server maintains: it changes on every write, so a diff of it says nothing. */
const SERVER_METADATA = [
  "managedFields",
  "resourceVersion",
  "uid",
  "generation",
  "creationTimestamp",
  "selfLink",
] as const;

/** A copy of `obj` without status and server-maintained metadata. */
export function forDisplay(obj: KubeObject): KubeObject {
  const copy = structuredClone(obj) as KubeObject;
  delete copy.status;
  if (copy.metadata) {
    for (const f of SERVER_METADATA) delete copy.metadata[f];
  }
  return copy;
}

const MASK = "***";

function isSecret(obj: KubeObject | undefined): boolean {
  return obj?.apiVersion === "v1" && obj.kind === "Secret";
}

/**
 * Replaces the values of a Secret's `data` and `stringData` (and its last-applied annotation, which holds them
 * too) by `***`, as kubectl diff does: a value that differs between the two reads `*** (before)` and
 * `*** (after)`, so the diff still shows which keys change. Objects of other kinds are returned as they are.
 */
export function maskSecrets(
  live: KubeObject | undefined,
  merged: KubeObject,
): { live: KubeObject | undefined; merged: KubeObject } {
  if (!isSecret(merged) && !isSecret(live)) return { live, merged };
  const before = live ? (structuredClone(live) as KubeObject) : undefined;
  const after = structuredClone(merged) as KubeObject;
  for (const field of ["data", "stringData"] as const) {
    const b = before && isPlainObject(before[field]) ? (before[field] as Record<string, unknown>) : undefined;
    const a = isPlainObject(after[field]) ? (after[field] as Record<string, unknown>) : undefined;
    maskPair(b, a);
  }
  const annBefore = before?.metadata?.annotations;
  const annAfter = after.metadata?.annotations;
  maskPair(annBefore, annAfter, [LAST_APPLIED_ANNOTATION]);
  return { live: before, merged: after };
}

function maskPair(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
  only?: readonly string[],
): void {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  for (const k of keys) {
    if (only && !only.includes(k)) continue;
    const inBefore = before !== undefined && k in before;
    const inAfter = after !== undefined && k in after;
    const same = inBefore && inAfter && before[k] === after[k];
    if (before && inBefore) before[k] = same || !inAfter ? MASK : `${MASK} (before)`;
    if (after && inAfter) after[k] = same || !inBefore ? MASK : `${MASK} (after)`;
  }
}

export function toYaml(obj: KubeObject | undefined): string {
  return obj === undefined ? "" : stringify(obj, { lineWidth: 0 });
}

/**
 * The unified diff from `live` (undefined: the target does not exist) to `merged`, both already reduced for
 * display; "" when they are the same. `label` names the object in the file headers.
 */
export function unifiedDiff(label: string, live: KubeObject | undefined, merged: KubeObject): string {
  const before = toYaml(live);
  const after = toYaml(merged);
  if (before === after) return "";
  const patch = structuredPatch(
    live === undefined ? "/dev/null" : `live/${label}`,
    `merged/${label}`,
    before,
    after,
    undefined,
    undefined,
    { context: 3 },
  );
  return formatPatch(patch, FILE_HEADERS_ONLY);
}

/** Everything above in order: the diff text of one target. */
export function targetDiff(
  label: string,
  live: KubeObject | undefined,
  merged: KubeObject,
  showSecrets: boolean,
): string {
  let before = live === undefined ? undefined : forDisplay(live);
  let after = forDisplay(merged);
  if (!showSecrets) ({ live: before, merged: after } = maskSecrets(before, after));
  return unifiedDiff(label, before, after);
}
