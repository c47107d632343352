/**
 * The set controller: keeps, for every ResourceSyncSet and ClusterResourceSyncSet, exactly the child
 * ResourceSyncs its destinations call for, and the set's status from theirs. Everything a copy does (apply, drift
 * repair, finalizer, conditions) is the ResourceSync controller's work; this one only adds and prunes children.
 *
 * What it watches, independent of how wide the sets fan out: both set kinds, the local Namespaces, and the
 * Secrets (names and labels only, never their data) of the namespaces that hold a ResourceSyncSet with a
 * clusterSelector. Children are read from the ResourceSync cache the manager already holds.
 */
import type { Logger } from "pino";
import {
  type AnySet,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  type ClusterResourceSyncSet,
  GROUP_VERSION,
  RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
} from "../api/types.ts";
import {
  formatValidationErrors,
  validateClusterResourceSyncSet,
  validateResourceSyncSet,
} from "../api/validate.ts";
import { WorkQueue } from "../controller/queue.ts";
import { truncateMessage } from "../controller/status.ts";
import type { WatchChange, Watches } from "../controller/watches.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import { reduceApiMessage } from "../kube/api-message.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import { Informer, type InformerEvent, stripForCache } from "../kube/informer.ts";
import type { RemoteClusters } from "../kube/remote-clusters.ts";
import { desiredChildren, type SecretInfo, setOwner } from "./children.ts";
import { type Grant, grantFor } from "./grant.ts";
import { capChildren, planChildren } from "./plan.ts";
import { namespaceInfo, RemoteNamespaces, type SecretKeyRef } from "./remote-namespaces.ts";
import { SetSources } from "./set-sources.ts";
import {
  nextSetStatus,
  refusedDestinations,
  type SetSummary,
  setStatusDiffers,
  summarize,
  transitionEvent,
} from "./set-status.ts";
import { secretMetadataOnly, TenantSecrets } from "./tenant-secrets.ts";
import { type ChildWriter, writeChildren } from "./write-children.ts";

export interface FanoutOptions {
  local: ClusterClient;
  logger: Logger;
  events: EventRecorder;
  /** The manager's ResourceSync cache (children are read from it; its events are passed to onResourceSync). */
  resourceSyncs: Informer;
  resourceSyncResource: ResourceInfo;
  /** Clients of remote clusters whose namespaces ClusterResourceSyncSets select by label. */
  remoteClusters: RemoteClusters;
  informerOptions?: { backoff?: { initialMs: number; maxMs: number } };
  /** Every set is reconciled again after about this long (default 10 min). */
  resyncPeriodMs?: number;
  /** The ResourceSync controller's shared watches: a sourceSelector reads its sources through them. */
  watches: Watches;
  /** Most children one set may create (sources × destinations); default DEFAULT_MAX_CHILDREN_PER_SET. */
  maxChildrenPerSet?: number;
}

/** Default of --max-children-per-set. */
export const DEFAULT_MAX_CHILDREN_PER_SET = 1000;

export interface Fanout {
  /** Resolves once both set kinds and the namespaces are cached (grants can be decided). */
  readonly synced: Promise<void>;
  /** What a ClusterResourceSyncSet lets this child do, if it is exactly one the set wants (see children.ts);
   * "undecided" until the caches it is decided against are filled. */
  grant(rs: ResourceSync): Grant | "undecided" | undefined;
  /** Fed by the manager with every ResourceSync event. */
  onResourceSync(event: InformerEvent): void;
  /** Whether a key of the shared watches is one of this controller's (a set's sources), not a ResourceSync. */
  ownsWatchKey(key: string): boolean;
  /** A change (or trouble, recovery: no change) of a set's sources seen by the shared watches. */
  onWatch(key: string, change?: WatchChange): void;
  /** Remote clients this controller watches Namespaces through (not to be closed as unused). */
  clients(): ClusterClient[];
  /** Namespaces of the local cluster (from the cache; Infinity before its first list). */
  namespaceCount(): number;
  stop(): Promise<void>;
}

/** Children's status changes come in bursts; one set status write per burst. */
const CHILD_EVENT_DELAY_MS = 250;

type SetKind = typeof RESOURCE_SYNC_SET_KIND | typeof CLUSTER_RESOURCE_SYNC_SET_KIND;

const setKey = (kind: SetKind, namespace: string | undefined, name: string) =>
  `${kind}|${namespace ?? ""}|${name}`;

