/**
 * Mapping expressions (CEL) through the projection: the transforms users ask for, the errors a tenant gets, and
 * the budget that bounds a hostile expression.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Mapping, ResourceSync } from "../../src/api/types.ts";
import { validateResourceSync } from "../../src/api/validate.ts";
import { SinkerError } from "../../src/errors.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import { WorkBudget } from "../../src/projection/budget.ts";
import {
  cachedExpressionCount,
  compileExpression,
  ExpressionBudget,
  evaluateExpression,
  MAX_COMPREHENSION_NESTING,
  MAX_EXPRESSION_NODES,
} from "../../src/projection/cel.ts";
import {
  MAX_CEL_COLLECTION_SIZE,
  MAX_CEL_MILLIS,
  MAX_CEL_STEPS,
  MAX_CEL_STRING_LENGTH,
} from "../../src/projection/cel-budget.ts";
import { project } from "../../src/projection/index.ts";

function rs(mappings: Mapping[]): ResourceSync {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "copy", namespace: "team-a", uid: "u-1", labels: { env: "prod" } },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "db" } },
      target: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "db-copy" } },
      mappings,
    },
  };
}

const SECRET_VALUE = "s3cr3t-Value";
const source: KubeObject = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "db", namespace: "team-a", labels: { team: "payments" } },
  type: "Opaque",
  data: {
    password: Buffer.from(SECRET_VALUE).toString("base64"),
    "app.url": Buffer.from("https://db.example.com:5432/app").toString("base64"),
    plain: SECRET_VALUE,
  },
  spec: { replicas: 3, ports: [80, 443], big: Array.from({ length: 1000 }, (_, i) => i) },
};

/** The value written at data.out by one expression mapping, or the error thrown. */
function out(expression: string): unknown {
  const obj = project({
    resourceSync: rs([{ expression, toFieldPath: "data.out" }]),
    source,
    target: { namespace: "team-a", ownerReference: false },
  });
  return (obj.data as Record<string, unknown> | undefined)?.out;
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SinkerError) return `${err.reason}: ${err.message}`;
    throw err;
  }
  assert.fail("expected a SinkerError");
}

test("transforms: constants, base64 in and out, string building, regular expressions, renamed keys", () => {
  const table: [string, unknown][] = [
    ["'kubernetes.io/tls'", "kubernetes.io/tls"],
    ["42", 42],
    ["string(base64.decode(object.data.password))", SECRET_VALUE],
    ["base64.encode(bytes(object.metadata.labels.team))", Buffer.from("payments").toString("base64")],
    ["base64.decode(object.data.password)", Buffer.from(SECRET_VALUE).toString("base64")], // bytes → base64
    ["'prefix-' + object.metadata.name + '-suffix'", "prefix-db-suffix"],
    ["resourceSync.metadata.namespace + '/' + object.metadata.name", "team-a/db"],
    ["resourceSync.metadata.labels.env", "prod"],
    ["string(object.spec.replicas + 1)", "4"],
    ["'%s:%d'.format([object.metadata.name, object.spec.replicas])", "db:3"],
    ["string(base64.decode(object.data['app.url'])).find('[a-z]+\\\\.example\\\\.com')", "db.example.com"],
    ["string(base64.decode(object.data['app.url'])).findAll('[0-9]+')", ["5432"]],
    ["object.metadata.name.matches('^d')", true],
    ["object.data.map(k, k.replace('.', '_'))", ["password", "app_url", "plain"]],
    ["object.spec.ports.map(p, p * 2)", [160, 886]],
    ["{'a': object.metadata.name, 'b': [1, 2.5, true]}", { a: "db", b: [1, 2.5, true] }],
    ["object.metadata.name.upperAscii()", "DB"],
    ["object.metadata.labels.team.split('m')", ["pay", "ents"]],
  ];
  for (const [expression, want] of table) assert.deepEqual(out(expression), want, expression);
});

test("a null result leaves toFieldPath out, as a fromFieldPath that selects nothing", () => {
  assert.equal(out("has(object.data.missing) ? object.data.missing : null"), undefined);
  assert.equal(out("has(object.data.plain) ? 'yes' : null"), "yes");
});

test("expressions and JSONPath mappings mix, in order", () => {
  const obj = project({
    resourceSync: rs([
      { fromFieldPath: "data", toFieldPath: "data" },
      { expression: "'kubernetes.io/tls'", toFieldPath: "type" },
      { expression: "object.metadata.labels.team + '-copy'", toFieldPath: "metadata.labels.team" },
    ]),
    source,
    target: { namespace: "team-a", ownerReference: false },
  });
  assert.equal(obj.type, "kubernetes.io/tls");
  assert.deepEqual(obj.metadata?.labels, { team: "payments-copy" });
  assert.deepEqual(Object.keys(obj.data as object), ["password", "app.url", "plain"]);
});

