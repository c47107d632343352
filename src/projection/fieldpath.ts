/**
 * The dotted `toFieldPath` writer: `spec.config.inner` names field `inner` of object `config` of object `spec`.
 * Missing objects on the way are created; anything else on the way is an error naming the path.
 * (improvement) A field name containing a dot is written with the dot escaped: `data.app\.properties`,
 * `metadata.annotations.example\.com/team`; `\\` is a backslash. Any other backslash is an error.
 */
import { SinkerError } from "../errors.ts";
import { isPlainObject } from "../kube/object.ts";

/** Splits a dotted path into field names, unescaping `\.` and `\\`; malformed paths are InvalidFieldPath. */
export function parseFieldPath(path: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === "\\") {
      const next = path[i + 1];
      if (next !== "." && next !== "\\")
        throw invalidPath(path, 'a backslash must be followed by "." or "\\"');
      current += next;
      i++;
    } else if (c === ".") {
      if (current === "")
        throw invalidPath(path, 'expected dot-separated non-empty field names, e.g. "data.foo"');
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  if (current === "")
    throw invalidPath(path, 'expected dot-separated non-empty field names, e.g. "data.foo"');
  parts.push(current);
  return parts;
}

function invalidPath(path: string, why: string): SinkerError {
  return new SinkerError("InvalidFieldPath", `invalid toFieldPath ${JSON.stringify(path)}: ${why}`);
}

/**
 * Sets `value` at the dotted `path` inside `target` (mutating `target`). Fields are defined as own data
 * properties, so a name like `__proto__` is just a field name.
 */
export function setFieldPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = parseFieldPath(path);
  let current = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const name = parts[i] as string;
    const next = Object.hasOwn(current, name) ? current[name] : undefined;
    if (next === undefined || next === null) {
      const created: Record<string, unknown> = {};
      define(current, name, created);
      current = created;
    } else if (isPlainObject(next)) {
      current = next;
    } else {
      const where = parts
        .slice(0, i + 1)
        .map((p) => p.replaceAll("\\", "\\\\").replaceAll(".", "\\."))
        .join(".");
      throw new SinkerError(
        "InvalidFieldPath",
        `cannot write toFieldPath ${JSON.stringify(path)}: ${where} is ${kindOf(next)}, not an object`,
      );
    }
  }
  define(current, parts[parts.length - 1] as string, value);
}

/** The value at the dotted `path`, or undefined when any part of it is missing. */
export function getFieldPath(source: unknown, path: string): unknown {
  let current: unknown = source;
  for (const name of parseFieldPath(path)) {
    if (!isPlainObject(current) || !Object.hasOwn(current, name)) return undefined;
    current = current[name];
  }
  return current;
}

function define(obj: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a boolean";
  return typeof value;
}
