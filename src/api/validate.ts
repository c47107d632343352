/**
 * Turns a parsed YAML/JSON document into a typed ResourceSync, or into every problem found, each with the field
 * path it is about. Interprets the same schema definitions the CRD is generated from (schema.ts), so it refuses
 * exactly what a CRD with validation refuses, plus the type-level checks (apiVersion, kind, metadata.name) the API
 * server does by itself. Never throws: the controller calls it on whatever the cache holds.
 */
import { isPlainObject } from "../kube/object.ts";
import { resourceSyncSpecSchema, type Schema } from "./schema.ts";
import { clusterResourceSyncSetSpecSchema, resourceSyncSetSpecSchema } from "./set-schema.ts";
import {
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ClusterResourceSyncSet,
  GROUP_VERSION,
  RESOURCE_SYNC_KIND,
  RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
  type ResourceSyncSet,
} from "./types.ts";

export interface ValidationError {
  /** Field path, e.g. `spec.mappings[1].toFieldPath`; empty for the document itself. */
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: ValidationError[] };
export type ValidationResult = Validated<ResourceSync>;

/** `path: message` lines, one per error, for people. */
export function formatValidationErrors(errors: readonly ValidationError[]): string {
  return errors.map((e) => (e.path === "" ? e.message : `${e.path}: ${e.message}`)).join("\n");
}

/**
 * Validates a ResourceSync. On success `value` is the very object passed in (not a copy), narrowed. Status is not
 * checked: Sinker writes it and never reads anything but conditions from it.
 */
export function validateResourceSync(doc: unknown): ValidationResult {
  return validateObject<ResourceSync>(doc, RESOURCE_SYNC_KIND, resourceSyncSpecSchema);
}

export function validateResourceSyncSet(doc: unknown): Validated<ResourceSyncSet> {
  return validateObject<ResourceSyncSet>(doc, RESOURCE_SYNC_SET_KIND, resourceSyncSetSpecSchema);
}

export function validateClusterResourceSyncSet(doc: unknown): Validated<ClusterResourceSyncSet> {
  return validateObject<ClusterResourceSyncSet>(
    doc,
    CLUSTER_RESOURCE_SYNC_SET_KIND,
    clusterResourceSyncSetSpecSchema,
  );
}

