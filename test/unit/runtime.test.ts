import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { Metrics } from "../../src/admin/metrics.ts";
import { currentRequestSignal } from "../../src/kube/request-signal.ts";
import { ControllerRuntime, type Next, type Step } from "../../src/runtime/runtime.ts";

const logger = pino({ level: "silent" });
const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

/** A runtime whose reconcile of every key gives `step`; returns it with the keys reconciled, in order. */
function runtimeOf(step: (key: string) => Step | Promise<Step>, extra: { metrics?: Metrics } = {}) {
  const seen: string[] = [];
  const runtime = new ControllerRuntime({
    name: "test",
    logger,
    concurrency: 2,
    backoff: { baseMs: 1_000 },
    ...(extra.metrics ? { metrics: extra.metrics, controllerMetrics: true } : {}),
  });
  const reconcile = async (key: string) => {
    seen.push(key);
    return step(key);
  };
  return {
    runtime: { start: () => runtime.start(reconcile), stop: () => runtime.stop(), queue: runtime.queue },
    seen,
  };
}

describe("ControllerRuntime: what a reconcile's result does to its key", () => {
  const cases: Array<[string, Next, { retries: number; comesBack: boolean }]> = [
    ["done: backoff reset, nothing scheduled", { kind: "done" }, { retries: 0, comesBack: false }],
    [
      "requeue-after: backoff reset, back later",
      { kind: "requeue-after", ms: 5 },
      { retries: 0, comesBack: true },
    ],
    [
      "retry-after: backoff kept, back later",
      { kind: "retry-after", ms: 5 },
      { retries: 1, comesBack: true },
    ],
    ["rate-limited: one more failure", { kind: "rate-limited" }, { retries: 2, comesBack: false }],
  ];
  for (const [name, next, want] of cases) {
    it(name, async () => {
      let first = true;
      const { runtime, seen } = runtimeOf(() => {
        // afterwards: a step that leaves the backoff as it is and does not come back within the test
        const step: Step = first ? { next } : { next: { kind: "retry-after", ms: 60_000 } };
        first = false;
        return step;
      });
      runtime.queue.addRateLimited("k"); // one failure before: is it kept?
      runtime.start();
      await tick(50); // the rate-limited add waits 1 s: only a requeue within 50 ms comes back
      assert.equal(seen.length, 0);
      runtime.queue.add("k");
      await tick(50);
      assert.equal(runtime.queue.retries("k"), want.retries);
      assert.equal(seen.length, want.comesBack ? 2 : 1);
      await runtime.stop();
    });
  }

  it("a throw is retried after the key's backoff and counted as an error", async () => {
    const metrics = new Metrics({ defaultMetrics: false, controller: "test" });
    const { runtime } = runtimeOf(
      () => {
        throw new Error("bug");
      },
      { metrics },
    );
    runtime.start();
    runtime.queue.add("k");
    await tick(20);
    assert.equal(runtime.queue.retries("k"), 1);
    const text = await metrics.text();
    assert.match(text, /controller_runtime_reconcile_errors_total\{controller="test"\} 1/);
    assert.match(text, /workqueue_retries_total\{name="test"\} 1/);
    await runtime.stop();
  });

  it("stop cancels the requests of in-flight reconciles and waits for them", async () => {
    let signal: AbortSignal | undefined;
    const { runtime } = runtimeOf(async () => {
      signal = currentRequestSignal();
      await new Promise((resolve) => signal?.addEventListener("abort", resolve));
      return { next: { kind: "requeue-after", ms: 1 } };
    });
    runtime.start();
    runtime.queue.add("k");
    await tick(10);
    assert.equal(signal?.aborted, false);
    assert.equal(await runtime.stop(), true, "drained");
    assert.equal(signal?.aborted, true);
    assert.equal(runtime.queue.length, 0, "nothing requeued once stopping");
  });
});
