// The floor that request prices set on Sinker / ideal, and the median over rounds (npm run bench:requests).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  floors,
  medianPrices,
  PHASES,
  type Price,
  STEPS,
  type Step,
} from "../../bench/support/request-prices.ts";

const priced = (apiMs: (s: Step) => number): Map<Step, Price> =>
  new Map(STEPS.map((s) => [s, { apiMs: apiMs(s), etcdMs: 0 }] as const));

test("floors: each phase's Sinker and ideal requests summed and divided", () => {
  const prices = priced((s) => {
    switch (s) {
      case "create ResourceSync":
        return 1.5;
      case "apply target (ideal)":
        return 1.5;
      case "create ResourceSync, finalizer policy acting":
        return 2;
      case "apply target (Sinker)":
        return 1.5;
      case "status patch":
        return 2.5;
      case "delete ResourceSync":
        return 1;
      case "delete target (ideal)":
        return 1;
      default:
        return 1; // the four requests of Sinker's deletion
    }
  });
  assert.deepEqual(floors(prices), [
    { phase: "convergence", idealMs: 3, sinkerMs: 6, ratio: 2 },
    { phase: "deletion", idealMs: 2, sinkerMs: 4, ratio: 2 },
  ]);
});

test("floors: a step not measured is an error naming it, a free ideal a NaN ratio", () => {
  const prices = priced(() => 1);
  prices.delete("status patch");
  assert.throws(() => floors(prices), /no price measured for "status patch"/);
  const free = priced((s) => (PHASES[0]?.ideal.includes(s) ? 0 : 1));
  assert.ok(Number.isNaN(floors(free)[0]?.ratio));
});

test("every step is priced by a phase, and every phase's step is measured", () => {
  const used = new Set(PHASES.flatMap((p) => [...p.ideal, ...p.sinker]));
  assert.deepEqual([...used].sort(), [...STEPS].sort());
});

test("medianPrices: per step and per figure, the middle of an odd count, the mean of the middle two", () => {
  const round = (api: number, etcd: number) =>
    new Map<Step, Price>([["status patch", { apiMs: api, etcdMs: etcd }]]);
  const cases: Array<[string, Array<Map<Step, Price>>, Price | undefined]> = [
    ["one round", [round(3, 1)], { apiMs: 3, etcdMs: 1 }],
    [
      "three rounds, each figure on its own",
      [round(9, 1), round(2, 7), round(3, 2)],
      { apiMs: 3, etcdMs: 2 },
    ],
    ["two rounds", [round(2, 1), round(4, 3)], { apiMs: 3, etcdMs: 2 }],
    [
      "a round without the step is passed over",
      [round(2, 1), new Map(), round(4, 3)],
      { apiMs: 3, etcdMs: 2 },
    ],
    ["no round", [], undefined],
  ];
  for (const [name, rounds, want] of cases)
    assert.deepEqual(medianPrices(rounds).get("status patch"), want, name);
});
