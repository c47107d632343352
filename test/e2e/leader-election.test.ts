/**
 * LeaderElector against a real API server (cluster a): one of two candidates leads; a released Lease is taken
 * over within a retry period, a crashed leader's within the lease duration (not before), and a leader whose Lease
 * is taken from it gives up within the renew deadline.
 */
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { after, before, describe, it } from "node:test";
import type { Logger } from "pino";
import { defaultIdentity, LeaderElector, microTime } from "../../src/controller/leader-election.ts";
import { ClusterClient } from "../../src/kube/client.ts";
import { createLogger } from "../../src/log.ts";
import { waitFor } from "../controlplane/testenv.ts";
import { useSuite } from "./support/suite.ts";

const LEASE_MS = 3000;
const RENEW_MS = 2000;
const RETRY_MS = 400;

const suite = useSuite();
let namespace: string;
let client: ClusterClient;
const logger: Logger = createLogger(
  { level: process.env.SINKER_TEST_LOG ?? "off", format: "plain" },
  { write: (l: string) => process.stderr.write(l) },
);
const electors: LeaderElector[] = [];

interface Lease {
  metadata: { resourceVersion: string };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

async function getLease(name: string): Promise<Lease | undefined> {
  const r = await suite.env.request(
    "a",
    "GET",
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`,
  );
  if (r.status === 404) return undefined;
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as Lease;
}

function candidate(name: string, identity: string) {
  const events: string[] = [];
  const elector = new LeaderElector({
    client,
    namespace,
    name,
    identity,
    leaseDurationMs: LEASE_MS,
    renewDeadlineMs: RENEW_MS,
    retryPeriodMs: RETRY_MS,
    logger: logger.child({ module: "sinker::leader", identity }),
    onStartedLeading: () => events.push("started"),
    onStoppedLeading: () => events.push("stopped"),
  });
  electors.push(elector);
  return { elector, events };
}

before(async () => {
  namespace = await suite.ns("a", "leader-election");
  client = ClusterClient.fromKubeConfig(suite.env.kubeConfig("a"), { name: "local" });
});

after(async () => {
  await Promise.all(electors.map((e) => e.stop({ release: false })));
  await client.close();
});

describe("LeaderElector", () => {
  it("formats MicroTime as RFC 3339 with microseconds", () => {
    assert.equal(microTime(new Date("2026-01-02T03:04:05.678Z")), "2026-01-02T03:04:05.678000Z");
  });

  it("names itself after the pod (POD_NAME), else the host name, with a random suffix", () => {
    assert.match(
      defaultIdentity({ POD_NAME: "sinker-7c79bc79f6-xct9d" }),
      /^sinker-7c79bc79f6-xct9d_[0-9a-f]{8}$/,
    );
    const bare = defaultIdentity({});
    assert.ok(bare.startsWith(`${hostname()}_`), bare);
    assert.notEqual(defaultIdentity({}), bare, "two processes on one host differ");
  });

  it("one of two candidates leads; on release the other takes over within a retry period", async () => {
    const one = candidate("release", "one");
    const two = candidate("release", "two");
    one.elector.start();
    await waitFor("one to lead", async () => one.elector.isLeader(), { timeoutMs: 10_000, intervalMs: 50 });
    two.elector.start();

    const lease = await getLease("release");
    assert.equal(lease?.spec.holderIdentity, "one");
    assert.equal(lease?.spec.leaseDurationSeconds, 3);
    assert.match(lease?.spec.renewTime ?? "", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.match(lease?.spec.acquireTime ?? "", /\.\d{6}Z$/);

    // The leader keeps renewing; the other never leads meanwhile.
    const firstRenew = lease?.spec.renewTime;
    await new Promise((r) => setTimeout(r, LEASE_MS + 500));
    assert.ok(one.elector.isLeader());
    assert.ok(!two.elector.isLeader());
    assert.notEqual((await getLease("release"))?.spec.renewTime, firstRenew, "renewTime moves");

    const t0 = Date.now();
    await one.elector.stop();
    assert.deepEqual(one.events, ["started", "stopped"]);
    const released = await getLease("release");
    assert.ok(released?.spec.holderIdentity === "" || released?.spec.holderIdentity === "two");
    await waitFor("two to lead", async () => two.elector.isLeader(), { timeoutMs: 5_000, intervalMs: 20 });
    const took = Date.now() - t0;
    assert.ok(took < RETRY_MS * 1.2 + 1000, `took over after a release in ${took} ms`);
    const after = await getLease("release");
    assert.equal(after?.spec.holderIdentity, "two");
    assert.equal(after?.spec.leaseTransitions, 1);
    assert.deepEqual(two.events, ["started"]);
  });

  it("a crashed leader (no renewals, no release) is replaced after the lease duration, not before", async () => {
    const one = candidate("crash", "one");
    one.elector.start();
    await waitFor("one to lead", async () => one.elector.isLeader(), { timeoutMs: 10_000, intervalMs: 50 });
    const two = candidate("crash", "two");
    two.elector.start();
    await new Promise((r) => setTimeout(r, RETRY_MS * 2));

    const t0 = Date.now();
    await one.elector.stop({ release: false }); // as a killed process: the Lease stays held
    assert.equal((await getLease("crash"))?.spec.holderIdentity, "one");
    await waitFor("two to lead", async () => two.elector.isLeader(), {
      timeoutMs: LEASE_MS + 5_000,
      intervalMs: 20,
    });
    const took = Date.now() - t0;
    assert.ok(
      took >= LEASE_MS - RETRY_MS * 2,
      `took over after ${took} ms: must wait for the lease to expire`,
    );
    assert.ok(
      took <= LEASE_MS + RETRY_MS * 1.2 + 1500,
      `took over after ${took} ms: within the lease duration`,
    );
    assert.equal((await getLease("crash"))?.spec.holderIdentity, "two");
  });

  it("a leader whose Lease is taken gives up leadership within the renew deadline", async () => {
    const one = candidate("stolen", "one");
    one.elector.start();
    await waitFor("one to lead", async () => one.elector.isLeader(), { timeoutMs: 10_000, intervalMs: 50 });
    // Someone else (e.g. after a network partition) holds the Lease now, for a long time.
    const lease = await getLease("stolen");
    assert.ok(lease);
    const t0 = Date.now();
    const r = await suite.env.request(
      "a",
      "PUT",
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/stolen`,
      {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "intruder",
          leaseDurationSeconds: 3600,
          renewTime: microTime(),
        },
      },
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor("one to stop leading", async () => one.events.includes("stopped"), {
      timeoutMs: RENEW_MS + 3_000,
      intervalMs: 20,
    });
    const took = Date.now() - t0;
    assert.ok(took <= RENEW_MS + RETRY_MS + 1000, `gave up after ${took} ms`);
    assert.equal(one.elector.state, "lost");
    assert.ok(!one.elector.isLeader());
    assert.equal(
      (await getLease("stolen"))?.spec.holderIdentity,
      "intruder",
      "the loser does not write again",
    );
  });
});
