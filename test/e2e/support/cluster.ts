/**
 * Test-side helpers over the testenv's raw request function: object paths, apply/get/delete, condition waits,
 * and an in-process controller. Fixture writes go through the test control plane's own request helper, not
 * through Sinker's client, so a bug in the client cannot hide itself.
 */
import { Metrics } from "../../../src/admin/metrics.ts";
import { crdObjects, crdYaml } from "../../../src/api/crds.ts";
import { type RunningController, startController } from "../../../src/controller/controller.ts";
import { ClusterClient } from "../../../src/kube/client.ts";
import type { KubeObject } from "../../../src/kube/object.ts";
import { createLogger } from "../../../src/log.ts";
import { type KubeconfigName, type TestEnv, waitFor } from "../../controlplane/testenv.ts";

/** A Kubernetes object as the tests read it: ConfigMap/Secret `data` typed for convenience. */
export type Obj = KubeObject & { data?: Record<string, string> };

const PLURALS: Record<string, string> = {
  ConfigMap: "configmaps",
  Secret: "secrets",
  Namespace: "namespaces",
  ResourceSync: "resourcesyncs",
  SinkerContainer: "sinkercontainers",
  ResourceSyncSet: "resourcesyncsets",
  ClusterResourceSyncSet: "clusterresourcesyncsets",
  Event: "events",
  ClusterRole: "clusterroles",
  Role: "roles",
  RoleBinding: "rolebindings",
};
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterResourceSyncSet"]);

export function objectPath(
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name?: string,
): string {
  const plural = PLURALS[kind];
  if (!plural) throw new Error(`test helper: unknown kind ${kind}`);
  const base = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = namespace && !CLUSTER_SCOPED.has(kind) ? `/namespaces/${namespace}` : "";
  return `${base}${ns}/${plural}${name ? `/${name}` : ""}`;
}

export class Cluster {
  readonly #env: () => TestEnv;
  readonly name: KubeconfigName;

  /** `env` may be given lazily: a suite's clusters exist at module level, before its `before` hook loads it. */
  constructor(env: TestEnv | (() => TestEnv), name: KubeconfigName) {
    this.#env = typeof env === "function" ? env : () => env;
    this.name = name;
  }

  get env(): TestEnv {
    return this.#env();
  }

