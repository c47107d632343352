/**
 * One reconcile of a ResourceSyncSet or ClusterResourceSyncSet: from the caches (set-caches.ts), the children it
 * wants (children.ts, capped and planned in plan.ts), written (write-children.ts), and its status from theirs
 * (set-status.ts). Its result is the runtime's `Next`; a failed request of its own writes throws (retried).
 */
import type { Logger } from "pino";
import {
  type AnySet,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  RESOURCE_SYNC_SET_KIND,
  type ResourceSync,
  type SetClusterFailure,
} from "../api/types.ts";
import {
  formatValidationErrors,
  validateClusterResourceSyncSet,
  validateResourceSyncSet,
} from "../api/validate.ts";
import { truncateMessage } from "../controller/status.ts";
import { SinkerError } from "../errors.ts";
import { reduceApiMessage } from "../kube/api-message.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer } from "../kube/informer.ts";
import { parseKey } from "../kube/object.ts";
import type { WorkQueue } from "../runtime/queue.ts";
import { jittered, type Next } from "../runtime/runtime.ts";
import { type Collision, type DesiredChild, desiredChildren, type SecretInfo, setOwner } from "./children.ts";
import { type ChildPlan, capChildren, planChildren } from "./plan.ts";
import { namespaceInfo, type SecretKeyRef } from "./remote-namespaces.ts";
import { parseSetKey, type SetCaches } from "./set-caches.ts";
import {
  nextSetStatus,
  refusedDestinations,
  type SetSummary,
  setStatusDiffers,
  summarize,
  transitionEvent,
} from "./set-status.ts";
import { type ChildWriter, writeChildren } from "./write-children.ts";

export interface SetReconcilerOptions {
  local: ClusterClient;
  log: Logger;
  events: EventRecorder;
  /** The ResourceSync cache (children are read from it). */
  resourceSyncs: Informer;
  resourceSyncResource: ResourceInfo;
  resources: { set: ResourceInfo; clusterSet: ResourceInfo };
  caches: SetCaches;
  queue: WorkQueue;
  resyncMs: number;
  maxChildren: number;
}

const DONE: Next = { kind: "done" }; // its next event, if it comes back, queues it again
const RETRY: Next = { kind: "rate-limited" };
/** No children, only why: the status of a set that cannot fan out now. */
const blocked = (reason: string, message: string): SetSummary => ({
  desired: 0,
  synced: 0,
  failing: 0,
  failures: [],
  blocked: { reason, message: truncateMessage(message) },
});

export class SetReconciler {
  readonly #o: SetReconcilerOptions;
  readonly #writer: ChildWriter;

