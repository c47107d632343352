/**
 * The `sinker` process as it runs in a pod (bin/sinker.js, the image's entry point) against cluster a: exit
 * codes, /live /ready /metrics with values that move after a reconcile, json logs, SIGTERM, and leader-election
 * hand-over between real processes.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";
import { killAllSinkers, runToExit, Sinker } from "../support/sinker-process.ts";
import { configMap, deleteResourceSyncs, resourceSync } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

// Sinker runs as child processes here: they are killed first, then an in-process controller lets the
// ResourceSyncs go.
const suite = useSuite({ beforeCleanup: killAllSinkers });
const { a } = suite;
const ns = (prefix: string) => suite.ns("a", prefix);

function syncSpec(source: string, target: string) {
  return {
    source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: source } },
    target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: target } },
  };
}

async function targetData(namespace: string, name: string, key: string, want: string, timeoutMs = 20_000) {
  await a.waitFor(
    `${namespace}/${name} to have ${key}=${want}`,
    "v1",
    "ConfigMap",
    namespace,
    name,
    (o) => (o?.data?.[key] === want ? true : undefined),
    timeoutMs,
  );
}

const kubeconfigA = () => suite.env.kubeconfigPath("a");
const baseArgs = () => ["--kubeconfig", kubeconfigA(), "--admin-addr", "127.0.0.1:0", "--log-format", "json"];

describe("sinker process: start-up failures", () => {
  it("a bad flag exits 2 with one line on stderr", async () => {
    const r = await runToExit(["--kube-api-response-headers-timeout", "soon"]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.match(r.stderr, /invalid value for --kube-api-response-headers-timeout: invalid duration "soon"/);
  });

  it("an unreadable kubeconfig or an unknown context exits 1 with a clear message", async () => {
    const missing = await runToExit(["--kubeconfig", join(repoRoot, ".testenv", "no-such.kubeconfig")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^sinker: cannot read kubeconfig file ".*no-such\.kubeconfig": ENOENT\n$/);
    const context = await runToExit(["--kubeconfig", kubeconfigA(), "--context", "nope"]);
    assert.equal(context.code, 1);
    assert.match(context.stderr, /context "nope" not found in kubeconfig/);
  });

  it("exits 1 with 'CRD is not queryable ... Is the CRD installed?' when ResourceSyncs cannot be listed", async () => {
    // Impersonating a user without any rights (also shows --as reaches every request): to it the CRD is invisible.
    const r = await runToExit([...baseArgs(), "--as", "sinker-e2e-nobody", "--as-group", "sinker-e2e-none"]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0] ?? "", /^sinker: CRD is not queryable .*Is the CRD installed\?$/);
    assert.match(lines[0] ?? "", /sinker-e2e-nobody/);
    assert.ok(r.records.some((rec) => rec.level === "error" && /CRD is not queryable/.test(String(rec.msg))));
  });

  it("with --leader-elect, the CRD check runs before campaigning (a standby without the CRD exits 1)", async () => {
    const namespace = await ns("crd-standby");
    const r = await runToExit([
      ...baseArgs(),
      ...fastLeaderElection(namespace),
      "--as",
      "sinker-e2e-nobody",
      "--as-group",
      "sinker-e2e-none",
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.trim(), /^sinker: CRD is not queryable .*Is the CRD installed\?$/);
    assert.ok(!r.records.some((rec) => /leader|Lease/i.test(String(rec.msg))), "it never campaigned");
  });
});

describe("sinker process: running", () => {
  it("serves /live, /ready and /metrics, logs json with namespace/name, and exits 0 on SIGTERM", async () => {
    const namespace = await ns("process");
    await a.apply(configMap(namespace, "source", { greeting: "hello" }));
    const s = new Sinker([...baseArgs(), "--log-level", "sinker=debug,warn"]);
    await waitFor("/ready 200", async () => (await s.status("/ready")) === 200, { timeoutMs: 20_000 });
    assert.equal(await s.status("/live"), 200);
    assert.equal(await s.status("/nope"), 404);
    assert.equal(await s.metric("sinker_leader"), 1, "without leader election the process leads");
    assert.equal(
      await s.metric("controller_runtime_max_concurrent_reconciles", { controller: "resourcesync" }),
      8,
    );
    const before = await s.metric("controller_runtime_reconcile_total", {
      controller: "resourcesync",
      result: "success",
    });
    const addsBefore = await s.metric("workqueue_adds_total", { name: "resourcesync" });

    await a.apply(resourceSync(namespace, "demo", syncSpec("source", "target")));
    await targetData(namespace, "target", "greeting", "hello");
    await a.apply(configMap(namespace, "source", { greeting: "changed" }));
    await targetData(namespace, "target", "greeting", "changed");

    await waitFor(
      "metrics to move",
      async () =>
        (await s.metric("controller_runtime_reconcile_total", {
          controller: "resourcesync",
          result: "success",
        })) > before && (await s.metric("sinker_sync_latency_seconds")) >= 1,
      { timeoutMs: 10_000 },
    );
    assert.ok((await s.metric("workqueue_adds_total", { name: "resourcesync" })) > addsBefore);
    // the set controller's queue: series of its own (NaN when absent)
    assert.ok((await s.metric("workqueue_depth", { name: "resourcesyncset" })) >= 0);
    assert.ok((await s.metric("workqueue_adds_total", { name: "resourcesyncset" })) >= 0);
    assert.ok((await s.metric("controller_runtime_reconcile_time_seconds")) >= 1);
    assert.ok((await s.metric("sinker_resourcesyncs", { state: "synced" })) >= 1);
    const families = await s.metrics();
    // sinker_watch_connections too, from the first scrape on (no gap on dashboards after a restart)
    for (const name of [
      "process_cpu_user_seconds_total",
      "nodejs_heap_size_used_bytes",
      "workqueue_depth",
      "sinker_watch_connections",
    ]) {
      assert.ok(
        families.some((f) => f.name === name),
        `${name} is exposed`,
      );
    }

    // json logs: every line parses; reconcile lines carry namespace, name and a reconcile id
    assert.deepEqual(s.badLines, []);
    const rec = s.records.find((r) => r.module === "sinker::reconciler" && r.namespace === namespace);
    assert.ok(rec, "a reconcile log line for the ResourceSync");
    assert.equal(rec.name, "demo");
    assert.equal(typeof rec.reconcileId, "string");
    assert.equal(typeof rec.time, "string");

    // Clean up while the controller runs (the finalizer), then stop it.
    await deleteResourceSyncs(a, [namespace]);
    const stop = await s.terminate("SIGTERM");
    assert.equal(stop.code, 0, s.stderr);
    assert.ok(stop.ms < 5_000, `exited ${stop.ms} ms after SIGTERM`);
    assert.ok(
      s.hasLog((r) => r.msg === "controller stopped"),
      "watches closed before exit",
    );
    assert.ok(s.hasLog((r) => r.msg === "stopped" && r.exitCode === 0));
  });
});

/** Leader election with short durations, so hand-overs happen within a test's patience. */
function fastLeaderElection(namespace: string): string[] {
  return [
    "--leader-elect",
    "--leader-election-namespace",
    namespace,
    "--leader-election-lease-duration",
    "4s",
    "--leader-election-renew-deadline",
    "3s",
    "--leader-election-retry-period",
    "500ms",
  ];
}

