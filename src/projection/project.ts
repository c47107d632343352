/**
 * The projection (docs/spec/resourcesync.md#what-is-applied-to-the-target): from a ResourceSync and its source
 * object, the object Sinker server-side-applies onto the target. Pure: no client, no I/O, and the source is never
 * mutated or aliased (it comes from a shared informer cache), so the result may be changed freely by the caller.
 */

import { MAX_MAPPINGS } from "../api/schema.ts";
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  annotationIsTrue,
  GROUP_VERSION,
  LAST_APPLIED_ANNOTATION,
  type Mapping,
  RESOURCE_SYNC_KIND,
  type ResourceRef,
  type ResourceSync,
} from "../api/types.ts";
import { SinkerError } from "../errors.ts";
import { isPlainObject, type KubeObject, type ObjectMeta, type OwnerReference } from "../kube/object.ts";
import { lazyModule } from "../lazy-module.ts";
import { WorkBudget } from "./budget.ts";
import { type ExpressionBudget, expressionValue, newExpressionBudget } from "./expression-mapping.ts";
import { setFieldPath } from "./fieldpath.ts";
import { applyMetadataRule } from "./metadata-policy.ts";
import { checkSourceBounds } from "./source-bounds.ts";

/** The JSONPath engine (json-p3 and RE2), loaded at the first mapping with a fromFieldPath. */
const jsonpath = lazyModule<typeof import("./jsonpath.ts")>(import.meta.url, "./jsonpath.ts");

export interface ProjectionTarget {
  /** The resolved namespace of a namespaced target; undefined for a cluster-scoped kind. */
  namespace: string | undefined;
  /**
   * True only for a target in the local cluster of a namespaced kind. Needs resourceSync.metadata.uid. Left out
   * all the same while the ResourceSync has disable-target-deletion.
   */
  ownerReference: boolean;
}

export interface ProjectionInput {
  resourceSync: ResourceSync;
  source: KubeObject;
  target: ProjectionTarget;
}

/**
 * Metadata fields the API server owns or that only make sense on the object they were read from; never applied
 * (an applied uid or resourceVersion would even turn into a precondition on the target).
 */
const SERVER_METADATA = [
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "selfLink",
  "generateName",
  "ownerReferences",
] as const;

/**
 * The object to apply onto the target. Throws SinkerError (a mapping's error message starts with
 * `spec.mappings[i]: `): InvalidMapping, InvalidJSONPath, AmbiguousJSONPath,
 * JSONPathLimitExceeded, NotAKubernetesObject, KindMismatch, InvalidFieldPath, InvalidExpression,
 * ExpressionFailed, ExpressionBudgetExceeded, InvalidSpec (owner reference asked for a ResourceSync without uid).
 */
