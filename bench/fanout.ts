/**
 * Fan-out benchmark: one ClusterResourceSyncSet over N labelled namespaces of the test control plane, beside a
 * loop that does nothing but server-side-apply the N copies (8 at once, as many as Sinker's workers).
 *
 *   npm run bench:fanout -- [--n 100,1000] [--selected 20x50] [--json bench-fanout.json]
 *
 * For each N it reports: the time from the set's creation to the last copy present; a source edit reaching the
 * last copy; the same two for the plain apply loop (first write, then a rewrite of every copy); a namespace
 * labelled afterwards getting its copy; and the watches Sinker holds. Copies are observed through one watch of
 * every namespace (field selector on the copy's name). `--selected SxD` adds the selected-sources case
 * (fanout-selected.ts; `--selected 0` skips it). Starts the control plane when it is not running.
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { crdYaml } from "../src/api/crds.ts";
import { ClusterClient, type ResourceInfo } from "../src/kube/client.ts";
import { Informer } from "../src/kube/informer.ts";
import { createLogger } from "../src/log.ts";
import { pool } from "../src/pool.ts";
import { load, releaseTestRun, type TestEnv, upForTestRun } from "../test/controlplane/testenv.ts";
import { runSelected, type SelectedFigures, selectedTable } from "./fanout-selected.ts";
import { benchController, copiesObserver, deleteNamespaces } from "./support/fanout-copies.ts";

const LOOP_PARALLELISM = 8;
const log = (line: string) => process.stderr.write(`[bench:fanout] ${line}\n`);

interface Figures {
  n: number;
  setToAllCopiesMs: number;
  sourceEditToAllCopiesMs: number;
  loopFirstWriteMs: number;
  loopRewriteMs: number;
  newNamespaceToCopyMs: number;
  watchesHeld: number;
  watchesByKind: Record<string, number>;
}

async function runOnce(env: TestEnv, n: number): Promise<Figures> {
  const a = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "local" });
  const run = Math.random().toString(16).slice(2, 8);
  const label = `bench-fanout-${run}`;
  const nsRes = await a.resolve("v1", "Namespace");
  const cmRes: ResourceInfo = await a.resolve("v1", "ConfigMap");
  const setRes = await a.resolve("sinker.influxdata.io/v1alpha1", "ClusterResourceSyncSet");
  const source = `fanout-src-${run}`;
  const namespaces = Array.from({ length: n }, (_, i) => `fanout-${run}-${i}`);
  const created = [source, ...namespaces];
  const logger = createLogger(
    { level: process.env.SINKER_BENCH_LOG ?? "silent", format: "plain" },
    process.stderr,
  );
  const watcher = new Informer({
    client: a,
    resource: cmRes,
    fieldSelector: "metadata.name=copy",
    logger,
    freeze: false,
  });
  const loopWatcher = new Informer({
    client: a,
    resource: cmRes,
    fieldSelector: "metadata.name=loop-copy",
    logger,
    freeze: false,
  });
  const copies = copiesObserver(watcher);
  const loopCopies = copiesObserver(loopWatcher);
  const controller = await benchController(a, logger);
  try {
    log(`N=${n}: creating ${n + 1} namespaces`);
    await pool(created, 20, (name) =>
      a.create(nsRes, undefined, {
        metadata: { name, labels: name === source ? {} : { [label]: "on" } },
      }),
    );
    await a.apply(
      cmRes,
      {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "shared", namespace: source },
        data: { v: "0" },
      },
      { fieldManager: "bench", force: true },
    );
    watcher.start();
    loopWatcher.start();
    await Promise.all([watcher.synced, loopWatcher.synced, controller.ready]);
    const timeout = 60_000 + n * 200;

    // Sinker: the set, then a source edit
    const t0 = performance.now();
    const allCopies = copies(pairs(namespaces, "copy"), "0", timeout);
    await a.create(setRes, undefined, {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "ClusterResourceSyncSet",
      metadata: { name: `bench-${run}` },
      spec: {
        source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "shared" }, namespace: source },
        target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "copy" } },
        namespaceSelector: { matchLabels: { [label]: "on" } },
      },
    });
    const setToAllCopiesMs = (await allCopies) - t0;
    log(`N=${n}: set → ${n} copies in ${setToAllCopiesMs.toFixed(0)} ms`);
    const t1 = performance.now();
    const edited = copies(pairs(namespaces, "copy"), "1", timeout);
    await a.patch(cmRes, source, "shared", { data: { v: "1" } }, "merge");
    const sourceEditToAllCopiesMs = (await edited) - t1;
    log(`N=${n}: source edit → ${n} copies in ${sourceEditToAllCopiesMs.toFixed(0)} ms`);

    // a new namespace with the label
    const fresh = `fanout-${run}-new`;
    created.push(fresh);
    const t2 = performance.now();
    const freshCopy = copies(pairs([fresh], "copy"), "1", 60_000);
    await a.create(nsRes, undefined, { metadata: { name: fresh, labels: { [label]: "on" } } });
    const newNamespaceToCopyMs = (await freshCopy) - t2;

    const info = controller.watchInfo();
    const watchesByKind: Record<string, number> = {};
    for (const w of info) watchesByKind[w.resource.kind] = (watchesByKind[w.resource.kind] ?? 0) + 1;
    // plus the controller's own: ResourceSyncs, both set kinds, Namespaces
    const watchesHeld = info.length + 4;

    // the floor: a loop applying the N copies, nothing else
    const loop = async (value: string) => {
      const t = performance.now();
      const done = loopCopies(pairs(namespaces, "loop-copy"), value, timeout);
      await pool(namespaces, LOOP_PARALLELISM, (ns) =>
        a.apply(
          cmRes,
          {
            apiVersion: "v1",
            kind: "ConfigMap",
            metadata: { name: "loop-copy", namespace: ns },
            data: { v: value },
          },
          { fieldManager: "bench-loop", force: true },
        ),
      );
      return (await done) - t;
    };
    const loopFirstWriteMs = await loop("0");
    const loopRewriteMs = await loop("1");
    log(
      `N=${n}: apply loop ${loopFirstWriteMs.toFixed(0)} ms (create), ${loopRewriteMs.toFixed(0)} ms (rewrite)`,
    );
    await a.delete(setRes, undefined, `bench-${run}`);
    return {
      n,
      setToAllCopiesMs,
      sourceEditToAllCopiesMs,
      loopFirstWriteMs,
      loopRewriteMs,
      newNamespaceToCopyMs,
      watchesHeld,
      watchesByKind,
    };
  } finally {
    await Promise.all([watcher.stop(), loopWatcher.stop()]);
    // namespaces go with their ResourceSyncs: the controller must still run while they are deleted
    await deleteNamespaces(a, nsRes, created, 120_000);
    await controller.stop();
    await a.close();
  }
}

/** The copy `name` in each namespace. */
function pairs(namespaces: readonly string[], name: string): Array<[string, string]> {
  return namespaces.map((ns) => [ns, name]);
}

