import assert from "node:assert/strict";
import { test } from "node:test";
import { SinkerError } from "../../src/errors.ts";
import { getFieldPath, parseFieldPath, setFieldPath } from "../../src/projection/index.ts";

const writes: {
  name: string;
  start: Record<string, unknown>;
  path: string;
  value: unknown;
  want: unknown;
}[] = [
  { name: "top-level field", start: {}, path: "data", value: { a: "1" }, want: { data: { a: "1" } } },
  {
    name: "creates objects on the way",
    start: {},
    path: "spec.config.inner",
    value: 1,
    want: { spec: { config: { inner: 1 } } },
  },
  {
    name: "keeps siblings",
    start: { data: { a: "1" } },
    path: "data.b",
    value: "2",
    want: { data: { a: "1", b: "2" } },
  },
  {
    name: "replaces a leaf of any type",
    start: { data: { a: [1] } },
    path: "data.a",
    value: null,
    want: { data: { a: null } },
  },
  {
    name: "null on the way is replaced by an object",
    start: { spec: null },
    path: "spec.x",
    value: 1,
    want: { spec: { x: 1 } },
  },
  {
    name: "names with slashes and dashes",
    start: {},
    path: "metadata.annotations.example-com/team",
    value: "t",
    want: { metadata: { annotations: { "example-com/team": "t" } } },
  },
  {
    name: "escaped dots and backslashes",
    start: {},
    path: "metadata.annotations.example\\.com/team",
    value: "t",
    want: { metadata: { annotations: { "example.com/team": "t" } } },
  },
  {
    name: "escaped dot in a leaf",
    start: { data: {} },
    path: "data.app\\.properties",
    value: "x",
    want: { data: { "app.properties": "x" } },
  },
  { name: "escaped backslash", start: {}, path: "a\\\\.b", value: 1, want: { "a\\": { b: 1 } } },
];

for (const c of writes) {
  test(`setFieldPath: ${c.name}`, () => {
    setFieldPath(c.start, c.path, c.value);
    assert.deepEqual(c.start, c.want);
  });
}

const failures: { name: string; start: Record<string, unknown>; path: string; message: RegExp }[] = [
  {
    name: "string in the way",
    start: { data: { a: "x" } },
    path: "data.a.b",
    message: /toFieldPath "data\.a\.b": data\.a is a string, not an object/,
  },
  {
    name: "array in the way",
    start: { list: [1] },
    path: "list.0",
    message: /list is an array, not an object/,
  },
  { name: "number in the way", start: { n: 1 }, path: "n.x", message: /n is a number/ },
  {
    name: "empty path",
    start: {},
    path: "",
    message: /invalid toFieldPath "": expected dot-separated non-empty field names/,
  },
  { name: "empty segment", start: {}, path: "a..b", message: /invalid toFieldPath "a\.\.b"/ },
  { name: "trailing dot", start: {}, path: "a.", message: /invalid toFieldPath "a\."/ },
  {
    name: "lone backslash",
    start: {},
    path: "a\\b",
    message: /invalid toFieldPath "a\\\\b": a backslash must be followed by/,
  },
  { name: "trailing backslash", start: {}, path: "a\\", message: /a backslash must be followed/ },
  {
    name: "escaped name in the error",
    start: { data: { "a.b": "x" } },
    path: "data.a\\.b.c",
    message: /data\.a\\\.b is a string, not an object/,
  },
];

for (const c of failures) {
  test(`setFieldPath error: ${c.name}`, () => {
    const before = structuredClone(c.start);
    assert.throws(
      () => setFieldPath(c.start, c.path, 1),
      (err: unknown) =>
        err instanceof SinkerError && err.reason === "InvalidFieldPath" && c.message.test(err.message),
    );
    assert.deepEqual(c.start, before);
  });
}

test("setFieldPath: __proto__ is an own field, not the prototype", () => {
  const target: Record<string, unknown> = {};
  setFieldPath(target, "__proto__.polluted", "yes");
  assert.equal(Object.getPrototypeOf(target), Object.prototype);
  assert.deepEqual(Object.keys(target), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test("getFieldPath and parseFieldPath", () => {
  assert.deepEqual(parseFieldPath("a.b.c"), ["a", "b", "c"]);
  assert.deepEqual(parseFieldPath("a\\.b.c"), ["a.b", "c"]);
  assert.equal(getFieldPath({ a: { b: 1 } }, "a.b"), 1);
  assert.equal(getFieldPath({ a: "x" }, "a.b"), undefined);
  assert.equal(getFieldPath({}, "toString"), undefined);
});
