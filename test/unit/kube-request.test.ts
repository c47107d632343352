/** Request building (kube/request.ts) and the list-continuation guard (kube/list-guard.ts): pure, no server. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ListGuard } from "../../src/kube/list-guard.ts";
import {
  applyQuery,
  deleteBody,
  listQuery,
  type ResourceInfo,
  resourcePath,
  watchIdleMs,
  watchQuery,
} from "../../src/kube/request.ts";

const configMaps: ResourceInfo = {
  apiVersion: "v1",
  group: "",
  version: "v1",
  kind: "ConfigMap",
  plural: "configmaps",
  namespaced: true,
};
const crbs: ResourceInfo = {
  apiVersion: "rbac.authorization.k8s.io/v1",
  group: "rbac.authorization.k8s.io",
  version: "v1",
  kind: "ClusterRoleBinding",
  plural: "clusterrolebindings",
  namespaced: false,
};
const signal = new AbortController().signal;

describe("resourcePath", () => {
  const table: Array<[string, ResourceInfo, Parameters<typeof resourcePath>[1], string]> = [
    ["all namespaces", configMaps, {}, "/api/v1/configmaps"],
    ["a namespace", configMaps, { namespace: "ns" }, "/api/v1/namespaces/ns/configmaps"],
    ["an object", configMaps, { namespace: "ns", name: "a b" }, "/api/v1/namespaces/ns/configmaps/a%20b"],
    [
      "a subresource, with a query",
      configMaps,
      { namespace: "ns", name: "x", subresource: "status", query: new URLSearchParams({ force: "true" }) },
      "/api/v1/namespaces/ns/configmaps/x/status?force=true",
    ],
    [
      "a named group, cluster-scoped",
      crbs,
      { name: "x" },
      "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/x",
    ],
    [
      "a namespace given to a cluster-scoped kind is ignored",
      crbs,
      { namespace: "ns" },
      "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    ],
    ["an empty query adds no ?", configMaps, { query: new URLSearchParams() }, "/api/v1/configmaps"],
  ];
  for (const [name, res, target, want] of table)
    it(name, () => assert.equal(resourcePath(res, target), want));

  it("refuses a namespaced object without a namespace", () => {
    assert.throws(() => resourcePath(configMaps, { name: "x" }), /namespaced but no namespace/);
  });
});

describe("queries and bodies", () => {
  it("list", () => {
    assert.equal(listQuery({}).toString(), "");
    assert.equal(
      listQuery({ labelSelector: "a=b", limit: 500, continue: "t", resourceVersion: "0" }).toString(),
      "labelSelector=a%3Db&limit=500&continue=t&resourceVersion=0",
    );
  });
  it("watch, and its idle time", () => {
    const opts = { resourceVersion: "7", timeoutSeconds: 299.7, allowWatchBookmarks: true, signal };
    assert.equal(
      watchQuery(opts).toString(),
      "watch=1&resourceVersion=7&allowWatchBookmarks=true&timeoutSeconds=299",
    );
    assert.equal(watchIdleMs(opts), 359_700);
    assert.equal(watchIdleMs({ resourceVersion: "7", signal }), 300_000);
    assert.equal(watchIdleMs({ resourceVersion: "7", signal, idleTimeoutSeconds: 5 }), 5000);
  });
  it("apply", () => {
    assert.equal(
      applyQuery({ fieldManager: "m", force: true, dryRun: true }).toString(),
      "fieldManager=m&force=true&dryRun=All",
    );
    assert.equal(applyQuery({ fieldManager: "m", force: false }).toString(), "fieldManager=m");
  });
  it("delete", () => {
    assert.deepEqual(deleteBody({ propagationPolicy: "Foreground", preconditions: { uid: "u" } }), {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: "Foreground",
      preconditions: { uid: "u" },
    });
  });
});

describe("ListGuard", () => {
  it("counts the pages and items of one continued list, and refuses past either bound", () => {
    const guard = new ListGuard({ maxListPages: 3, maxListItems: 10 });
    assert.ok(guard.page(undefined, 4, "t1"));
    assert.ok(guard.page("t1", 4, "t2"));
    assert.equal(guard.page("t2", 3, "t3"), false, "11 items");
    const pages = new ListGuard({ maxListPages: 2, maxListItems: 100 });
    assert.ok(pages.page(undefined, 1, "p1"));
    assert.ok(pages.page("p1", 1, "p2"));
    assert.equal(pages.page("p2", 1, "p3"), false, "a third page");
  });

  it("starts over for a new list, and for a token it never handed out", () => {
    const guard = new ListGuard({ maxListPages: 2, maxListItems: 100 });
    assert.ok(guard.page(undefined, 1, "a1"));
    assert.ok(guard.page("a1", 1, "a2"));
    assert.ok(guard.page(undefined, 1, "b1"), "a new list");
    assert.ok(guard.page("unknown", 1, undefined));
  });

  it("keeps only the newest 64 chains", () => {
    const guard = new ListGuard({ maxListPages: 2, maxListItems: 100 });
    for (let i = 0; i < 65; i++) assert.ok(guard.page(undefined, 1, `t${i}`));
    // t1 is kept: its second page is allowed, a third is not
    assert.ok(guard.page("t1", 1, "t1b"));
    assert.equal(guard.page("t1b", 1, undefined), false);
    // t0 was dropped: its next page counts as a first page again
    assert.ok(guard.page("t0", 1, "t0b"));
    assert.ok(guard.page("t0b", 1, undefined));
  });
});