test("an expression that does not compile: InvalidExpression naming the mapping", () => {
  const table: [string, RegExp][] = [
    ["object.data.(", /^InvalidExpression: spec\.mappings\[0\]: the expression does not parse: /],
    ["secret.data", /^InvalidExpression: .*undeclared reference to 'secret'/],
    ["process.env", /^InvalidExpression: .*undeclared reference to 'process'/],
    ["readFile('/etc/passwd')", /^InvalidExpression: .*undeclared reference to function 'readFile'/],
    ["object.data.plain.reverse()", /^InvalidExpression: .*undeclared reference to function 'reverse'/],
    ["google.protobuf.Duration{seconds: 1}", /^InvalidExpression: .*message construction is not available/],
  ];
  for (const [expression, want] of table)
    assert.match(
      reason(() => out(expression)),
      want,
      expression,
    );
});

test("an expression that fails at evaluation: ExpressionFailed, never quoting the source's values", () => {
  const table: [string, string][] = [
    ["object.data.missing", "no such key or field"],
    ["int(object.data.plain)", "a conversion failed"],
    ["object.data[object.data.plain]", "no such key or field"],
    ["string(base64.decode(object.data.plain))", "invalid base64 data"],
    ["object.spec.replicas / 0", "int divide by zero"],
    ["object.data.plain + 1", "found no matching overload for '_+_' applied to '(string, int)'"],
    ["duration('1s')", "the expression returns a value that is not JSON (a timestamp, duration or type)"],
    ["object.data.plain.matches('(')", "invalid regular expression: not a valid RE2 regular expression"],
  ];
  for (const [expression, want] of table) {
    const got = reason(() => out(expression));
    assert.ok(got.startsWith("ExpressionFailed: spec.mappings[0]: "), got);
    assert.ok(got.endsWith(want), `${expression}: ${got}`);
    assert.ok(!got.includes(SECRET_VALUE) && !got.includes("s3cr3t"), got);
  }
});

test("the validator: expression excludes fromFieldPath and needs toFieldPath", () => {
  const errors = (m: Mapping) => {
    const v = validateResourceSync(rs([m]));
    return v.ok ? [] : v.errors.map((e) => e.message);
  };
  assert.deepEqual(errors({ expression: "1", toFieldPath: "data.a" }), []);
  assert.deepEqual(errors({ expression: "1", fromFieldPath: "data", toFieldPath: "data.a" }), [
    "a mapping sets fromFieldPath or expression, not both",
  ]);
  assert.deepEqual(errors({ expression: "1" }), [
    "a mapping must set fromFieldPath, toFieldPath or both",
    "a mapping with an expression must set toFieldPath",
  ]);
  assert.deepEqual(errors({ expression: "", toFieldPath: "a" }), ["must not be empty"]);
  assert.deepEqual(errors({ expression: "x".repeat(4097), toFieldPath: "a" }), [
    "longer than 4096 characters",
  ]);
});

test("compiled once per text (bounded cache)", () => {
  const text = `object.metadata.name + '${Math.random()}'`;
  const before = cachedExpressionCount();
  const a = compileExpression(text);
  assert.equal(cachedExpressionCount(), before + 1);
  assert.equal(compileExpression(text), a);
  assert.equal(cachedExpressionCount(), before + 1);
});

test("the budget's limits (pinned)", () => {
  assert.equal(MAX_CEL_STEPS, 200_000);
  assert.equal(MAX_CEL_MILLIS, 250);
  assert.equal(MAX_CEL_STRING_LENGTH, 1024 * 1024);
  assert.equal(MAX_CEL_COLLECTION_SIZE, 100_000);
  assert.equal(MAX_COMPREHENSION_NESTING, 3);
  assert.equal(MAX_EXPRESSION_NODES, 2000);
});

/** Evaluates with a budget that only the step count can stop (no clock), so the outcome is deterministic. */
function stepsOnly(expression: string, maxSteps = MAX_CEL_STEPS): { error?: string; steps: number } {
  const budget = new ExpressionBudget(maxSteps, 1e9);
  try {
    evaluateExpression(
      compileExpression(expression),
      { object: source, resourceSync: {} },
      budget,
      new WorkBudget(),
    );
    return { steps: budget.spentSteps };
  } catch (err) {
    return { error: `${(err as SinkerError).reason}: ${(err as Error).message}`, steps: budget.spentSteps };
  }
}

test("a cheap expression costs a few steps; a comprehension one per iteration and per call", () => {
  assert.ok(stepsOnly("object.metadata.name + '-x'").steps <= 3);
  const { steps, error } = stepsOnly("object.spec.big.all(i, i >= 0)");
  assert.equal(error, undefined);
  assert.ok(steps >= 2000 && steps <= 4000, String(steps)); // 1000 iterations: a tick and a call each
});

