/**
 * What the set controller reads, independent of how wide the sets fan out: both set kinds, the local Namespaces
 * (only once a ClusterResourceSyncSet exists), the Secrets (names and labels only) of the namespaces that hold a
 * ResourceSyncSet with a clusterSelector, remote Namespaces, a set's sources (through the shared watches), and an
 * index of each set's children (from the ResourceSync cache). Their changes add set keys to the queue.
 */
import type { Logger } from "pino";
import {
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ClusterResourceSyncSet,
  RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
} from "../api/types.ts";
import type { Watches } from "../controller/watches.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { Informer, type InformerEvent, stripForCache } from "../kube/informer.ts";
import { type KubeObject, keyOf } from "../kube/object.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import type { WorkQueue } from "../runtime/queue.ts";
import { setOwner } from "./children.ts";
import { type Grant, grantFor } from "./grant.ts";
import { namespaceInfo, RemoteNamespaces } from "./remote-namespaces.ts";
import { SetSources } from "./set-sources.ts";
import { secretMetadataOnly, TenantSecrets } from "./tenant-secrets.ts";

export type SetKind = typeof RESOURCE_SYNC_SET_KIND | typeof CLUSTER_RESOURCE_SYNC_SET_KIND;

/** A set's work-queue key: its kind, namespace ("" for a ClusterResourceSyncSet) and name. */
export const setKey = (kind: SetKind, namespace: string | undefined, name: string) =>
  `${kind}|${namespace ?? ""}|${name}`;

export function parseSetKey(key: string): { kind: SetKind; namespace: string | undefined; name: string } {
  const [kind, namespace, name] = key.split("|") as [SetKind, string, string];
  return { kind, namespace: namespace || undefined, name };
}

/** Children's status changes come in bursts; one set status write per burst. */
const CHILD_EVENT_DELAY_MS = 250;

export interface SetCachesOptions {
  local: ClusterClient;
  logger: Logger;
  resources: { set: ResourceInfo; clusterSet: ResourceInfo; namespace: ResourceInfo; secret: ResourceInfo };
  remoteClusters: RemoteClusters;
  watches: Watches;
  informerOptions?: { backoff?: { initialMs: number; maxMs: number } };
  queue: WorkQueue;
}

export class SetCaches {
  readonly sets: Informer;
  readonly clusterSets: Informer;
  readonly namespaces: Informer;
  readonly tenantSecrets: TenantSecrets;
  readonly remote: RemoteNamespaces;
  readonly sources: SetSources;
  /** set uid → keys (namespace/name) of the ResourceSyncs it owns. */
  readonly #childrenOf = new Map<string, Set<string>>();
  readonly #queue: WorkQueue;
  #grantsDecidable = false;

  constructor(o: SetCachesOptions) {
    const { local, logger, queue } = o;
    this.#queue = queue;
    const backoff = o.informerOptions?.backoff ? { backoff: o.informerOptions.backoff } : {};
    const informer = (
      resource: ResourceInfo,
      module: string,
      extra: Partial<ConstructorParameters<typeof Informer>[0]> = {},
    ) =>
      new Informer({
        client: local,
        resource,
        logger: logger.child({ module: "sinker::informer", resource: module }),
        transform: stripForCache,
        ...backoff,
        ...extra,
      });
    this.sets = informer(o.resources.set, "resourcesyncsets");
    this.clusterSets = informer(o.resources.clusterSet, "clusterresourcesyncsets");
    this.namespaces = informer(o.resources.namespace, "namespaces");
    const addAll = (users: Iterable<string>) => {
      for (const user of users) queue.add(user);
    };
    this.tenantSecrets = new TenantSecrets((namespace) => {
      const inf = informer(o.resources.secret, "secrets", { namespace, transform: secretMetadataOnly });
      inf.start();
      return inf;
    }, addAll);
    this.remote = new RemoteNamespaces({
      local,
      secretResource: o.resources.secret,
      remoteClusters: o.remoteClusters,
      logger: logger.child({ module: "sinker::informer", resource: "remote-namespaces" }),
      onChange: addAll,
      ...backoff,
    });
    this.sources = new SetSources(local, o.watches, (key) => queue.add(key));
    this.#wire();
  }