  /** Server-side apply as field manager `e2e-test` (force). */
  async apply(obj: KubeObject, manager = "e2e-test"): Promise<KubeObject> {
    const meta = obj.metadata ?? {};
    const path = objectPath(obj.apiVersion ?? "", obj.kind ?? "", meta.namespace, meta.name);
    const r = await this.env.request(
      this.name,
      "PATCH",
      `${path}?fieldManager=${manager}&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
    if (r.status !== 200 && r.status !== 201) {
      throw new Error(
        `apply ${obj.kind} ${meta.namespace}/${meta.name} in ${this.name}: ${r.status} ${JSON.stringify(r.body)}`,
      );
    }
    return r.body as KubeObject;
  }

  async get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<Obj | undefined> {
    const r = await this.env.request(this.name, "GET", objectPath(apiVersion, kind, namespace, name));
    if (r.status === 404) return undefined;
    if (r.status !== 200)
      throw new Error(`get ${kind} ${namespace}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as Obj;
  }

  /** A JSON merge patch, as `kubectl patch --type merge` would send it (an Update by manager `kubectl-patch`). */
  async mergePatch(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    patch: unknown,
  ) {
    const r = await this.env.request(
      this.name,
      "PATCH",
      `${objectPath(apiVersion, kind, namespace, name)}?fieldManager=kubectl-patch`,
      patch,
      "application/merge-patch+json",
    );
    if (r.status !== 200)
      throw new Error(`patch ${kind} ${namespace}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as KubeObject;
  }

  async delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): Promise<void> {
    const r = await this.env.request(this.name, "DELETE", objectPath(apiVersion, kind, namespace, name));
    if (r.status !== 200 && r.status !== 202 && r.status !== 404) {
      throw new Error(`delete ${kind} ${namespace}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  async list(apiVersion: string, kind: string, namespace: string | undefined): Promise<Obj[]> {
    const r = await this.env.request(this.name, "GET", objectPath(apiVersion, kind, namespace));
    if (r.status !== 200) throw new Error(`list ${kind} ${namespace}: ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as { items: Obj[] }).items;
  }

  /** Waits until the object no longer exists. */
  async waitGone(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    timeoutMs = 20_000,
  ) {
    await this.waitFor(
      `${kind} ${namespace}/${name} gone`,
      apiVersion,
      kind,
      namespace,
      name,
      (o) => o === undefined,
      timeoutMs,
    );
  }

  /** Waits until the object satisfies `check` (which returns a truthy value), then returns that value. */
  waitFor<T>(
    what: string,
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    check: (obj: Obj | undefined) => T | undefined | false,
    timeoutMs = 20_000,
  ): Promise<T> {
    return waitFor(what, async () => check(await this.get(apiVersion, kind, namespace, name)), {
      timeoutMs,
      intervalMs: 100,
    });
  }
}

export const RS_API = "sinker.influxdata.io/v1alpha1";

export interface ConditionLike {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export function condition(obj: KubeObject | undefined, type: string): ConditionLike | undefined {
  const status = obj?.status as { conditions?: ConditionLike[] } | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

/** Waits for the ResourceSync's Ready condition to have `status` (and `reason`, when given). */
export function waitReady(
  a: Cluster,
  namespace: string,
  name: string,
  status: "True" | "False",
  reason?: string,
  timeoutMs = 20_000,
): Promise<ConditionLike> {
  let last: ConditionLike | undefined;
  return a
    .waitFor(
      `ResourceSync ${namespace}/${name} Ready=${status}${reason ? ` (${reason})` : ""}`,
      RS_API,
      "ResourceSync",
      namespace,
      name,
      (rs) => {
        last = condition(rs, "Ready");
        return last && last.status === status && (!reason || last.reason === reason) ? last : undefined;
      },
      timeoutMs,
    )
    .catch((err: Error) => {
      throw new Error(`${err.message}; last Ready condition: ${JSON.stringify(last)}`);
    });
}

/** Installs the project's CRDs (as `sinker manifests` prints them) into a cluster and waits until they are served. */
export async function installCrds(env: TestEnv, cluster: "a" | "b"): Promise<void> {
  const r = await env.kubectl(cluster, ["apply", "--server-side", "--force-conflicts", "-f", "-"], {
    input: crdYaml(),
  });
  if (r.code !== 0) throw new Error(`installing CRDs in ${cluster}: ${r.stderr}`);
  const w = await env.kubectl(cluster, [
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    ...crdObjects().map((crd) => `crd/${crd.metadata?.name}`),
  ]);
  if (w.code !== 0) throw new Error(`waiting for CRDs in ${cluster}: ${w.stderr}`);
}

export interface TestController {
  controller: RunningController;
  metrics: Metrics;
  stop(): Promise<void>;
}

/** Options of an in-process test controller. */
export interface ControllerOptions {
  allowClusterScoped?: boolean;
  allowUnsafeKubeconfigs?: boolean;
  logLines?: string[];
  resyncPeriodMs?: number;
  watchWidening?: { at: number; minShare: number };
  maxChildrenPerSet?: number;
  /** Counts every request the controller's local client sends, by method (tests of request costs). */
  requests?: Map<string, number>;
}

/** Starts Sinker's controller in this process against cluster a (set SINKER_TEST_LOG=debug to see its logs). */
export async function startTestController(
  env: TestEnv,
  options: ControllerOptions = {},
): Promise<TestController> {
  const client = ClusterClient.fromKubeConfig(env.kubeConfig("a"), {
    name: "local",
    responseHeadersTimeoutMs: 9000,
  });
  const counts = options.requests;
  const local = counts ? countingClient(client, counts) : client;
  const metrics = new Metrics({ defaultMetrics: false, controller: "resourcesync" });
  // The product's logger (redaction included); SINKER_TEST_LOG=debug shows it, logLines captures everything.
  const lines = options.logLines;
  const logger = lines
    ? createLogger({ level: "trace", format: "json" }, { write: (line) => lines.push(line) })
    : createLogger({ level: process.env.SINKER_TEST_LOG ?? "off", format: "plain" }, process.stderr);
  const controller = await startController({
    local,
    logger,
    metrics,
    concurrency: 4,
    allowClusterScoped: options.allowClusterScoped ?? false,
    allowUnsafeKubeconfigs: options.allowUnsafeKubeconfigs ?? false,
    responseHeadersTimeoutMs: 9000,
    ...(options.resyncPeriodMs !== undefined ? { resyncPeriodMs: options.resyncPeriodMs } : {}),
    ...(options.watchWidening !== undefined ? { watchWidening: options.watchWidening } : {}),
    ...(options.maxChildrenPerSet !== undefined ? { maxChildrenPerSet: options.maxChildrenPerSet } : {}),
  });
  await controller.ready;
  return {
    controller,
    metrics,
    async stop() {
      await controller.stop();
      await local.close();
    },
  };
}

/** The client, with each call of get/list/apply/patch/create/replace/delete counted under its method name. */
function countingClient(client: ClusterClient, counts: Map<string, number>): ClusterClient {
  const counted = new Set(["get", "list", "apply", "patch", "create", "replace", "delete"]);
  return new Proxy(client, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      if (typeof prop === "string" && counted.has(prop)) {
        return (...args: unknown[]) => {
          counts.set(prop, (counts.get(prop) ?? 0) + 1);
          // also by resource (and subresource): "patch resourcesyncs", "patch resourcesyncs/status"
          const plural = (args[0] as { plural?: string } | undefined)?.plural;
          const sub =
            prop === "patch" ? (args[5] as { subresource?: string } | undefined)?.subresource : undefined;
          const detail = `${prop} ${plural}${sub ? `/${sub}` : ""}`;
          counts.set(detail, (counts.get(detail) ?? 0) + 1);
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return v.bind(target);
    },
  });
}

/** A Secret in cluster a holding a kubeconfig under key `value`, as users create them. */
export function kubeconfigSecret(
  namespace: string,
  name: string,
  kubeconfig: string,
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    data: { value: Buffer.from(kubeconfig).toString("base64") },
  };
}

export function resourceSync(
  namespace: string,
  name: string,
  spec: unknown,
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: RS_API,
    kind: "ResourceSync",
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec,
  };
}

export function configMap(
  namespace: string,
  name: string,
  data: Record<string, string>,
  extra: Partial<KubeObject["metadata"]> = {},
): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace, ...extra }, data };
}

/**
 * Deletes every ResourceSync in these namespaces while the controller still runs (force-delete, so one whose
 * cluster is unreachable goes too) and waits until they are gone. Deleting their namespaces first would leave
 * them stuck on Sinker's finalizer once the controller stops, with the namespaces stuck in Terminating.
 */
export async function deleteResourceSyncs(
  a: Cluster,
  namespaces: string[],
  timeoutMs = 60_000,
): Promise<void> {
  for (const ns of namespaces) {
    for (const rs of await a.list(RS_API, "ResourceSync", ns).catch(() => [])) {
      const name = rs.metadata?.name ?? "";
      await a
        .mergePatch(RS_API, "ResourceSync", ns, name, {
          metadata: { annotations: { "sinker.influxdata.io/force-delete": "true" } },
        })
        .catch(() => undefined);
      await a.delete(RS_API, "ResourceSync", ns, name);
    }
  }
  await waitFor(
    "test ResourceSyncs to be deleted",
    async () => {
      for (const ns of namespaces)
        if ((await a.list(RS_API, "ResourceSync", ns).catch(() => [])).length > 0) return false;
      return true;
    },
    { timeoutMs },
  );
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A ConfigMap reference, for the source or target of a ResourceSync. */
export function cmRef(name: string) {
  return { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name } };
}

/** The `cluster` of a ResourceSync end reached through kubeconfig Secret `secret` (key `value`). */
export function clusterRef(namespace?: string, secret = "cluster-b", secretNamespace?: string) {
  return {
    ...(namespace ? { namespace } : {}),
    kubeConfig: {
      secretRef: { name: secret, key: "value", ...(secretNamespace ? { namespace: secretNamespace } : {}) },
    },
  };
}

/** The namespaces a test file creates in clusters a and b, deleted (without waiting) by `deleteAll`. */
export class TestNamespaces {
  readonly #env: () => TestEnv;
  readonly #created: Array<["a" | "b", string]> = [];

  /** `env` is read when a namespace is made (test files load it in their `before`). */
  constructor(env: () => TestEnv) {
    this.#env = env;
  }

  async create(cluster: "a" | "b", prefix: string): Promise<string> {
    const name = await this.#env().createNamespace(cluster, prefix);
    this.#created.push([cluster, name]);
    return name;
  }

  /** A namespace made some other way, deleted with the others. */
  track(cluster: "a" | "b", name: string): void {
    this.#created.push([cluster, name]);
  }

  in(cluster: "a" | "b"): string[] {
    return this.#created.filter(([c]) => c === cluster).map(([, n]) => n);
  }

  async deleteAll(): Promise<void> {
    await Promise.all(this.#created.map(([c, n]) => this.#env().deleteNamespace(c, n)));
  }
}