  constructor(options: SetReconcilerOptions) {
    this.#o = options;
    this.#writer = {
      local: options.local,
      resource: options.resourceSyncResource,
      events: options.events,
      log: options.log,
      lookup: (namespace, name) => this.#child(namespace, name),
    };
  }

  #child(namespace: string, name: string): ResourceSync | undefined {
    return this.#o.resourceSyncs.get(namespace, name) as ResourceSync | undefined;
  }

  #resync(): Next {
    return { kind: "requeue-after", ms: jittered(this.#o.resyncMs) };
  }

  async reconcile(key: string): Promise<Next> {
    const { caches } = this.#o;
    // Children are looked up in the ResourceSync cache: before its first list every child would look missing,
    // be applied again and could take over a ResourceSync of the same name someone else made.
    await this.#o.resourceSyncs.synced;
    const { kind } = parseSetKey(key);
    const raw = caches.setOf(key);
    if (!raw || raw.metadata?.deletionTimestamp) {
      // children go with their owner (garbage collector); with pruning Orphan they carry
      // disable-target-deletion already, so their copies stay
      caches.release(key);
      return DONE;
    }
    const validated =
      kind === RESOURCE_SYNC_SET_KIND ? validateResourceSyncSet(raw) : validateClusterResourceSyncSet(raw);
    const resource = kind === RESOURCE_SYNC_SET_KIND ? this.#o.resources.set : this.#o.resources.clusterSet;
    if (!validated.ok) {
      caches.release(key);
      const message = `invalid ${kind}:\n${formatValidationErrors(validated.errors)}`;
      await this.#writeStatus(resource, raw as AnySet, blocked("InvalidSpec", message));
      return this.#resync();
    }
    const set = validated.value as AnySet;
    const selection = await this.#select(key, set);
    if (selection === undefined) return this.#resync(); // a list is on its way: its arrival requeues the set
    if (selection instanceof SinkerError) {
      await this.#writeStatus(resource, set, blocked("SourcesUnavailable", selection.message));
      return RETRY;
    }
    return this.#write(key, resource, set, selection);
  }

  /** The children written as planned, and the set's status from theirs. */
  async #write(key: string, resource: ResourceInfo, set: AnySet, selection: Selection): Promise<Next> {
    const { desired, over, plan, clusterFailures, collisions } = selection;
    const maxChildren = this.#o.maxChildren;
    const failed = await writeChildren(this.#writer, key, set, plan, desired.length);
    const refused = refusedDestinations(collisions, over, maxChildren);
    const lookup = (namespace: string, name: string) => this.#child(namespace, name);
    const summary = summarize(desired, plan.taken, lookup, clusterFailures, plan.kept, refused);
    if (over.length > 0) {
      summary.blocked = {
        reason: "ChildLimitReached",
        message:
          `${desired.length + over.length} destinations selected (sources × destinations), over the limit of ` +
          `${maxChildren} children per set (--max-children-per-set): ${over.length} not made`,
      };
    }
    await this.#writeStatus(resource, set, summary);
    if (failed) {
      this.#o.log.warn({ set: key, reason: failed.reason }, reduceApiMessage(failed.message));
      return RETRY;
    }
    return this.#resync();
  }

  /** What the set wants now, from the caches; undefined while one of them is being filled. */
  async #select(key: string, set: AnySet): Promise<Selection | SinkerError | undefined> {
    const { caches } = this.#o;
    let secrets: SecretInfo[] = [];
    if (set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND && !caches.namespaces.hasSynced()) {
      // the namespace list is on its way (a worker never waits for it)
      caches.watchNamespaces();
      void caches.namespaces.synced.then(() => this.#o.queue.add(key));
      return undefined;
    }
    if (set.kind === RESOURCE_SYNC_SET_KIND && set.spec.clusterSelector) {
      const cached = caches.tenantSecrets.of(set.metadata.namespace, key);
      // the Secret list is on its way: its first list requeues this set (a worker never waits for it)
      if (cached === undefined) return undefined;
      secrets = cached;
    } else caches.tenantSecrets.release(key);
    const sourceObjects = await caches.sources.objects(key, set);
    if (sourceObjects === undefined || sourceObjects instanceof SinkerError) return sourceObjects;
    const selecting: SecretKeyRef[] =
      set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND
        ? (set.spec.clusters ?? []).filter((c) => c.namespaceSelector).map((c) => c.kubeConfig.secretRef)
        : [];
    const clusterNamespaces = caches.remote.sync(key, selecting);
    const clusterFailures = [...clusterNamespaces.values()].flatMap((c) => (c.failure ? [c.failure] : []));
    const uid = set.metadata.uid;
    const made = (namespace: string, name: string) =>
      setOwner(this.#child(namespace, name) ?? {})?.uid === uid;
    const wanted = desiredChildren(set, {
      namespaces:
        set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND ? caches.namespaces.list().map(namespaceInfo) : [],
      secrets,
      remoteNamespaces: (id) => clusterNamespaces.get(id)?.namespaces,
      sources: sourceObjects,
      exists: made,
    });
    const { children: desired, over } = capChildren(wanted.children, this.#o.maxChildren, (d) =>
      made(d.namespace, d.name),
    );
    const owned = [...caches.childKeys(uid ?? "")]
      .map((k) => {
        const { namespace, name } = parseKey(k);
        return this.#child(namespace ?? "", name);
      })
      .filter((c): c is ResourceSync => c !== undefined);
    const lookup = (namespace: string, name: string) => this.#child(namespace, name);
    const plan = planChildren(set, desired, owned, lookup, wanted.undecided);
    return { desired, over, plan, clusterFailures, collisions: wanted.collisions };
  }

  async #writeStatus(resource: ResourceInfo, set: AnySet, summary: SetSummary): Promise<void> {
    const next = nextSetStatus(set, summary, new Date());
    if (!setStatusDiffers(set.status, next)) return;
    await this.#o.local.patch(
      resource,
      set.metadata.namespace,
      set.metadata.name,
      { status: next },
      "merge",
      {
        subresource: "status",
      },
    );
    const before = set.status?.conditions?.find((c) => c?.type === "Ready");
    const after = next.conditions?.[0];
    const event = after ? transitionEvent(before, after) : undefined;
    if (event) this.#o.events.record(set, event.type, event.reason, event.message);
    else if (summary.blocked && before?.reason !== summary.blocked.reason)
      this.#o.events.record(set, "Warning", summary.blocked.reason, summary.blocked.message);
  }
}

/** What a set wants now: the children (within the cap), those over it, the plan, and what stands in the way. */
interface Selection {
  desired: DesiredChild[];
  over: DesiredChild[];
  plan: ChildPlan;
  clusterFailures: SetClusterFailure[];
  collisions: Collision[];
}
