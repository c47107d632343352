/**
 * The benchmark's floor: an "ideal copier" that does only what a sync controller must. It watches the
 * ResourceSyncs of one namespace, their sources and their targets (one list+watch per kind and namespace), and
 * server-side-applies a target whenever it differs from its source; when a ResourceSync is deleted it deletes the
 * target. No finalizer, no status, no Events, no discovery, no validation, no backoff: whatever Sinker spends
 * beyond this is the price of its guarantees, and `bench/scale.ts` prints every Sinker figure as a ratio to it.
 *
 *   node bench/ideal-copier.ts --kubeconfig-a F [--kubeconfig-b F --remote-namespace NS] --namespace NS
 *                              [--kind ConfigMap|Secret]
 * Prints "ready" on stdout once its first lists are in, "settled" once it went through them; stops on SIGTERM.
 */

import { enableCompileCache, flushCompileCache } from "node:module";
import { parseArgs } from "node:util";
import type { ClusterClient as Client, ResourceInfo } from "../src/kube/client.ts";
import { skipGeneratedApiClients } from "../src/kube/client-node-hook.ts";
import type { KubeObject } from "../src/kube/object.ts";

// The same lean loading of @kubernetes/client-node and the same compile cache as bin/sinker.js, so memory and
// CPU figures compare like with like.
enableCompileCache();
skipGeneratedApiClients();
const { KubeConfig } = await import("../src/kube/client-node.ts");
const { ClusterClient } = await import("../src/kube/client.ts");

const { values } = parseArgs({
  options: {
    "kubeconfig-a": { type: "string" },
    "kubeconfig-b": { type: "string" },
    namespace: { type: "string" },
    "remote-namespace": { type: "string", default: "default" },
    kind: { type: "string", default: "ConfigMap" },
  },
});
const namespace = values.namespace ?? "";
const remoteNamespace = values["remote-namespace"] ?? "default";
const kind = values.kind === "Secret" ? "Secret" : "ConfigMap";
const FIELD_MANAGER = "ideal-copier";
const WORKERS = 8;

function client(file: string, name: string): Client {
  const kc = new KubeConfig();
  kc.loadFromFile(file);
  return ClusterClient.fromKubeConfig(kc, { name });
}
const a = client(values["kubeconfig-a"] ?? "", "a");
const b = values["kubeconfig-b"] ? client(values["kubeconfig-b"], "b") : undefined;
const stop = new AbortController();

