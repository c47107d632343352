/**
 * The objects a set's sourceSelector looks at, from the ResourceSync controller's shared watches: one reference
 * to every object of the kind in the source namespace (EVERY_OBJECT), so a set adds no watch of its own when
 * its children already watch that namespace, and each source change reaches the set through the same informer
 * (one watch per kind and namespace, whatever the number of sources or sets).
 */
import type { AnySet } from "../api/types.ts";
import { CLUSTER_RESOURCE_SYNC_SET_KIND } from "../api/types.ts";
import { EVERY_OBJECT, type WatchChange, type Watches } from "../controller/watches.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { SourceInfo } from "./children.ts";

/** Watch users of the set controller carry this prefix (the ResourceSync controller routes their events here). */
const USER_PREFIX = "fanout-sources|";

export class SetSources {
  readonly #local: ClusterClient;
  readonly #watches: Watches;
  readonly #requeue: (setKey: string) => void;
  /** Watch user → why its source list cannot be had (kept until the set asks again after a change). */
  readonly #errors = new Map<string, SinkerError>();
  /** Set key → the kind and namespace its sourceSelector looks at. */
  readonly #where = new Map<string, { resource: ResourceInfo; namespace: string }>();

  constructor(local: ClusterClient, watches: Watches, requeue: (setKey: string) => void) {
    this.#local = local;
    this.#watches = watches;
    this.#requeue = requeue;
  }

  static owns(watchUser: string): boolean {
    return watchUser.startsWith(USER_PREFIX);
  }

  /** A change seen by the shared watch: the set is reconciled when a source may start or stop matching. */
  onChange(watchUser: string, change?: WatchChange): void {
    if (change?.type === "modified" && change.old) {
      const [a, b] = [change.old.metadata?.labels ?? {}, change.object.metadata?.labels ?? {}];
      if (JSON.stringify(a) === JSON.stringify(b)) return; // data edits are the children's business
    }
    this.#requeue(watchUser.slice(USER_PREFIX.length));
  }

  /**
   * Names and labels of the objects the set's sourceSelector looks at: [] for a set without one, undefined
   * while their first list is on its way (the set is requeued when it is in), an error when they cannot be had.
   */
  async objects(setKey: string, set: AnySet): Promise<readonly SourceInfo[] | undefined | SinkerError> {
    const selector = set.spec.sourceSelector;
    const user = USER_PREFIX + setKey;
    if (!selector) {
      this.release(setKey);
      return [];
    }
    const namespace =
      set.kind === CLUSTER_RESOURCE_SYNC_SET_KIND
        ? (selector as { namespace: string }).namespace
        : set.metadata.namespace;
    let resource: ResourceInfo;
    try {
      resource = await this.#local.resolve(selector.apiVersion, selector.kind);
    } catch (err) {
      return asSinkerError(err);
    }
    if (!resource.namespaced)
      return new SinkerError("InvalidSpec", `sourceSelector: ${selector.kind} is not a namespaced kind`);
    this.#where.set(setKey, { resource, namespace });
    const ref = { client: this.#local, resource, namespace, name: EVERY_OBJECT };
    if (!this.#watches.holds(user, ref)) {
      this.#errors.delete(user);
      void this.#watches.setRefs(user, [ref]).then(
        () => {
          if (!this.#watches.hasSynced(this.#local, resource, namespace, EVERY_OBJECT))
            this.#errors.set(
              user,
              new SinkerError("Forbidden", `cannot list ${selector.kind} in ${namespace}`),
            );
          this.#requeue(setKey);
        },
        (err: unknown) => {
          this.#errors.set(user, asSinkerError(err));
          this.#requeue(setKey);
        },
      );
    }
    if (!this.#watches.hasSynced(this.#local, resource, namespace, EVERY_OBJECT))
      return this.#errors.get(user);
    return this.#watches
      .list(this.#local, resource, namespace)
      .map((o) => ({ name: o.metadata?.name ?? "", labels: o.metadata?.labels ?? {} }));
  }

  /**
   * The objects the set's sourceSelector looked at in its last reconcile, from the cache (the grant check: starts
   * nothing); undefined while they are not listed.
   */
  cached(setKey: string): readonly SourceInfo[] | undefined {
    const where = this.#where.get(setKey);
    if (!where || !this.#watches.hasSynced(this.#local, where.resource, where.namespace, EVERY_OBJECT))
      return undefined;
    return this.#watches
      .list(this.#local, where.resource, where.namespace)
      .map((o) => ({ name: o.metadata?.name ?? "", labels: o.metadata?.labels ?? {} }));
  }

  /** The set no longer selects sources (deleted, invalid, or back to one named source). */
  release(setKey: string): void {
    const user = USER_PREFIX + setKey;
    if (!this.#where.has(setKey) && !this.#errors.has(user)) return;
    this.#errors.delete(user);
    this.#where.delete(setKey);
    void this.#watches.release(user);
  }
}
