// Remote clusters through kubeconfig Secrets, against the real control plane: a Secret in cluster a holding
// cluster b's kubeconfig gives a working client to b, cached per Secret resourceVersion; the cross-namespace
// rule on real Secrets; the restricted kubeconfig is Forbidden outside its namespace; and an informer on cluster
// b through that client survives a restart of b's API server.
//
// The last test STOPS AND RESTARTS cluster b: run this file alone, or with --test-concurrency=1 (npm run
// test:e2e does), never next to other tests that use cluster b.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pino from "pino";
import { parse, stringify } from "yaml";
import { SinkerError } from "../../src/errors.ts";
import { ClusterClient, type ResourceInfo } from "../../src/kube/client.ts";
import { Informer, type InformerEvent } from "../../src/kube/informer.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import {
  ALLOWED_NAMESPACES_ANNOTATION,
  checkSecretAccess,
  RemoteClusters,
  SECRET_ACCESS_DENIED_MESSAGE,
} from "../../src/kube/remote-clusters.ts";
import { restrictedNamespace, type TestEnv } from "../controlplane/testenv.ts";
import { until } from "./support/kube.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const env: TestEnv = suite.env;
const logger = pino({ level: process.env.SINKER_TEST_LOG ?? "silent" });

const namespace = (cluster: "a" | "b", prefix: string): Promise<string> => suite.ns(cluster, prefix);

/** Writes a kubeconfig Secret into cluster a with the test environment's own request helper. */
async function putSecret(
  ns: string,
  name: string,
  stringData: Record<string, string>,
  annotations?: Record<string, string>,
): Promise<KubeObject> {
  const r = await env.request(
    "a",
    "PATCH",
    `/api/v1/namespaces/${ns}/secrets/${name}?fieldManager=e2e-test&force=true`,
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name, namespace: ns, annotations: annotations ?? {} },
      stringData,
    },
    "application/apply-patch+yaml",
  );
  assert.ok(r.status === 200 || r.status === 201, `secret ${ns}/${name}: ${r.status}`);
  return r.body as KubeObject;
}

