import assert from "node:assert/strict";
import { test } from "node:test";
import { type ErrorReason, SinkerError } from "../../src/errors.ts";
import {
  CACHE_SIZE,
  cachedPathCount,
  compilePath,
  MAX_DESCENDANT_DEPTH,
  selectAll,
  selectOne,
  toExpression,
} from "../../src/projection/jsonpath.ts";

const doc = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "x", labels: { a: "1" } },
  data: { foo: "f", "dotted.key": "d" },
  items: [{ n: 1 }, { n: 2 }, { n: 3 }],
};

test("toExpression: relative gets $. prefixed, $ paths as is, empty is the root", () => {
  const cases: [string, string][] = [
    ["data.foo", "$.data.foo"],
    ["metadata.labels", "$.metadata.labels"],
    ["$.data.foo", "$.data.foo"],
    ["$['data']", "$['data']"],
    ["$", "$"],
    ["", "$"],
  ];
  for (const [path, want] of cases) assert.equal(toExpression(path), want, path);
});

test("selectOne: found, not found, whole object", () => {
  const cases: [string | undefined, unknown][] = [
    ["data.foo", { found: true, value: "f" }],
    ["$.data['dotted.key']", { found: true, value: "d" }],
    ["items[1].n", { found: true, value: 2 }],
    ["items[?@.n > 2]", { found: true, value: { n: 3 } }],
    ["data.absent", { found: false }],
    ["items[?@.n > 5]", { found: false }],
    ["", { found: true, value: doc }],
    [undefined, { found: true, value: doc }],
    ["$", { found: true, value: doc }],
  ];
  for (const [path, want] of cases) assert.deepEqual(selectOne(compilePath(path), doc), want, String(path));
});

test("selectOne: returns the document's own value (the caller copies)", () => {
  const got = selectOne(compilePath("metadata.labels"), doc);
  assert.ok(got.found && got.value === doc.metadata.labels);
});

function assertSinkerError(fn: () => unknown, reason: ErrorReason, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SinkerError, String(err));
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return true;
  });
}

test("errors name the path", () => {
  const cases: [string, ErrorReason, RegExp][] = [
    ["data[", "InvalidJSONPath", /^invalid JSONPath "data\[": /],
    ["$.data..", "InvalidJSONPath", /^invalid JSONPath "\$\.data\.\.": /],
    ["data.foo bar", "InvalidJSONPath", /invalid JSONPath "data\.foo bar"/],
    ["$[?@.a == ]", "InvalidJSONPath", /invalid JSONPath/],
    ["a".repeat(1025), "InvalidJSONPath", /longer than 1024 characters/],
    ["$..a..b..c", "InvalidJSONPath", /3 descendant segments/],
    ["$[?@..a..b..c]", "InvalidJSONPath", /3 descendant segments/],
    ["$..a[?count($..b..c) > 0]", "InvalidJSONPath", /3 descendant segments/],
  ];
  for (const [path, reason, message] of cases) assertSinkerError(() => compilePath(path), reason, message);
  assertSinkerError(
    () => selectOne(compilePath("items[*]"), doc),
    "AmbiguousJSONPath",
    /^JSONPath "items\[\*\]" selects more than one node/,
  );
  assertSinkerError(() => selectOne(compilePath("$..n"), doc), "AmbiguousJSONPath", /"\$\.\.n"/);
});

test("'..' inside names and string literals is not a descendant segment", () => {
  for (const path of ["$['..']..a..b", "$[?@.x == '..a..b']..c..d"]) assert.ok(compilePath(path).query);
});

test("compiled paths are cached and the cache is bounded", () => {
  assert.equal(compilePath("data.cached"), compilePath("data.cached"));
  for (let i = 0; i < CACHE_SIZE + 50; i++) compilePath(`data.k${i}`);
  assert.equal(cachedPathCount(), CACHE_SIZE);
});

