/**
 * Controller benchmark against the test control plane (`npm run testenv -- up` first):
 * N ResourceSyncs on 2 kinds (ConfigMap, Secret) across 2 clusters (half local→local, half local→cluster b).
 * Prints the time until all are Ready, the watch connections held, a source-change round trip, and memory.
 *
 *   npm run bench:controller -- [--count 100]
 */
import { parseArgs } from "node:util";
import { load } from "../test/controlplane/testenv.ts";
import {
  Cluster,
  deleteResourceSyncs,
  installCrds,
  kubeconfigSecret,
  RS_API,
  resourceSync,
  startTestController,
} from "../test/e2e/support/cluster.ts";

const { values } = parseArgs({ options: { count: { type: "string", default: "100" } } });
const count = Number(values.count);
if (!Number.isInteger(count) || count < 2) {
  process.stderr.write("--count must be an integer ≥ 2\n");
  process.exit(2);
}

const env = load();
const a = new Cluster(env, "a");
await installCrds(env, "a");
const ns = await env.createNamespace("a", "bench");
const nb = await env.createNamespace("b", "bench");
try {
  await a.apply(kubeconfigSecret(ns, "cluster-b", env.kubeconfigText("b")));
  await a.apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "src-cm", namespace: ns },
    data: { k: "v" },
  });
  await a.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "src-secret", namespace: ns },
    data: { k: Buffer.from("v").toString("base64") },
  });

  const ctrl = await startTestController(env);
  const rssBefore = process.memoryUsage().rss;
  const started = Date.now();
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i % 2 === 0 ? "ConfigMap" : "Secret";
    const remote = i % 4 >= 2;
    const source = kind === "ConfigMap" ? "src-cm" : "src-secret";
    writes.push(
      a.apply(
        resourceSync(ns, `rs-${i}`, {
          source: { resourceRef: { apiVersion: "v1", kind, name: source } },
          target: {
            resourceRef: { apiVersion: "v1", kind, name: `dst-${i}` },
            ...(remote
              ? { cluster: { namespace: nb, kubeConfig: { secretRef: { name: "cluster-b", key: "value" } } } }
              : {}),
          },
        }),
      ),
    );
    if (writes.length >= 20) await Promise.all(writes.splice(0));
  }
  await Promise.all(writes);
  const readyCount = async () =>
    (await a.list(RS_API, "ResourceSync", ns)).filter((rs) =>
      (rs.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions?.some(
        (c) => c.type === "Ready" && c.status === "True",
      ),
    ).length;
  for (;;) {
    if ((await readyCount()) === count) break;
    if (Date.now() - started > 300_000) throw new Error("not all ResourceSyncs became Ready within 300 s");
    await new Promise((r) => setTimeout(r, 100));
  }
  const allReadyMs = Date.now() - started;

  // One source change fans out to the N/2 ResourceSyncs of that kind.
  const t = Date.now();
  await a.apply({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "src-cm", namespace: ns },
    data: { k: "v2" },
  });
  const b = new Cluster(env, "b");
  for (;;) {
    const locals = await a.list("v1", "ConfigMap", ns);
    const remotes = await b.list("v1", "ConfigMap", nb);
    const changed = [...locals, ...remotes].filter(
      (o) => o.metadata?.name?.startsWith("dst-") && o.data?.k === "v2",
    );
    if (changed.length === Math.ceil(count / 2)) break;
    if (Date.now() - t > 120_000) throw new Error("fan-out did not complete within 120 s");
    await new Promise((r) => setTimeout(r, 50));
  }
  const fanOutMs = Date.now() - t;

  await new Promise((r) => setTimeout(r, 5500)); // the gauge is refreshed every 5 s
  const gauge = await ctrl.metrics.registry.getSingleMetricAsString("sinker_watch_connections");
  const perCluster = gauge
    .split("\n")
    .filter((l) => l.startsWith("sinker_watch_connections{"))
    .map((l) => l.replace("sinker_watch_connections", ""));
  const total = perCluster.reduce((sum, l) => sum + Number(l.split(" ")[1]), 0);
  process.stdout.write(
    [
      `ResourceSyncs:                         ${count} (ConfigMap and Secret; half to cluster b)`,
      `all Ready after:                       ${allReadyMs} ms (${((count / allReadyMs) * 1000).toFixed(1)} ResourceSyncs/s, incl. creation)`,
      `one source change → ${Math.ceil(count / 2)} targets applied: ${fanOutMs} ms`,
      `watch connections:                     ${total} (${perCluster.join(", ")})`,
      `controller process RSS growth:         ${((process.memoryUsage().rss - rssBefore) / 2 ** 20).toFixed(1)} MiB`,
      "",
    ].join("\n"),
  );
  if (process.env.BENCH_VERBOSE) {
    for (const w of ctrl.controller.watchInfo()) {
      process.stdout.write(
        `  ${w.cluster} ${w.resource.plural} ns=${w.namespace} refs=${w.refCount} objects=${w.objects}\n`,
      );
    }
  }
  await deleteResourceSyncs(a, [ns]);
  await ctrl.stop();
} finally {
  await env.deleteNamespace("a", ns);
  await env.deleteNamespace("b", nb);
}
