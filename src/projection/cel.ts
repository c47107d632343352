/**
 * Mapping `expression`s: CEL over the source object, compiled once per text and evaluated within a budget.
 *
 * Why @bufbuild/cel (Apache-2.0) and not @marcbachmann/cel-js (MIT), the two credible engines on npm: run
 * against 1,203 cases of the cel-spec conformance suite (tests/simple/testdata: basic, comparisons, conversions,
 * fields, fp_math, integer_math, lists, logic, macros, macros2, parse, plumbing, string, string_ext, encoders_ext,
 * bindings_ext; the cases needing protobuf messages left out), @bufbuild/cel passed 1,143 and cel-js 953. cel-js
 * misses most of the strings extension (`replace`, `format`, `charAt`, `quote`), bytes literals and `int(uint)`,
 * and types list equality strictly; @bufbuild/cel misses `cel.bind`, the two-variable macros and the encoders
 * extension (added here). And cel-js's `matches()` runs on JavaScript's backtracking RegExp:
 * `s.matches('^(a+)+$')` on 24 `a`s and a `!` took 1.2 s there, 7 ms on @bufbuild/cel's RE2. cel-js evaluates
 * faster (a 10^6-iteration comprehension: 33 ms against 271 ms) and has a public type checker, but an
 * expression's cost is bounded here by the budget, not by the engine's speed. test/unit/cel-conformance.test.ts
 * keeps a vendored sample of the suite passing.
 *
 * Neither engine bounds evaluation cost (cel-go does), so this module does: every compiled expression is checked
 * (length, AST size, comprehension nesting, only known variables and functions) and rewritten so that every
 * comprehension iteration calls a metered tick; every function is metered (cel-functions.ts, cel-budget.ts).
 * The variables are `object` (the source object) and `resourceSync` (the ResourceSync's name, namespace, labels
 * and annotations); nothing else of the controller is reachable.
 */
import { type CelValue, isCelError, parse, plan } from "@bufbuild/cel";
import { MAX_EXPRESSION_LENGTH } from "../api/schema.ts";
import { SinkerError } from "../errors.ts";
import { WorkBudget } from "./budget.ts";
import { ExpressionBudget } from "./cel-budget.ts";
import { functionNames, meteredEnvironment, TICK_FUNCTION, withMeter } from "./cel-functions.ts";
import { resourceSyncVariable, sanitize, toCelInput, toJson } from "./cel-values.ts";

/** Most AST nodes of one expression (after macro expansion). */
export const MAX_EXPRESSION_NODES = 2000;
/** Deepest nesting of comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`). */
export const MAX_COMPREHENSION_NESTING = 3;
export const EXPRESSION_CACHE_SIZE = 1000;
/** The variables an expression may read. */
export const EXPRESSION_VARIABLES = ["object", "resourceSync"] as const;

const env = meteredEnvironment();
/** Every function of the environment, and the operators the engine evaluates itself (not metered: O(1)). */
const knownFunctions = new Set([
  ...functionNames(env),
  "_[_]",
  "_?_:_",
  "_&&_",
  "_||_",
  "@not_strictly_false",
]);

type Program = ReturnType<typeof plan>;
type Compiled = { ok: true; program: Program } | { ok: false; error: SinkerError };
const cache = new Map<string, Compiled>();

/** Identifiers CEL resolves to types (`type(x) == string`). */
const TYPE_NAMES = [
  "bool",
  "bytes",
  "double",
  "dyn",
  "int",
  "list",
  "map",
  "null_type",
  "string",
  "type",
  "uint",
];

/**
 * Compiles (or takes from the cache) an expression over `variables`; throws InvalidExpression or
 * ExpressionBudgetExceeded.
 */
export function compileExpression(
  text: string,
  variables: readonly string[] = EXPRESSION_VARIABLES,
): Program {
  const key = variables === EXPRESSION_VARIABLES ? text : `${variables.join(",")}\u0000${text}`;
  let hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
  } else {
    hit = compileUncached(text, variables);
    if (cache.size >= EXPRESSION_CACHE_SIZE) {
      const oldest = cache.keys().next();
      if (!oldest.done) cache.delete(oldest.value);
    }
  }
  cache.set(key, hit);
  if (!hit.ok) throw hit.error;
  return hit.program;
}

