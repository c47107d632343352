/**
 * Values in and out of mapping expressions: JSON data as CEL input (cached by identity), CEL results as JSON for the
 * target object, and evaluation errors as they may be reported (without the values they quote).
 */
import { type CelValue, isCelList, isCelMap, isCelUint } from "@bufbuild/cel";
import { SinkerError } from "../errors.ts";
import { isPlainObject } from "../kube/object.ts";

/** Evaluation errors as they may be reported: never with the values the engine's message may quote. */
const SAFE_ERRORS: [RegExp, string | undefined][] = [
  [/^found no matching overload for '[^']*' applied to '[^']*'$/, undefined], // names types only
  [/^type mismatch: expected bool, got \w+$/, undefined],
  [/^field not found/, "no such key or field"],
  [/^index .* out of bounds/, "index out of bounds"],
  [/^\w+ (divide|modulus) by zero$/, undefined],
  [/^u?int overflow during/, "integer overflow"],
  [/^map key conflict/, "duplicate map key"],
  [/^invalid regular expression: [^']*$/, undefined], // src/regex.ts never quotes the pattern
  [/^invalid base64 data$/, undefined],
  [/^(Cannot convert|Unable to convert|Failed to|Error converting)/, "a conversion failed"],
  [/out of range$/, "value out of range"],
];

export function sanitize(message: string): string {
  for (const [re, replacement] of SAFE_ERRORS) if (re.test(message)) return replacement ?? message;
  return "evaluation error";
}

const converted = new WeakMap<object, unknown>();

/**
 * JSON data as CEL input: objects become maps, integers ints (as in Kubernetes' CEL: `spec.replicas + 1`),
 * other numbers doubles. Cached by identity, as sources come from shared informer caches and are never changed.
 */
export function toCelInput(value: unknown): unknown {
  if (value === null || typeof value !== "object") return scalar(value);
  const hit = converted.get(value);
  if (hit !== undefined) return hit;
  const out = convert(value, 0);
  converted.set(value, out);
  return out;
}

function scalar(value: unknown): unknown {
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  return value;
}

function convert(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== "object") return scalar(value);
  // checkSourceBounds keeps sources under 256 levels; deeper values come from elsewhere and are refused.
  if (depth > 300)
    throw new SinkerError("SourceTooLarge", "the object is too deeply nested for an expression");
  if (Array.isArray(value)) return value.map((v) => convert(v, depth + 1));
  const map = new Map<string, unknown>();
  for (const key of Object.keys(value))
    map.set(key, convert((value as Record<string, unknown>)[key], depth + 1));
  return map;
}

/**
 * Most characters of the strings (and bytes) in one expression's result: entries of a list or map may share one
 * large string, which the JSON of the target would hold as many times.
 */
export const MAX_CEL_RESULT_CHARS = 2 * 1024 * 1024;

/** A CEL result as JSON for the target object; counts the values made in `counter.n`, characters in `chars`. */
export function toJson(v: CelValue, counter: { n: number; chars: number }): unknown {
  counter.n++;
  switch (typeof v) {
    case "string":
      counter.chars += v.length;
      if (counter.chars > MAX_CEL_RESULT_CHARS) throw tooLarge();
      return v;
    case "boolean":
      return v;
    case "bigint":
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw failed("returns an integer too large for JSON");
      }
      return Number(v);
    case "number":
      if (!Number.isFinite(v)) throw failed("returns a number that JSON cannot hold (NaN or infinity)");
      return v;
  }
  if (v === null) return null;
  if (v instanceof Uint8Array) {
    counter.chars += Math.ceil(v.length / 3) * 4;
    if (counter.chars > MAX_CEL_RESULT_CHARS) throw tooLarge();
    return Buffer.from(v).toString("base64");
  }
  if (isCelUint(v)) return toJson(v.value, counter);
  if (isCelList(v)) return Array.from(v, (e) => toJson(e, counter));
  if (isCelMap(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, e] of v) {
      if (typeof k !== "string") throw failed("returns a map with keys that are not strings");
      Object.defineProperty(out, k, {
        value: toJson(e, counter),
        writable: true,
        enumerable: true,
        configurable: true,
      });
    }
    return out;
  }
  throw failed("returns a value that is not JSON (a timestamp, duration or type)");
}

function tooLarge(): SinkerError {
  return new SinkerError(
    "ExpressionBudgetExceeded",
    `the expression returns more than ${MAX_CEL_RESULT_CHARS} characters of strings`,
  );
}

function failed(why: string): SinkerError {
  return new SinkerError("ExpressionFailed", `the expression ${why}`);
}

/** The `resourceSync` variable: what of the ResourceSync an expression may read. */
export function resourceSyncVariable(meta: unknown): Record<string, unknown> {
  const m = isPlainObject(meta) ? meta : {};
  const pick: Record<string, unknown> = {};
  for (const key of ["name", "namespace", "labels", "annotations"]) if (m[key] != null) pick[key] = m[key];
  return { metadata: pick };
}