export function project(input: ProjectionInput): KubeObject {
  const { resourceSync, source, target } = input;
  const ref = resourceSync.spec.target.resourceRef;
  const mappings = resourceSync.spec.mappings ?? [];
  if (mappings.length > MAX_MAPPINGS) {
    throw new SinkerError(
      "InvalidSpec",
      `spec.mappings: ${mappings.length} mappings, at most ${MAX_MAPPINGS} are allowed`,
    );
  }
  checkSourceBounds(source);
  // One budget for every mapping of this projection (SinkerError ProjectionBudgetExceeded when spent).
  const budget = new WorkBudget();
  // Likewise one budget for every expression (made at the first one).
  let expressions: ExpressionBudget | undefined;

  const identity = (): Record<string, unknown> => {
    const metadata: Record<string, unknown> = { name: ref.name };
    if (target.namespace !== undefined) metadata.namespace = target.namespace;
    return { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
  };
  let out = mappings.length === 0 ? cloneKubeObject(source, identity()) : identity();
  mappings.forEach((mapping, index) => {
    try {
      if (mapping.expression != null) {
        expressions ??= newExpressionBudget();
        const value = expressionValue(mapping, resourceSync, source, expressions, budget);
        if (value !== undefined && mapping.toFieldPath != null) setFieldPath(out, mapping.toFieldPath, value);
        return;
      }
      const next = applyMapping(out, mapping, source, ref, identity, budget);
      if (next !== undefined) out = next;
    } catch (err) {
      // Name the mapping, so the message is actionable in a condition or on the command line.
      if (err instanceof SinkerError) {
        throw new SinkerError(err.reason, `spec.mappings[${index}]: ${err.message}`, { cause: err });
      }
      throw err;
    }
  });

  return finish(out, resourceSync, target, budget);
}

/**
 * Applies one mapping: writes into `out` and returns undefined, or returns the new object when a from-only mapping
 * replaces the whole target.
 */
function applyMapping(
  out: Record<string, unknown>,
  mapping: Mapping,
  source: KubeObject,
  ref: ResourceRef,
  identity: () => Record<string, unknown>,
  budget: WorkBudget,
): Record<string, unknown> | undefined {
  const from = mapping.fromFieldPath ?? undefined;
  const to = mapping.toFieldPath ?? undefined;
  if (from === undefined && to === undefined) {
    throw new SinkerError("InvalidMapping", "a mapping must set fromFieldPath, toFieldPath or both");
  }
  const { compilePath, selectOne } = jsonpath();
  const selected = selectOne(compilePath(from), source, budget);
  if (!selected.found) return undefined; // Selecting nothing leaves that toFieldPath out of the applied object.
  if (to !== undefined) {
    setFieldPath(out, to, copyCharged(selected.value, budget));
    return undefined;
  }
  const path = from === undefined || from === "" ? "$" : from;
  const inner = selected.value;
  if (
    !isPlainObject(inner) ||
    typeof inner.apiVersion !== "string" ||
    inner.apiVersion === "" ||
    typeof inner.kind !== "string" ||
    inner.kind === ""
  ) {
    throw new SinkerError(
      "NotAKubernetesObject",
      `expected a Kubernetes object at ${path} (a value with apiVersion and kind), found ${describe(inner)}`,
    );
  }
  if (inner.apiVersion !== ref.apiVersion || inner.kind !== ref.kind) {
    throw new SinkerError(
      "KindMismatch",
      `the object at ${path} is a ${inner.apiVersion} ${inner.kind}, but the target is a ${ref.apiVersion} ${ref.kind}`,
    );
  }
  const copier = new Copier();
  const clone = cloneKubeObject(inner as KubeObject, identity(), copier);
  budget.spend(copier.count);
  return clone;
}

/** A deep copy whose size (in values copied) is charged to the budget once made. */
function copyCharged(value: unknown, budget: WorkBudget): unknown {
  const copier = new Copier();
  const copy = copier.copy(value);
  budget.spend(copier.count);
  return copy;
}

/**
 * Adds to `out` (the target's identity) the top-level fields of `obj` except apiVersion/kind/metadata, and its
 * labels and annotations; all deep copies.
 */
function cloneKubeObject(
  obj: KubeObject,
  out: Record<string, unknown>,
  copier = new Copier(),
): Record<string, unknown> {
  const meta = out.metadata as Record<string, unknown>;
  const m = obj.metadata;
  if (isPlainObject(m)) {
    if (m.labels != null) meta.labels = copier.copy(m.labels);
    if (m.annotations != null) meta.annotations = copier.copy(m.annotations);
  }
  for (const key of Object.keys(obj)) {
    if (key === "apiVersion" || key === "kind" || key === "metadata") continue;
    define(out, key, copier.copy(obj[key]));
  }
  return out;
}

/** Forces the target's identity, cleans metadata and adds the owner reference. */
function finish(
  out: Record<string, unknown>,
  resourceSync: ResourceSync,
  target: ProjectionTarget,
  budget: WorkBudget,
): KubeObject {
  const ref = resourceSync.spec.target.resourceRef;
  const mapped = out.metadata ?? {};
  if (!isPlainObject(mapped)) {
    throw new SinkerError(
      "InvalidFieldPath",
      `metadata of the target must be an object, found ${describe(mapped)}`,
    );
  }
  const meta: ObjectMeta = { name: ref.name };
  if (target.namespace !== undefined) meta.namespace = target.namespace;
  for (const key of Object.keys(mapped)) {
    if (key === "name" || key === "namespace" || (SERVER_METADATA as readonly string[]).includes(key))
      continue;
    define(meta, key, mapped[key]);
  }
  // The metadata policy (spec.target.labels/annotations and the tool-tracking list), whatever wrote the keys.
  const policy = resourceSync.spec.target;
  for (const field of ["labels", "annotations"] as const) {
    const kept = applyMetadataRule(meta[field], policy[field], field, budget);
    if (kept === undefined) delete meta[field];
    else meta[field] = kept as Record<string, string>;
  }
  if (isPlainObject(meta.annotations) && Object.hasOwn(meta.annotations, LAST_APPLIED_ANNOTATION)) {
    const { [LAST_APPLIED_ANNOTATION]: _dropped, ...rest } = meta.annotations;
    meta.annotations = rest;
  }
  if (isPlainObject(meta.labels) && Object.keys(meta.labels).length === 0) delete meta.labels;
  if (isPlainObject(meta.annotations) && Object.keys(meta.annotations).length === 0) delete meta.annotations;
  // A target Sinker keeps when the ResourceSync goes carries no owner reference: the garbage collector would delete
  // it anyway (also during a Foreground deletion, before Sinker's finalizer runs). See
  // docs/spec/resourcesync.md#kept-means-kept.
  const kept = annotationIsTrue(resourceSync.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  if (target.ownerReference && target.namespace !== undefined && !kept) {
    meta.ownerReferences = [ownerReference(resourceSync)];
  }

  const result: KubeObject = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: meta };
  for (const key of Object.keys(out)) {
    if (key === "apiVersion" || key === "kind" || key === "metadata") continue;
    define(result, key, out[key]);
  }
  return result;
}

/** The owner reference of a local namespaced target to its ResourceSync. */
export function ownerReference(resourceSync: ResourceSync): OwnerReference {
  const uid = resourceSync.metadata.uid;
  if (typeof uid !== "string" || uid === "") {
    throw new SinkerError(
      "InvalidSpec",
      `ResourceSync ${resourceSync.metadata.name} has no metadata.uid, so the target cannot get an owner reference`,
    );
  }
  return {
    apiVersion: GROUP_VERSION,
    kind: RESOURCE_SYNC_KIND,
    name: resourceSync.metadata.name,
    uid,
    controller: false,
    blockOwnerDeletion: true,
  };
}

/**
 * A deep copy of JSON data (objects, arrays, strings, numbers, booleans, null). Recursive (fast) for the first
 * levels, iterative below, so no document is too deep for it. A `__proto__` key stays an own field.
 */
export function deepCopy<T>(value: T): T {
  return new Copier().copy(value);
}

const RECURSIVE_DEPTH = 200;

/** Deep copies that count the values they copy (the projection charges its budget with the count). */
class Copier {
  /** Values copied so far by this copier, scalars included. */
  count = 0;

  copy<T>(value: T): T {
    return this.#recursive(value, 0) as T;
  }

  #recursive(value: unknown, depth: number): unknown {
    this.count++;
    if (value === null || typeof value !== "object") return value;
    if (depth > RECURSIVE_DEPTH) return this.#iterative(value);
    if (Array.isArray(value)) {
      const out: unknown[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) out[i] = this.#recursive(value[i], depth + 1);
      return out;
    }
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      const copied = this.#recursive((value as Record<string, unknown>)[key], depth + 1);
      if (key === "__proto__") define(out, key, copied);
      else out[key] = copied;
    }
    return out;
  }

  #iterative(root: object): unknown {
    const emptyLike = (v: object): Record<string, unknown> | unknown[] =>
      Array.isArray(v) ? new Array(v.length) : {};
    const result = emptyLike(root);
    const stack: [Record<string, unknown>, Record<string, unknown>][] = [
      [root as Record<string, unknown>, result as Record<string, unknown>],
    ];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const [from, to] = top;
      for (const key of Object.keys(from)) {
        const v = from[key];
        let copiedValue: unknown = v;
        this.count++;
        if (v !== null && typeof v === "object") {
          copiedValue = emptyLike(v);
          stack.push([v as Record<string, unknown>, copiedValue as Record<string, unknown>]);
        }
        if (key === "__proto__") define(to, key, copiedValue);
        else to[key] = copiedValue;
      }
    }
    return result;
  }
}

function define(obj: object, name: string, value: unknown): void {
  Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (isPlainObject(value)) return "an object without apiVersion and kind";
  if (typeof value === "string") return "a string";
  return `a ${typeof value}`;
}
