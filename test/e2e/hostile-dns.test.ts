/**
 * Hostile kubeconfigs whose server is a host NAME that resolves to a refused address (DNS rebinding):
 * the check of the literal URL passes, the one made on every address the name resolves to, when connecting, must
 * refuse it before any connection. The real `sinker` runs with loopback denied (`--deny-remote-cidr`), so
 * `localhost` plays the name that resolves to an internal address, without a DNS server of our own; a local
 * canary ResourceSync keeps converging meanwhile. A process of its own: its address policy differs from the one
 * of hostile.test.ts, whose remote clusters live on loopback.
 */
import assert from "node:assert/strict";
import { lookup } from "node:dns/promises";
import { before, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import { HostileServer } from "../support/hostile-server.ts";
import { killAllSinkers, Sinker } from "../support/sinker-process.ts";
import {
  cmRef,
  configMap,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

let sinker: Sinker;
let server: HostileServer;
// Sinker runs as a child process here; the hostile server stops first, so force-delete lets the ResourceSyncs go.
const suite = useSuite({
  cleanupController: false,
  beforeCleanup: () => server?.stop(),
  afterCleanup: killAllSinkers,
});
const { a } = suite;

const cm = cmRef;

function remoteCm(name: string, secret: string) {
  return {
    ...cm(name),
    cluster: { namespace: "default", kubeConfig: { secretRef: { name: secret, key: "value" } } },
  };
}

function ready(rs: Obj | undefined) {
  return (
    rs?.status as { conditions?: Array<{ type: string; status: string; reason: string; message: string }> }
  )?.conditions?.find((c) => c.type === "Ready");
}

before(async () => {
  server = await new HostileServer("reflect").start();
  sinker = new Sinker([
    "--kubeconfig",
    suite.env.kubeconfigPath("a"),
    "--admin-addr",
    "127.0.0.1:0",
    "--log-format",
    "json",
    "--kube-api-request-timeout",
    "3s",
    "--deny-remote-cidr",
    "127.0.0.0/8",
    "--deny-remote-cidr",
    "::1/128",
  ]);
  await waitFor("/ready 200", async () => (await sinker.status("/ready")) === 200, { timeoutMs: 30_000 });
});

it("a server name that resolves to a denied address is refused before any connection", async (t) => {
  const resolved = await lookup("localhost", { all: true });
  if (!resolved.every((r) => r.address.startsWith("127.") || r.address === "::1")) {
    t.skip("localhost does not resolve to loopback only here");
    return;
  }
  const n = await suite.ns("a", "dns");
  await a.apply(configMap(n, "src", { tick: "t0" }));
  await a.apply(resourceSync(n, "canary", { source: cm("src"), target: cm("canary-dst") }));
  await waitReady(a, n, "canary", "True");
  const good = server.kubeconfig();
  // the literal address is refused when the kubeconfig is read; the name only when it is resolved
  await a.apply(kubeconfigSecret(n, "literal", good));
  await a.apply(kubeconfigSecret(n, "name", good.replace("https://127.0.0.1:", "https://localhost:")));
  await a.apply(resourceSync(n, "literal", { source: cm("src"), target: remoteCm("dst", "literal") }));
  await a.apply(resourceSync(n, "name", { source: cm("src"), target: remoteCm("dst", "name") }));
  const expected: Array<[string, string, RegExp]> = [
    ["literal", "BlockedAddress", /operator-denied address/],
    ["name", "ClusterUnreachable", /address is link-local, cloud metadata or denied by the operator/],
  ];
  for (const [name, reason, message] of expected) {
    const failed = await waitFor(
      `${name} to fail with ${reason}`,
      async () => {
        const r = ready(await a.get(RS_API, "ResourceSync", n, name));
        return r?.status === "False" && r.reason === reason ? r : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.match(failed.message, message, name);
    assert.ok(!failed.message.includes("localhost") && !failed.message.includes("127.0.0.1"), failed.message);
  }
  // meanwhile the canary converges and the process is healthy
  await a.apply(configMap(n, "src", { tick: "t1" }));
  await a.waitFor(
    "canary to converge",
    "v1",
    "ConfigMap",
    n,
    "canary-dst",
    (o) => (o?.data?.tick === "t1" ? true : undefined),
    10_000,
  );
  assert.equal(await sinker.status("/live"), 200);
  assert.equal(server.connections, 0, "the refused server was connected to");
  assert.deepEqual(server.requests, []);
});
