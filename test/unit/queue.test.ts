import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WorkQueue } from "../../src/runtime/queue.ts";

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe("WorkQueue", () => {
  it("de-duplicates a key added several times while waiting", async () => {
    let adds = 0;
    const q = new WorkQueue({
      observer: { added: () => adds++, retried() {}, depth() {}, waited() {}, worked() {} },
    });
    q.add("ns/a");
    q.add("ns/a");
    q.add("ns/b");
    assert.equal(q.length, 2);
    assert.equal(adds, 3);
    assert.equal(await q.get(), "ns/a");
    assert.equal(await q.get(), "ns/b");
  });

  it("never hands a key in flight to a second worker, and re-queues it on done", async () => {
    const q = new WorkQueue();
    q.add("k");
    const first = await q.get();
    assert.equal(first, "k");
    q.add("k");
    assert.equal(q.length, 0, "a key in flight is not queued again");
    let second: string | undefined;
    void q.get().then((key) => {
      second = key;
    });
    await tick();
    assert.equal(second, undefined, "the second worker must wait");
    q.done("k");
    await tick();
    assert.equal(second, "k");
  });

  describe("adds with a check, while the key is in flight (the echo of its own write)", () => {
    /** Takes "k", makes `adds` while it is in flight, calls done: whether "k" is queued again. */
    const requeued = async (adds: ((q: WorkQueue) => void)[]): Promise<boolean> => {
      const q = new WorkQueue();
      q.add("k");
      assert.equal(await q.get(), "k");
      for (const add of adds) add(q);
      q.done("k");
      const again = q.length === 1;
      q.shutdown();
      return again;
    };
    const checked = (holds: boolean) => (q: WorkQueue) => q.add("k", () => holds);
    const plain = (q: WorkQueue) => q.add("k");
    const cases: [string, ((q: WorkQueue) => void)[], boolean][] = [
      ["one check that no longer holds at done", [checked(false)], false],
      ["several checks, none holding", [checked(false), checked(false)], false],
      ["a check that holds", [checked(true)], true],
      ["one of several checks holds", [checked(false), checked(true)], true],
      ["an add without a check, then one with", [plain, checked(false)], true],
      ["an add with a check, then one without", [checked(false), plain], true],
      [
        "a check that throws",
        [
          (q) =>
            q.add("k", () => {
              throw new Error("x");
            }),
        ],
        true,
      ],
      ["more checks than are kept", Array.from({ length: 20 }, () => checked(false)), true],
      ["no add at all", [], false],
    ];
    for (const [name, adds, expected] of cases) {
      it(`${expected ? "queued again" : "not queued again"}: ${name}`, async () => {
        assert.equal(await requeued(adds), expected);
      });
    }

    it("a check is read at done, not when added", async () => {
      const q = new WorkQueue();
      q.add("k");
      await q.get();
      let echo = false;
      q.add("k", () => !echo);
      echo = true; // the write's answer came back: the event was its echo
      q.done("k");
      assert.equal(q.length, 0);
      assert.equal(q.pending("k"), false);
      q.shutdown();
    });

    it("a key not in flight is queued at once, its check ignored", async () => {
      const q = new WorkQueue();
      q.add("k", () => false);
      assert.equal(q.length, 1);
      assert.equal(await q.get(), "k");
      q.done("k");
      assert.equal(q.length, 0);
      q.shutdown();
    });
  });

  it("pending: a key waiting or in flight, not one only delayed (the ring rule of cycles.ts)", async () => {
    const q = new WorkQueue();
    q.addAfter("later", 60_000);
    assert.equal(q.pending("later"), false);
    q.add("k");
    assert.equal(q.pending("k"), true, "waiting");
    await q.get();
    assert.equal(q.pending("k"), true, "in flight");
    q.done("k");
    assert.equal(q.pending("k"), false, "done");
    q.shutdown();
  });

  it("hands a key to a waiting worker as soon as it is added", async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.add("x");
    assert.equal(await pending, "x");
    assert.deepEqual([...q.inFlight().keys()], ["x"]);
  });

  it("delays addAfter, keeping the earliest pending delay", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 200);
    q.addAfter("k", 20);
    q.addAfter("k", 500);
    assert.equal(q.length, 0);
    await tick(60);
    assert.equal(q.length, 1);
    await q.get();
    q.done("k");
    await tick(250);
    assert.equal(q.length, 0, "the later delays were replaced by the earlier one");
  });

  it("backs off exponentially per key, capped, and forget resets it", () => {
    const q = new WorkQueue({ backoff: { baseMs: 100, maxMs: 1000 } });
    const delays = [1, 2, 3, 4, 5, 6].map(() => q.addRateLimited("k"));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(q.addRateLimited("other"), 100, "backoff is per key");
    q.forget("k");
    assert.equal(q.retries("k"), 0);
    assert.equal(q.addRateLimited("k"), 100);
    q.shutdown();
  });

  it("releases waiting workers and refuses new keys on shutdown", async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.addAfter("late", 10);
    q.shutdown();
    assert.equal(await pending, undefined);
    q.add("k");
    assert.equal(await q.get(), undefined);
    await tick(30);
    assert.equal(q.length, 0);
  });
});