test("hostile: nested comprehensions are stopped by the step budget (or refused when nested too deep)", () => {
  const two = stepsOnly("object.spec.big.all(a, object.spec.big.all(b, true))"); // 10^6 iterations
  assert.match(two.error ?? "", /^ExpressionBudgetExceeded: .*more than 200000 evaluation steps$/);
  assert.ok(two.steps <= MAX_CEL_STEPS + 10, String(two.steps));
  // The error is absorbed by `||` in CEL, but the mapping still fails.
  const absorbed = stepsOnly("object.spec.big.all(a, object.spec.big.all(b, true)) || true");
  assert.match(absorbed.error ?? "", /^ExpressionBudgetExceeded: /);
  const deep =
    "object.spec.big.all(a, object.spec.big.all(b, object.spec.big.all(c, object.spec.big.all(d, true))))";
  assert.match(stepsOnly(deep).error ?? "", /nests comprehensions more than 3 deep$/);
});

test("hostile: values are capped before they are built (string repetition, list doubling)", () => {
  const x44 = "x".repeat(44);
  const repeat = `'${"x".repeat(1000)}'.replace('x', '${x44}').replace('x', '${x44}')`;
  assert.match(stepsOnly(repeat).error ?? "", /replace would build a value larger than 1048576$/);
  const join = `object.spec.big.map(i, '${"y".repeat(2000)}').join('')`;
  assert.match(stepsOnly(join).error ?? "", /join would build a value larger than 1048576$/);
  const doubling = "object.spec.big + object.spec.big".replaceAll(
    "object.spec.big",
    "(object.spec.big + object.spec.big)",
  );
  assert.equal(stepsOnly(doubling).error, undefined); // 4000 entries: fine
  const many = Array.from({ length: 7 }).reduce<string>((e) => `(${e} + ${e})`, "object.spec.big");
  assert.match(stepsOnly(many).error ?? "", /_\+_ would build a value larger than 100000$/);
});

test("hostile: a regular expression that backtracks elsewhere is linear here and charged to the regex budget", () => {
  const subject = `'${"a".repeat(4000)}!'`;
  assert.deepEqual(stepsOnly(`${subject}.matches('^(a+)+$')`).error, undefined);
  // Every call is charged subject length × program size: enough of them exhaust the projection's regex budget.
  const costly = `object.spec.big.exists(i, ${subject}.matches('^(a|b|c|d|e|f|g|h)+(a+)+$'))`;
  assert.match(stepsOnly(costly).error ?? "", /^ProjectionBudgetExceeded: /);
});

test("the CPU-time limit stops what the step count prices too low", () => {
  const budget = new ExpressionBudget(1e12, 20);
  const expression = "object.spec.big.all(a, object.spec.big.all(b, a in object.spec.big))";
  assert.throws(
    () =>
      evaluateExpression(
        compileExpression(expression),
        { object: source, resourceSync: {} },
        budget,
        new WorkBudget(),
      ),
    (err: unknown) => err instanceof SinkerError && /more than 20 ms of CPU$/.test(err.message),
  );
});

test("one budget for all the expressions of a projection", () => {
  const quarter = "object.spec.big.exists(a, a < 30 && object.spec.big.exists(b, b < 0))";
  const { steps, error } = stepsOnly(quarter);
  assert.equal(error, undefined);
  assert.ok(steps > MAX_CEL_STEPS / 4 && steps < MAX_CEL_STEPS / 2, String(steps));
  const four = rs(["a", "b", "c", "d"].map((k) => ({ expression: quarter, toFieldPath: `data.${k}` })));
  // Alone, each stays within the steps (above); together they do not (or run out of time on a busy machine).
  assert.match(
    reason(() =>
      project({ resourceSync: four, source, target: { namespace: "team-a", ownerReference: false } }),
    ),
    /^ExpressionBudgetExceeded: spec\.mappings\[\d\]: /,
  );
});

test("hostile: a result or a format() of shared large strings is refused before it is built", () => {
  const shared = `object.spec.big.map(i, '${"w".repeat(3000)}')`; // 1000 references to one string
  assert.match(stepsOnly(shared).error ?? "", /returns more than 2097152 characters of strings$/);
  const printed = `'%s'.format([${shared}])`;
  assert.match(stepsOnly(printed).error ?? "", /format would build a value larger than 1048576$/);
  const split = `'${"v".repeat(3000)}'.replace('v', '${"v".repeat(40)}').split('')`; // 120 000 characters
  assert.match(stepsOnly(split).error ?? "", /split would build a value larger than 100000$/);
});