/**
 * Starts the set controller, or returns undefined when the set CRDs are not installed (a cluster upgraded from
 * the Rust controller's two CRDs keeps working, without fan-out).
 */
export async function startFanout(options: FanoutOptions): Promise<Fanout | undefined> {
  const { local, logger } = options;
  let setResource: ResourceInfo;
  let clusterSetResource: ResourceInfo;
  try {
    setResource = await local.resolve(GROUP_VERSION, RESOURCE_SYNC_SET_KIND);
    clusterSetResource = await local.resolve(GROUP_VERSION, CLUSTER_RESOURCE_SYNC_SET_KIND);
  } catch (err) {
    if (asSinkerError(err).reason !== "UnknownKind") throw err;
    logger.warn("ResourceSyncSet CRDs not installed: fan-out is off (install them from manifests/crds.yaml)");
    return undefined;
  }
  const namespaceResource = await local.resolve("v1", "Namespace");
  const secretResource = await local.resolve("v1", "Secret");
  const resyncMs = options.resyncPeriodMs ?? 10 * 60_000;
  const maxChildren = options.maxChildrenPerSet ?? DEFAULT_MAX_CHILDREN_PER_SET;
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
      ...(options.informerOptions?.backoff ? { backoff: options.informerOptions.backoff } : {}),
      ...extra,
    });
  const sets = informer(setResource, "resourcesyncsets");
  const clusterSets = informer(clusterSetResource, "clusterresourcesyncsets");
  const namespaces = informer(namespaceResource, "namespaces");
  /** set uid → keys (namespace/name) of the ResourceSyncs it owns. */
  const childrenOf = new Map<string, Set<string>>();
  const queue = new WorkQueue();
  const log = logger.child({ module: "sinker::fanout" });
  const tenantSecrets = new TenantSecrets(
    (namespace) => {
      const inf = informer(secretResource, "secrets", { namespace, transform: secretMetadataOnly });
      inf.start();
      return inf;
    },
    (users) => {
      for (const user of users) queue.add(user);
    },
  );
  const remote = new RemoteNamespaces({
    local,
    secretResource,
    remoteClusters: options.remoteClusters,
    logger: logger.child({ module: "sinker::informer", resource: "remote-namespaces" }),
    onChange: (users) => {
      for (const user of users) queue.add(user);
    },
    ...(options.informerOptions?.backoff ? { backoff: options.informerOptions.backoff } : {}),
  });

  const sources = new SetSources(local, options.watches, (key) => queue.add(key));
  const childWriter: ChildWriter = {
    local,
    resource: options.resourceSyncResource,
    events: options.events,
    log,
    lookup: (namespace, name) => options.resourceSyncs.get(namespace, name) as ResourceSync | undefined,
  };

  const enqueueAll = (kind: SetKind) => {
    const source = kind === RESOURCE_SYNC_SET_KIND ? sets : clusterSets;
    for (const s of source.list()) queue.add(setKey(kind, s.metadata?.namespace, s.metadata?.name ?? ""));
  };
  sets.onEvent((e) =>
    queue.add(setKey(RESOURCE_SYNC_SET_KIND, e.object.metadata?.namespace, e.object.metadata?.name ?? "")),
  );
  /** Local Namespaces are watched only once a ClusterResourceSyncSet exists (one watch less for everyone else). */
  const watchNamespaces = () => {
    if (!namespaces.running) namespaces.start();
  };
  clusterSets.onEvent((e) => {
    if (e.type !== "deleted") watchNamespaces();
    queue.add(setKey(CLUSTER_RESOURCE_SYNC_SET_KIND, undefined, e.object.metadata?.name ?? ""));
  });
  namespaces.onEvent((e) => {
    if (e.type === "modified" && e.old) {
      const [a, b] = [namespaceInfo(e.old), namespaceInfo(e.object)];
      if (a.terminating === b.terminating && JSON.stringify(a.labels) === JSON.stringify(b.labels)) return;
    }
    enqueueAll(CLUSTER_RESOURCE_SYNC_SET_KIND);
  });

  function onResourceSync(e: InformerEvent): void {
    const owner = setOwner(e.object);
    if (!owner) return;
    const key = `${e.object.metadata?.namespace ?? ""}/${e.object.metadata?.name ?? ""}`;
    let keys = childrenOf.get(owner.uid);
    if (e.type === "deleted") {
      keys?.delete(key);
      if (keys?.size === 0) childrenOf.delete(owner.uid); // the index does not outlive a set's last child
    } else {
      if (!keys) {
        keys = new Set();
        childrenOf.set(owner.uid, keys);
      }
      keys.add(key);
    }
    if (e.initial) return;
    const kind = owner.kind as SetKind;
    const namespace = kind === RESOURCE_SYNC_SET_KIND ? e.object.metadata?.namespace : undefined;
    // a deleted child may have to be made again at once; status changes are batched
    if (e.type === "deleted") queue.add(setKey(kind, namespace, owner.name));
    else queue.addAfter(setKey(kind, namespace, owner.name), CHILD_EVENT_DELAY_MS);
  }

  const lookupChild = (namespace: string, name: string) =>
    options.resourceSyncs.get(namespace, name) as ResourceSync | undefined;

  async function reconcileSet(key: string): Promise<"done" | "retry" | "gone"> {
    // Children are looked up in the ResourceSync cache: before its first list every child would look missing,
    // be applied again and could take over a ResourceSync of the same name someone else made.
    await options.resourceSyncs.synced;
    const [kind, namespace, name] = key.split("|") as [SetKind, string, string];
    const raw = (kind === RESOURCE_SYNC_SET_KIND ? sets : clusterSets).get(namespace || undefined, name);
    if (!raw || raw.metadata?.deletionTimestamp) {
      // children go with their owner (garbage collector); with pruning Orphan they carry
      // disable-target-deletion already, so their copies stay
      tenantSecrets.release(key);
      remote.sync(key, []);
      sources.release(key);
      return "gone";
    }
    const validated =
      kind === RESOURCE_SYNC_SET_KIND ? validateResourceSyncSet(raw) : validateClusterResourceSyncSet(raw);
    const resource = kind === RESOURCE_SYNC_SET_KIND ? setResource : clusterSetResource;
    if (!validated.ok) {
      tenantSecrets.release(key);
      remote.sync(key, []);
      sources.release(key);
      const message = `invalid ${kind}:\n${formatValidationErrors(validated.errors)}`;
      await writeStatus(resource, raw as AnySet, {
        desired: 0,
        synced: 0,
        failing: 0,
        failures: [],
        blocked: { reason: "InvalidSpec", message: truncateMessage(message) },
      });
      return "done";
    }
    const set = validated.value as AnySet;
    const selection = await select(key, set);
    if (selection === undefined) return "done"; // a list is on its way: its arrival requeues the set
    if (selection instanceof SinkerError) {
      await writeStatus(resource, set, {
        desired: 0,
        synced: 0,
        failing: 0,
        failures: [],
        blocked: { reason: "SourcesUnavailable", message: truncateMessage(selection.message) },
      });
      return "retry";
    }
    const { desired, over, plan, clusterFailures, collisions } = selection;
    const failed = await writeChildren(childWriter, key, set, plan, desired.length);
    const refused = refusedDestinations(collisions, over, maxChildren);
    const summary = summarize(desired, plan.taken, lookupChild, clusterFailures, plan.kept, refused);
    if (over.length > 0) {
      summary.blocked = {
        reason: "ChildLimitReached",
        message:
          `${desired.length + over.length} destinations selected (sources × destinations), over the limit of ` +
          `${maxChildren} children per set (--max-children-per-set): ${over.length} not made`,
      };
    }
    await writeStatus(resource, set, summary);
    if (failed) {
      log.warn({ set: key, reason: failed.reason }, reduceApiMessage(failed.message));
      return "retry";
    }
    return "done";
  }

  /** What the set wants now, from the caches; undefined while one of them is being filled. */
  async function select(key: string, set: AnySet) {
    let secrets: SecretInfo[] = [];
    if (set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND && !namespaces.hasSynced()) {
      // the namespace list is on its way (a worker never waits for it)
      watchNamespaces();
      void namespaces.synced.then(() => queue.add(key));
      return undefined;
    }
    if (set.kind === RESOURCE_SYNC_SET_KIND && set.spec.clusterSelector) {
      const cached = tenantSecrets.of(set.metadata.namespace, key);
      // the Secret list is on its way: its first list requeues this set (a worker never waits for it)
      if (cached === undefined) return undefined;
      secrets = cached;
    } else tenantSecrets.release(key);
    const sourceObjects = await sources.objects(key, set);
    if (sourceObjects === undefined || sourceObjects instanceof SinkerError) return sourceObjects;
    const selecting: SecretKeyRef[] =
      set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND
        ? (set.spec.clusters ?? []).filter((c) => c.namespaceSelector).map((c) => c.kubeConfig.secretRef)
        : [];
    const clusterNamespaces = remote.sync(key, selecting);
    const clusterFailures = [...clusterNamespaces.values()].flatMap((c) => (c.failure ? [c.failure] : []));
    const uid = set.metadata.uid;
    const made = (namespace: string, name: string) =>
      setOwner(lookupChild(namespace, name) ?? {})?.uid === uid;
    const wanted = desiredChildren(set, {
      namespaces: set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND ? namespaces.list().map(namespaceInfo) : [],
      secrets,
      remoteNamespaces: (id) => clusterNamespaces.get(id)?.namespaces,
      sources: sourceObjects,
      exists: made,
    });
    const { children: desired, over } = capChildren(wanted.children, maxChildren, (d) =>
      made(d.namespace, d.name),
    );
    const owned = [...(childrenOf.get(uid ?? "") ?? [])]
      .map((k) => lookupChild(k.slice(0, k.indexOf("/")), k.slice(k.indexOf("/") + 1)))
      .filter((c): c is ResourceSync => c !== undefined);
    const plan = planChildren(set, desired, owned, lookupChild, wanted.undecided);
    return { desired, over, plan, clusterFailures, collisions: wanted.collisions };
  }

  async function writeStatus(resource: ResourceInfo, set: AnySet, summary: SetSummary): Promise<void> {
    const next = nextSetStatus(set, summary, new Date());
    if (!setStatusDiffers(set.status, next)) return;
    await local.patch(resource, set.metadata.namespace, set.metadata.name, { status: next }, "merge", {
      subresource: "status",
    });
    const before = set.status?.conditions?.find((c) => c?.type === "Ready");
    const after = next.conditions?.[0];
    const event = after ? transitionEvent(before, after) : undefined;
    if (event) options.events.record(set, event.type, event.reason, event.message);
    else if (summary.blocked && before?.reason !== summary.blocked.reason)
      options.events.record(set, "Warning", summary.blocked.reason, summary.blocked.message);
  }

  let stopped = false;
  async function worker(): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        const result = await reconcileSet(key);
        if (result === "retry") queue.addRateLimited(key);
        else if (result === "gone")
          queue.forget(key); // its next event, if it comes back, queues it again
        else {
          queue.forget(key);
          queue.addAfter(key, Math.round(resyncMs * (0.9 + Math.random() * 0.2)));
        }
      } catch (err) {
        if (!stopped) {
          const e = asSinkerError(err);
          log.warn({ set: key, reason: e.reason }, reduceApiMessage(e.message));
          queue.addRateLimited(key);
        }
      } finally {
        queue.done(key);
      }
    }
  }

  sets.start();
  clusterSets.start();
  // Grants are decided against the set and namespace caches: with ClusterResourceSyncSets present, no
  // ResourceSync is reconciled before the namespaces are in.
  const synced = Promise.all([sets.synced, clusterSets.synced])
    .then(async () => {
      if (clusterSets.size === 0) return;
      watchNamespaces();
      await namespaces.synced;
    })
    .then(() => {
      enqueueAll(RESOURCE_SYNC_SET_KIND);
      enqueueAll(CLUSTER_RESOURCE_SYNC_SET_KIND);
    });
  let grantsDecidable = false;
  void synced.then(() => {
    grantsDecidable = true;
  });
  const workers = [worker(), worker()];

  return {
    synced,
    grant(rs) {
      if (!grantsDecidable) return "undecided";
      return grantFor(
        rs,
        (name) => clusterSets.get(undefined, name) as ClusterResourceSyncSet | undefined,
        (name) => {
          const ns = namespaces.get(undefined, name);
          return ns ? namespaceInfo(ns) : undefined;
        },
        (id) => remote.namespacesOf(id),
        (set) => sources.cached(setKey(CLUSTER_RESOURCE_SYNC_SET_KIND, undefined, set.metadata.name)),
      );
    },
    onResourceSync,
    ownsWatchKey: (key) => SetSources.owns(key),
    onWatch: (key, change) => sources.onChange(key, change),
    clients: () => remote.clients(),
    namespaceCount: () => (namespaces.hasSynced() ? namespaces.size : Number.POSITIVE_INFINITY),
    async stop() {
      stopped = true;
      queue.shutdown();
      await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 5_000).unref())]);
      await Promise.all([
        sets.stop(),
        clusterSets.stop(),
        namespaces.stop(),
        tenantSecrets.stop(),
        remote.stop(),
      ]);
    },
  };
}
