import assert from "node:assert/strict";
import { test } from "node:test";
import { CircuitBreaker } from "../../src/kube/circuit-breaker.ts";

test("circuit breaker: opens after N consecutive failures, probes once after the cool-down, closes on success", () => {
  let now = 0;
  const b = new CircuitBreaker({ threshold: 3, cooldownMs: 1000, maxCooldownMs: 3000, now: () => now });
  type Step = ["fail" | "ok" | "tick", number?] | ["allow", boolean];
  const steps: Array<[Step, string]> = [
    [["allow", true], "closed"],
    [["fail"], "closed"],
    [["ok"], "closed"], // a success resets the count
    [["fail"], "closed"],
    [["fail"], "closed"],
    [["fail"], "open"],
    [["allow", false], "open"],
    [["tick", 999], "open"],
    [["allow", false], "open"],
    [["tick", 1], "open"],
    [["allow", true], "half-open"], // the probe
    [["allow", false], "half-open"], // only one
    [["fail"], "open"], // failed probe: cool-down doubles
    [["tick", 1000], "open"],
    [["allow", false], "open"],
    [["tick", 1000], "open"],
    [["allow", true], "half-open"],
    [["fail"], "open"], // 4000 capped to 3000
    [["tick", 2999], "open"],
    [["allow", false], "open"],
    [["tick", 1], "open"],
    [["allow", true], "half-open"],
    [["ok"], "closed"],
    [["allow", true], "closed"],
    [["fail"], "closed"], // count starts again from zero, cool-down back to 1000
    [["fail"], "closed"],
    [["fail"], "open"],
    [["tick", 1000], "open"],
    [["allow", true], "half-open"],
  ];
  steps.forEach(([step, state], i) => {
    if (step[0] === "fail") b.failure();
    else if (step[0] === "ok") b.success();
    else if (step[0] === "tick") now += step[1] ?? 0;
    else assert.equal(b.allow(), step[1], `step ${i}: allow`);
    assert.equal(b.state, state, `step ${i}`);
  });
});

test("circuit breaker: a timeout opens it at once", () => {
  let now = 0;
  const b = new CircuitBreaker({ threshold: 5, cooldownMs: 1000, now: () => now });
  b.failure(true);
  assert.equal(b.state, "open");
  now = 1000;
  assert.equal(b.allow(), true);
  b.success();
  assert.equal(b.state, "closed");
});

test("circuit breaker: an abandoned probe (cancelled request) lets the next caller probe", () => {
  let now = 0;
  const b = new CircuitBreaker({ threshold: 1, cooldownMs: 1000, now: () => now });
  b.failure();
  now = 1000;
  assert.equal(b.allow(), true);
  assert.equal(b.allow(), false);
  b.abandon();
  assert.equal(b.allow(), true);
  assert.equal(b.state, "half-open");
});

test("circuit breaker: retryInMs tells how long the cool-down still runs", () => {
  let now = 0;
  const b = new CircuitBreaker({ threshold: 1, cooldownMs: 5000, now: () => now });
  assert.equal(b.retryInMs(), 0);
  b.failure();
  now = 2000;
  assert.equal(b.retryInMs(), 3000);
});

test("default cool-down is capped at 15 s, so a cluster back from an outage is probed within 15 s", () => {
  let now = 0;
  const b = new CircuitBreaker({ threshold: 1, now: () => now });
  b.failure(); // opens: 10 s
  for (let round = 0; round < 5; round++) {
    now += b.retryInMs();
    assert.equal(b.allow(), true, "the probe goes out");
    b.failure(); // the probe fails: the cool-down doubles, up to the cap
    assert.ok(b.retryInMs() <= 15_000, `cool-down ${b.retryInMs()} ms`);
  }
  assert.equal(b.retryInMs(), 15_000);
});
