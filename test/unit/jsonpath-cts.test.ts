/**
 * Runs every case of the JSONPath Compliance Test Suite through Sinker's own JSONPath entry point: valid
 * selectors must produce one of the expected node lists, invalid ones must be refused with InvalidJSONPath.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { isDeepStrictEqual } from "node:util";
import { SinkerError } from "../../src/errors.ts";
import { compilePath, selectAll } from "../../src/projection/jsonpath.ts";

interface CtsCase {
  name: string;
  selector: string;
  document?: unknown;
  result?: unknown[];
  results?: unknown[][];
  invalid_selector?: boolean;
}

const suite = JSON.parse(
  readFileSync(new URL("../fixtures/jsonpath-cts/cts.json", import.meta.url), "utf8"),
) as { tests: CtsCase[] };

test("the compliance suite has all its cases", () => {
  assert.equal(suite.tests.length, 703);
});

test("every compliance suite case passes through compilePath/selectAll", () => {
  const failures: string[] = [];
  let passed = 0;
  for (const c of suite.tests) {
    try {
      if (c.invalid_selector) {
        try {
          compilePath(c.selector);
          failures.push(`${c.name}: invalid selector ${JSON.stringify(c.selector)} was accepted`);
        } catch (err) {
          if (err instanceof SinkerError && err.reason === "InvalidJSONPath") passed++;
          else failures.push(`${c.name}: wrong error ${String(err)}`);
        }
        continue;
      }
      const got = selectAll(compilePath(c.selector), c.document);
      const expected = c.results ?? [c.result];
      if (expected.some((e) => isDeepStrictEqual(got, e))) passed++;
      else failures.push(`${c.name}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
    } catch (err) {
      failures.push(`${c.name}: threw ${String(err)}`);
    }
  }
  assert.deepEqual(failures, []);
  assert.equal(passed, 703);
});
