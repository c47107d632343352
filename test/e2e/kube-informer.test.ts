// Informer and Watches against the real API servers: add/modify/delete, recovery from 410 Gone (a compacted
// etcd), and the shared registry holding ONE watch connection for 100 references of one kind in one namespace
// (counted on the Watches side and as this process's TCP connections to the API server).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { type WatchChange, Watches } from "../../src/controller/watches.ts";
import { ClusterClient, type ListOptions, type ResourceInfo } from "../../src/kube/client.ts";
import { Informer, type InformerEvent } from "../../src/kube/informer.ts";
import { type TestEnv, UNCACHED_RESOURCE } from "../controlplane/testenv.ts";
import { apiserverPort, compactEtcd, openWatches, sleep, tcpConnectionsTo, until } from "./support/kube.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const env: TestEnv = suite.env;
const logger = pino({ level: process.env.SINKER_TEST_LOG ?? "silent" });
const fast = { backoff: { initialMs: 100, maxMs: 1000 } };

const namespace = (cluster: "a" | "b", prefix: string): Promise<string> => suite.ns(cluster, prefix);

/** Fixture writes go through the test environment's own request helper, not through the code under test. */
async function putConfigMap(cluster: "a" | "b", ns: string, name: string, data: Record<string, string>) {
  const r = await env.request(
    cluster,
    "PATCH",
    `/api/v1/namespaces/${ns}/configmaps/${name}?fieldManager=e2e-test&force=true`,
    { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns }, data },
    "application/apply-patch+yaml",
  );
  assert.ok(r.status === 200 || r.status === 201, `apply ${ns}/${name}: ${r.status}`);
}

async function putPodTemplate(cluster: "a" | "b", ns: string, name: string, v: string) {
  const r = await env.request(
    cluster,
    "PATCH",
    `/api/v1/namespaces/${ns}/podtemplates/${name}?fieldManager=e2e-test&force=true`,
    {
      apiVersion: "v1",
      kind: "PodTemplate",
      metadata: { name, namespace: ns, labels: { v } },
      template: { spec: { containers: [{ name: "c", image: "none" }] } },
    },
    "application/apply-patch+yaml",
  );
  assert.ok(r.status === 200 || r.status === 201, `apply ${ns}/${name}: ${r.status}`);
}

async function deleteObject(cluster: "a" | "b", path: string) {
  const r = await env.request(cluster, "DELETE", path);
  assert.ok(r.status === 200 || r.status === 202, `delete ${path}: ${r.status}`);
}

