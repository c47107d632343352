/**
 * Contests and rings as tables: when repairs make a contest, the back-off schedule, when it ends, who the other
 * writer is; which applies are already in place; which ResourceSyncs form a ring and when it is at rest.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  afterCalm,
  afterRepair,
  type ContestPolicy,
  type ContestState,
  decideRepair,
  otherWriter,
  restoredContest,
} from "../../src/controller/contest.ts";
import { FlowGraph, ringInMotion, ringThrough } from "../../src/controller/cycles.ts";
import { coveredBy, fieldShape } from "../../src/controller/noop-apply.ts";

const policy: ContestPolicy = {
  threshold: 3,
  windowMs: 30_000,
  baseMs: 5_000,
  maxMs: 60_000,
  quietMs: 10_000,
};

/** Repairs at these times, each allowed or not by decideRepair: the repairs sent and the final state. */
function run(times: number[]): { sent: number[]; held: number[]; state: ContestState | undefined } {
  let state: ContestState | undefined;
  const sent: number[] = [];
  const held: number[] = [];
  for (const t of times) {
    if (decideRepair(state, t).kind === "hold") {
      held.push(t);
      continue;
    }
    sent.push(t);
    state = afterRepair(state, t, 'field manager "flipper"', policy).state;
  }
  return { sent, held, state };
}

describe("contest detection and back-off", () => {
  const cases: Array<{ name: string; times: number[]; contested: boolean; sent: number }> = [
    { name: "one repair is drift, not a contest", times: [0], contested: false, sent: 1 },
    { name: "two repairs in the window are not yet a contest", times: [0, 10], contested: false, sent: 2 },
    { name: "three repairs within the window are", times: [0, 10, 20], contested: true, sent: 3 },
    {
      name: "three repairs spread over more than the window are not",
      times: [0, 20_000, 40_000],
      contested: false,
      sent: 3,
    },
    {
      name: "a writer flipping every 10 ms for a minute: 3 repairs, then one per growing delay",
      times: Array.from({ length: 6_000 }, (_, i) => i * 10),
      contested: true,
      // 3 at once, then at +5 s, +10 s, +20 s (35 s), +40 s (75 s > 60 s: not reached)
      sent: 6,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const { sent, state } = run(c.times);
      assert.equal(state?.contested ?? false, c.contested);
      assert.equal(sent.length, c.sent, `sent at ${sent.join(", ")}`);
    });
  }

  it("the delay doubles up to the cap", () => {
    const times = Array.from({ length: 60_000 }, (_, i) => i * 100); // 100 minutes of flips every 100 ms
    const { sent } = run(times);
    const gaps = sent.slice(3).map((t, i) => t - (sent[i + 2] ?? 0));
    assert.deepEqual(gaps.slice(0, 6), [5_000, 10_000, 20_000, 40_000, 60_000, 60_000]);
    assert.ok(gaps.every((g) => g <= 60_000));
  });

  it("holds a repair until its time, saying how long", () => {
    const { state } = run([0, 1, 2]);
    assert.deepEqual(decideRepair(state, 1_002), { kind: "hold", retryInMs: 4_000 });
    assert.deepEqual(decideRepair(state, 5_002), { kind: "repair" });
    assert.deepEqual(decideRepair(undefined, 0), { kind: "repair" });
  });

  it("ends once the last repair held for the quiet period, not before", () => {
    const { state } = run([0, 1, 2]);
    assert.deepEqual(afterCalm(state, 5_002, policy), { state, ended: false, retryInMs: 5_000 });
    assert.deepEqual(afterCalm(state, 10_002, policy), { state: undefined, ended: true });
  });

  it("forgets repairs that left the window", () => {
    const { state } = run([0, 1]);
    assert.equal(afterCalm(state, 10_000, policy).state?.repairs.length, 2);
    assert.deepEqual(afterCalm(state, 40_000, policy), { state: undefined, ended: false });
    assert.deepEqual(afterCalm(undefined, 0, policy), { state: undefined, ended: false });
  });

  it("after a restart during a contest, starts contested at the first delay", () => {
    const s = restoredContest(1_000, "w", policy);
    assert.equal(s.contested, true);
    assert.deepEqual(decideRepair(s, 2_000), { kind: "hold", retryInMs: 4_000 });
    assert.equal(afterRepair(s, 6_000, "w", policy).state.nextRepairAt, 11_000);
  });
});

describe("otherWriter", () => {
  const self = "sinker.influxdata.io";
  const cases: Array<[string, Array<{ manager?: string; time?: string }> | undefined, string | RegExp]> = [
    [
      "the most recent other manager",
      [
        { manager: self, time: "2026-01-01T00:00:03Z" },
        { manager: "kubectl-edit", time: "2026-01-01T00:00:01Z" },
        { manager: "flipper", time: "2026-01-01T00:00:02Z" },
      ],
      'field manager "flipper"',
    ],
    [
      "only Sinker's own manager: another ResourceSync or controller",
      [{ manager: self }],
      /Sinker's field manager/,
    ],
    ["no managedFields", undefined, /another ResourceSync or controller/],
    ["control characters replaced", [{ manager: "a\nb\u0000" }], 'field manager "a?b?"'],
    ["long names cut", [{ manager: "m".repeat(500) }], `field manager "${"m".repeat(128)}..."`],
  ];
  for (const [name, fields, want] of cases) {
    it(name, () => {
      const got = otherWriter(fields, self);
      if (typeof want === "string") assert.equal(got, want);
      else assert.match(got, want);
    });
  }
});