describe("sinker process: leader election", () => {
  it("two processes: one reconciles; SIGTERM hands over at once, a killed leader within the lease duration", async () => {
    const namespace = await ns("handover");
    const le = [...fastLeaderElection(namespace), "--leader-election-id", "sinker-e2e"];
    const leads = async (s: Sinker) => (await s.metric("sinker_leader")) === 1;

    const one = new Sinker([...baseArgs(), ...le]);
    await waitFor(
      "one to lead and be ready",
      async () => (await leads(one)) && (await one.status("/ready")) === 200,
      {
        timeoutMs: 20_000,
      },
    );
    const two = new Sinker([...baseArgs(), ...le]);
    await waitFor("two (standby) to be ready", async () => (await two.status("/ready")) === 200, {
      timeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await leads(two), false, "the standby does not lead");
    assert.equal(await one.metric("leader_election_master_status", { name: "sinker-e2e" }), 1);
    assert.equal(await two.metric("leader_election_master_status", { name: "sinker-e2e" }), 0);
    assert.ok(
      !two.hasLog((r) => r.msg === "initial ResourceSync list received"),
      "the standby runs no controller",
    );

    // SIGTERM: the leader releases the Lease; the standby takes over within about a retry period.
    const stopOne = await one.terminate("SIGTERM");
    assert.equal(stopOne.code, 0, one.stderr);
    assert.ok(one.hasLog((r) => r.msg === "released the Lease"));
    await waitFor("two to lead", () => leads(two), { timeoutMs: 5_000, intervalMs: 100 });
    const took = Date.now() - stopOne.at;
    assert.ok(took < 3_000, `hand-over after release took ${took} ms`);

    // The new leader reconciles.
    await a.apply(configMap(namespace, "source", { v: "1" }));
    await a.apply(resourceSync(namespace, "demo", syncSpec("source", "target")));
    await targetData(namespace, "target", "v", "1");

    // A killed leader (no release): the next one takes over when the Lease expires.
    const three = new Sinker([...baseArgs(), ...le]);
    await waitFor("three (standby) to be ready", async () => (await three.status("/ready")) === 200, {
      timeoutMs: 20_000,
    });
    const killed = await two.terminate("SIGKILL");
    await waitFor("three to lead", () => leads(three), { timeoutMs: 12_000, intervalMs: 100 });
    const takeover = Date.now() - killed.at;
    assert.ok(takeover <= 4_000 + 3_000, `took over ${takeover} ms after the leader was killed`);
    await a.apply(configMap(namespace, "source", { v: "2" }));
    await targetData(namespace, "target", "v", "2");

    await deleteResourceSyncs(a, [namespace]);
    const stopThree = await three.terminate("SIGTERM");
    assert.equal(stopThree.code, 0, three.stderr);
  });

  it("a leader whose Lease is taken stops reconciling and exits 1 within the renew deadline", async () => {
    const namespace = await ns("lost-lease");
    const s = new Sinker([...baseArgs(), ...fastLeaderElection(namespace)]);
    await waitFor("the process to lead", async () => (await s.metric("sinker_leader")) === 1, {
      timeoutMs: 20_000,
    });
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/sinker`;
    const lease = (await suite.env.request("a", "GET", path)).body as { spec: Record<string, unknown> };
    const t0 = Date.now();
    const r = await suite.env.request("a", "PUT", path, {
      ...lease,
      spec: { ...lease.spec, holderIdentity: "intruder", leaseDurationSeconds: 3600 },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const timer = setTimeout(() => s.proc.kill("SIGKILL"), 15_000);
    const exit = await s.exited;
    clearTimeout(timer);
    assert.equal(exit.code, 1, s.stderr);
    assert.ok(exit.at - t0 < 3_000 + 2_000 + 2_500, `exited ${exit.at - t0} ms after the Lease was taken`);
    assert.ok(s.hasLog((rec) => /leadership lost/.test(String(rec.msg))));
    assert.ok(
      s.hasLog((rec) => rec.msg === "controller stopped"),
      "reconciling stopped before the exit",
    );
  });
});