function table(results: Figures[]): string {
  const rows: Array<[string, (f: Figures) => string]> = [
    ["set created → all copies (s)", (f) => (f.setToAllCopiesMs / 1000).toFixed(2)],
    ["apply loop, first write of all copies (s)", (f) => (f.loopFirstWriteMs / 1000).toFixed(2)],
    ["  ratio", (f) => `${(f.setToAllCopiesMs / f.loopFirstWriteMs).toFixed(2)}×`],
    ["source edit → all copies (s)", (f) => (f.sourceEditToAllCopiesMs / 1000).toFixed(2)],
    ["apply loop, rewrite of all copies (s)", (f) => (f.loopRewriteMs / 1000).toFixed(2)],
    ["  ratio", (f) => `${(f.sourceEditToAllCopiesMs / f.loopRewriteMs).toFixed(2)}×`],
    ["new matching namespace → its copy (ms)", (f) => f.newNamespaceToCopyMs.toFixed(0)],
    ["watches held by Sinker", (f) => String(f.watchesHeld)],
    [
      "  of which",
      (f) =>
        `${Object.entries(f.watchesByKind)
          .map(([k, c]) => `${k} ${c}`)
          .join(", ")}, 4 own`,
    ],
  ];
  const head = ["figure", ...results.map((r) => `N = ${r.n}`)];
  const lines = [head, ...rows.map(([label, get]) => [label, ...results.map(get)])];
  const widths = head.map((_, c) => Math.max(...lines.map((l) => (l[c] ?? "").length)));
  return lines
    .map((l) =>
      l.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  "),
    )
    .join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      n: { type: "string", default: "100,1000" },
      json: { type: "string", default: "bench-fanout.json" },
      selected: { type: "string", default: "20x50" },
    },
  });
  const ns = (values.n ?? "").split(",").map(Number);
  const selected = values.selected === "0" ? undefined : /^(\d+)x(\d+)$/.exec(values.selected ?? "");
  if (ns.length === 0 || ns.some((x) => !Number.isInteger(x) || x < 1) || selected === null) {
    process.stderr.write("usage: npm run bench:fanout -- [--n 100,1000] [--selected SxD|0] [--json FILE]\n");
    return 2;
  }
  await upForTestRun({ log });
  const env = load();
  try {
    const r = await env.kubectl("a", ["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: crdYaml(),
    });
    if (r.code !== 0) throw new Error(`installing the CRDs: ${r.stderr}`);
    await env.kubectl("a", [
      "wait",
      "--for=condition=Established",
      "--timeout=30s",
      "crd/clusterresourcesyncsets.sinker.influxdata.io",
    ]);
    const results: Figures[] = [];
    for (const n of ns) results.push(await runOnce(env, n));
    let selectedResult: SelectedFigures | undefined;
    if (selected) {
      const a = ClusterClient.fromKubeConfig(env.kubeConfig("a"), { name: "local" });
      const logger = createLogger(
        { level: process.env.SINKER_BENCH_LOG ?? "silent", format: "plain" },
        process.stderr,
      );
      try {
        selectedResult = await runSelected(a, logger, Number(selected[1]), Number(selected[2]), log);
      } finally {
        await a.close();
      }
    }
    process.stdout.write(`${table(results)}\n`);
    if (selectedResult) process.stdout.write(`\n${selectedTable(selectedResult)}\n`);
    writeFileSync(
      values.json ?? "bench-fanout.json",
      `${JSON.stringify({ results, ...(selectedResult ? { selected: selectedResult } : {}) }, null, 2)}\n`,
    );
    return 0;
  } finally {
    await releaseTestRun({ log });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(
      `bench:fanout failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  },
);