describe("remote clusters through kubeconfig Secrets", { timeout: 240_000 }, () => {
  let local: ClusterClient;
  let secrets: ResourceInfo;
  const remotes = new RemoteClusters({
    allowUnsafeKubeconfigs: false,
    responseHeadersTimeoutMs: 5000,
    logger,
  });
  before(async () => {
    local = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "local" });
    secrets = await local.resolve("v1", "Secret");
  });
  after(async () => {
    await remotes.closeAll();
    await local.close();
  });

  test("a Secret holding b.kubeconfig gives a client to cluster b, reused until the Secret changes", async () => {
    const ns = await namespace("a", "remote-kc");
    const nsB = await namespace("b", "remote-kc");
    await putSecret(ns, "kc", { value: env.kubeconfigText("b") });
    // read back through our own client (data is base64, as the controller sees it)
    const secret = await local.get(secrets, ns, "kc");
    assert.ok(secret);
    checkSecretAccess(secret, ns);
    const remote = remotes.clusterFor(secret, "value");
    assert.equal(remote.client.name, `secret/${ns}/kc`);
    assert.equal(new URL(remote.client.server).port, new URL(env.server("b")).port);

    // it really talks to b: an object made in b is there, and not in a
    const cmB = await remote.client.resolve("v1", "ConfigMap");
    const r = await env.request("b", "POST", `/api/v1/namespaces/${nsB}/configmaps`, {
      metadata: { name: "only-in-b" },
      data: { where: "b" },
    });
    assert.equal(r.status, 201);
    assert.deepEqual((await remote.client.get(cmB, nsB, "only-in-b"))?.data, { where: "b" });
    assert.equal(await local.get(cmB, nsB, "only-in-b"), undefined);

    // unchanged Secret → the same client; changed Secret → a new one
    assert.equal(
      remotes.clientFor((await local.get(secrets, ns, "kc")) as KubeObject, "value"),
      remote.client,
    );
    await putSecret(ns, "kc", { value: env.kubeconfigText("b"), other: "x" });
    const changed = (await local.get(secrets, ns, "kc")) as KubeObject;
    const next = remotes.clientFor(changed, "value");
    assert.notEqual(next, remote.client);
    assert.equal(next.name, remote.client.name);
    assert.deepEqual((await next.get(cmB, nsB, "only-in-b"))?.data, { where: "b" });
    assert.equal(await remotes.prune(new Set([next])), 1);
  });

  test("the restricted kubeconfig is Forbidden outside its namespace and works inside", async () => {
    const ns = await namespace("a", "remote-restricted");
    await putSecret(ns, "kc", { config: env.kubeconfigText("b-restricted") });
    const secret = (await local.get(secrets, ns, "kc")) as KubeObject;
    const { client } = remotes.clusterFor(secret, "config");
    const cm = await client.resolve("v1", "ConfigMap");
    await assert.rejects(
      client.list(cm, "default"),
      (e: unknown) => e instanceof SinkerError && e.reason === "Forbidden" && e.status === 403,
    );
    assert.ok(Array.isArray((await client.list(cm, restrictedNamespace)).items));
  });

  test("cross-namespace Secrets: allowed by the anchored annotation only", async () => {
    const secretNs = await namespace("a", "remote-secrets");
    await putSecret(
      secretNs,
      "open",
      { value: env.kubeconfigText("b") },
      { [ALLOWED_NAMESPACES_ANNOTATION]: "team-a" },
    );
    await putSecret(secretNs, "closed", { value: env.kubeconfigText("b") });
    const open = (await local.get(secrets, secretNs, "open")) as KubeObject;
    const closed = (await local.get(secrets, secretNs, "closed")) as KubeObject;
    const missing = await local.get(secrets, secretNs, "missing");
    assert.equal(missing, undefined);
    const denied = (e: unknown) =>
      e instanceof SinkerError &&
      e.reason === "SecretAccessDenied" &&
      e.message === SECRET_ACCESS_DENIED_MESSAGE;
    checkSecretAccess(open, "team-a", secretNs);
    assert.throws(() => checkSecretAccess(open, "team-a-evil", secretNs), denied);
    assert.throws(() => checkSecretAccess(open, "xteam-a", secretNs), denied);
    assert.throws(() => checkSecretAccess(closed, "team-a", secretNs), denied);
    assert.throws(() => checkSecretAccess(missing, "team-a", secretNs), denied);
    checkSecretAccess(closed, secretNs, secretNs);
  });

  test("unsafe kubeconfigs in Secrets are refused before anything runs", async () => {
    const ns = await namespace("a", "remote-unsafe");
    const variant = (user: Record<string, unknown>) => {
      const config = parse(env.kubeconfigText("b")) as { users: Array<{ user: Record<string, unknown> }> };
      const first = config.users[0];
      assert.ok(first);
      first.user = { ...first.user, ...user };
      return stringify(config);
    };
    await putSecret(ns, "exec", {
      value: variant({
        exec: {
          apiVersion: "client.authentication.k8s.io/v1",
          command: "touch",
          args: ["/tmp/pwned-by-sinker"],
        },
      }),
    });
    await putSecret(ns, "tokenfile", {
      value: variant({ tokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token" }),
    });
    for (const name of ["exec", "tokenfile"]) {
      const s = (await local.get(secrets, ns, name)) as KubeObject;
      assert.throws(
        () => remotes.clusterFor(s, "value"),
        (e: unknown) =>
          e instanceof SinkerError && e.reason === "UnsafeKubeconfig" && !e.message.includes("/var/run"),
      );
    }
  });

  test("an informer on cluster b through the remote client survives b's API server restart", async () => {
    const ns = await namespace("a", "remote-restart");
    const nsB = await namespace("b", "remote-restart");
    await putSecret(ns, "kc", { value: env.kubeconfigText("b") });
    const { client } = remotes.clusterFor((await local.get(secrets, ns, "kc")) as KubeObject, "value");
    const cm = await client.resolve("v1", "ConfigMap");
    const inf = new Informer({
      client,
      resource: cm,
      namespace: nsB,
      logger,
      backoff: { initialMs: 200, maxMs: 2000 },
    });
    const events: InformerEvent[] = [];
    inf.onEvent((e) => events.push(e));
    inf.start();
    const put = async (name: string) => {
      const r = await env.request("b", "POST", `/api/v1/namespaces/${nsB}/configmaps`, {
        metadata: { name },
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    try {
      await inf.synced;
      await until("the watch", () => inf.health().watching);
      await put("before-restart");
      await until("before-restart", () => inf.get(nsB, "before-restart") !== undefined);

      const t0 = Date.now();
      await env.stopCluster("b");
      await until(
        "the informer to notice",
        () => !inf.health().watching && inf.health().consecutiveFailures > 0,
        30_000,
      );
      assert.equal(inf.health().lastErrorReason, "ClusterUnreachable");
      assert.ok(inf.get(nsB, "before-restart"), "the cache is kept while the cluster is down");
      await env.startCluster("b");
      const restartedAfter = Date.now() - t0;

      await put("after-restart");
      const t1 = Date.now();
      await until("after-restart", () => inf.get(nsB, "after-restart") !== undefined, 30_000);
      console.log(
        `cluster b down+up in ${restartedAfter} ms; informer saw a new object ${Date.now() - t1} ms after it was ` +
          `made; health ${JSON.stringify(inf.health())}`,
      );
      assert.equal(inf.health().consecutiveFailures, 0);
      assert.deepEqual(
        events.filter((e) => e.object.metadata?.name === "after-restart").map((e) => e.type),
        ["added"],
      );
    } finally {
      await inf.stop();
      await env.startCluster("b"); // no-op when running
    }
  });
});