describe("coveredBy: is the projection already in place", () => {
  const cases: Array<[string, unknown, unknown, boolean]> = [
    ["equal data", { data: { a: "1" } }, { data: { a: "1" } }, true],
    ["other fields of other writers", { data: { a: "1" } }, { data: { a: "1", b: "2" }, x: 1 }, true],
    ["a value differs", { data: { a: "1" } }, { data: { a: "2" } }, false],
    ["a key is missing", { data: { a: "1" } }, { data: {} }, false],
    ["lists must be equal as a whole", { l: [1, 2] }, { l: [1, 2, 3] }, false],
    ["equal lists", { l: [{ a: 1 }] }, { l: [{ a: 1 }] }, true],
    ["null is never in place", { a: null }, { a: null }, false],
    ["an object against a scalar", { a: { b: 1 } }, { a: "x" }, false],
    ["no live object", { a: 1 }, undefined, false],
    ["numbers and strings differ", { a: 1 }, { a: "1" }, false],
  ];
  for (const [name, desired, live, want] of cases)
    it(name, () => assert.equal(coveredBy(desired, live), want));

  it("fieldShape depends on the fields set, not their values", () => {
    const a = fieldShape({ data: { x: "1", y: "2" } });
    assert.equal(fieldShape({ data: { y: "3", x: "4" } }), a);
    assert.notEqual(fieldShape({ data: { x: "1" } }), a);
    assert.notEqual(fieldShape({ data: { "x/y": "1" } }), fieldShape({ data: { x: { y: "1" } } }));
  });
});

describe("rings of ResourceSyncs", () => {
  function graph(flows: Record<string, [string, string, string?, string?]>): FlowGraph {
    const g = new FlowGraph();
    for (const [key, [source, target, sourceRv, appliedRv]] of Object.entries(flows)) {
      g.set(key, {
        source,
        target,
        ...(sourceRv ? { sourceRv } : {}),
        ...(appliedRv ? { appliedRv } : {}),
      });
    }
    return g;
  }

  it("finds two- and three-member rings, and no ring in a chain", () => {
    assert.deepEqual(ringThrough(graph({ A: ["cm1", "cm2"], B: ["cm2", "cm1"] }), "B"), ["A"]);
    const three = graph({ A: ["cm1", "cm2"], C: ["cm2", "cm3"], B: ["cm3", "cm1"] });
    assert.deepEqual(ringThrough(three, "B"), ["A", "C"]);
    assert.equal(ringThrough(graph({ A: ["cm1", "cm2"], B: ["cm0", "cm1"] }), "B"), undefined);
    assert.equal(ringThrough(graph({ A: ["cm1", "cm2"] }), "unknown"), undefined);
  });

  it("follows a source moved elsewhere", () => {
    const g = graph({ A: ["cm1", "cm2"], B: ["cm2", "cm1"] });
    g.set("A", { source: "cm9", target: "cm2" });
    assert.equal(ringThrough(g, "B"), undefined);
    g.remove("A");
    assert.equal(g.size(), 1);
  });

  it("is bounded on a large graph", () => {
    const g = new FlowGraph();
    for (let i = 0; i < 1_000; i++) g.set(`K${i}`, { source: `o${i}`, target: `o${i + 1}` });
    g.set("B", { source: "o1000", target: "o0" });
    assert.equal(ringThrough(g, "B"), undefined, "a ring longer than the visit bound is not followed");
    const small = new FlowGraph();
    for (let i = 0; i < 10; i++) small.set(`K${i}`, { source: `o${i}`, target: `o${i + 1}` });
    small.set("B", { source: "o10", target: "o0" });
    assert.equal(ringThrough(small, "B")?.length, 10);
  });

  const idle = () => false;
  const cases: Array<[string, Record<string, [string, string, string?, string?]>, string, string, boolean]> =
    [
      // B: cm2 → cm1 finds cm1 changed (rv 10) by a user; A: cm1 → cm2 has or has not carried it to cm2 yet
      [
        "A has not read cm1's new version",
        { A: ["cm1", "cm2", "9", "5"], B: ["cm2", "cm1"] },
        "10",
        "5",
        true,
      ],
      [
        "A applied it; B has not read it yet",
        { A: ["cm1", "cm2", "10", "11"], B: ["cm2", "cm1"] },
        "10",
        "5",
        true,
      ],
      [
        "A applied it and B read it: at rest",
        { A: ["cm1", "cm2", "10", "11"], B: ["cm2", "cm1"] },
        "10",
        "11",
        false,
      ],
    ];
  for (const [name, flows, targetRv, sourceRv, want] of cases) {
    it(`in motion: ${name}`, () => {
      const g = graph(flows);
      assert.equal(ringInMotion(g, ["A"], targetRv, sourceRv, idle), want);
    });
  }

  it("in motion while a member is queued or in flight", () => {
    const g = graph({ A: ["cm1", "cm2", "10", "11"], B: ["cm2", "cm1"] });
    assert.equal(
      ringInMotion(g, ["A"], "10", "11", (k) => k === "A"),
      true,
    );
  });
});
