/** The hook of mapping expressions in the projection: a mapping with `expression` computes its value in CEL. */
import type { Mapping, ResourceSync } from "../api/types.ts";
import { SinkerError } from "../errors.ts";
import type { KubeObject } from "../kube/object.ts";
import type { WorkBudget } from "./budget.ts";
import { compileExpression, evaluateExpression, resourceSyncVariable } from "./cel.ts";
import { ExpressionBudget } from "./cel-budget.ts";

export type { ExpressionBudget };

export function newExpressionBudget(): ExpressionBudget {
  return new ExpressionBudget();
}

const variables = new WeakMap<object, unknown>();

/** The `resourceSync` variable, made once per ResourceSync object (informer caches keep them unchanged). */
function variableOf(resourceSync: ResourceSync): unknown {
  let v = variables.get(resourceSync.metadata);
  if (v === undefined) {
    v = resourceSyncVariable(resourceSync.metadata);
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
  const program = compileExpression(mapping.expression ?? "");
  const input = { object: source, resourceSync: variableOf(resourceSync) };
  return evaluateExpression(program, input, budget, work);
}
