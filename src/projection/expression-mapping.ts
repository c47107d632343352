/**
 * The hook of mapping expressions in the projection: a mapping with `expression` computes its value in CEL. The CEL
 * implementation is loaded at the first expression, not at start: about 10 MiB of resident memory (and a tenth of
 * a second of a start's CPU) that a Sinker whose ResourceSyncs use no expression never pays.
 */
import type { Mapping, ResourceSync } from "../api/types.ts";
import { SinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import { lazyModule } from "../lazy-module.ts";
import type { WorkBudget } from "./budget.ts";
import { ExpressionBudget } from "./cel-budget.ts";

/** cel.ts, loaded the first time an expression is met. */
const cel = lazyModule<typeof import("./cel.ts")>(import.meta.url, "./cel.ts");

export type { ExpressionBudget };

export function newExpressionBudget(): ExpressionBudget {
  return new ExpressionBudget();
}

const variables = new WeakMap<object, unknown>();

/** The `resourceSync` variable, made once per ResourceSync object (informer caches keep them unchanged). */
function variableOf(resourceSync: ResourceSync): unknown {
  let v = variables.get(resourceSync.metadata);
  if (v === undefined) {
    v = cel().resourceSyncVariable(resourceSync.metadata);
    variables.set(resourceSync.metadata, v);
  }
  return v;
}

/** The value a mapping's expression computes for `source`, or undefined to leave toFieldPath out. */
export function expressionValue(
  mapping: Mapping,
  resourceSync: ResourceSync,
  source: KubeObject,
  budget: ExpressionBudget,
  work: WorkBudget,
): unknown {
  if (mapping.fromFieldPath != null) {
    throw new SinkerError("InvalidMapping", "a mapping sets fromFieldPath or expression, not both");
  }
  if (mapping.toFieldPath == null) {
    throw new SinkerError("InvalidMapping", "a mapping with an expression must set toFieldPath");
  }
  const program = cel().compileExpression(mapping.expression ?? "");
  const input = { object: source, resourceSync: variableOf(resourceSync) };
  return cel().evaluateExpression(program, input, budget, work);
}
