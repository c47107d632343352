/**
 * Fan-out status that tells the truth (docs/spec/resourcesyncset.md#status-and-events), against the real control
 * plane: orphaned children lose their grant at once, destinations and clusters are counted apart (a Forbidden
 * namespace list, an outage of cluster b across a restart), selectors Kubernetes refuses are refused at admission,
 * a ClusterResourceSyncSet's Events are where `kubectl describe` finds them, and a ResourceSyncSet may use another
 * namespace's kubeconfig Secret only with that Secret's consent.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { restrictedNamespace, waitFor } from "../controlplane/testenv.ts";
import {
  cmRef as cm,
  condition,
  configMap,
  kubeconfigSecret,
  type Obj,
  RS_API,
  waitReady,
} from "./support/cluster.ts";
import { apiserverPort } from "./support/kube.ts";
import { useSuite } from "./support/suite.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;
const run = randomBytes(3).toString("hex");

function clusterSet(name: string, spec: Record<string, unknown>): Obj {
  suite.trackClusterSet(name);
  return { apiVersion: RS_API, kind: "ClusterResourceSyncSet", metadata: { name }, spec };
}

type Status = Record<string, unknown> & {
  conditions?: Array<{ type: string; reason: string; message: string }>;
};

async function waitStatus(
  kind: string,
  ns: string | undefined,
  name: string,
  what: string,
  ok: (s: Status) => boolean,
): Promise<Status> {
  let last: Status = {};
  await waitFor(
    `${kind} ${name}: ${what}`,
    async () => {
      last = ((await a.get(RS_API, kind, ns, name))?.status ?? {}) as Status;
      return ok(last);
    },
    { timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last status ${JSON.stringify(last)}`);
  });
  return last;
}

const ready = (s: Status) => s.conditions?.find((c) => c.type === "Ready");

describe("a ClusterResourceSyncSet deleted with --cascade=orphan", () => {
  it("leaves children that report SourceNamespaceNotGranted within seconds, keeping their copies", async () => {
    const source = await suite.ns("a", "orph-src");
    const dest = await suite.ns("a", "orph-dst");
    await a.apply(configMap(source, "shared", { k: "v" }));
    const SET = `orph-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm("copy"),
        namespaceSelector: { include: [dest] },
      }),
    );
    await a.waitFor("the copy", "v1", "ConfigMap", dest, "copy", (o) => o?.data?.k === "v", 30_000);
    const [child] = await a.list(RS_API, "ResourceSync", dest);
    const childName = child?.metadata?.name ?? "";
    await waitReady(a, dest, childName, "True");
    const r = await suite.env.kubectl("a", ["delete", "crsyncset", SET, "--cascade=orphan", "--wait=true"]);
    assert.equal(r.code, 0, r.stderr);
    // the 10-minute resync is far away: only the child's own change (its owner reference removed) can do it
    await waitReady(a, dest, childName, "False", "SourceNamespaceNotGranted", 30_000);
    assert.equal((await a.get("v1", "ConfigMap", dest, "copy"))?.data?.k, "v");
  });
});

describe("destinations and clusters counted apart", () => {
  it("a cluster whose namespace list is Forbidden is a failing cluster, not a failing destination", async () => {
    const source = await suite.ns("a", "forb-src");
    await a.apply(configMap(source, "shared", { k: "f" }));
    await a.apply(kubeconfigSecret(source, "restricted", suite.env.kubeconfigText("b-restricted")));
    const SET = `forb-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm(`copy-${run}`),
        clusters: [
          {
            kubeConfig: { secretRef: { name: "restricted", namespace: source, key: "value" } },
            namespaces: [restrictedNamespace],
            namespaceSelector: { matchLabels: { [`forb-${run}`]: "on" } },
          },
        ],
      }),
    );
    const s = await waitStatus(
      "ClusterResourceSyncSet",
      undefined,
      SET,
      "1 synced destination, 1 failing cluster",
      (st) => st.desired === 1 && st.synced === 1 && st.failingClusters === 1,
    );
    assert.equal(s.failing, 0);
    assert.deepEqual(s.failures, []);
    const clusterFailures = s.clusterFailures as Array<{ cluster: string; reason: string }>;
    assert.deepEqual(
      clusterFailures.map((f) => [f.cluster, f.reason]),
      [[`${source}/restricted`, "Forbidden"]],
    );
    assert.deepEqual(
      [ready(s)?.reason, ready(s)?.message],
      ["ClustersFailing", "1 of 1 destinations synced; 1 cluster failing"],
    );
    assert.equal((await b.get("v1", "ConfigMap", restrictedNamespace, `copy-${run}`))?.data?.k, "f");
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, SET);
    await b.waitGone("v1", "ConfigMap", restrictedNamespace, `copy-${run}`, 30_000);
  });

  it("while cluster b is unreachable, desired keeps the destinations it had, across a restart", async () => {
    const source = await suite.ns("a", "outage-src");
    const nb = await suite.ns("b", "outage-b");
    const LABEL = `outage-${run}`;
    await b.mergePatch("v1", "Namespace", undefined, nb, { metadata: { labels: { [LABEL]: "on" } } });
    await a.apply(configMap(source, "shared", { k: "o" }));
    const proxy = new TcpProxy(apiserverPort(suite.env, "b"));
    const port = await proxy.listen();
    const SET = `outage-${run}`;
    try {
      const viaProxy = suite.env
        .kubeconfigText("b")
        .replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`);
      await a.apply(kubeconfigSecret(source, "via-proxy", viaProxy));
      await a.apply(
        clusterSet(SET, {
          source: { ...cm("shared"), namespace: source },
          target: cm("copy"),
          clusters: [
            {
              kubeConfig: { secretRef: { name: "via-proxy", namespace: source, key: "value" } },
              namespaceSelector: { matchLabels: { [LABEL]: "on" } },
            },
          ],
        }),
      );
      await b.waitFor("the copy in b", "v1", "ConfigMap", nb, "copy", (o) => o?.data?.k === "o", 30_000);
      await waitStatus(
        "ClusterResourceSyncSet",
        undefined,
        SET,
        "synced",
        (s) => ready(s)?.reason === "Synced",
      );

      proxy.pause();
      const during = await waitStatus(
        "ClusterResourceSyncSet",
        undefined,
        SET,
        "cluster b failing, its destination still counted",
        (s) => s.failingClusters === 1,
      );
      assert.equal(during.desired, 1, JSON.stringify(during));
      assert.ok((during.failing as number) <= 1, JSON.stringify(during));
      // a restart during the outage: the namespaces of b were never listed by this process
      await suite.controller.stop();
      await suite.startController();
      const restarted = await waitStatus(
        "ClusterResourceSyncSet",
        undefined,
        SET,
        "after the restart: cluster b failing, 1 destination",
        (s) => s.failingClusters === 1 && s.desired === 1,
      );
      assert.ok((restarted.failing as number) <= 1, JSON.stringify(restarted));
      assert.match(ready(restarted)?.message ?? "", /of 1 destinations/);
      assert.equal((await b.get("v1", "ConfigMap", nb, "copy"))?.data?.k, "o", "nothing pruned on a guess");

      proxy.resume();
      await waitStatus(
        "ClusterResourceSyncSet",
        undefined,
        SET,
        "synced again",
        (s) => ready(s)?.reason === "Synced" && s.desired === 1 && s.failingClusters === 0,
      );
      // (the copy is deleted through the proxy: before it closes)
      await a.delete(RS_API, "ClusterResourceSyncSet", undefined, SET);
      await b.waitGone("v1", "ConfigMap", nb, "copy", 30_000);
    } finally {
      await proxy.close();
    }
  });
});

describe("admission", () => {
  it("refuses label selectors Kubernetes refuses (keys and values), in both set kinds", async () => {
    const tenant = await suite.ns("a", "bad-sel");
    const sets: Obj[] = [
      {
        apiVersion: RS_API,
        kind: "ClusterResourceSyncSet",
        metadata: { name: `bad-sel-${run}` },
        spec: {
          source: { ...cm("x"), namespace: tenant },
          target: cm("x"),
          namespaceSelector: { matchLabels: { "bad key!": "not valid!" } },
        },
      },
      {
        apiVersion: RS_API,
        kind: "ResourceSyncSet",
        metadata: { name: "bad-sel", namespace: tenant },
        spec: {
          source: cm("x"),
          target: cm("x"),
          clusterSelector: {
            matchExpressions: [{ key: "bad key!", operator: "In", values: ["not valid!"] }],
            key: "v",
          },
        },
      },
    ];
    for (const set of sets) {
      const r = await suite.env.kubectl("a", ["apply", "-f", "-"], { input: JSON.stringify(set) });
      assert.notEqual(r.code, 0, `${set.kind} accepted`);
      assert.match(r.stderr, /bad key!/);
      assert.match(r.stderr, /not valid!/);
    }
  });
});

describe("Events of a ClusterResourceSyncSet", () => {
  it("are shown by kubectl describe crsyncset", async () => {
    const source = await suite.ns("a", "ev-src");
    const dest = await suite.ns("a", "ev-dst");
    await a.apply(configMap(source, "shared", { k: "e" }));
    const SET = `ev-${run}`;
    await a.apply(
      clusterSet(SET, {
        source: { ...cm("shared"), namespace: source },
        target: cm("copy"),
        namespaceSelector: { include: [dest] },
      }),
    );
    await waitFor(
      "DestinationsChanged and Synced in kubectl describe",
      async () => {
        const r = await suite.env.kubectl("a", ["describe", "crsyncset", SET]);
        return (
          r.code === 0 &&
          /DestinationsChanged/.test(r.stdout) &&
          /\bSynced\b.*all 1 destinations synced/.test(r.stdout)
        );
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
  });
});

describe("a ResourceSyncSet and another namespace's kubeconfig Secret", () => {
  it("uses it when the Secret's allowed-namespaces annotation admits the set's namespace", async () => {
    const tenant = await suite.ns("a", "rss-tenant");
    const remotes = await suite.ns("a", "rss-remotes");
    const nb = await suite.ns("b", "rss-b");
    await a.apply(configMap(tenant, "shared", { k: "s" }));
    await a.apply(
      kubeconfigSecret(remotes, "cluster-b", suite.env.kubeconfigText("b"), {
        "sinker.influxdata.io/allowed-namespaces": tenant,
      }),
    );
    await a.apply({
      apiVersion: RS_API,
      kind: "ResourceSyncSet",
      metadata: { name: "shared", namespace: tenant },
      spec: {
        source: cm("shared"),
        target: cm("copy"),
        clusters: [
          {
            kubeConfig: { secretRef: { name: "cluster-b", namespace: remotes, key: "value" } },
            namespace: nb,
          },
        ],
      },
    });
    await b.waitFor("the copy in b", "v1", "ConfigMap", nb, "copy", (o) => o?.data?.k === "s", 30_000);
    // consent withdrawn: the child fails with SecretAccessDenied, the set says so
    await a.mergePatch("v1", "Secret", remotes, "cluster-b", {
      metadata: { annotations: { "sinker.influxdata.io/allowed-namespaces": "someone-else" } },
    });
    const s = await waitStatus(
      "ResourceSyncSet",
      tenant,
      "shared",
      "SecretAccessDenied",
      (st) => st.failing === 1,
    );
    assert.equal((s.failures as Array<{ reason: string }>)[0]?.reason, "SecretAccessDenied");
    assert.equal(
      condition(await a.get(RS_API, "ResourceSyncSet", tenant, "shared"), "Ready")?.reason,
      "Failing",
    );
  });
});
