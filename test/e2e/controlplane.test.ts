// Smoke tests of the test control plane itself: each checks a behaviour that only real API servers with real
// controller managers have, so a fake or a half-started control plane fails here first.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { restrictedNamespace, type TestEnv, waitFor } from "../controlplane/testenv.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const env: TestEnv = suite.env;

const namespace = (cluster: "a" | "b", prefix: string): Promise<string> => suite.ns(cluster, prefix);

const cmPath = (ns: string, name = "") => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ""}`;

async function createConfigMap(
  cluster: "a" | "b",
  ns: string,
  name: string,
  extra: { data?: Record<string, string>; metadata?: Record<string, unknown> } = {},
) {
  const r = await env.request(cluster, "POST", cmPath(ns), {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, ...extra.metadata },
    data: extra.data ?? {},
  });
  assert.equal(r.status, 201, `creating ConfigMap ${ns}/${name} in ${cluster}: ${JSON.stringify(r.body)}`);
  return r.body;
}

async function gone(cluster: "a" | "b", path: string, what: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `${what} to be deleted`,
    async () => (await env.request(cluster, "GET", path)).status === 404,
    {
      timeoutMs,
    },
  );
}

describe("test control plane", { timeout: 180_000 }, () => {
  test("clusters a and b are distinct: an object created in a is not visible in b", async () => {
    const ns = await namespace("a", "isolation");
    await createConfigMap("a", ns, "only-in-a", { data: { k: "v" } });
    // The same namespace name in b, so the lookup fails on the object and not on the namespace.
    const rb = await env.request("b", "POST", "/api/v1/namespaces", { metadata: { name: ns } });
    assert.equal(rb.status, 201, JSON.stringify(rb.body));
    suite.track("b", ns);
    assert.equal((await env.request("a", "GET", cmPath(ns, "only-in-a"))).status, 200);
    assert.equal((await env.request("b", "GET", cmPath(ns, "only-in-a"))).status, 404);
    const list = await env.request("b", "GET", cmPath(ns));
    assert.deepEqual(
      list.body.items
        .map((i: { metadata: { name: string } }) => i.metadata.name)
        .filter((n: string) => n !== "kube-root-ca.crt"),
      [],
    );
    const uidA = (await env.request("a", "GET", "/api/v1/namespaces/default")).body.metadata.uid;
    const uidB = (await env.request("b", "GET", "/api/v1/namespaces/default")).body.metadata.uid;
    assert.notEqual(uidA, uidB, "namespace default has the same uid in both clusters");
  });

  test("server-side apply records the field manager in managedFields and detects conflicts", async () => {
    const ns = await namespace("a", "ssa");
    const apply = (manager: string, data: Record<string, string>, force = false) =>
      env.request(
        "a",
        "PATCH",
        `${cmPath(ns, "applied")}?fieldManager=${manager}${force ? "&force=true" : ""}`,
        { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied", namespace: ns }, data },
        "application/apply-patch+yaml",
      );
    const r1 = await apply("e2e-manager-x", { x: "1" });
    assert.equal(r1.status, 201, JSON.stringify(r1.body));
    const r2 = await apply("e2e-manager-y", { y: "2" });
    assert.equal(r2.status, 200, JSON.stringify(r2.body));
    const managers = r2.body.metadata.managedFields.map((m: { manager: string; operation: string }) => [
      m.manager,
      m.operation,
    ]);
    assert.deepEqual(
      managers.sort(),
      [
        ["e2e-manager-x", "Apply"],
        ["e2e-manager-y", "Apply"],
      ],
      JSON.stringify(r2.body.metadata.managedFields),
    );
    const x = r2.body.metadata.managedFields.find((m: { manager: string }) => m.manager === "e2e-manager-x");
    assert.ok(x.fieldsV1["f:data"]["f:x"], `manager x does not own data.x: ${JSON.stringify(x)}`);
    assert.deepEqual(r2.body.data, { x: "1", y: "2" });
    // Y taking x's field without force is a conflict; with force it takes ownership.
    const conflict = await apply("e2e-manager-y", { y: "2", x: "changed" });
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    const forced = await apply("e2e-manager-y", { y: "2", x: "changed" }, true);
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    // X applying without its field removes nothing it no longer owns; y's apply without y removes y.
    const dropped = await apply("e2e-manager-y", { x: "changed" });
    assert.deepEqual(dropped.body.data, { x: "changed" });
  });

  test("the garbage collector deletes a dependent whose owner is deleted", async () => {
    const ns = await namespace("a", "gc");
    const owner = await createConfigMap("a", ns, "owner");
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid };
    await createConfigMap("a", ns, "child", { metadata: { ownerReferences: [ref] } });
    await createConfigMap("a", ns, "bystander");
    assert.equal((await env.request("a", "DELETE", cmPath(ns, "owner"))).status, 200);
    await gone("a", cmPath(ns, "child"), "the dependent of a deleted owner");
    assert.equal((await env.request("a", "GET", cmPath(ns, "bystander"))).status, 200);
  });

  test("the garbage collector deletes a dependent created with a reference to an already deleted owner", async () => {
    const ns = await namespace("b", "gc-dangling");
    const owner = await createConfigMap("b", ns, "owner");
    assert.equal((await env.request("b", "DELETE", cmPath(ns, "owner"))).status, 200);
    await gone("b", cmPath(ns, "owner"), "the owner");
    const ref = { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid };
    await createConfigMap("b", ns, "orphan", { metadata: { ownerReferences: [ref] } });
    await gone("b", cmPath(ns, "orphan"), "a dependent of an owner that no longer exists");
  });

  test("a Foreground delete waits for blocking dependents, then completes", async () => {
    const ns = await namespace("a", "foreground");
    const owner = await createConfigMap("a", ns, "owner");
    const ref = {
      apiVersion: "v1",
      kind: "ConfigMap",
      name: "owner",
      uid: owner.metadata.uid,
      blockOwnerDeletion: true,
    };
    // A finalizer of our own keeps the dependent (and so the owner) around until we let go.
    await createConfigMap("a", ns, "child", {
      metadata: { ownerReferences: [ref], finalizers: ["e2e.sinker.test/hold"] },
    });
    const del = await env.request("a", "DELETE", cmPath(ns, "owner"), {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Foreground",
    });
    assert.ok(del.status === 200 || del.status === 202, JSON.stringify(del.body));
    const ownerNow = await env.request("a", "GET", cmPath(ns, "owner"));
    assert.equal(ownerNow.status, 200, "the owner went away before its blocking dependent");
    assert.ok(ownerNow.body.metadata.deletionTimestamp, "owner has no deletionTimestamp");
    assert.ok(
      ownerNow.body.metadata.finalizers?.includes("foregroundDeletion"),
      `owner finalizers: ${JSON.stringify(ownerNow.body.metadata.finalizers)}`,
    );
    await waitFor("the garbage collector to delete the dependent", async () => {
      const c = await env.request("a", "GET", cmPath(ns, "child"));
      return c.status === 200 && c.body.metadata.deletionTimestamp !== undefined;
    });
    assert.equal((await env.request("a", "GET", cmPath(ns, "owner"))).status, 200, "owner deleted too early");
    const release = await env.request("a", "PATCH", cmPath(ns, "child"), { metadata: { finalizers: null } });
    assert.equal(release.status, 200, JSON.stringify(release.body));
    await gone("a", cmPath(ns, "child"), "the dependent");
    await gone("a", cmPath(ns, "owner"), "the owner deleted in the foreground");
  });

  test("a namespace delete completes and removes its contents", async () => {
    const ns = await env.createNamespace("b", "nsdelete");
    await createConfigMap("b", ns, "content");
    const secret = await env.request("b", "POST", `/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: "s" },
      stringData: { k: "v" },
    });
    assert.equal(secret.status, 201, JSON.stringify(secret.body));
    const del = await env.request("b", "DELETE", `/api/v1/namespaces/${ns}`);
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.status.phase, "Terminating");
    await gone("b", `/api/v1/namespaces/${ns}`, `namespace ${ns}`, 90_000);
  });

  test("the restricted kubeconfig is forbidden outside namespace `restricted` of cluster b, allowed inside", async () => {
    const kc = env.kubeConfig("b-restricted");
    assert.equal(kc.getContextObject(kc.getCurrentContext())?.namespace, restrictedNamespace);
    assert.equal(kc.getCurrentCluster()?.server, env.server("b"));
    for (const [method, path] of [
      ["GET", cmPath("default")],
      ["GET", "/api/v1/namespaces"],
      ["GET", "/api/v1/configmaps"],
      ["GET", "/api/v1/namespaces/kube-system/secrets"],
    ] as const) {
      const r = await env.request("b-restricted", method, path);
      assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.reason, "Forbidden");
    }
    const outside = await env.request("b-restricted", "POST", cmPath("default"), {
      metadata: { name: "nope" },
    });
    assert.equal(outside.status, 403, JSON.stringify(outside.body));
    const name = `allowed-${Date.now()}`;
    const inside = await env.request("b-restricted", "POST", cmPath(restrictedNamespace), {
      metadata: { name },
      data: { k: "v" },
    });
    assert.equal(inside.status, 201, JSON.stringify(inside.body));
    assert.equal((await env.request("b-restricted", "GET", cmPath(restrictedNamespace, name))).status, 200);
    assert.equal((await env.request("b", "GET", cmPath(restrictedNamespace, name))).status, 200);
    assert.equal((await env.request("a", "GET", cmPath(restrictedNamespace, name))).status, 404);
    assert.equal(
      (await env.request("b-restricted", "DELETE", cmPath(restrictedNamespace, name))).status,
      200,
    );
  });

  test("kubeConfig() works with @kubernetes/client-node and kubectl works with the kubeconfig files", async () => {
    const api = env.kubeConfig("a").makeApiClient(CoreV1Api);
    const ns = await api.readNamespace({ name: "kube-system" });
    assert.equal(ns.metadata?.name, "kube-system");
    const k = await env.kubectl("b", [
      "get",
      "namespace",
      restrictedNamespace,
      "-o",
      "jsonpath={.metadata.name}",
    ]);
    assert.equal(k.code, 0, k.stderr);
    assert.equal(k.stdout, restrictedNamespace);
  });
});

describe("stopCluster / startCluster", { timeout: 180_000 }, () => {
  let ns = "";
  before(async () => {
    ns = await namespace("b", "restart");
    await createConfigMap("b", ns, "survives", { data: { k: "v" } });
  });

  test("cluster b goes down and comes back on the same port with its data; cluster a is unaffected", async () => {
    await env.stopCluster("b");
    try {
      await assert.rejects(env.request("b", "GET", "/readyz"), "cluster b still answers after stopCluster");
      assert.equal((await env.request("a", "GET", "/api/v1/namespaces/default")).status, 200);
    } finally {
      await env.startCluster("b");
    }
    const r = await env.request("b", "GET", cmPath(ns, "survives"));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data, { k: "v" });
    const restricted = await env.request("b-restricted", "GET", cmPath(restrictedNamespace));
    assert.equal(restricted.status, 200, "b-restricted kubeconfig no longer works after the restart");
  });
});
