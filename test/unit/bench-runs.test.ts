// Several benchmark runs: the table shows the run with the median convergence ratio, whole.
import assert from "node:assert/strict";
import { test } from "node:test";
import { medianRun, type Run, ratio } from "../../bench/support/runs.ts";
import type { ScenarioResult } from "../../bench/support/scenario.ts";

const result = (convergenceMs: number) => ({ convergenceMs }) as ScenarioResult;
const run = (ideal: number, sinker: number): Run => ({ ideal: result(ideal), sinker: result(sinker) });

test("medianRun picks the whole run whose Sinker / ideal convergence ratio is the median", () => {
  const cases: Array<[string, Run[], Run | undefined]> = [
    ["one run", [run(2, 5)], run(2, 5)],
    ["odd count: the middle ratio, not the middle time", [run(1, 3), run(4, 6), run(2, 5)], run(2, 5)],
    ["even count: the lower middle", [run(1, 3), run(2, 5), run(4, 6), run(1, 1)], run(4, 6)],
    ["no run", [], undefined],
  ];
  for (const [name, runs, want] of cases) assert.deepEqual(medianRun(runs), want ?? {}, name);
});

test("medianRun with one system measured takes its median convergence; ratio needs both", () => {
  const only = (ms: number): Run => ({ sinker: result(ms) });
  assert.deepEqual(medianRun([only(9), only(3), only(5)]), only(5));
  assert.ok(Number.isNaN(ratio(only(5), (x) => x.convergenceMs)));
  assert.equal(
    ratio(run(2, 5), (x) => x.convergenceMs),
    2.5,
  );
});