/** List, then watch from the list's resourceVersion; list again when the watch ends badly. Keeps `cache`. */
async function follow(
  c: Client,
  res: ResourceInfo,
  ns: string,
  cache: Map<string, KubeObject>,
  onChange: (type: string, o: KubeObject) => void,
  listed: () => void,
): Promise<void> {
  while (!stop.signal.aborted) {
    try {
      const list = await c.list(res, ns);
      cache.clear();
      for (const o of list.items) cache.set(o.metadata?.name ?? "", o);
      listed();
      for (const o of list.items) onChange("ADDED", o);
      let rv = list.resourceVersion;
      let expired = false;
      while (!stop.signal.aborted && !expired) {
        await c.watch(
          res,
          ns,
          { resourceVersion: rv, allowWatchBookmarks: true, signal: stop.signal },
          (e) => {
            if (e.type === "ERROR") {
              expired = true;
              return;
            }
            rv = e.object.metadata?.resourceVersion ?? rv;
            if (e.type === "BOOKMARK") return;
            const name = e.object.metadata?.name ?? "";
            if (e.type === "DELETED") cache.delete(name);
            else cache.set(name, e.object);
            onChange(e.type, e.object);
          },
        );
      }
    } catch {
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

interface Spec {
  source: string;
  target: string;
  remote: boolean;
}
const syncs = new Map<string, KubeObject>();
const sources = new Map<string, KubeObject>();
const localObjects = sources; // sources and local targets share a kind and namespace: one watch holds both
const remoteTargets = new Map<string, KubeObject>();
/** "src/<name>", "a/<target>" or "b/<target>" → names of the ResourceSyncs that name that object */
const bySource = new Map<string, Set<string>>();

function specOf(rs: KubeObject): Spec {
  const spec = rs.spec as {
    source: { resourceRef: { name: string } };
    target: { resourceRef: { name: string }; cluster?: { namespace?: string } };
  };
  return {
    source: spec.source.resourceRef.name,
    target: spec.target.resourceRef.name,
    remote: spec.target.cluster !== undefined,
  };
}

function desired(spec: Spec): KubeObject | undefined {
  const src = sources.get(spec.source);
  if (!src) return undefined;
  return {
    apiVersion: "v1",
    kind,
    metadata: { name: spec.target, namespace: spec.remote ? remoteNamespace : namespace },
    data: src.data,
  };
}

function matches(spec: Spec): boolean {
  const want = desired(spec);
  const have = (spec.remote ? remoteTargets : localObjects).get(spec.target);
  return want !== undefined && have !== undefined && JSON.stringify(have.data) === JSON.stringify(want.data);
}

// A de-duplicating queue of ResourceSync names and WORKERS workers, like any controller's.
const queue = new Set<string>();
const sleeping: Array<() => void> = [];
function enqueue(rsName: string) {
  queue.add(rsName);
  sleeping.shift()?.();
}
const deleted = new Map<string, Spec>();

/** Once every first list is in: workers compare against full caches (a restart writes nothing unchanged). */
let allListed: () => void = () => {};
const listedAll = new Promise<void>((r) => {
  allListed = r;
});
let settledSaid = false;

async function worker(res: ResourceInfo): Promise<void> {
  await listedAll;
  while (!stop.signal.aborted) {
    const next = queue.values().next();
    if (next.done) {
      // the first time every worker is idle after the lists: the benchmark's restart phase waits for this
      if (!settledSaid && sleeping.length === WORKERS - 1) {
        settledSaid = true;
        process.stdout.write("settled\n");
      }
      await new Promise<void>((r) => sleeping.push(r));
      continue;
    }
    queue.delete(next.value);
    const rs = syncs.get(next.value);
    const gone = deleted.get(next.value);
    try {
      if (!rs && gone) {
        deleted.delete(next.value);
        const c = gone.remote ? b : a;
        await c?.delete(res, gone.remote ? remoteNamespace : namespace, gone.target, {
          propagationPolicy: "Background",
        });
      } else if (rs) {
        const spec = specOf(rs);
        const want = desired(spec);
        if (want && !matches(spec))
          await (spec.remote ? b : a)?.apply(res, want, { fieldManager: FIELD_MANAGER, force: true });
      }
    } catch {
      setTimeout(() => enqueue(next.value), 500);
    }
  }
}

const rsRes: ResourceInfo = {
  apiVersion: "sinker.influxdata.io/v1alpha1",
  group: "sinker.influxdata.io",
  version: "v1alpha1",
  kind: "ResourceSync",
  plural: "resourcesyncs",
  namespaced: true,
};
const objRes: ResourceInfo = {
  apiVersion: "v1",
  group: "",
  version: "v1",
  kind,
  plural: kind === "Secret" ? "secrets" : "configmaps",
  namespaced: true,
};

let pending = 2 + (b ? 1 : 0);
const listed = () => {
  if (--pending !== 0) return;
  allListed();
  flushCompileCache();
  process.stdout.write("ready\n");
};
const byTarget = (remote: boolean, name: string) => bySource.get(`${remote ? "b" : "a"}/${name}`);
const noteSync = (rs: KubeObject) => {
  const spec = specOf(rs);
  for (const key of [`src/${spec.source}`, `${spec.remote ? "b" : "a"}/${spec.target}`]) {
    const set = bySource.get(key) ?? new Set<string>();
    set.add(rs.metadata?.name ?? "");
    bySource.set(key, set);
  }
};

void follow(
  a,
  rsRes,
  namespace,
  syncs,
  (type, rs) => {
    const name = rs.metadata?.name ?? "";
    if (type === "DELETED") deleted.set(name, specOf(rs));
    else noteSync(rs);
    enqueue(name);
  },
  listed,
);
void follow(
  a,
  objRes,
  namespace,
  localObjects,
  (_t, o) => {
    const name = o.metadata?.name ?? "";
    for (const rs of bySource.get(`src/${name}`) ?? []) enqueue(rs);
    for (const rs of byTarget(false, name) ?? []) enqueue(rs);
  },
  listed,
);
if (b) {
  void follow(
    b,
    objRes,
    remoteNamespace,
    remoteTargets,
    (_t, o) => {
      for (const rs of byTarget(true, o.metadata?.name ?? "") ?? []) enqueue(rs);
    },
    listed,
  );
}
const workers = Array.from({ length: WORKERS }, () => worker(objRes));
process.on("SIGTERM", () => {
  stop.abort();
  for (const w of sleeping.splice(0)) w();
  void Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 1000))]).then(() =>
    process.exit(0),
  );
});
