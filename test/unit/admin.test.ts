import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format";
import { Metrics, RECONCILE_TIME_BUCKETS, WORKQUEUE_DURATION_BUCKETS } from "../../src/admin/metrics.ts";
import { type AdminServer, startAdminServer } from "../../src/admin/server.ts";
import { createLogger } from "../../src/log.ts";

const logger = createLogger({ level: "off", format: "json" }, { write() {} });

function family(families: PrometheusFamily[], name: string): PrometheusFamily {
  const f = families.find((x) => x.name === name);
  assert.ok(f, `metric family ${name} is exposed`);
  return f;
}

function value(families: PrometheusFamily[], name: string, labels: Record<string, string> = {}): number {
  const f = family(families, name);
  const sample = f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  assert.ok(sample, `${name}${JSON.stringify(labels)} has a sample`);
  // (this parser leaves out labels and _count of a labelled histogram: its +Inf bucket is the count)
  return Number(sample.value ?? sample.count ?? sample.buckets?.["+Inf"]);
}

describe("Metrics", () => {
  it("exposes the event-loop delay series once each, Sinker's own (see event-loop-delay.test.ts)", async () => {
    const families = parsePrometheusTextFormat(await new Metrics().text());
    for (const s of ["min", "max", "mean", "stddev", "p50", "p90", "p99"]) {
      const name = `nodejs_eventloop_lag_${s}_seconds`;
      assert.equal(families.filter((f) => f.name === name).length, 1, name);
      assert.equal(family(families, name).type, "GAUGE", name);
    }
  });

  it("exposes the controller-runtime series, at 0 before the first reconcile", async () => {
    const families = parsePrometheusTextFormat(await new Metrics().text());
    const want: Array<[string, PrometheusFamily["type"]]> = [
      ["controller_runtime_reconcile_total", "COUNTER"],
      ["controller_runtime_reconcile_errors_total", "COUNTER"],
      ["controller_runtime_reconcile_time_seconds", "HISTOGRAM"],
      ["controller_runtime_active_workers", "GAUGE"],
      ["controller_runtime_max_concurrent_reconciles", "GAUGE"],
      ["workqueue_depth", "GAUGE"],
      ["workqueue_adds_total", "COUNTER"],
      ["workqueue_retries_total", "COUNTER"],
      ["workqueue_queue_duration_seconds", "HISTOGRAM"],
      ["workqueue_work_duration_seconds", "HISTOGRAM"],
      ["workqueue_unfinished_work_seconds", "GAUGE"],
      ["workqueue_longest_running_processor_seconds", "GAUGE"],
      ["sinker_resourcesyncs", "GAUGE"],
      ["sinker_sync_latency_seconds", "HISTOGRAM"],
      ["sinker_watch_connections", "GAUGE"],
      ["sinker_remote_cluster_reachable", "GAUGE"],
      ["sinker_reconcile_errors_by_reason_total", "COUNTER"],
      ["sinker_leader", "GAUGE"],
      // Node.js / process default metrics
      ["process_cpu_user_seconds_total", "COUNTER"],
      ["process_resident_memory_bytes", "GAUGE"],
      ["nodejs_eventloop_lag_seconds", "GAUGE"],
      ["nodejs_heap_size_used_bytes", "GAUGE"],
    ];
    for (const [name, type] of want) assert.equal(family(families, name).type, type, name);
    for (const result of ["success", "error", "requeue", "requeue_after"]) {
      assert.equal(
        value(families, "controller_runtime_reconcile_total", { controller: "resourcesync", result }),
        0,
      );
    }
    assert.equal(value(families, "workqueue_depth", { name: "resourcesync" }), 0);
    assert.equal(value(families, "sinker_resourcesyncs", { state: "synced" }), 0);
    assert.equal(value(families, "sinker_resourcesyncs", { state: "failing" }), 0);
  });

  it("uses controller-runtime's buckets", () => {
    assert.equal(RECONCILE_TIME_BUCKETS.length, 40);
    assert.equal(RECONCILE_TIME_BUCKETS[0], 0.005);
    assert.equal(RECONCILE_TIME_BUCKETS.at(-1), 60);
    assert.deepEqual(
      WORKQUEUE_DURATION_BUCKETS,
      [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000],
    );
  });

  it("values move", async () => {
    // A fixed clock: the in-flight gauges are computed at scrape time, so wall-clock arithmetic would be racy.
    const now = 1_700_000_000_000;
    const m = new Metrics({ defaultMetrics: false, now: () => now });
    m.reconcileTotal.inc({ controller: "resourcesync", result: "success" });
    m.reconcileTotal.inc({ controller: "resourcesync", result: "success" });
    m.reconcileErrors.inc({ controller: "resourcesync" });
    m.reconcileErrorsByReason.inc({ reason: "SourceNotFound" });
    m.reconcileTime.observe({ controller: "resourcesync" }, 0.2);
    m.workqueueAdds.inc({ name: "resourcesync" });
    m.workqueueDepth.set({ name: "resourcesync" }, 4);
    m.resourceSyncs.set({ state: "synced" }, 3);
    m.syncLatency.observe(1.5);
    m.watchConnections.set({ cluster: "local" }, 2);
    m.remoteClusterReachable.set({ cluster: "secret/ns/remote" }, 1);
    const stop = m.trackInFlight(
      "resourcesync",
      () =>
        new Map([
          ["ns/a", now - 3000],
          ["ns/b", now - 1000],
        ]),
    );
    const families = parsePrometheusTextFormat(await m.text());
    assert.equal(value(families, "controller_runtime_reconcile_total", { result: "success" }), 2);
    assert.equal(value(families, "controller_runtime_reconcile_errors_total"), 1);
    assert.equal(value(families, "sinker_reconcile_errors_by_reason_total", { reason: "SourceNotFound" }), 1);
    assert.equal(value(families, "controller_runtime_reconcile_time_seconds"), 1);
    const hist = family(families, "controller_runtime_reconcile_time_seconds").metrics[0];
    assert.equal(hist?.buckets?.["0.15"], "0");
    assert.equal(hist?.buckets?.["0.2"], "1");
    assert.equal(value(families, "workqueue_adds_total"), 1);
    assert.equal(value(families, "workqueue_depth"), 4);
    assert.equal(value(families, "sinker_resourcesyncs", { state: "synced" }), 3);
    assert.equal(value(families, "sinker_sync_latency_seconds"), 1);
    assert.equal(value(families, "sinker_watch_connections", { cluster: "local" }), 2);
    assert.equal(value(families, "sinker_remote_cluster_reachable", { cluster: "secret/ns/remote" }), 1);
    const unfinished = value(families, "workqueue_unfinished_work_seconds", { name: "resourcesync" });
    assert.equal(unfinished, 4);
    const longest = value(families, "workqueue_longest_running_processor_seconds", { name: "resourcesync" });
    assert.equal(longest, 3);
    stop();
    const afterStop = parsePrometheusTextFormat(await m.text());
    assert.equal(
      value(afterStop, "workqueue_longest_running_processor_seconds", { name: "resourcesync" }),
      0,
    );
  });
});

