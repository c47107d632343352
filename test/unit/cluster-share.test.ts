import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  admits,
  ClusterBusy,
  ClusterShare,
  defaultClusterShare,
  serverKey,
} from "../../src/controller/cluster-share.ts";

describe("cluster share: pure decisions", () => {
  const defaults: Array<[number, number]> = [
    [1, 1],
    [2, 1],
    [3, 1],
    [4, 2],
    [8, 4],
    [9, 4],
    [1000, 500],
  ];
  for (const [concurrency, share] of defaults) {
    it(`--concurrency ${concurrency} → a share of ${share}`, () =>
      assert.equal(defaultClusterShare(concurrency), share));
  }

  const keys: Array<[string, string, string]> = [
    ["default port written out", "https://b.example", "https://b.example:443"],
    ["explicit default port", "https://b.example:443", "https://b.example:443"],
    ["host case", "https://B.Example:6443", "https://b.example:6443"],
    ["trailing dot", "https://b.example.:6443", "https://b.example:6443"],
    ["path ignored", "https://b.example:6443/k8s/clusters/c-1", "https://b.example:6443"],
    ["IPv4 spelt as a number", "https://2130706433:6443", "https://127.0.0.1:6443"],
    ["IPv6", "https://[0:0::1]:6443", "https://[::1]:6443"],
    ["another port is another server", "https://b.example:6444", "https://b.example:6444"],
    ["not a URL", "no url", "no url"],
  ];
  for (const [name, server, key] of keys) {
    it(`server key: ${name}`, () => assert.equal(serverKey(server), key));
  }

  const admissions: Array<[number, number, boolean]> = [
    [0, 1, true],
    [1, 1, false],
    [3, 4, true],
    [4, 4, false],
    [5, 4, false],
  ];
  for (const [inFlight, limit, ok] of admissions) {
    it(`${inFlight} in flight under a share of ${limit}: ${ok ? "admitted" : "busy"}`, () =>
      assert.equal(admits(inFlight, limit), ok));
  }
});

describe("ClusterShare", () => {
  const B = "https://b.example:6443";
  const C = "https://c.example:6443";

  it("admits up to the limit per server, counting one reconcile once, other servers apart", () => {
    const share = new ClusterShare(2, () => {});
    const r1 = share.lease("ns/r1");
    r1.enter(B);
    r1.enter(`${B}/other/path`); // the same server again: no second slot
    const r2 = share.lease("ns/r2");
    r2.enter(B);
    assert.equal(share.inFlight(B), 2);
    const r3 = share.lease("ns/r3");
    assert.throws(
      () => r3.enter(B),
      (err) => err instanceof ClusterBusy && err.server === serverKey(B),
    );
    r3.enter(C); // another server has its own share
    assert.equal(share.inFlight(C), 1);
    r3.release();
    assert.equal(share.inFlight(C), 0);
    r1.release();
    r1.release(); // idempotent
    assert.equal(share.inFlight(B), 1);
    r2.release();
    assert.equal(share.inFlight(B), 0);
  });

  it("a freed slot wakes the key parked longest, once; a reconcile that starts is no longer parked", () => {
    const woken: string[] = [];
    const share = new ClusterShare(1, (key) => woken.push(key));
    const holder = share.lease("ns/holder");
    holder.enter(B);
    for (const key of ["ns/p1", "ns/p2", "ns/p3"]) {
      const lease = share.lease(key);
      assert.throws(() => lease.enter(B), ClusterBusy); // and parks it, at once
      lease.release();
    }
    assert.equal(share.parked, 3);
    assert.deepEqual(woken, [], "parking wakes nobody");
    // p2 is reconciled meanwhile (its timer): it leaves the parked set
    share.lease("ns/p2").release();
    assert.equal(share.parked, 2);
    holder.release();
    assert.deepEqual(woken, ["ns/p1"]);
    assert.equal(share.parked, 1);
    const p1 = share.lease("ns/p1");
    p1.enter(B);
    p1.release();
    assert.deepEqual(woken, ["ns/p1", "ns/p3"]);
    assert.equal(share.parked, 0);
  });

  it("parking again moves the key, and slots of another server wake nobody parked on this one", () => {
    const woken: string[] = [];
    const share = new ClusterShare(1, (key) => woken.push(key));
    share.park("ns/k", B);
    share.park("ns/k", C);
    assert.equal(share.parked, 1);
    const onB = share.lease("ns/x");
    onB.enter(B);
    onB.release();
    assert.deepEqual(woken, []);
    const onC = share.lease("ns/y");
    onC.enter(C);
    onC.release();
    assert.deepEqual(woken, ["ns/k"]);
  });

  it("a slot freed while a refused reconcile is still unwinding wakes it (parked by enter itself)", () => {
    const woken: string[] = [];
    const share = new ClusterShare(1, (key) => woken.push(key));
    const holder = share.lease("ns/holder");
    holder.enter(B);
    const refused = share.lease("ns/refused");
    assert.throws(() => refused.enter(B), ClusterBusy);
    holder.release(); // before the refused reconcile has ended
    refused.release();
    assert.deepEqual(woken, ["ns/refused"]);
    const again = share.lease("ns/refused");
    again.enter(B);
    assert.equal(share.inFlight(B), 1);
  });

  it("a woken key that does not take the slot (its spec changed) passes the wake-up on", () => {
    const woken: string[] = [];
    const share = new ClusterShare(1, (key) => woken.push(key));
    const holder = share.lease("ns/holder");
    holder.enter(B);
    share.park("ns/p1", B);
    share.park("ns/p2", B);
    holder.release();
    assert.deepEqual(woken, ["ns/p1"]);
    const p1 = share.lease("ns/p1");
    p1.enter(C); // now it goes to another cluster
    p1.release();
    assert.deepEqual(woken, ["ns/p1", "ns/p2"]);
    // a parked key reconciled while the slot is still taken wakes nobody
    const again = share.lease("ns/x");
    again.enter(B);
    share.park("ns/p3", B);
    share.park("ns/p4", B);
    share.lease("ns/p3").release();
    assert.deepEqual(woken, ["ns/p1", "ns/p2"]);
    again.release();
    assert.deepEqual(woken, ["ns/p1", "ns/p2", "ns/p4"]);
  });

  it("a limit below 1 is taken as 1 (a share never blocks a cluster outright)", () => {
    const share = new ClusterShare(0, () => {});
    share.lease("ns/a").enter(B);
    assert.equal(share.inFlight(B), 1);
  });
});
