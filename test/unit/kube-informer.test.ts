import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { Watches } from "../../src/controller/watches.ts";
import { SinkerError } from "../../src/errors.ts";
import { ClusterClient, type ResourceInfo } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
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

// One stub server for the file; each test injects its own fault.
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

describe("Informer under transport faults (injected by a stub HTTP server)", () => {
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

describe("Watches when an informer cannot sync (stub HTTP server)", () => {
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