describe("Informer and Watches against kube-apiserver", { timeout: 180_000 }, () => {
  let a: ClusterClient;
  let b: ClusterClient;
  let cm: ResourceInfo;
  let secretRes: ResourceInfo;
  before(async () => {
    a = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "a" });
    b = ClusterClient.fromKubeConfig(env.kubeConfig("b"), { name: "b" });
    cm = await a.resolve("v1", "ConfigMap");
    secretRes = await a.resolve("v1", "Secret");
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test("informer: initial list, then added / modified / deleted from the watch", async () => {
    const ns = await namespace("a", "inf-events");
    await putConfigMap("a", ns, "before", { v: "0" });
    const inf = new Informer({ client: a, resource: cm, namespace: ns, logger, ...fast });
    const events: InformerEvent[] = [];
    inf.onEvent((e) => events.push(e));
    inf.start();
    try {
      await inf.synced;
      assert.deepEqual(inf.get(ns, "before")?.data, { v: "0" });
      await until("the watch", () => inf.health().watching);
      await putConfigMap("a", ns, "w", { v: "1" });
      await putConfigMap("a", ns, "w", { v: "2" });
      await deleteObject("a", `/api/v1/namespaces/${ns}/configmaps/w`);
      await until(
        "three watch events for w",
        () => events.filter((e) => e.object.metadata?.name === "w").length >= 3,
      );
      const w = events.filter((e) => e.object.metadata?.name === "w");
      assert.deepEqual(
        w.map((e) => e.type),
        ["added", "modified", "deleted"],
      );
      assert.deepEqual(w[1]?.old?.data, { v: "1" });
      assert.deepEqual(w[1]?.object.data, { v: "2" });
      assert.equal(w[1]?.object.kind, "ConfigMap");
      assert.equal(inf.get(ns, "w"), undefined);
      assert.deepEqual(
        inf.list().map((o) => o.metadata?.name),
        ["before"],
      );
      const h = inf.health();
      assert.equal(h.consecutiveFailures, 0);
      assert.equal(h.lists, 1);
      assert.ok(h.lastSyncAt && Date.now() - h.lastSyncAt < 10_000);
    } finally {
      await inf.stop();
    }
  });

  test("informer: a 410 Gone (compacted etcd) makes it list again and report what changed meanwhile", async () => {
    // PodTemplates bypass the watch cache in the test environment (UNCACHED_RESOURCE): served from etcd, the
    // watch from a compacted revision gets its 410 every time, whatever state a watch cache would be in.
    const pt = await a.resolve("v1", "PodTemplate");
    assert.equal(pt.plural, UNCACHED_RESOURCE);
    const ns = await namespace("a", "inf-gone");
    await putPodTemplate("a", ns, "stays", "1");
    await putPodTemplate("a", ns, "changes", "1");
    await putPodTemplate("a", ns, "vanishes", "1");
    const stale = await a.list(pt, ns);
    await putPodTemplate("a", ns, "changes", "2");
    await deleteObject("a", `/api/v1/namespaces/${ns}/podtemplates/vanishes`);
    await putPodTemplate("a", ns, "appears", "1");
    await compactEtcd(env);
    // A client whose FIRST list answers with the stale items and resourceVersion (as if the informer had
    // been disconnected since then): its watch must get a real 410 from the server, and it must recover.
    let lists = 0;
    const staleFirst = new Proxy(a, {
      get(target, prop) {
        if (prop === "list") {
          return async (res: ResourceInfo, namespace: string | undefined, opts?: ListOptions) => {
            if (lists++ === 0)
              return {
                items: stale.items.map((o) => structuredClone(o)),
                resourceVersion: stale.resourceVersion,
              };
            return target.list(res, namespace, opts);
          };
        }
        const v = Reflect.get(target, prop, target);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const inf = new Informer({ client: staleFirst, resource: pt, namespace: ns, logger, ...fast });
    const events: InformerEvent[] = [];
    inf.onEvent((e) => events.push(e));
    inf.start();
    try {
      await inf.synced;
      await until("a relist after 410", () => inf.health().lists >= 2, 60_000);
      assert.ok(inf.health().expired >= 1, JSON.stringify(inf.health()));
      await until("the store to match the server", () => inf.list().length === 3);
      const afterFirstList = events.slice(3).map((e) => `${e.type}:${e.object.metadata?.name}`);
      assert.deepEqual(afterFirstList.sort(), ["added:appears", "deleted:vanishes", "modified:changes"]);
      assert.deepEqual(
        inf
          .list()
          .map((o) => o.metadata?.name)
          .sort(),
        ["appears", "changes", "stays"],
      );
      // and it watches again from the fresh list
      await until("the watch", () => inf.health().watching);
      await putPodTemplate("a", ns, "later", "1");
      await until("the later object", () => inf.get(ns, "later") !== undefined);
    } finally {
      await inf.stop();
    }
  });

  test("Watches: 100 ResourceSyncs referencing ConfigMaps in one namespace share ONE watch; released → closed", async () => {
    const ns = await namespace("a", "watches-share");
    for (let i = 0; i < 100; i++) await putConfigMap("a", ns, `src-${i}`, { i: String(i) });
    const changes: Array<{ keys: string[]; e: WatchChange }> = [];
    const watches = new Watches({
      logger,
      onChange: (keys, e) => changes.push({ keys, e }),
      informerOptions: fast,
    });
    const port = apiserverPort(env, "a");
    const baseline = tcpConnectionsTo(port);
    // Namespaced ConfigMap watches open on the server before this test (none of this process's, normally).
    const serverBaseline = await openWatches(env, "a", "configmaps", "namespace");
    try {
      for (let i = 0; i < 100; i++) {
        await watches.setRefs(`${ns}/rs-${i}`, [
          { client: a, resource: cm, namespace: ns, name: `src-${i}` },
          { client: a, resource: cm, namespace: ns, name: `target-${i}` },
        ]);
      }
      assert.deepEqual([...watches.connections()], [["a", 1]]);
      // the first list is not dispatched: rs-0, which started the informer, waited for it and reads the cache
      assert.equal(changes.length, 0);
      const info = watches.info();
      assert.equal(info.length, 1);
      assert.equal(info[0]?.refCount, 100);
      assert.equal(info[0]?.objects, 100);
      assert.equal(watches.get(a, cm, ns, "src-42")?.metadata?.name, "src-42");
      assert.equal(watches.get(a, cm, ns, "target-42"), undefined);

      // routing: a change reaches exactly the ResourceSync referencing that object
      await until("the watch", () => watches.info()[0]?.health.watching === true);
      await until(
        "the API server to count the watch",
        async () => (await openWatches(env, "a", "configmaps", "namespace")) >= serverBaseline + 1,
        60_000,
      );
      // TCP: the one watch plus at most one pooled keep-alive connection of the list request
      const during = tcpConnectionsTo(port);
      if (baseline !== undefined && during !== undefined) {
        console.log(`TCP connections to apiserver a: baseline ${baseline}, with 100 ResourceSyncs ${during}`);
        assert.ok(during - baseline <= 2, `${during - baseline} new connections for 100 ResourceSyncs`);
      }
      await putConfigMap("a", ns, "src-42", { i: "changed" });
      await putConfigMap("a", ns, "target-7", { made: "by test" });
      await until("two changes", () => changes.length >= 2);
      await sleep(300);
      assert.deepEqual(
        changes.map((c) => [c.keys, c.e.type, c.e.object.metadata?.name]),
        [
          [[`${ns}/rs-42`], "modified", "src-42"],
          [[`${ns}/rs-7`], "added", "target-7"],
        ],
      );
      assert.equal(changes[0]?.e.cluster, "a");
      assert.deepEqual(changes[0]?.e.old?.data, { i: "42" });

      for (let i = 0; i < 99; i++) await watches.release(`${ns}/rs-${i}`);
      assert.deepEqual([...watches.connections()], [["a", 1]]);
      await watches.release(`${ns}/rs-99`);
      assert.deepEqual([...watches.connections()], []);
      assert.equal(watches.get(a, cm, ns, "src-42"), undefined);
      // The server's own count of open watches: the released informer's watch has ended there. (Counting this
      // process's TCP connections cannot say that: a pooled keep-alive connection of the lists may come and go.)
      await until(
        "the API server to see the watch end",
        async () => (await openWatches(env, "a", "configmaps", "namespace")) <= serverBaseline,
        60_000,
      );
    } finally {
      await watches.stopAll();
    }
  });

  test("Watches: 100 ResourceSyncs on 2 kinds across 2 clusters hold 4 watches", async () => {
    const nsA = await namespace("a", "watches-2x2");
    const nsB = await namespace("b", "watches-2x2");
    const watches = new Watches({ logger, onChange: () => {}, informerOptions: fast });
    try {
      for (let i = 0; i < 100; i++) {
        await watches.setRefs(`${nsA}/rs-${i}`, [
          { client: a, resource: i % 2 ? cm : secretRes, namespace: nsA, name: `src-${i}` },
          { client: b, resource: i % 2 ? secretRes : cm, namespace: nsB, name: `dst-${i}` },
        ]);
      }
      assert.deepEqual([...watches.connections()].sort(), [
        ["a", 2],
        ["b", 2],
      ]);
      await until("4 open watches", () => watches.info().every((w) => w.health.watching));
      console.log(
        `watch connections for 100 ResourceSyncs, 2 kinds, 2 clusters: ${JSON.stringify([...watches.connections()])}; ` +
          `TCP connections of this process to apiserver a: ${tcpConnectionsTo(apiserverPort(env, "a"))}, ` +
          `b: ${tcpConnectionsTo(apiserverPort(env, "b"))} (watches + pooled keep-alive)`,
      );
    } finally {
      await watches.stopAll();
    }
    assert.equal(watches.connections().size, 0);
  });
});