  #wire(): void {
    const queue = this.#queue;
    this.sets.onEvent((e) =>
      queue.add(setKey(RESOURCE_SYNC_SET_KIND, e.object.metadata?.namespace, e.object.metadata?.name ?? "")),
    );
    this.clusterSets.onEvent((e) => {
      if (e.type !== "deleted") this.watchNamespaces();
      queue.add(setKey(CLUSTER_RESOURCE_SYNC_SET_KIND, undefined, e.object.metadata?.name ?? ""));
    });
    this.namespaces.onEvent((e) => {
      if (e.type === "modified" && e.old) {
        const [a, b] = [namespaceInfo(e.old), namespaceInfo(e.object)];
        if (a.terminating === b.terminating && JSON.stringify(a.labels) === JSON.stringify(b.labels)) return;
      }
      this.enqueueAll(CLUSTER_RESOURCE_SYNC_SET_KIND);
    });
  }

  /** Local Namespaces are watched only once a ClusterResourceSyncSet exists (one watch less for everyone else). */
  watchNamespaces(): void {
    if (!this.namespaces.running) this.namespaces.start();
  }

  enqueueAll(kind: SetKind): void {
    const source = kind === RESOURCE_SYNC_SET_KIND ? this.sets : this.clusterSets;
    for (const s of source.list())
      this.#queue.add(setKey(kind, s.metadata?.namespace, s.metadata?.name ?? ""));
  }

  /** The cached set a key names. */
  setOf(key: string): KubeObject | undefined {
    const { kind, namespace, name } = parseSetKey(key);
    return (kind === RESOURCE_SYNC_SET_KIND ? this.sets : this.clusterSets).get(namespace, name);
  }

  /** The keys (namespace/name) of the children of the set with this uid. */
  childKeys(uid: string): Iterable<string> {
    return this.#childrenOf.get(uid) ?? [];
  }

  /** A ResourceSync event: the children index, and the owning set's key (a child's change may change its status). */
  onResourceSync(e: InformerEvent): void {
    const owner = setOwner(e.object);
    if (!owner) return;
    const key = keyOf(e.object);
    let keys = this.#childrenOf.get(owner.uid);
    if (e.type === "deleted") {
      keys?.delete(key);
      if (keys?.size === 0) this.#childrenOf.delete(owner.uid); // the index does not outlive a set's last child
    } else {
      if (!keys) {
        keys = new Set();
        this.#childrenOf.set(owner.uid, keys);
      }
      keys.add(key);
    }
    if (e.initial) return;
    const kind = owner.kind as SetKind;
    const namespace = kind === RESOURCE_SYNC_SET_KIND ? e.object.metadata?.namespace : undefined;
    // a deleted child may have to be made again at once; status changes are batched
    if (e.type === "deleted") this.#queue.add(setKey(kind, namespace, owner.name));
    else this.#queue.addAfter(setKey(kind, namespace, owner.name), CHILD_EVENT_DELAY_MS);
  }

  /** What a set no longer needs watched (gone, or invalid). */
  release(key: string): void {
    this.tenantSecrets.release(key);
    this.remote.sync(key, []);
    this.sources.release(key);
  }

  /**
   * Starts the set caches. Resolves once grants can be decided: the sets are in and, with ClusterResourceSyncSets
   * present, the namespaces too (no ResourceSync is reconciled before); every set is queued then.
   */
  start(): Promise<void> {
    this.sets.start();
    this.clusterSets.start();
    const synced = Promise.all([this.sets.synced, this.clusterSets.synced])
      .then(async () => {
        if (this.clusterSets.size === 0) return;
        this.watchNamespaces();
        await this.namespaces.synced;
      })
      .then(() => {
        this.enqueueAll(RESOURCE_SYNC_SET_KIND);
        this.enqueueAll(CLUSTER_RESOURCE_SYNC_SET_KIND);
      });
    void synced.then(() => {
      this.#grantsDecidable = true;
    });
    return synced;
  }

  /** What a ClusterResourceSyncSet lets this child do; "undecided" until the caches are filled. */
  grant(rs: ResourceSync): Grant | "undecided" | undefined {
    if (!this.#grantsDecidable) return "undecided";
    return grantFor(
      rs,
      (name) => this.clusterSets.get(undefined, name) as ClusterResourceSyncSet | undefined,
      (name) => {
        const ns = this.namespaces.get(undefined, name);
        return ns ? namespaceInfo(ns) : undefined;
      },
      (id) => this.remote.namespacesOf(id),
      (set) => this.sources.cached(setKey(CLUSTER_RESOURCE_SYNC_SET_KIND, undefined, set.metadata.name)),
    );
  }

  namespaceCount(): number {
    return this.namespaces.hasSynced() ? this.namespaces.size : Number.POSITIVE_INFINITY;
  }

  async stop(): Promise<void> {
    await Promise.all([
      this.sets.stop(),
      this.clusterSets.stop(),
      this.namespaces.stop(),
      this.tenantSecrets.stop(),
      this.remote.stop(),
    ]);
  }
}
