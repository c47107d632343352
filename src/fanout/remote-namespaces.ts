/**
 * The namespaces of remote clusters, for ClusterResourceSyncSets whose clusters select namespaces by label: one
 * watch of the kubeconfig Secret (by name) and one watch of the cluster's Namespaces per client, shared by every
 * set that names that Secret, stopped when no set does any more.
 *
 * Only ClusterResourceSyncSets use this: their authors may name a Secret of any namespace (see docs/security.md,
 * "What the operator must restrict"), so no allowed-namespaces check applies here.
 */
import type { Logger } from "pino";
import type { SetClusterFailure } from "../api/types.ts";
import { asSinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { Informer, stripForCache } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import type { NamespaceInfo } from "./selector.ts";

export interface SecretKeyRef {
  namespace: string;
  name: string;
  key: string;
}

export interface ClusterNamespaces {
  /** Undefined while not known (not listed yet, or failing before its first list). */
  namespaces?: NamespaceInfo[];
  /** The cluster cannot be listed (beside the namespaces it had, when its list had come in before). */
  failure?: SetClusterFailure;
}

const NAMESPACE_RESOURCE: ResourceInfo = {
  apiVersion: "v1",
  group: "",
  version: "v1",
  kind: "Namespace",
  plural: "namespaces",
  namespaced: false,
};

export function namespaceInfo(ns: KubeObject): NamespaceInfo {
  const phase = (ns.status as { phase?: string } | undefined)?.phase;
  return {
    name: ns.metadata?.name ?? "",
    labels: ns.metadata?.labels ?? {},
    terminating: ns.metadata?.deletionTimestamp !== undefined || phase === "Terminating",
  };
}

interface Shared {
  informer: Informer;
  users: Set<string>;
}

export class RemoteNamespaces {
  readonly #local: ClusterClient;
  readonly #secretResource: ResourceInfo;
  readonly #clusters: RemoteClusters;
  readonly #logger: Logger;
  readonly #onChange: (users: string[]) => void;
  readonly #backoff: { initialMs: number; maxMs: number } | undefined;
  /** `namespace/name` of a kubeconfig Secret → its single-object informer. */
  readonly #secrets = new Map<string, Shared>();
  /** ClusterClient id → the informer of that cluster's Namespaces. */
  readonly #namespaces = new Map<number, Shared & { client: ClusterClient }>();

  constructor(opts: {
    local: ClusterClient;
    secretResource: ResourceInfo;
    remoteClusters: RemoteClusters;
    logger: Logger;
    onChange: (users: string[]) => void;
    backoff?: { initialMs: number; maxMs: number };
  }) {
    this.#local = opts.local;
    this.#secretResource = opts.secretResource;
    this.#clusters = opts.remoteClusters;
    this.#logger = opts.logger;
    this.#onChange = opts.onChange;
    this.#backoff = opts.backoff;
  }

  /**
   * The namespaces of each cluster `user` (a set) needs now, by `namespace/name/key`; informers no set needs any
   * more are stopped.
   */
  sync(user: string, refs: readonly SecretKeyRef[]): Map<string, ClusterNamespaces> {
    const out = new Map<string, ClusterNamespaces>();
    const secretsUsed = new Set<string>();
    const clientsUsed = new Set<number>();
    for (const ref of refs) {
      const id = `${ref.namespace}/${ref.name}/${ref.key}`;
      const secretKey = `${ref.namespace}/${ref.name}`;
      secretsUsed.add(secretKey);
      const secretInformer = this.#share(this.#secrets, secretKey, user, () => ({
        informer: this.#informer(
          this.#local,
          this.#secretResource,
          ref.namespace,
          `metadata.name=${ref.name}`,
        ),
      }));
      const cluster = `${ref.namespace}/${ref.name}`;
      if (!secretInformer.hasSynced()) {
        out.set(id, {});
        continue;
      }
      const secret = secretInformer.get(ref.namespace, ref.name);
      if (!secret) {
        out.set(id, {
          failure: { cluster, reason: "SecretNotFound", message: `kubeconfig Secret ${cluster} not found` },
        });
        continue;
      }
      let client: ClusterClient;
      try {
        client = this.#clusters.clusterFor(secret, ref.key).client;
      } catch (err) {
        const e = asSinkerError(err);
        out.set(id, {
          failure: { cluster, reason: e.reason, message: `kubeconfig of ${cluster}: ${e.reason}` },
        });
        continue;
      }
      clientsUsed.add(client.id);
      const nsInformer = this.#share(this.#namespaces, client.id, user, () => ({
        client,
        informer: this.#informer(client, NAMESPACE_RESOURCE, undefined, undefined),
      }));
      const health = nsInformer.health();
      // a cache that had its list keeps its namespaces (the destinations the set knew) while the watch fails;
      // the cluster is failing from the failure that would trouble its users (2 in a row), or at once before
      const failing =
        health.lastErrorReason !== undefined &&
        health.consecutiveFailures >= (nsInformer.hasSynced() ? 2 : 1);
      out.set(id, {
        ...(nsInformer.hasSynced() ? { namespaces: nsInformer.list().map(namespaceInfo) } : {}),
        ...(failing
          ? {
              failure: {
                cluster,
                reason: health.lastErrorReason as string,
                message: `cannot list the namespaces of cluster ${cluster} (${health.lastErrorReason})`,
              },
            }
          : {}),
      });
    }
    this.#release(this.#secrets, user, secretsUsed);
    this.#release(this.#namespaces, user, clientsUsed);
    return out;
  }

  /**
   * The namespaces of the cluster of kubeconfig `id` (`namespace/name/key`), from the watches the sets' syncs
   * keep; undefined while that cluster's namespaces are not listed. Starts nothing (the grant check).
   */
  namespacesOf(id: string): readonly NamespaceInfo[] | undefined {
    const [namespace, name, key] = id.split("/") as [string, string, string];
    const secret = this.#secrets.get(`${namespace}/${name}`)?.informer.get(namespace, name);
    if (!secret) return undefined;
    let client: ClusterClient;
    try {
      client = this.#clusters.clusterFor(secret, key).client;
    } catch {
      return undefined;
    }
    const namespaces = this.#namespaces.get(client.id)?.informer;
    return namespaces?.hasSynced() ? namespaces.list().map(namespaceInfo) : undefined;
  }

  /** Clients whose Namespaces are watched (they must not be closed as unused). */
  clients(): ClusterClient[] {
    return [...this.#namespaces.values()].map((e) => e.client);
  }

  async stop(): Promise<void> {
    const all = [...this.#secrets.values(), ...this.#namespaces.values()];
    this.#secrets.clear();
    this.#namespaces.clear();
    await Promise.all(all.map((e) => e.informer.stop()));
  }

  #informer(
    client: ClusterClient,
    resource: ResourceInfo,
    namespace: string | undefined,
    fieldSelector?: string,
  ) {
    const users = () =>
      [...this.#secrets.values(), ...this.#namespaces.values()].find((e) => e.informer === informer)?.users ??
      [];
    const informer = new Informer({
      client,
      resource,
      ...(namespace ? { namespace } : {}),
      ...(fieldSelector ? { fieldSelector } : {}),
      logger: this.#logger,
      transform: stripForCache,
      ...(this.#backoff ? { backoff: this.#backoff } : {}),
      onTrouble: () => this.#onChange([...users()]),
      onRecovered: () => this.#onChange([...users()]),
    });
    informer.onEvent((e) => {
      if (e.initial && e.type === "added") return;
      this.#onChange([...users()]);
    });
    void informer.synced.then(() => this.#onChange([...users()]));
    informer.start();
    return informer;
  }

  #share<K, E extends Shared>(map: Map<K, E>, key: K, user: string, make: () => Omit<E, "users">): Informer {
    let entry = map.get(key);
    if (!entry) {
      entry = { ...make(), users: new Set() } as E;
      map.set(key, entry);
    }
    entry.users.add(user);
    return entry.informer;
  }

  #release<K>(map: Map<K, Shared>, user: string, keep: Set<K>): void {
    for (const [key, entry] of map) {
      if (keep.has(key) || !entry.users.delete(user) || entry.users.size > 0) continue;
      map.delete(key);
      void entry.informer.stop();
    }
  }
}