test("match()/search() run in linear time: the patterns that froze the backtracking engine answer at once", () => {
  const long = "a".repeat(100_000);
  const cases: [string, unknown, number][] = [
    // nested quantifiers a backtracking engine would take exponential time on
    ['$[?match(@.v, "((a)+)+")]', [{ v: `${long}b` }], 0],
    ['$[?match(@.v, "((a+))+")]', [{ v: long }], 1],
    ['$[?search(@.v, "((a|b)*)*c")]', [{ v: long }], 0],
    ['$[?match(@.v, "(a+)+b")]', [{ v: long }], 0],
    ['$[?search(@.v, "(a|aa)*b")]', [{ v: `${long}b` }], 1],
    ['$[?search(@.v, "a*a*a*a*a*b")]', [{ v: `${long}c` }], 0],
  ];
  for (const [path, document, count] of cases) {
    const started = performance.now();
    assert.equal(selectAll(compilePath(path), document).length, count, path);
    assert.ok(performance.now() - started < 60_000, `${path} took too long`); // backtracking takes hours
  }
});

test("match()/search(): RFC 9485 semantics on RE2 syntax; invalid or oversized patterns are false", () => {
  const cases: [string, string, boolean][] = [
    ['match(@, "ab.")', "abc", true],
    ['match(@, "ab.")', "ab\r", false], // I-Regexp: . matches neither \n nor \r
    ['match(@, "b")', "abc", false], // match() is anchored
    ['search(@, "b")', "abc", true],
    ['match(@, "(?i)ABC")', "abc", true], // RE2 flags, as the Rust regex crate
    ['match(@, "(?P<x>a)bc")', "abc", true],
    ['match(@, "[[:alpha:]]+")', "abc", true],
    ['match(@, "\\\\pL+")', "abc", true],
    ['match(@, "(a")', "a", false], // invalid: false, as RFC 9535 asks
    ['match(@, "a{1001}")', "a", false], // RE2 repeat limit
    ['match(@, "(\\\\1)")', "a", false], // no backreferences
  ];
  for (const [filter, value, want] of cases) {
    const got = selectAll(compilePath(`$[?${filter}]`), [value]).length === 1;
    assert.equal(got, want, `${filter} on ${JSON.stringify(value)}`);
  }
});

test("hostile input ends in an error, quickly, without blowing the stack", () => {
  let deep: unknown = { leaf: 1 };
  for (let i = 0; i < 50_000; i++) deep = { a: deep };
  let deep2: unknown = { leaf: 1 };
  for (let i = 0; i < 50_000; i++) deep2 = { a: deep2 };
  const wide: Record<string, unknown> = {};
  for (let i = 0; i < 20_000; i++) wide[`k${i}`] = { v: "x", n: { m: [1, 2, { z: 3 }] } };
  const tree = (d: number): unknown => (d === 0 ? 0 : [tree(d - 1), tree(d - 1)]);
  const arrays = { spec: tree(16) };
  const cases: [string, unknown, RegExp][] = [
    ["$..leaf", deep, new RegExp(`descends more than ${MAX_DESCENDANT_DEPTH} levels`)],
    ["$[?@.x == @.y]", [{ x: deep, y: deep2 }], /too deeply nested/],
    ["$..*..*", { data: wide }, /too much work/],
    ["$..*[?@..*]", { data: wide }, /too much work/],
    ["$..*..*", arrays, /too much work/],
    ["$..[?@[?@[?@[?@[?@]]]]]", arrays, /too much work/],
    ['$[?match(@.a, "(?:a?){500}a{500}")]', [{ a: "a".repeat(20_000) }], /too much work/],
    ['$[?search(@.a, "[a-z]{1000}x")]', [{ a: "a".repeat(50_000) }], /too much work/],
  ];
  for (const [path, document, message] of cases) {
    const started = performance.now();
    assertSinkerError(() => selectAll(compilePath(path), document), "JSONPathLimitExceeded", message);
    assert.ok(performance.now() - started < 60_000, `${path} took too long`); // unbounded work takes hours
  }
  // Reasonable queries on the same documents still work.
  assert.deepEqual(selectOne(compilePath("data.k5.n.m[2].z"), { data: wide }), { found: true, value: 3 });
  assert.equal(selectAll(compilePath("$..z"), { data: wide }).length, 20_000);
  assert.equal(selectAll(compilePath('$.data[?search(@.v, "x+")]'), { data: wide }).length, 20_000);
});
