/**
 * The selected-sources case of `npm run bench:fanout`: a ClusterResourceSyncSet whose sourceSelector picks S
 * labelled ConfigMaps of one namespace, copied into D labelled namespaces (S × D children), beside a loop that
 * only server-side-applies the S × D copies (8 at once). Reports the set's creation to the last copy, the loop's
 * first write, a source labelled afterwards to its D copies, and the watches Sinker holds. Copies are observed
 * through one cluster-wide watch of ConfigMaps.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { ClusterClient, ResourceInfo } from "../src/kube/client.ts";
import { Informer } from "../src/kube/informer.ts";
import { pool } from "../src/pool.ts";
import { benchController, copiesObserver, deleteNamespaces } from "./support/fanout-copies.ts";

const LOOP_PARALLELISM = 8;

export interface SelectedFigures {
  sources: number;
  destinations: number;
  setToAllCopiesMs: number;
  loopFirstWriteMs: number;
  labelledLaterToCopiesMs: number;
  watchesHeld: number;
}

export async function runSelected(
  a: ClusterClient,
  logger: Logger,
  s: number,
  d: number,
  log: (line: string) => void,
): Promise<SelectedFigures> {
  const run = Math.random().toString(16).slice(2, 8);
  const label = `bench-sel-${run}`;
  const nsRes = await a.resolve("v1", "Namespace");
  const cmRes: ResourceInfo = await a.resolve("v1", "ConfigMap");
  const setRes = await a.resolve("sinker.influxdata.io/v1alpha1", "ClusterResourceSyncSet");
  const source = `sel-src-${run}`;
  const namespaces = Array.from({ length: d }, (_, i) => `sel-${run}-${i}`);
  const created = [source, ...namespaces];
  const names = Array.from({ length: s }, (_, i) => `src-${i}`);
  const watcher = new Informer({ client: a, resource: cmRes, logger, freeze: false });
  const copies = copiesObserver(watcher);
  const controller = await benchController(a, logger, { maxChildrenPerSet: s * d + d });
  const configMap = (namespace: string, name: string, labels: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace, labels },
    data: { v: "0" },
  });
  try {
    log(`S=${s} × D=${d}: creating ${d + 1} namespaces and ${s} sources`);
    await pool(created, 20, (name) =>
      a.create(nsRes, undefined, { metadata: { name, labels: name === source ? {} : { [label]: "dst" } } }),
    );
    await pool(names, 8, (name) =>
      a.apply(cmRes, configMap(source, name, { [label]: "src" }), { fieldManager: "bench", force: true }),
    );
    watcher.start();
    await Promise.all([watcher.synced, controller.ready]);
    const timeout = 60_000 + s * d * 200;
    const want = namespaces.flatMap((ns) => names.map((n): [string, string] => [ns, n]));

    const t0 = performance.now();
    const all = copies(want, "0", timeout);
    await a.create(setRes, undefined, {
      apiVersion: "sinker.influxdata.io/v1alpha1",
      kind: "ClusterResourceSyncSet",
      metadata: { name: `bench-sel-${run}` },
      spec: {
        sourceSelector: {
          apiVersion: "v1",
          kind: "ConfigMap",
          namespace: source,
          matchLabels: { [label]: "src" },
        },
        target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap" } },
        namespaceSelector: { matchLabels: { [label]: "dst" } },
      },
    });
    const setToAllCopiesMs = (await all) - t0;
    log(`S=${s} × D=${d}: set → ${want.length} copies in ${setToAllCopiesMs.toFixed(0)} ms`);

    // a source labelled afterwards: its D copies
    await a.apply(cmRes, configMap(source, "late", {}), { fieldManager: "bench", force: true });
    const t1 = performance.now();
    const late = copies(
      namespaces.map((ns): [string, string] => [ns, "late"]),
      "0",
      timeout,
    );
    await a.patch(cmRes, source, "late", { metadata: { labels: { [label]: "src" } } }, "merge");
    const labelledLaterToCopiesMs = (await late) - t1;
    log(`S=${s} × D=${d}: source labelled later → ${d} copies in ${labelledLaterToCopiesMs.toFixed(0)} ms`);
    // plus the controller's own: ResourceSyncs, both set kinds, Namespaces
    const watchesHeld = controller.watchInfo().length + 4;

    // the floor: a loop applying the S × D copies, nothing else
    const t2 = performance.now();
    const loopWant = namespaces.flatMap((ns) => names.map((n): [string, string] => [ns, `loop-${n}`]));
    const loopDone = copies(loopWant, "0", timeout);
    await pool(loopWant, LOOP_PARALLELISM, ([ns, name]) =>
      a.apply(cmRes, configMap(ns, name, {}), { fieldManager: "bench-loop", force: true }),
    );
    const loopFirstWriteMs = (await loopDone) - t2;
    log(`S=${s} × D=${d}: apply loop ${loopFirstWriteMs.toFixed(0)} ms`);
    await a.delete(setRes, undefined, `bench-sel-${run}`);
    return {
      sources: s,
      destinations: d,
      setToAllCopiesMs,
      loopFirstWriteMs,
      labelledLaterToCopiesMs,
      watchesHeld,
    };
  } finally {
    await watcher.stop();
    // namespaces go with their ResourceSyncs: the controller must still run while they are deleted
    await deleteNamespaces(a, nsRes, created, 180_000);
    await controller.stop();
  }
}

export function selectedTable(r: SelectedFigures): string {
  const rows: Array<[string, string]> = [
    [`selected sources: S = ${r.sources} × D = ${r.destinations}`, `${r.sources * r.destinations} copies`],
    ["set created → all copies (s)", (r.setToAllCopiesMs / 1000).toFixed(2)],
    ["apply loop, first write of all copies (s)", (r.loopFirstWriteMs / 1000).toFixed(2)],
    ["  ratio", `${(r.setToAllCopiesMs / r.loopFirstWriteMs).toFixed(2)}×`],
    [`source labelled later → its ${r.destinations} copies (ms)`, r.labelledLaterToCopiesMs.toFixed(0)],
    ["watches held by Sinker", String(r.watchesHeld)],
  ];
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, v]) => `${l.padEnd(width)}  ${v}`).join("\n");
}
