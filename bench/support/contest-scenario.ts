/**
 * The contest scenarios, shared by `npm run bench:contest` and the end-to-end tests: a second field manager that
 * flips a key of Sinker's target as fast as it can, and rings of two ResourceSyncs (clone and mapping) edited
 * once. Sinker runs in this process (startTestController) with its local requests counted, so "Sinker's
 * writes" are its apply requests to ConfigMaps.
 */
import type { TestEnv } from "../../test/controlplane/testenv.ts";
import { waitFor } from "../../test/controlplane/testenv.ts";
import {
  type Cluster,
  cmRef,
  condition,
  configMap,
  RS_API,
  resourceSync,
  waitReady,
} from "../../test/e2e/support/cluster.ts";

export const FLIPPER = "flipper";
const ADOPT = { "sinker.influxdata.io/adopt-target": "true" };

/** Sinker's apply requests to ConfigMaps so far (the controller's counted requests). */
export function sinkerWrites(requests: Map<string, number>): number {
  return requests.get("apply configmaps") ?? 0;
}

export interface Flipper {
  /** Applies by the flipper that changed the object: each one undid a write of Sinker's. */
  flips(): number;
  stop(): Promise<void>;
}

/**
 * Server-side applies `data[key] = value` as field manager `flipper` (force) in a loop, as fast as the API server
 * answers: an apply that changes nothing is a no-op, so every changed resourceVersion is a flip back from
 * Sinker's value.
 */
export function startFlipper(
  a: Cluster,
  namespace: string,
  name: string,
  key: string,
  value: string,
): Flipper {
  let flips = 0;
  let stopped = false;
  let lastRv: string | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const out = await a.apply(configMap(namespace, name, { [key]: value }), FLIPPER);
        const rv = out.metadata?.resourceVersion;
        if (lastRv !== undefined && rv !== lastRv) flips++;
        lastRv = rv;
      } catch {
        // the namespace may be going away at the end of a test
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    flips: () => flips,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Waits until `count()` has not changed for `quietMs` (checked every 250 ms); returns its value. */
export async function settled(count: () => number, quietMs: number, timeoutMs = 120_000): Promise<number> {
  let last = count();
  let since = Date.now();
  return waitFor(
    "writes to settle",
    () => {
      const now = count();
      if (now !== last) {
        last = now;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= quietMs ? now : undefined;
    },
    { timeoutMs, intervalMs: 250 },
  );
}

export type RingKind = "clone" | "mapping";

/**
 * Two ResourceSyncs in a ring: A: cm1 → cm2 and B: cm2 → cm1 (B adopts cm1, which the user created). `clone`
 * copies the whole ConfigMap both ways; `mapping` maps cm1's data.x to cm2's data.y and back.
 */
export async function createRing(a: Cluster, n: string, kind: RingKind): Promise<void> {
  await a.apply(configMap(n, "cm1", { x: "1" }));
  const map = (from: string, to: string) =>
    kind === "mapping" ? { mappings: [{ fromFieldPath: `data.${from}`, toFieldPath: `data.${to}` }] } : {};
  await a.apply(resourceSync(n, "a", { source: cmRef("cm1"), target: cmRef("cm2"), ...map("x", "y") }));
  await waitReady(a, n, "a", "True", undefined, 60_000);
  await a.apply(
    resourceSync(n, "b", { source: cmRef("cm2"), target: cmRef("cm1"), ...map("y", "x") }, ADOPT),
  );
  await waitReady(a, n, "b", "True", undefined, 60_000);
}

/**
 * User edit number `edit` (0, 1, ...) of cm1 (x = "e<edit>", as `kubectl patch` would), then waits until both
 * ends hold it and Sinker's writes have settled. Returns Sinker's writes caused by the edit, whether cm1 was
 * ever seen with its previous value again, and the final values.
 */
export async function editRing(
  a: Cluster,
  n: string,
  kind: RingKind,
  writes: () => number,
  edit = 0,
): Promise<{
  writes: number;
  reverted: boolean;
  cm1: string | undefined;
  cm2: string | undefined;
  ms: number;
}> {
  const previous = edit === 0 ? "1" : `e${edit - 1}`;
  const value = `e${edit}`;
  const before = writes();
  const started = Date.now();
  await a.mergePatch("v1", "ConfigMap", n, "cm1", { data: { x: value } });
  let reverted = false;
  let watching = true;
  const watch = (async () => {
    while (watching) {
      const cm1 = await a.get("v1", "ConfigMap", n, "cm1").catch(() => undefined);
      if (cm1?.data?.x === previous) reverted = true;
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const key = kind === "mapping" ? "y" : "x";
  await waitFor(
    "the edit to reach cm2",
    async () => (await a.get("v1", "ConfigMap", n, "cm2"))?.data?.[key] === value,
    { timeoutMs: 60_000, intervalMs: 100 },
  ).catch(() => undefined); // reported by the final values below
  const total = await settled(writes, 3_000);
  const ms = Date.now() - started;
  watching = false;
  await watch;
  const cm1 = (await a.get("v1", "ConfigMap", n, "cm1"))?.data?.x;
  const cm2 = (await a.get("v1", "ConfigMap", n, "cm2"))?.data?.[key];
  return { writes: total - before, reverted, cm1, cm2, ms };
}

/** The Ready condition's reason and message of a ResourceSync. */
export async function readyOf(
  a: Cluster,
  n: string,
  name: string,
): Promise<{ status?: string; reason?: string; message?: string }> {
  const c = condition(await a.get(RS_API, "ResourceSync", n, name), "Ready");
  return { status: c?.status, reason: c?.reason, message: c?.message };
}

export type { TestEnv };
