/**
 * Shared by both fan-out benchmark cases (bench/fanout.ts, bench/fanout-selected.ts): waiting, through one
 * watch, until a set of copies holds a value, and removing the namespaces a run made.
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { Metrics } from "../../src/admin/metrics.ts";
import { type RunningController, startController } from "../../src/controller/controller.ts";
import type { ClusterClient, ResourceInfo } from "../../src/kube/client.ts";
import type { Informer } from "../../src/kube/informer.ts";
import { pool } from "../../src/pool.ts";

/** Sinker's controller in the benchmark's process, as both fan-out cases run it (8 workers). */
export function benchController(
  local: ClusterClient,
  logger: Logger,
  extra: { maxChildrenPerSet?: number } = {},
): Promise<RunningController> {
  return startController({
    local,
    logger,
    metrics: new Metrics({ defaultMetrics: false, controller: "resourcesync" }),
    concurrency: 8,
    allowClusterScoped: false,
    allowUnsafeKubeconfigs: false,
    responseHeadersTimeoutMs: 9000,
    ...extra,
  });
}

/**
 * Returns `waitFor(want, value, timeoutMs)`: resolves, with the moment, when every `[namespace, name]` of `want`
 * holds `data.v === value` in the informer's cache; rejects after `timeoutMs`. Checked on every watch event,
 * each check resuming at the first copy not there yet (linear in the copies overall, not per event).
 */
export function copiesObserver(informer: Informer) {
  const waiters: Array<{ check: () => boolean; resolve: (t: number) => void }> = [];
  informer.onEvent(() => {
    for (const w of [...waiters]) {
      if (!w.check()) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(performance.now());
    }
  });
  return (
    want: ReadonlyArray<readonly [string, string]>,
    value: string,
    timeoutMs: number,
  ): Promise<number> => {
    let from = 0;
    const check = () => {
      for (; from < want.length; from++) {
        const [ns, name] = want[from] as readonly [string, string];
        const o = informer.get(ns, name) as { data?: Record<string, string> } | undefined;
        if (o?.data?.v !== value) return false;
      }
      return true;
    };
    if (check()) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const w = { check, resolve };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i < 0) return;
        waiters.splice(i, 1);
        reject(new Error(`not all ${want.length} copies hold ${value} within ${timeoutMs} ms`));
      }, timeoutMs).unref();
    });
  };
}

/** Deletes the namespaces and waits (up to `timeoutMs`) until they are gone; the controller must still run. */
export async function deleteNamespaces(
  a: ClusterClient,
  nsRes: ResourceInfo,
  names: readonly string[],
  timeoutMs: number,
): Promise<void> {
  await pool(names, 20, (name) => a.delete(nsRes, undefined, name).catch(() => undefined));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const left = await Promise.all(names.map((name) => a.get(nsRes, undefined, name).catch(() => undefined)));
    if (left.every((x) => x === undefined)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
}
