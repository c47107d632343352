// ClusterClient against the real API servers of the test control plane: discovery (core, cluster-scoped, CRDs
// incl. one installed during the test), server-side apply semantics, error mapping of real API answers,
// impersonation, and watches (events, bookmarks, 410 Gone after an etcd compaction).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import diagnostics from "node:diagnostics_channel";
import { after, before, describe, test } from "node:test";
import { KubeConfig } from "@kubernetes/client-node";
import { SinkerError } from "../../src/errors.ts";
import { ClusterClient, type ResourceInfo, type WatchEvent } from "../../src/kube/client.ts";
import { restrictedNamespace, type TestEnv, UNCACHED_RESOURCE } from "../controlplane/testenv.ts";
import { compactEtcd, sleep, until } from "./support/kube.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const env: TestEnv = suite.env;
const clients: ClusterClient[] = [];

function client(
  name: "a" | "b" | "b-restricted",
  opts: { impersonate?: { user?: string; groups?: string[] } } = {},
) {
  const c = ClusterClient.fromKubeConfig(env.kubeConfig(name), { name, ...opts });
  clients.push(c);
  return c;
}

const namespace = (cluster: "a" | "b", prefix: string): Promise<string> => suite.ns(cluster, prefix);

function reasonIs(reason: string, status?: number, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof SinkerError, String(e));
    assert.equal(e.reason, reason, e.message);
    if (status !== undefined) assert.equal(e.status, status);
    if (message) assert.match(e.message, message);
    return true;
  };
}

/** A minimal PodTemplate (nothing runs it: the test environment has no nodes). */
function podTemplate(name: string) {
  return { metadata: { name }, template: { spec: { containers: [{ name: "c", image: "none" }] } } };
}

after(async () => {
  for (const c of clients) await c.close();
});