function validateObject<T>(doc: unknown, expectedKind: string, specSchema: Schema): Validated<T> {
  const errors: ValidationError[] = [];
  try {
    if (!isPlainObject(doc)) {
      return { ok: false, errors: [{ path: "", message: `expected an object, got ${describe(doc)}` }] };
    }
    if (doc.apiVersion !== GROUP_VERSION) {
      errors.push({
        path: "apiVersion",
        message: `must be ${GROUP_VERSION}, got ${describe(doc.apiVersion)}`,
      });
    }
    if (doc.kind !== expectedKind) {
      errors.push({ path: "kind", message: `must be ${expectedKind}, got ${describe(doc.kind)}` });
    }
    const meta = doc.metadata;
    if (!isPlainObject(meta)) {
      errors.push({
        path: "metadata",
        message: meta == null ? "required" : `must be an object, got ${describe(meta)}`,
      });
    } else {
      if (typeof meta.name !== "string" || meta.name === "") {
        errors.push({
          path: "metadata.name",
          message: meta.name == null ? "required" : "must be a non-empty string",
        });
      }
      if (meta.namespace != null && typeof meta.namespace !== "string") {
        errors.push({
          path: "metadata.namespace",
          message: `must be a string, got ${describe(meta.namespace)}`,
        });
      }
    }
    if (doc.spec == null) {
      errors.push({ path: "spec", message: "required" });
    } else {
      validateValue(doc.spec, specSchema, "spec", errors);
    }
    if (doc.status != null && !isPlainObject(doc.status)) {
      errors.push({ path: "status", message: `must be an object, got ${describe(doc.status)}` });
    }
  } catch (err) {
    // Defensive: a hostile document (getters, proxies) must not take the controller down.
    errors.push({
      path: "",
      message: `cannot validate: ${err instanceof Error ? err.message : String(err)}`,
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: doc as T };
}

/** Checks `value` against `schema`, appending problems to `errors`. Exported for tests of the schema itself. */
export function validateValue(value: unknown, schema: Schema, path: string, errors: ValidationError[]): void {
  check(value, schema, path, undefined, errors);
}

/**
 * Where a value sits: the root's path, or an item or field (`key`) of a parent. Spelled out only for an error:
 * the controller validates every ResourceSync on every reconcile, nearly always without one.
 */
type At = string | { parent: At; key: string | number };

function pathOf(at: At, key?: string | number): string {
  if (key !== undefined) {
    const parent = pathOf(at);
    return typeof key === "number" ? `${parent}[${key}]` : join(parent, key);
  }
  return typeof at === "string" ? at : pathOf(at.parent, at.key);
}

function fail(errors: ValidationError[], message: string, at: At, key?: string | number): void {
  errors.push({ path: pathOf(at, key), message });
}

/** `value` is the field or item `key` of `parent` (undefined: `parent` is where it sits). */
function check(
  value: unknown,
  schema: Schema,
  parent: At,
  key: string | number | undefined,
  errors: ValidationError[],
): void {
  switch (schema.type) {
    case "object": {
      if (!isPlainObject(value)) {
        fail(errors, `must be an object, got ${describe(value)}`, parent, key);
        return;
      }
      if (schema.preserveUnknownFields) return;
      const properties = schema.properties ?? {};
      const here: At = key === undefined ? parent : { parent, key };
      for (const name of schema.required ?? []) {
        if (value[name] == null) fail(errors, "required", here, name);
      }
      const names = Object.keys(value);
      if (schema.maxProperties !== undefined && names.length > schema.maxProperties) {
        fail(errors, `${names.length} entries, at most ${schema.maxProperties} are allowed`, parent, key);
        return;
      }
      for (const name of names) {
        const field = value[name];
        const fieldSchema = Object.hasOwn(properties, name) ? properties[name] : schema.additionalProperties;
        if (fieldSchema === undefined) {
          fail(errors, "unknown field", here, name);
        } else if (field != null) {
          check(field, fieldSchema, here, name, errors);
        }
      }
      for (const rule of schema.validations ?? []) {
        if (!rule.holds(value)) fail(errors, rule.message, parent, key);
      }
      return;
    }
    case "array": {
      if (!Array.isArray(value)) {
        fail(errors, `must be an array, got ${describe(value)}`, parent, key);
        return;
      }
      if (schema.maxItems !== undefined && value.length > schema.maxItems) {
        // Items are not checked one by one: the number of them is the problem (and bounds this loop).
        fail(errors, `${value.length} items, at most ${schema.maxItems} are allowed`, parent, key);
        return;
      }
      if (schema.items === undefined) return;
      const here: At = key === undefined ? parent : { parent, key };
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (item == null) fail(errors, "must not be null", here, i);
        else check(item, schema.items, here, i, errors);
      }
      return;
    }
    case "string": {
      if (typeof value !== "string") {
        fail(errors, `must be a string, got ${describe(value)}`, parent, key);
        return;
      }
      if (schema.minLength !== undefined && value.length < schema.minLength) {
        fail(
          errors,
          schema.minLength === 1 ? "must not be empty" : `shorter than ${schema.minLength}`,
          parent,
          key,
        );
      } else if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        fail(errors, `longer than ${schema.maxLength} characters`, parent, key);
      } else if (schema.pattern !== undefined && !patternRegExp(schema.pattern).test(value)) {
        fail(errors, schema.patternMessage ?? `must match ${schema.pattern}`, parent, key);
      } else if (schema.enum !== undefined && !schema.enum.includes(value)) {
        fail(errors, `must be one of ${schema.enum.join(", ")}`, parent, key);
      }
      return;
    }
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) {
        fail(errors, `must be an integer, got ${describe(value)}`, parent, key);
      }
      return;
    case "boolean":
      if (typeof value !== "boolean") fail(errors, `must be a boolean, got ${describe(value)}`, parent, key);
      return;
  }
}

const patterns = new Map<string, RegExp>();

/** Sinker's own schema patterns (never a tenant's), compiled once. */
function patternRegExp(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, "u");
    patterns.set(pattern, re);
  }
  return re;
}

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}
