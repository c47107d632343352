/**
 * The shared informer registry: one Informer per (cluster client, group/version/plural, namespace) that some
 * ResourceSync needs, shared by all of them, with an index from each watched object (namespace/name) to the keys
 * of the ResourceSyncs that reference it. The number of watch connections therefore grows with
 * clusters × kinds × namespaces in use, not with ResourceSyncs. Informers nobody references any more are stopped.
 *
 * Informer identity: `client.name` + `client.id`. Two ClusterClient instances for the same remote cluster (e.g.
 * after a kubeconfig Secret was rotated, RemoteClusters hands out a new instance) get distinct informers, so a
 * ResourceSync that moved to the new client never reads a cache filled with the old credentials; the old
 * informer stops when its last reference moves away.
 *
 * Two kinds of informer: namespace-wide (the default: one watch for every object of that kind and namespace
 * that ResourceSyncs use) and single-object (a `metadata.name` field selector: one watch per object). Kubeconfig
 * Secrets are watched one by one (the reconciler asks so), so no other Secret of their namespace is cached. A namespace-wide
 * list refused with Forbidden (a Role limited by `resourceNames`, or `get` + single-object `watch` rights, which
 * were enough for the Rust controller) switches that (client, kind, namespace) to single-object informers,
 * logged once.
 *
 * References only grow while a ResourceSync fails (`addRefs`): a failing ResourceSync keeps its watches, so
 * retrying it never releases and re-creates them (a fresh watch's first list would queue it past its backoff).
 * `setRefs` narrows them to exactly what a successful reconcile used. The events of an informer's first list
 * are not dispatched: whoever started the informer waits for that list and reads the cache afterwards.
 *
 * Cached objects are slimmed by `stripForCache` (managedFields reduced to the appliers' names, no
 * last-applied annotation).
 *
 * Objects returned by `get` and passed to `onChange` are the informers' shared cache entries: do not mutate them.
 */
