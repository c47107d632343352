/**
 * Bounds on the source object a projection reads. A source comes from a tenant (any kind, any cluster, e.g. a
 * SinkerContainer holding arbitrary data) and the projection walks and copies it on the controller's event loop:
 * a source deeper or larger than these bounds is refused with SourceTooLarge before any mapping runs. The walk
 * is iterative and stops at the first bound exceeded, so checking costs at most MAX_SOURCE_NODES steps.
 */
import { SinkerError } from "../errors.ts";

/** Nesting levels of objects and arrays (a Kubernetes object rarely exceeds 20). */
export const MAX_SOURCE_DEPTH = 256;
/** Values (objects, arrays, scalars) in the whole source. */
export const MAX_SOURCE_NODES = 1_000_000;
/** Characters in all its strings and keys together. */
export const MAX_SOURCE_CHARS = 32 * 1024 * 1024;

/** Throws SinkerError SourceTooLarge when `source` exceeds a bound. The message carries no value. */
export function checkSourceBounds(source: unknown): void {
  const stack: Array<[unknown, number]> = [[source, 1]];
  let nodes = 0;
  let chars = 0;
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (++nodes > MAX_SOURCE_NODES) throw tooLarge(`holds more than ${MAX_SOURCE_NODES} values`);
    if (typeof v === "string") chars += v.length;
    else if (v !== null && typeof v === "object") {
      if (depth > MAX_SOURCE_DEPTH) throw tooLarge(`is nested more than ${MAX_SOURCE_DEPTH} levels deep`);
      if (Array.isArray(v)) {
        for (const child of v) stack.push([child, depth + 1]);
      } else {
        for (const key of Object.keys(v)) {
          chars += key.length;
          stack.push([(v as Record<string, unknown>)[key], depth + 1]);
        }
      }
    }
    if (chars > MAX_SOURCE_CHARS) throw tooLarge(`holds more than ${MAX_SOURCE_CHARS} characters of text`);
  }
}

function tooLarge(why: string): SinkerError {
  return new SinkerError("SourceTooLarge", `the source object ${why}`);
}