describe("ClusterClient against kube-apiserver", { timeout: 120_000 }, () => {
  let a: ClusterClient;
  let cm: ResourceInfo;
  before(async () => {
    a = client("a");
    cm = await a.resolve("v1", "ConfigMap");
  });

  test("discovery resolves core, cluster-scoped and CRD kinds", async () => {
    assert.deepEqual(cm, {
      apiVersion: "v1",
      group: "",
      version: "v1",
      kind: "ConfigMap",
      plural: "configmaps",
      namespaced: true,
    });
    assert.equal((await a.resolve("v1", "Secret")).plural, "secrets");
    const ns = await a.resolve("v1", "Namespace");
    assert.equal(ns.plural, "namespaces");
    assert.equal(ns.namespaced, false);
    const deploy = await a.resolve("apps/v1", "Deployment");
    assert.deepEqual(
      [deploy.group, deploy.version, deploy.plural, deploy.namespaced],
      ["apps", "v1", "deployments", true],
    );
    const rs = await a.resolve("sinker.influxdata.io/v1alpha1", "ResourceSync");
    assert.deepEqual([rs.plural, rs.namespaced], ["resourcesyncs", true]);
    const sc = await a.resolve("sinker.influxdata.io/v1alpha1", "SinkerContainer");
    assert.equal(sc.plural, "sinkercontainers");
    await assert.rejects(
      a.resolve("v1", "NoSuchKind"),
      reasonIs("UnknownKind", undefined, /"NoSuchKind" is not served/),
    );
    await assert.rejects(
      a.resolve("nope.example.com/v1", "Thing"),
      reasonIs("UnknownKind", undefined, /not served/),
    );
  });

  test("requests of every verb reuse pooled connections (DELETE's body included)", async () => {
    const ns = await namespace("a", "keepalive");
    const c = client("a");
    await c.get(cm, ns, "warm-up"); // one connection, whatever comes next
    let connects = 0;
    const count = () => connects++;
    diagnostics.subscribe("undici:client:connected", count);
    try {
      for (let i = 0; i < 20; i++) {
        const name = `k-${i}`;
        await c.apply(
          cm,
          { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: ns } },
          {
            fieldManager: "e2e-test",
            force: true,
          },
        );
        await c.patch(cm, ns, name, { data: { k: "v" } }, "merge");
        await c.get(cm, ns, name);
        assert.equal(await c.delete(cm, ns, name), "deleted");
      }
    } finally {
      diagnostics.unsubscribe("undici:client:connected", count);
    }
    // sequential requests: the one pooled connection serves all 80 (a server-side close could add one)
    assert.ok(connects <= 1, `${connects} new connections for 80 sequential requests`);
  });

  test("a CRD installed after a failed lookup is found by the (rate-limited) discovery refresh", async () => {
    const group = `e2e-${randomBytes(3).toString("hex")}.kube.sinker.test`;
    const apiVersion = `${group}/v1`;
    await assert.rejects(a.resolve(apiVersion, "Gadget"), reasonIs("UnknownKind"));
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `gadgets.${group}` },
      spec: {
        group,
        scope: "Cluster",
        names: { plural: "gadgets", singular: "gadget", kind: "Gadget", listKind: "GadgetList" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
          },
        ],
      },
    };
    const crdRes = await a.resolve("apiextensions.k8s.io/v1", "CustomResourceDefinition");
    await a.apply(crdRes, crd, { fieldManager: "e2e-test", force: true });
    try {
      let resolved: ResourceInfo | undefined;
      const t0 = Date.now();
      await until(
        "the new CRD to be discovered",
        async () => {
          resolved = await a.resolve(apiVersion, "Gadget").catch(() => undefined);
          return resolved !== undefined;
        },
        30_000,
      );
      assert.deepEqual(resolved, {
        apiVersion,
        group,
        version: "v1",
        kind: "Gadget",
        plural: "gadgets",
        namespaced: false,
      });
      assert.ok(Date.now() - t0 < 15_000, `discovered after ${Date.now() - t0} ms`);
    } finally {
      await a.delete(crdRes, undefined, `gadgets.${group}`);
    }
  });

  test("server-side apply round trip: managedFields name the field manager; removed fields go, others stay", async () => {
    const ns = await namespace("a", "kube-apply");
    const applied = await a.apply(
      cm,
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "ssa", namespace: ns },
        data: { one: "1", two: "2" },
      },
      { fieldManager: "sinker.influxdata.io", force: true },
    );
    assert.deepEqual(applied.data, { one: "1", two: "2" });
    const entry = applied.metadata?.managedFields?.find((m) => m.manager === "sinker.influxdata.io");
    assert.ok(entry, JSON.stringify(applied.metadata?.managedFields));
    assert.equal(entry.operation, "Apply");
    assert.deepEqual(entry.fieldsV1, { "f:data": { "f:one": {}, "f:two": {} } });

    // another manager adds a field
    await a.patch(cm, ns, "ssa", { data: { theirs: "x" } }, "merge", { fieldManager: "someone-else" });
    // we apply without "two": it is removed, "theirs" (not ours) stays
    const again = await a.apply(
      cm,
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ssa", namespace: ns }, data: { one: "1b" } },
      { fieldManager: "sinker.influxdata.io", force: true },
    );
    assert.deepEqual(again.data, { one: "1b", theirs: "x" });

    const got = await a.get(cm, ns, "ssa");
    assert.equal(got?.apiVersion, "v1");
    assert.equal(got?.kind, "ConfigMap");
    assert.deepEqual(got?.data, { one: "1b", theirs: "x" });
    const managers = got?.metadata?.managedFields?.map((m) => `${m.manager}/${m.operation}`).sort();
    assert.deepEqual(managers, ["sinker.influxdata.io/Apply", "someone-else/Update"]);

    // the list fills in apiVersion/kind
    const list = await a.list(cm, ns);
    assert.deepEqual(
      list.items
        .filter((o) => o.metadata?.name === "ssa")
        .map((o) => `${o.apiVersion}/${o.kind}/${o.metadata?.name}`),
      ["v1/ConfigMap/ssa"],
    );
    assert.match(list.resourceVersion, /^\d+$/);

    // replace with a stale resourceVersion → Conflict; with the current one → ok
    const stale = {
      ...got,
      metadata: { ...got?.metadata, resourceVersion: applied.metadata?.resourceVersion },
    };
    await assert.rejects(a.replace(cm, stale), reasonIs("Conflict", 409, /the object has been modified/));
    const replaced = await a.replace(cm, { ...got, data: { only: "this" } });
    assert.deepEqual(replaced.data, { only: "this" });

    // delete with a wrong uid precondition → Conflict; then deleted; then notfound
    await assert.rejects(
      a.delete(cm, ns, "ssa", { preconditions: { uid: "00000000-0000-0000-0000-000000000000" } }),
      reasonIs("Conflict", 409, /the UID in the precondition/),
    );
    assert.equal(
      await a.delete(cm, ns, "ssa", {
        propagationPolicy: "Background",
        preconditions: { uid: got?.metadata?.uid ?? "" },
      }),
      "deleted",
    );
    assert.equal(await a.get(cm, ns, "ssa"), undefined);
    assert.equal(await a.delete(cm, ns, "ssa"), "notfound");
  });

  test("real API errors map to reasons and carry the server's message", async () => {
    const ns = await namespace("a", "kube-errors");
    await a.create(cm, ns, { metadata: { name: "dup" }, data: {} });
    await assert.rejects(
      a.create(cm, ns, { metadata: { name: "dup" } }),
      reasonIs("Conflict", 409, /already exists/),
    );
    await assert.rejects(
      a.create(cm, ns, { metadata: { name: "Not_A_Valid_Name" }, data: { secret: "do-not-echo-1234" } }),
      (e: unknown) => {
        reasonIs("Invalid", 422, /is invalid/)(e);
        assert.ok(!(e as Error).message.includes("do-not-echo-1234"));
        return true;
      },
    );
    await assert.rejects(
      a.patch(cm, ns, "dup", "not json", "merge"),
      (e: unknown) => e instanceof SinkerError && (e.status === 400 || e.status === 422),
    );
    await assert.rejects(a.get(cm, undefined, "x"), reasonIs("InvalidSpec"));

    // restricted user: Forbidden outside its namespace, fine inside
    const restricted = client("b-restricted");
    const bcm = await restricted.resolve("v1", "ConfigMap");
    await assert.rejects(restricted.list(bcm, "default"), reasonIs("Forbidden", 403, /forbidden/));
    assert.ok(Array.isArray((await restricted.list(bcm, restrictedNamespace)).items));

    // impersonation headers: as a nobody → Forbidden naming the user; as a member of system:masters → allowed
    const nobody = client("a", { impersonate: { user: "e2e-nobody" } });
    await assert.rejects(nobody.list(cm, ns), reasonIs("Forbidden", 403, /"e2e-nobody"/));
    const master = client("a", {
      impersonate: { user: "e2e-nobody", groups: ["e2e-group", "system:masters"] },
    });
    assert.ok((await master.list(cm, ns)).items.some((o) => o.metadata?.name === "dup"));

    // bad credentials → Unauthorized
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "a", server: env.server("a"), skipTLSVerify: true }],
      users: [{ name: "bad", token: "not-a-valid-token" }],
      contexts: [{ name: "bad", cluster: "a", user: "bad" }],
      currentContext: "bad",
    });
    const bad = ClusterClient.fromKubeConfig(kc, { name: "bad" });
    clients.push(bad);
    await assert.rejects(bad.list(cm, ns), reasonIs("Unauthorized", 401));

    // nobody listening → ClusterUnreachable
    const port = Number(new URL(env.server("a")).port);
    const kc2 = new KubeConfig();
    kc2.loadFromOptions({
      clusters: [{ name: "x", server: `https://127.0.0.1:${port === 1 ? 2 : 1}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "x", user: "u" }],
      currentContext: "x",
    });
    const unreachable = ClusterClient.fromKubeConfig(kc2, { name: "down" });
    clients.push(unreachable);
    await assert.rejects(
      unreachable.get(cm, ns, "x"),
      reasonIs("ClusterUnreachable", undefined, /unreachable/),
    );
  });

  test("watch: events in order, bookmarks, server-side end after timeoutSeconds", async () => {
    const ns = await namespace("a", "kube-watch");
    const { resourceVersion } = await a.list(cm, ns);
    const events: WatchEvent[] = [];
    const ac = new AbortController();
    const t0 = Date.now();
    const watching = a.watch(
      cm,
      ns,
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 4, signal: ac.signal },
      (e) => events.push(e),
    );
    await sleep(200);
    await a.create(cm, ns, { metadata: { name: "w1" }, data: { v: "1" } });
    await a.patch(cm, ns, "w1", { data: { v: "2" } }, "merge");
    await a.delete(cm, ns, "w1");
    await watching;
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 3500 && elapsed < 8000, `the server ended the watch after ${elapsed} ms`);
    const changes = events.filter((e) => e.type !== "BOOKMARK");
    assert.deepEqual(
      changes.map((e) => `${e.type}:${e.object.metadata?.name}:${e.object.kind}`),
      ["ADDED:w1:ConfigMap", "MODIFIED:w1:ConfigMap", "DELETED:w1:ConfigMap"],
    );
    const rvs = changes.map((e) => Number(e.object.metadata?.resourceVersion));
    assert.ok((rvs[0] ?? 0) < (rvs[1] ?? 0) && (rvs[1] ?? 0) < (rvs[2] ?? 0));
    const bookmarks = events.filter((e) => e.type === "BOOKMARK");
    assert.ok(bookmarks.length >= 1, "the server sent a bookmark before ending the watch");
    assert.match(bookmarks.at(-1)?.object.metadata?.resourceVersion ?? "", /^\d+$/);
  });

  test("watch from a compacted resourceVersion gets a 410 Gone ERROR event; list gets Gone", async () => {
    // PodTemplates bypass the watch cache in the test environment (UNCACHED_RESOURCE): served from etcd, a
    // compacted revision is refused every time, whatever state a watch cache would be in.
    const pt = await a.resolve("v1", "PodTemplate");
    assert.equal(pt.plural, UNCACHED_RESOURCE);
    const ns = await namespace("a", "kube-gone");
    const before = await a.list(pt, ns);
    await a.create(pt, ns, podTemplate("after"));
    await compactEtcd(env);
    const events: WatchEvent[] = [];
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 60_000);
    try {
      await a.watch(pt, ns, { resourceVersion: before.resourceVersion, signal: ac.signal }, (e) => {
        events.push(e);
      });
    } finally {
      clearTimeout(t);
    }
    assert.deepEqual(
      events.map((e) => e.type),
      ["ERROR"],
      "the server answers the watch with one ERROR event and ends it",
    );
    assert.equal(events[0]?.object.code, 410);
    assert.equal(events[0]?.object.reason, "Expired");
    await assert.rejects(
      a.list(pt, ns, { resourceVersion: before.resourceVersion, resourceVersionMatch: "Exact" }),
      reasonIs("Gone", 410),
    );
  });
});
