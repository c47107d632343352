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

/**
 * Sources already found within bounds. A source comes from the informer cache, where an object is replaced, not
 * changed, when it changes, and the projection never mutates it: the same object is checked once, however often
 * it is projected (periodic resyncs, many ResourceSyncs on one source); a refusal is remembered too.
 */
const checked = new WeakMap<object, SinkerError | null>();

/** Throws SinkerError SourceTooLarge when `source` exceeds a bound. The message carries no value. */
export function checkSourceBounds(source: unknown): void {
  if (source === null || typeof source !== "object") return;
  const known = checked.get(source);
  if (known === null) return;
  if (known !== undefined) throw known;
  try {
    walk(source);
    checked.set(source, null);
  } catch (err) {
    if (err instanceof SinkerError) checked.set(source, err);
    throw err;
  }
}

function walk(source: object): void {
  // Two parallel stacks (no tuple per value): values and their depths.
  const values: unknown[] = [source];
  const depths: number[] = [1];
  let nodes = 0;
  let chars = 0;
  while (values.length > 0) {
    const v = values.pop();
    const depth = depths.pop() as number;
    if (++nodes > MAX_SOURCE_NODES) throw tooLarge(`holds more than ${MAX_SOURCE_NODES} values`);
    if (typeof v === "string") {
      chars += v.length;
      if (chars > MAX_SOURCE_CHARS) throw tooLarge(`holds more than ${MAX_SOURCE_CHARS} characters of text`);
    } else if (v !== null && typeof v === "object") {
      if (depth > MAX_SOURCE_DEPTH) throw tooLarge(`is nested more than ${MAX_SOURCE_DEPTH} levels deep`);
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          values.push(v[i]);
          depths.push(depth + 1);
        }
      } else {
        for (const key in v) {
          if (!Object.hasOwn(v, key)) continue;
          chars += key.length;
          values.push((v as Record<string, unknown>)[key]);
          depths.push(depth + 1);
        }
      }
    }
  }
}

function tooLarge(why: string): SinkerError {
  return new SinkerError("SourceTooLarge", `the source object ${why}`);
}
