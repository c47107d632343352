/**
 * Whether an apply can be skipped because the live target already holds it: every value the projection sets is
 * there, and the projection sets the same fields as the apply before it (so no field Sinker owned is to be
 * removed). Server-side apply of such content would change at most managedFields; skipping it keeps two
 * ResourceSyncs of a cycle (or a chain meeting its own echo) from writing values that are already in place.
 * Pure; conservative: when in doubt (lists, nulls) it says "apply".
 */
import { createHash } from "node:crypto";
import type { KubeObject } from "../kube/object.ts";

/** True when every leaf of `desired` has an equal value in `live` (lists must be equal as a whole). */
export function coveredBy(desired: unknown, live: unknown): boolean {
  if (desired === null || live === null || desired === undefined) return false;
  if (Array.isArray(desired)) return Array.isArray(live) && JSON.stringify(desired) === JSON.stringify(live);
  if (typeof desired === "object") {
    if (typeof live !== "object" || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    for (const [k, v] of Object.entries(desired as Record<string, unknown>)) {
      if (!Object.hasOwn(l, k) || !coveredBy(v, l[k])) return false;
    }
    return true;
  }
  return desired === live;
}

/** A hash of the set of field paths `desired` sets (lists count as one field), independent of the values. */
export function fieldShape(desired: KubeObject): string {
  const paths: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length === 0) paths.push(`${path}{}`);
      for (const [k, child] of entries)
        walk(child, `${path}/${k.replaceAll("~", "~0").replaceAll("/", "~1")}`);
    } else paths.push(path);
  };
  walk(desired, "");
  paths.sort();
  return createHash("sha1").update(paths.join("\n")).digest("base64");
}
