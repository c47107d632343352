// The event-loop delay series sample only while there is work, and report how late the sampling timer fired.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Registry } from "prom-client";
import { EVENT_LOOP_DELAY_NAMES, EventLoopDelay, IDLE_AFTER_MS } from "../../src/admin/event-loop-delay.ts";

async function read(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  // (every series exists: see the first test)
  for (const f of parsePrometheusTextFormat(await registry.metrics()))
    out[f.name] = Number(f.metrics[0]?.value);
  return out;
}

/** Resolves after `ms` of wall time, the event loop free meanwhile. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps the event loop blocked for `ms`. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

describe("EventLoopDelay", () => {
  it("reads 0 on every series when nothing was sampled since the last scrape", async () => {
    const registry = new Registry();
    new EventLoopDelay(registry); // never busy: never samples
    const values = await read(registry);
    assert.deepEqual(Object.keys(values).sort(), [...EVENT_LOOP_DELAY_NAMES].sort());
    for (const name of EVENT_LOOP_DELAY_NAMES) assert.equal(values[name], 0, name);
  });

  it("while busy, reports the delay beyond the sampling interval: near 0 when free, a stall when blocked", async () => {
    const registry = new Registry();
    const delay = new EventLoopDelay(registry);
    try {
      delay.busy();
      await read(registry); // resets
      // about 15 samples: their minimum is a timer that fired on time, even on a loaded machine
      await pause(1500);
      const free = await read(registry);
      assert.ok(
        (free.nodejs_eventloop_lag_min_seconds ?? 1) < 0.09,
        `min ${free.nodejs_eventloop_lag_min_seconds}`,
      );
      // (not right after a scrape: Node's reset() also drops the interval in progress)
      await pause(250);
      block(400);
      await pause(250);
      const stalled = await read(registry);
      assert.ok(
        (stalled.nodejs_eventloop_lag_max_seconds ?? 0) >= 0.2,
        `max ${stalled.nodejs_eventloop_lag_max_seconds}`,
      );
      assert.ok(
        (stalled.nodejs_eventloop_lag_max_seconds ?? 9) < 5,
        `max ${stalled.nodejs_eventloop_lag_max_seconds}`,
      );
    } finally {
      delay.stop();
    }
  });

  it("stops sampling IDLE_AFTER_MS after the last busy(), and starts again at the next", async () => {
    const registry = new Registry();
    const delay = new EventLoopDelay(registry);
    try {
      const started = performance.now();
      delay.busy();
      await pause(IDLE_AFTER_MS / 2);
      delay.busy(); // pushes the end out
      assert.equal(delay.sampling, true);
      const deadline = started + 20 * IDLE_AFTER_MS;
      while (delay.sampling && performance.now() < deadline) await pause(100);
      assert.equal(delay.sampling, false);
      assert.ok(
        performance.now() - started >= 1.5 * IDLE_AFTER_MS,
        "not stopped before the second busy() ran out",
      );
      await read(registry);
      await pause(1500);
      // stopped: nothing sampled, and the idle time is not taken for one long interval when it starts again
      assert.equal((await read(registry)).nodejs_eventloop_lag_max_seconds, 0);
      delay.busy();
      assert.equal(delay.sampling, true);
      await pause(450);
      const again = await read(registry);
      assert.ok(
        (again.nodejs_eventloop_lag_max_seconds ?? 9) < 1,
        `max ${again.nodejs_eventloop_lag_max_seconds}`,
      );
    } finally {
      delay.stop();
    }
  });
});