function compileUncached(text: string, variables: readonly string[]): Compiled {
  if (text.length > MAX_EXPRESSION_LENGTH) {
    return refused("ExpressionBudgetExceeded", `longer than ${MAX_EXPRESSION_LENGTH} characters`);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(text);
  } catch (err) {
    const why = err instanceof RangeError ? "nested too deeply" : oneLine(err);
    return refused("InvalidExpression", `does not parse: ${why}`);
  }
  if (parsed.expr === undefined) return refused("InvalidExpression", "is empty");
  try {
    const walk = new Walk();
    walk.visit(parsed.expr as unknown as Node, new Set([...TYPE_NAMES, ...variables]), 0);
    return { ok: true, program: plan(env, parsed) };
  } catch (err) {
    if (err instanceof SinkerError) return { ok: false, error: err };
    return refused("InvalidExpression", oneLine(err));
  }
}

function refused(reason: "InvalidExpression" | "ExpressionBudgetExceeded", why: string): Compiled {
  return { ok: false, error: new SinkerError(reason, `the expression ${why}`) };
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, " ").slice(0, 200);
}

/** The parsed AST (cel.expr.Expr messages) as far as the checks read and rewrite it. */
interface Node {
  id: bigint;
  exprKind: { case: string | undefined; value: unknown };
}
interface Call {
  function: string;
  target?: Node;
  args: Node[];
}
interface Comprehension {
  iterVar: string;
  iterVar2?: string;
  accuVar: string;
  iterRange: Node;
  accuInit: Node;
  loopCondition: Node;
  loopStep: Node;
  result: Node;
}

/** Checks the AST and adds the tick to every comprehension's loop condition. */
class Walk {
  nodes = 0;
  maxId = 0n;

  visit(node: Node, scope: ReadonlySet<string>, nesting: number): void {
    if (++this.nodes > MAX_EXPRESSION_NODES) {
      throw new SinkerError(
        "ExpressionBudgetExceeded",
        `the expression has more than ${MAX_EXPRESSION_NODES} nodes`,
      );
    }
    if (node.id > this.maxId) this.maxId = node.id;
    const { case: kind, value } = node.exprKind;
    switch (kind) {
      case "identExpr": {
        const name = (value as { name: string }).name;
        if (!scope.has(name)) throw new SinkerError("InvalidExpression", `undeclared reference to '${name}'`);
        return;
      }
      case "selectExpr":
        this.visitSelect(value as { operand?: Node }, scope, nesting);
        return;
      case "callExpr":
        this.visitCall(value as Call, scope, nesting);
        return;
      case "listExpr":
        for (const e of (value as { elements: Node[] }).elements) this.visit(e, scope, nesting);
        return;
      case "structExpr":
        this.visitStruct(value as { messageName: string; entries: StructEntry[] }, scope, nesting);
        return;
      case "comprehensionExpr":
        this.visitComprehension(value as Comprehension, scope, nesting + 1);
        return;
      default:
        return; // constants
    }
  }

  visitSelect(value: { operand?: Node }, scope: ReadonlySet<string>, nesting: number): void {
    if (value.operand !== undefined) this.visit(value.operand, scope, nesting);
  }

  visitCall(call: Call, scope: ReadonlySet<string>, nesting: number): void {
    const qualified = call.target === undefined ? undefined : qualifiedName(call.target);
    const name =
      qualified !== undefined && !scope.has(qualified.split(".")[0] ?? "")
        ? `${qualified}.${call.function}`
        : call.function;
    if (!knownFunctions.has(name) || name === TICK_FUNCTION) {
      throw new SinkerError("InvalidExpression", `undeclared reference to function '${name}'`);
    }
    if (call.target !== undefined && name === call.function) this.visit(call.target, scope, nesting);
    for (const a of call.args) this.visit(a, scope, nesting);
  }

  visitStruct(value: { messageName: string; entries: StructEntry[] }, scope: ReadonlySet<string>, n: number) {
    if (value.messageName !== "") {
      throw new SinkerError("InvalidExpression", "message construction is not available");
    }
    for (const e of value.entries) {
      if (e.keyKind.case === "mapKey") this.visit(e.keyKind.value, scope, n);
      if (e.value !== undefined) this.visit(e.value, scope, n);
    }
  }