import type { Logger } from "pino";
import { SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { InformerEvent } from "../kube/informer.ts";
import { type KubeObject, objectKey } from "../kube/object.ts";
import {
  type Entry,
  EVERY_OBJECT,
  entryKeyOf,
  gvr,
  infoOf,
  isTerminal,
  kindKey,
  type ResolvedRef,
  sameRef,
  sameRefs,
  startEntry,
  syncError,
  type WatchChange,
  type WatchesOptions,
  type WatchInfo,
  type WatchRef,
} from "./watch-refs.ts";
import { Widening } from "./watch-widening.ts";

export type { WatchChange, WatchesOptions, WatchInfo, WatchRef } from "./watch-refs.ts";
export { EVERY_OBJECT } from "./watch-refs.ts";

export class Watches {
  readonly #logger: Logger;
  readonly #onChange: WatchesOptions["onChange"];
  readonly #onRecovered: WatchesOptions["onRecovered"];
  readonly #onTrouble: WatchesOptions["onTrouble"];
  readonly #syncTimeoutMs: number;
  readonly #informerOptions: NonNullable<WatchesOptions["informerOptions"]>;
  readonly #entries = new Map<string, Entry>();
  /** rsKey → its current references (entryKey + objKey). */
  readonly #refs = new Map<string, ResolvedRef[]>();
  readonly #stopping = new Set<Promise<void>>();
  /** Namespace-wide entry keys whose list was refused (Forbidden): their objects are watched one by one. */
  readonly #narrowed = new Set<string>();
  readonly #widening: Widening;

  constructor(opts: WatchesOptions) {
    this.#logger = opts.logger;
    this.#onChange = opts.onChange;
    this.#onRecovered = opts.onRecovered;
    this.#onTrouble = opts.onTrouble;
    this.#syncTimeoutMs = opts.syncTimeoutMs ?? 10_000;
    this.#informerOptions = opts.informerOptions ?? {};
    this.#widening = new Widening(opts.widening, {
      logger: opts.logger,
      entries: this.#entries,
      refs: this.#refs,
      addRef: (rsKey, r) => this.#addRef(rsKey, r),
      removeRef: (rsKey, r) => this.#removeRef(rsKey, r),
      resolve: (ref) => this.#resolve(ref),
    });
  }

  /**
   * Replaces the whole set of objects `rsKey` references, atomically (the bookkeeping is synchronous): informers
   * newly needed are started, the ones nobody needs any more are stopped. Then waits until every informer of
   * the new set has its first list, at most `syncTimeoutMs`; on timeout throws ClusterUnreachable (the
   * references stay registered: the informer keeps trying, and its list will report the objects through
   * onChange).
   */
  async setRefs(rsKey: string, refs: WatchRef[]): Promise<void> {
    const resolved = refs.map((ref) => this.#resolve(ref));
    const previous = this.#refs.get(rsKey) ?? [];
    // (the same references as before, as at every reconcile after the first: nothing to start or stop)
    if (!sameRefs(previous, resolved)) {
      // add the new references first, so an informer in both sets is never stopped in between
      for (const r of resolved) this.#addRef(rsKey, r);
      this.#refs.set(rsKey, resolved);
      for (const r of previous) if (!resolved.some((n) => sameRef(n, r))) this.#removeRef(rsKey, r);
    }
    await this.#waitSynced(rsKey, resolved);
  }

  /**
   * Adds references to those `rsKey` already holds (never removes any), then waits as setRefs does. A
   * reconcile that fails half way keeps what it had: its retries do not stop and restart informers.
   */
  async addRefs(rsKey: string, refs: WatchRef[]): Promise<void> {
    const current = this.#refs.get(rsKey) ?? [];
    let merged: ResolvedRef[] | undefined;
    const wanted: ResolvedRef[] = [];
    for (const ref of refs) {
      const r = this.#resolve(ref);
      wanted.push(r);
      const list = merged ?? current;
      if (list.some((m) => sameRef(m, r))) continue;
      merged ??= [...current];
      this.#addRef(rsKey, r);
      merged.push(r);
    }
    if (merged) this.#refs.set(rsKey, merged);
    await this.#waitSynced(rsKey, wanted);
  }

  /** Drops one reference of `rsKey` (e.g. a cross-namespace Secret it may no longer use). */
  async dropRef(rsKey: string, ref: WatchRef): Promise<void> {
    const r = this.#resolve(ref);
    const current = this.#refs.get(rsKey) ?? [];
    const kept = current.filter((m) => !sameRef(m, r));
    if (kept.length === current.length) return;
    this.#refs.set(rsKey, kept);
    this.#removeRef(rsKey, r);
    await this.#settleStops();
  }

  /** Whether `rsKey` holds a reference to this object. */
  holds(rsKey: string, ref: WatchRef): boolean {
    const r = this.#resolve(ref);
    return (this.#refs.get(rsKey) ?? []).some((m) => sameRef(m, r));
  }

  #resolve(ref: WatchRef): ResolvedRef {
    const namespace = ref.resource.namespaced ? ref.namespace : undefined;
    if (ref.resource.namespaced && !namespace) {
      throw new SinkerError(
        "Internal",
        `watch reference to ${ref.resource.kind} "${ref.name}" has no namespace`,
      );
    }
    const wide = entryKeyOf(ref.client, ref.resource, namespace);
    // (every object of a namespace cannot be watched by name: such a reference stays namespace-wide)
    const single = ref.name !== EVERY_OBJECT && (ref.single || this.#narrowed.has(wide));
    if (!single && namespace !== undefined && this.#widening.isWide(kindKey(ref.client, ref.resource))) {
      return {
        entryKey: entryKeyOf(ref.client, ref.resource, undefined),
        objKey: objectKey(namespace, ref.name),
        ref: { ...ref, namespace, single, clusterWide: true },
      };
    }
    return {
      entryKey: single ? entryKeyOf(ref.client, ref.resource, namespace, ref.name) : wide,
      objKey: objectKey(namespace, ref.name),
      ref: { ...ref, namespace, single },
    };
  }

  /** Whether `rsKey` holds any reference (released ones hold none). */
  hasRefs(rsKey: string): boolean {
    return this.#refs.has(rsKey);
  }

  /** Drops every reference of `rsKey`; informers nobody needs any more are stopped (and awaited). */
  async release(rsKey: string): Promise<void> {
    const previous = this.#refs.get(rsKey) ?? [];
    this.#refs.delete(rsKey);
    for (const r of previous) this.#removeRef(rsKey, r);
    await this.#settleStops();
  }

  /**
   * The cached object from the informer that setRefs started for it; undefined when there is no such informer,
   * it has not synced, or the object does not exist. Shared: do not mutate.
   */
  get(
    client: ClusterClient,
    resource: ResourceInfo,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined {
    const ns = resource.namespaced ? namespace : undefined;
    const entry = this.#entryFor(client, resource, ns, name);
    if (!entry?.informer.hasSynced()) return undefined;
    return entry.informer.get(ns, name);
  }

  /** Whether an informer holding this object (single-object or namespace-wide) has its first list. */
  hasSynced(
    client: ClusterClient,
    resource: ResourceInfo,
    namespace: string | undefined,
    name: string,
  ): boolean {
    const ns = resource.namespaced ? namespace : undefined;
    return this.#entryFor(client, resource, ns, name)?.informer.hasSynced() ?? false;
  }

  /**
   * Whether the informer holding this object follows its cluster: a watch is open, or its last list or watch
   * succeeded and nothing failed since (the moment between a list and its watch, e.g. right after a restart).
   */
  live(client: ClusterClient, resource: ResourceInfo, namespace: string | undefined, name: string): boolean {
    const ns = resource.namespaced ? namespace : undefined;
    const entry = this.#entryFor(client, resource, ns, name);
    if (!entry) return false;
    // between a list (or a watch ending normally) and the next watch opening, the cache is as fresh as that list:
    // only failures since then (a cluster gone) make it untrustworthy
    const h = entry.informer.health();
    return h.watching || (entry.informer.hasSynced() && h.consecutiveFailures === 0);
  }

  /** Every cached object of the namespace-wide informer of (client, resource, namespace), if there is one. */
  list(client: ClusterClient, resource: ResourceInfo, namespace: string | undefined): KubeObject[] {
    const ns = resource.namespaced ? namespace : undefined;
    const entry = this.#entries.get(entryKeyOf(client, resource, ns));
    if (entry) return entry.informer.hasSynced() ? entry.informer.list() : [];
    const wide = ns !== undefined ? this.#entries.get(entryKeyOf(client, resource, undefined)) : undefined;
    if (!wide?.informer.hasSynced()) return [];
    return wide.informer.list().filter((o) => o.metadata?.namespace === ns);
  }

  /** The informer holding this object: its single-object one, its namespace's, or its kind's cluster-wide one. */
  #entryFor(
    client: ClusterClient,
    resource: ResourceInfo,
    ns: string | undefined,
    name: string,
  ): Entry | undefined {
    return (
      this.#entries.get(entryKeyOf(client, resource, ns, name)) ??
      this.#entries.get(entryKeyOf(client, resource, ns)) ??
      (ns !== undefined ? this.#entries.get(entryKeyOf(client, resource, undefined)) : undefined)
    );
  }

  /** Number of running informers (= watch connections) per cluster name. */
  connections(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.#entries.values()) out.set(e.client.name, (out.get(e.client.name) ?? 0) + 1);
    return out;
  }

  /** Every running informer, for metrics and health. */
  info(): WatchInfo[] {
    return [...this.#entries.values()].map(infoOf);
  }

  /** The ClusterClients some informer still uses (for RemoteClusters.prune). */
  clientsInUse(): Set<ClusterClient> {
    return new Set([...this.#entries.values()].map((e) => e.client));
  }

  async stopAll(): Promise<void> {
    this.#refs.clear();
    for (const entry of [...this.#entries.values()]) this.#stopEntry(entry);
    await this.#settleStops();
  }

  // ---------------------------------------------------------------- internals

  #addRef(rsKey: string, r: ResolvedRef): void {
    let entry = this.#entries.get(r.entryKey);
    if (!entry) {
      const created = startEntry(r, this.#logger, this.#informerOptions, {
        onRecovered: () => this.#usersOf(r.entryKey, this.#onRecovered),
        onTrouble: () => this.#usersOf(r.entryKey, this.#onTrouble),
        onEvent: (e) => this.#dispatch(created, e),
      });
      this.#entries.set(r.entryKey, created);
      entry = created;
      if (created.name === undefined && created.namespace !== undefined)
        this.#widening.consider(created.client, created.resource);
    }
    let keys = entry.index.get(r.objKey);
    if (!keys) {
      keys = new Set();
      entry.index.set(r.objKey, keys);
    }
    keys.add(rsKey);
    entry.users.add(rsKey);
  }

  /** Calls `to` with the users of the entry (looked up now: it may have been stopped or replaced). */
  #usersOf(entryKey: string, to: ((rsKeys: string[]) => void) | undefined): void {
    const entry = this.#entries.get(entryKey);
    if (entry) to?.([...entry.users]);
  }

  #removeRef(rsKey: string, r: ResolvedRef): void {
    const entry = this.#entries.get(r.entryKey);
    if (!entry) return;
    const keys = entry.index.get(r.objKey);
    if (keys) {
      keys.delete(rsKey);
      if (keys.size === 0) entry.index.delete(r.objKey);
    }
    // the same rsKey may still reference another object through this informer
    const stillUses = (this.#refs.get(rsKey) ?? []).some((x) => x.entryKey === r.entryKey);
    if (!stillUses) entry.users.delete(rsKey);
    if (entry.users.size === 0) this.#stopEntry(entry);
  }

  #stopEntry(entry: Entry): void {
    if (this.#entries.get(entry.key) !== entry) return;
    this.#entries.delete(entry.key);
    // a kind nobody watches cluster-wide any more starts again namespace by namespace
    if (entry.namespace === undefined && entry.resource.namespaced && entry.name === undefined)
      this.#widening.forget(kindKey(entry.client, entry.resource));
    entry.unsubscribe();
    const p = entry.informer.stop().catch(() => {});
    this.#stopping.add(p);
    void p.finally(() => this.#stopping.delete(p));
    this.#logger.debug(
      { cluster: entry.client.name, resource: gvr(entry.resource), namespace: entry.namespace },
      "stopped informer: no ResourceSync needs it",
    );
  }

  async #settleStops(): Promise<void> {
    await Promise.all([...this.#stopping]);
  }

  #dispatch(entry: Entry, e: InformerEvent): void {
    if (e.initial) return;
    const meta = e.object.metadata;
    const name = meta?.name;
    if (!name) return;
    const ns = entry.resource.namespaced ? meta?.namespace : undefined;
    const exact = entry.index.get(objectKey(ns, name));
    const every = entry.index.get(objectKey(ns, EVERY_OBJECT));
    const keys = every && every.size > 0 ? new Set([...(exact ?? []), ...every]) : exact;
    if (!keys || keys.size === 0) return;
    const change: WatchChange = {
      cluster: entry.client.name,
      clientId: entry.client.id,
      resource: entry.resource,
      type: e.type,
      object: e.object,
      ...(e.old ? { old: e.old } : {}),
    };
    try {
      this.#onChange([...keys], change);
    } catch (err) {
      this.#logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        "watch onChange handler threw",
      );
    }
  }

  /** Whether the informer of every reference has its first list (the common case: no waiting to set up). */
  #allSynced(refs: ResolvedRef[]): boolean {
    for (const r of refs) if (!this.#entries.get(r.entryKey)?.informer.hasSynced()) return false;
    return true;
  }

  /**
   * Waits until the informers of `wanted` (references of `rsKey`) have their first list, at most
   * `syncTimeoutMs`. Other references `rsKey` still holds from a failed attempt are not waited for. A namespace-wide
   * list refused with Forbidden is narrowed to single-object informers and waited for again; any other list
   * refused for good (no rights, unknown kind) fails at once (the informer keeps retrying in the background, so
   * a fix of RBAC is picked up).
   */
  async #waitSynced(rsKey: string, wanted: ResolvedRef[]): Promise<void> {
    if (this.#allSynced(wanted)) return; // the common case, without building the wait below
    const deadline = Date.now() + this.#syncTimeoutMs;
    const objKeys = new Set(wanted.map((r) => `${r.ref.client.id}|${r.ref.resource.plural}|${r.objKey}`));
    for (;;) {
      // (re-read each round: narrowing moves references to other informers)
      const entries = this.#entriesOf(rsKey, objKeys);
      const pending = entries.filter((e) => !e.informer.hasSynced());
      if (pending.length === 0) return;
      const refused = pending.filter((e) => isTerminal(e.informer.health().lastErrorReason));
      const narrowable = refused.filter(
        (e) => e.name === undefined && e.informer.health().lastErrorReason === "Forbidden",
      );
      if (narrowable.length > 0) {
        for (const e of narrowable) this.#narrow(e);
        continue;
      }
      if (refused.length > 0 || Date.now() >= deadline)
        throw syncError(refused[0] ?? pending[0], this.#syncTimeoutMs);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(pending.map((e) => e.informer.synced)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.min(50, Math.max(1, deadline - Date.now())));
        }),
      ]);
      if (timer) clearTimeout(timer);
    }
  }

  #entriesOf(rsKey: string, objKeys: Set<string>): Entry[] {
    const refs = (this.#refs.get(rsKey) ?? []).filter((r) =>
      objKeys.has(`${r.ref.client.id}|${r.ref.resource.plural}|${r.objKey}`),
    );
    const keys = new Set(refs.map((r) => r.entryKey));
    return [...keys].map((k) => this.#entries.get(k)).filter((e): e is Entry => e !== undefined);
  }

  /** A namespace-wide list was refused: watch each referenced object by name instead (as the Rust controller did). */
  #narrow(entry: Entry): void {
    this.#narrowed.add(entry.key);
    this.#logger.info(
      { cluster: entry.client.name, resource: gvr(entry.resource), namespace: entry.namespace },
      "listing the whole namespace is forbidden: watching each object by name instead",
    );
    for (const [rsKey, refs] of this.#refs) {
      if (!refs.some((r) => r.entryKey === entry.key)) continue;
      const moved = refs.map((r) => (r.entryKey === entry.key ? this.#resolve(r.ref) : r));
      for (const r of moved) if (r.entryKey !== entry.key) this.#addRef(rsKey, r);
      this.#refs.set(rsKey, moved);
    }
    this.#stopEntry(entry);
  }
}