describe("admin server", () => {
  let server: AdminServer;
  let live = true;
  let ready = false;
  let base = "";
  const metrics = new Metrics();

  before(async () => {
    server = await startAdminServer({
      host: "127.0.0.1",
      port: 0,
      metrics,
      live: () => live,
      ready: () => ready,
      logger,
    });
    base = `http://127.0.0.1:${server.address.port}`;
  });
  after(() => server.close());

  it("listens on the port it was given (0 = any)", () => {
    assert.equal(server.address.host, "127.0.0.1");
    assert.ok(server.address.port > 0);
  });

  it("/live: 200 while live, 503 when not", async () => {
    assert.equal((await fetch(`${base}/live`)).status, 200);
    live = false;
    assert.equal((await fetch(`${base}/live`)).status, 503);
    live = true;
  });

  it("/ready: 503 before, 200 after", async () => {
    ready = false;
    const before = await fetch(`${base}/ready`);
    assert.equal(before.status, 503);
    assert.equal(await before.text(), "not ready\n");
    ready = true;
    assert.equal((await fetch(`${base}/ready`)).status, 200);
  });

  it("a throwing probe is a 503, not a 500", async () => {
    const s = await startAdminServer({
      host: "127.0.0.1",
      port: 0,
      metrics,
      live: () => {
        throw new Error("x");
      },
      ready: () => true,
      logger,
    });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${s.address.port}/live`)).status, 503);
    } finally {
      await s.close();
    }
  });

  it("/metrics: Prometheus text format with the right content type", async () => {
    metrics.reconcileTotal.inc({ controller: "resourcesync", result: "error" });
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4; charset=utf-8$/);
    const families = parsePrometheusTextFormat(await res.text());
    assert.equal(value(families, "controller_runtime_reconcile_total", { result: "error" }), 1);
    assert.ok(families.some((f) => f.name === "process_start_time_seconds"));
  });

  it("HEAD works, other methods are 405, other paths 404", async () => {
    const head = await fetch(`${base}/ready`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
    const post = await fetch(`${base}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    assert.equal((await fetch(`${base}/`)).status, 404);
    assert.equal((await fetch(`${base}/metricsx`)).status, 404);
    assert.equal((await fetch(`${base}/live?x=1`)).status, 200);
  });

  it("listens on IPv6 [::1] too", async (t) => {
    let s: AdminServer;
    try {
      s = await startAdminServer({
        host: "::1",
        port: 0,
        metrics,
        live: () => true,
        ready: () => true,
        logger,
      });
    } catch {
      t.skip("no IPv6 loopback here");
      return;
    }
    try {
      assert.equal((await fetch(`http://[::1]:${s.address.port}/live`)).status, 200);
    } finally {
      await s.close();
    }
  });

  it("refuses to start on a port in use", async () => {
    await assert.rejects(
      startAdminServer({
        host: "127.0.0.1",
        port: server.address.port,
        metrics,
        live: () => true,
        ready: () => true,
        logger,
      }),
      /EADDRINUSE/,
    );
  });
});