  visitComprehension(c: Comprehension, scope: ReadonlySet<string>, nesting: number): void {
    if (nesting > MAX_COMPREHENSION_NESTING) {
      throw new SinkerError(
        "ExpressionBudgetExceeded",
        `the expression nests comprehensions more than ${MAX_COMPREHENSION_NESTING} deep`,
      );
    }
    this.visit(c.iterRange, scope, nesting - 1);
    this.visit(c.accuInit, scope, nesting - 1);
    const inner = new Set(scope);
    inner.add(c.iterVar);
    if (c.iterVar2) inner.add(c.iterVar2);
    inner.add(c.accuVar);
    this.visit(c.loopCondition, inner, nesting);
    this.visit(c.loopStep, inner, nesting);
    const withAccu = new Set(scope);
    withAccu.add(c.accuVar);
    this.visit(c.result, withAccu, nesting - 1);
    // One metered step per iteration, before the step runs; an error (budget spent) ends the loop at once.
    const condition = c.loopCondition;
    this.maxId += 1n;
    c.loopCondition = {
      $typeName: "cel.expr.Expr",
      id: this.maxId + 1_000_000n,
      exprKind: {
        case: "callExpr",
        value: { $typeName: "cel.expr.Expr.Call", function: TICK_FUNCTION, args: [condition] },
      },
    } as unknown as Node;
  }
}

interface StructEntry {
  keyKind: { case: string | undefined; value: Node };
  value?: Node;
}

/** `a.b.c` of a select chain on an identifier, else undefined. */
function qualifiedName(node: Node): string | undefined {
  const { case: kind, value } = node.exprKind;
  if (kind === "identExpr") return (value as { name: string }).name;
  if (kind === "selectExpr") {
    const s = value as { operand?: Node; field: string; testOnly: boolean };
    if (s.testOnly || s.operand === undefined) return undefined;
    const prefix = qualifiedName(s.operand);
    return prefix === undefined ? undefined : `${prefix}.${s.field}`;
  }
  return undefined;
}

/** Number of cached compilations (tests). */
export function cachedExpressionCount(): number {
  return cache.size;
}

export interface ExpressionInput {
  /** The source object. */
  object: unknown;
  /** The ResourceSync's metadata the expression may read. */
  resourceSync: unknown;
}

/**
 * Evaluates a compiled expression: the JSON value to write, or undefined for `null` (leave the field out). Throws
 * ExpressionFailed, ExpressionBudgetExceeded or the WorkBudget's ProjectionBudgetExceeded.
 */
export function evaluateExpression(
  program: Program,
  input: ExpressionInput,
  budget: ExpressionBudget,
  work: WorkBudget,
): unknown {
  const bindings = { object: toCelInput(input.object), resourceSync: toCelInput(input.resourceSync) };
  const result = evaluateCel(program, bindings, budget, work);
  if (isCelError(result)) {
    throw new SinkerError("ExpressionFailed", `the expression failed: ${sanitize(result.message)}`);
  }
  const counter = { n: 0, chars: 0 };
  const out = toJson(result, counter);
  work.spend(counter.n);
  return out === null ? undefined : out;
}

/**
 * Runs a program on CEL values within the budgets: the CEL value or error it returns. Throws when a budget is
 * spent, even if the expression absorbed the error (`budget exceeded || true`).
 */
export function evaluateCel(
  program: Program,
  bindings: Record<string, unknown>,
  budget: ExpressionBudget,
  work: WorkBudget,
): CelValue | ReturnType<Program> {
  budget.start();
  const result = withMeter({ budget, work }, () => program(bindings as Parameters<Program>[0]));
  if (budget.exceeded !== undefined) throw budget.exceeded;
  if (work.spent.regexWork > work.maxRegexWork) work.spendRegex(0);
  return result;
}

/** Runs the engine once when loaded (lazy initialisation, JIT), so that this is not charged to a tenant's budget. */
function warmUp(): void {
  const text =
    "object.data.map(k, k + 'x').exists(k, k.matches('^a')) ? base64.encode(bytes(object.data.a)) : ''";
  try {
    const input = { object: { data: { a: "b" } }, resourceSync: {} };
    evaluateExpression(compileExpression(text), input, new ExpressionBudget(), new WorkBudget());
  } catch {
    // Only a warm-up: the real evaluations report their own errors.
  }
  cache.delete(text);
}
warmUp();

export { ExpressionBudget, resourceSyncVariable, toCelInput };
