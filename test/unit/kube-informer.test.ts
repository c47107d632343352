import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { type WatchChange, Watches } from "../../src/controller/watches.ts";
import { SinkerError } from "../../src/errors.ts";
import { ClusterClient, type ResourceInfo } from "../../src/kube/client.ts";
import { Informer, type InformerEvent } from "../../src/kube/informer.ts";
import { FakeApiServer } from "./support/fake-apiserver.ts";

const logger = pino({ level: "silent" });
const fast = { watchTimeoutSeconds: [1, 1] as [number, number], backoff: { initialMs: 20, maxMs: 100 } };

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("Informer against a fake API server", () => {
  let server: FakeApiServer;
  let client: ClusterClient;
  let cm: ResourceInfo;
  before(async () => {
    server = await new FakeApiServer().start();
    client = ClusterClient.fromKubeConfig(server.kubeConfig(), { name: "fake" });
    cm = await client.resolve("v1", "ConfigMap");
  });
  after(async () => {
    await client.close();
    await server.stop();
  });

  it("lists (paginated), then follows the watch; dedupes unchanged versions", async () => {
    for (let i = 0; i < 5; i++) server.put("inf", `pre-${i}`, { i: String(i) });
    const inf = new Informer({
      client,
      resource: cm,
      namespace: "inf",
      logger,
      pageSize: 2,
      ...fast,
      freeze: true,
    });
    const events: InformerEvent[] = [];
    inf.onEvent((e) => events.push(e));
    assert.equal(inf.hasSynced(), false);
    inf.start();
    await inf.synced;
    assert.equal(inf.hasSynced(), true);
    assert.equal(inf.list().length, 5);
    assert.equal(server.requests.filter((r) => r.url.includes("limit=2")).length, 3, "three pages of two");
    assert.equal(events.filter((e) => e.type === "added").length, 5);
    const cached = inf.get("inf", "pre-1");
    assert.ok(cached);
    assert.ok(Object.isFrozen(cached) && Object.isFrozen(cached.metadata), "store objects are frozen");

    server.put("inf", "pre-1", { i: "changed" });
    server.remove("inf", "pre-2");
    await until("modify and delete", () => events.length === 7);
    assert.equal(events[5]?.type, "modified");
    assert.deepEqual(events[5]?.old?.data, { i: "1" });
    assert.deepEqual(events[5]?.object.data, { i: "changed" });
    assert.equal(events[6]?.type, "deleted");
    assert.equal(inf.get("inf", "pre-2"), undefined);

    // several watch rotations (timeoutSeconds=1) replay nothing and emit nothing
    const watches = inf.health().watches;
    await until("two more watches", () => inf.health().watches >= watches + 2, 5000);
    assert.equal(events.length, 7);
    assert.equal(inf.health().consecutiveFailures, 0);
    await inf.stop();
    assert.equal(inf.health().watching, false);
  });

  it("relists on 410 Gone and emits synthetic events for what changed meanwhile", async () => {
    server.put("gone", "stays", { v: "1" });
    server.put("gone", "changes", { v: "1" });
    server.put("gone", "vanishes", { v: "1" });
    const inf = new Informer({ client, resource: cm, namespace: "gone", logger, ...fast });
    const events: InformerEvent[] = [];
    inf.onEvent((e) => events.push(e));
    inf.start();
    await inf.synced;
    events.length = 0;
    // stop the watch from seeing changes: pretend the server lost its history, then change things
    await until("watching", () => inf.health().watching);
    server.dropWatches();
    server.compactedRv = server.rv + 10;
    server.events.length = 0;
    server.put("gone", "changes", { v: "2" });
    server.remove("gone", "vanishes");
    server.put("gone", "appears", { v: "1" });
    server.events.length = 0; // a real server would not replay compacted history either
    await until("relist", () => inf.health().expired >= 1 && inf.health().lists >= 2, 5000);
    server.compactedRv = 0;
    await until("events", () => events.length >= 3);
    const summary = events.map((e) => `${e.type}:${e.object.metadata?.name}`).sort();
    // watchers were live while we changed things, so the events may come from the watch or from the relist;
    // either way each change is seen exactly once and the unchanged object is not reported
    assert.deepEqual(summary, ["added:appears", "deleted:vanishes", "modified:changes"]);
    assert.deepEqual(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
      ["appears", "changes", "stays"],
    );
    await inf.stop();
  });

  it("drops a silent watch after the idle timeout and watches again without losing events", async () => {
    const inf = new Informer({
      client,
      resource: cm,
      namespace: "idle",
      logger,
      watchTimeoutSeconds: [60, 60],
      idleTimeoutSeconds: 1,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    inf.start();
    try {
      await inf.synced;
      // the fake server would keep this watch open for 60 s: a second one within 5 s is the idle timer's doing
      await until("a second watch", () => inf.health().watches >= 2, 5000);
      server.put("idle", "seen", { v: "1" });
      await until("the object", () => inf.get("idle", "seen") !== undefined);
      await until("healthy again", () => inf.health().consecutiveFailures === 0 && inf.health().watching);
    } finally {
      await inf.stop();
    }
  });

  it("keeps retrying with backoff while the server fails, and recovers", async () => {
    server.failWith = { status: 503, message: "unavailable" };
    const inf = new Informer({ client, resource: cm, namespace: "retry", logger, ...fast });
    inf.start();
    await until("failures", () => inf.health().consecutiveFailures >= 3);
    assert.match(inf.health().lastError ?? "", /unavailable/);
    assert.equal(inf.health().lastErrorReason, "ClusterUnreachable");
    assert.equal(inf.hasSynced(), false);
    server.failWith = undefined;
    await inf.synced;
    assert.equal(inf.health().consecutiveFailures, 0);
    assert.equal(inf.health().lastError, undefined);
    await inf.stop();
  });
});

describe("Watches (shared informer registry) against a fake API server", () => {
  let server: FakeApiServer;
  let client: ClusterClient;
  let cm: ResourceInfo;
  before(async () => {
    server = await new FakeApiServer().start();
    client = ClusterClient.fromKubeConfig(server.kubeConfig(), { name: "fake" });
    cm = await client.resolve("v1", "ConfigMap");
  });
  after(async () => {
    await client.close();
    await server.stop();
  });

  it("shares one informer among many ResourceSyncs, routes changes by object, stops it when released", async () => {
    const changes: Array<{ keys: string[]; e: WatchChange }> = [];
    const watches = new Watches({
      logger,
      onChange: (keys, e) => changes.push({ keys, e }),
      informerOptions: fast,
    });
    after(() => watches.stopAll());
    for (let i = 0; i < 50; i++) server.put("shared", `obj-${i}`, { i: String(i) });
    for (let i = 0; i < 50; i++) {
      await watches.setRefs(`rs/${i}`, [
        { client, resource: cm, namespace: "shared", name: `obj-${i}` },
        { client, resource: cm, namespace: "shared", name: "common" },
      ]);
    }
    assert.deepEqual([...watches.connections()], [["fake", 1]]);
    await until("the watch", () => server.openWatches === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.openWatches, 1, "one watch connection for 100 references");
    assert.equal(watches.get(client, cm, "shared", "obj-7")?.metadata?.name, "obj-7");
    assert.equal(watches.get(client, cm, "other-ns", "obj-7"), undefined, "no informer there");

    changes.length = 0;
    server.put("shared", "obj-7", { i: "changed" });
    server.put("shared", "common", { c: "1" });
    server.put("shared", "unreferenced", { u: "1" });
    await until("two changes", () => changes.length >= 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(changes.length, 2, "an object nobody references triggers nothing");
    assert.deepEqual(changes[0]?.keys, ["rs/7"]);
    assert.equal(changes[0]?.e.type, "modified");
    assert.equal(changes[0]?.e.cluster, "fake");
    assert.equal(changes[1]?.keys.length, 50);

    // a ResourceSync moving to other objects: old references dropped atomically
    await watches.setRefs("rs/7", [{ client, resource: cm, namespace: "shared", name: "obj-8" }]);
    changes.length = 0;
    server.put("shared", "obj-7", { i: "again" });
    server.put("shared", "obj-8", { i: "again" });
    await until("one change", () => changes.length >= 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      changes.map((c) => c.keys.sort()),
      [["rs/7", "rs/8"]],
    );

    for (let i = 0; i < 49; i++) await watches.release(`rs/${i}`);
    assert.deepEqual([...watches.connections()], [["fake", 1]], "one ResourceSync still needs it");
    await watches.release("rs/49");
    assert.deepEqual([...watches.connections()], []);
    await until("watch closed", () => server.openWatches === 0);
    await watches.stopAll();
  });

  it("keys informers by client instance: a rotated kubeconfig gets its own", async () => {
    const watches = new Watches({ logger, onChange: () => {}, informerOptions: fast });
    after(() => watches.stopAll());
    const rotated = ClusterClient.fromKubeConfig(server.kubeConfig(), { name: "fake" });
    await watches.setRefs("a/x", [{ client, resource: cm, namespace: "rot", name: "x" }]);
    await watches.setRefs("a/y", [{ client: rotated, resource: cm, namespace: "rot", name: "x" }]);
    assert.deepEqual([...watches.connections()], [["fake", 2]]);
    await watches.setRefs("a/x", [{ client: rotated, resource: cm, namespace: "rot", name: "x" }]);
    assert.deepEqual([...watches.connections()], [["fake", 1]]);
    assert.deepEqual([...watches.clientsInUse()], [rotated]);
    await watches.stopAll();
    await rotated.close();
  });

  it("throws a bounded-wait error with the informer's reason when it cannot sync", async () => {
    const watches = new Watches({ logger, onChange: () => {}, syncTimeoutMs: 300, informerOptions: fast });
    server.failWith = {
      status: 403,
      message: 'configmaps is forbidden: User "x" cannot list resource "configmaps"',
    };
    try {
      await assert.rejects(
        watches.setRefs("ns/rs", [{ client, resource: cm, namespace: "denied", name: "x" }]),
        (e: unknown) => {
          assert.ok(e instanceof SinkerError);
          assert.equal(e.reason, "Forbidden");
          assert.match(e.message, /could not list configmaps in namespace "denied" on cluster "fake"/);
          assert.match(e.message, /is forbidden/);
          return true;
        },
      );
    } finally {
      server.failWith = undefined;
    }
    await watches.release("ns/rs");
    assert.equal(watches.connections().size, 0);
  });
});
