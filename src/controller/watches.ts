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
import { type ErrorReason, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { Informer, type InformerEvent, type InformerHealth, stripForCache } from "../kube/informer.ts";
import { type KubeObject, objectKey } from "../kube/object.ts";

/**
 * The name of a reference to every object of a kind in one namespace (a set's sourceSelector): its user hears of
 * each object's changes through the namespace's shared informer (never a watch of its own); not a valid name.
 */
export const EVERY_OBJECT = "*";

export interface WatchRef {
  client: ClusterClient;
  resource: ResourceInfo;
  /** The object's namespace; ignored (use undefined) for cluster-scoped resources. */
  namespace: string | undefined;
  name: string;
  /** Watch only this object (field selector on its name), never its whole namespace. */
  single?: boolean;
  /** Set by Watches on a reference it serves from its kind's cluster-wide informer (widening). */
  clusterWide?: boolean;
}

export interface WatchChange {
  /** The client's name ("local", "secret/ns/name"). */
  cluster: string;
  /** The client instance's id (ClusterClient.id). */
  clientId: number;
  resource: ResourceInfo;
  type: "added" | "modified" | "deleted";
  object: KubeObject;
  old?: KubeObject;
}

export interface WatchesOptions {
  logger: Logger;
  /** Called with the keys of the ResourceSyncs that reference exactly this object (namespace + name). */
  onChange: (rsKeys: string[], e: WatchChange) => void;
  /**
   * Called with every ResourceSync using an informer whose list or watch works again after failures (its
   * cluster is back): they are retried now rather than at the end of their backoff.
   */
  onRecovered?: (rsKeys: string[]) => void;
  /**
   * Called with every ResourceSync using an informer that just started failing (its cluster went away): they
   * are reconciled, so their status shows it instead of resting on a cache that no longer follows the cluster.
   */
  onTrouble?: (rsKeys: string[]) => void;
  /** Bound on waiting for a newly needed informer's first list in setRefs (default 10 000 ms). */
  syncTimeoutMs?: number;
  /**
   * Widening (fan-out): when the local cluster has namespace-wide informers of one kind in at least `at`
   * namespaces, and those are at least `minShare` of all its namespaces (`namespaceCount`), one cluster-wide
   * informer replaces them (once its first list is in; refused lists keep the per-namespace ones). Watches then
   * stay independent of how many namespaces a ClusterResourceSyncSet writes to, and the cache holds at most about
   * 1/minShare times what the per-namespace informers held. Absent: never.
   */
  widening?: { local: ClusterClient; at: number; minShare: number; namespaceCount: () => number };
  /** Extra options for every informer (tests shorten backoff and timeouts with it). */
  informerOptions?: {
    watchTimeoutSeconds?: [number, number];
    idleTimeoutSeconds?: number;
    backoff?: { initialMs: number; maxMs: number };
    pageSize?: number;
  };
}

export interface WatchInfo {
  cluster: string;
  clientId: number;
  resource: ResourceInfo;
  namespace: string | undefined;
  /** The one object watched by a single-object informer. */
  name?: string;
  /** ResourceSyncs referencing objects through this informer. */
  refCount: number;
  objects: number;
  synced: boolean;
  health: InformerHealth;
}

interface Entry {
  key: string;
  informer: Informer;
  client: ClusterClient;
  resource: ResourceInfo;
  namespace: string | undefined;
  /** Set for a single-object informer. */
  name: string | undefined;
  /** object key (namespace/name) → ResourceSync keys. */
  index: Map<string, Set<string>>;
  /** ResourceSync keys with at least one reference here. */
  users: Set<string>;
  unsubscribe: () => void;
}

/** One reference resolved to its informer key and object key. */
interface ResolvedRef {
  entryKey: string;
  objKey: string;
  ref: WatchRef;
}

function gvr(resource: ResourceInfo): string {
  return `${resource.group}/${resource.version}/${resource.plural}`;
}

/** A kind in one client: the unit of widening. */
function kindKey(client: ClusterClient, resource: ResourceInfo): string {
  return `${client.name}#${client.id}|${gvr(resource)}`;
}

function entryKeyOf(
  client: ClusterClient,
  resource: ResourceInfo,
  namespace: string | undefined,
  name?: string,
): string {
  const base = `${client.name}#${client.id}|${gvr(resource)}|${resource.namespaced ? (namespace ?? "") : ""}`;
  return name === undefined ? base : `${base}|${name}`;
}

/** List failures that waiting will not cure. */
const TERMINAL_REASONS = new Set<ErrorReason>(["Forbidden", "Unauthorized", "UnknownKind"]);
const isTerminal = (reason: ErrorReason | undefined) => reason !== undefined && TERMINAL_REASONS.has(reason);
/** How often a pending cluster-wide watch's health is looked at (in memory, no request) while it lists. */
const WIDEN_CHECK_MS = 500;

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
  readonly #widening: WatchesOptions["widening"];
  /** `client|gvr` of kinds watched cluster-wide (widened), being widened, or whose cluster-wide list failed. */
  readonly #wide = new Set<string>();
  readonly #widenPending = new Set<string>();
  readonly #wideRefused = new Set<string>();

  constructor(opts: WatchesOptions) {
    this.#logger = opts.logger;
    this.#onChange = opts.onChange;
    this.#onRecovered = opts.onRecovered;
    this.#onTrouble = opts.onTrouble;
    this.#syncTimeoutMs = opts.syncTimeoutMs ?? 10_000;
    this.#informerOptions = opts.informerOptions ?? {};
    this.#widening = opts.widening;
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
    // add the new references first, so an informer in both sets is never stopped in between
    const previous = this.#refs.get(rsKey) ?? [];
    for (const r of resolved) this.#addRef(rsKey, r);
    this.#refs.set(rsKey, resolved);
    for (const r of previous) {
      if (!resolved.some((n) => n.entryKey === r.entryKey && n.objKey === r.objKey))
        this.#removeRef(rsKey, r);
    }
    await this.#waitSynced(rsKey, resolved);
  }

  /**
   * Adds references to those `rsKey` already holds (never removes any), then waits as setRefs does. A
   * reconcile that fails half way keeps what it had: its retries do not stop and restart informers.
   */
  async addRefs(rsKey: string, refs: WatchRef[]): Promise<void> {
    const current = this.#refs.get(rsKey) ?? [];
    const merged = [...current];
    const wanted: ResolvedRef[] = [];
    for (const ref of refs) {
      const r = this.#resolve(ref);
      wanted.push(r);
      if (merged.some((m) => m.entryKey === r.entryKey && m.objKey === r.objKey)) continue;
      this.#addRef(rsKey, r);
      merged.push(r);
    }
    this.#refs.set(rsKey, merged);
    await this.#waitSynced(rsKey, wanted);
  }

  /** Drops one reference of `rsKey` (e.g. a cross-namespace Secret it may no longer use). */
  async dropRef(rsKey: string, ref: WatchRef): Promise<void> {
    const r = this.#resolve(ref);
    const current = this.#refs.get(rsKey) ?? [];
    const kept = current.filter((m) => !(m.entryKey === r.entryKey && m.objKey === r.objKey));
    if (kept.length === current.length) return;
    this.#refs.set(rsKey, kept);
    this.#removeRef(rsKey, r);
    await this.#settleStops();
  }

  /** Whether `rsKey` holds a reference to this object. */
  holds(rsKey: string, ref: WatchRef): boolean {
    const r = this.#resolve(ref);
    return (this.#refs.get(rsKey) ?? []).some((m) => m.entryKey === r.entryKey && m.objKey === r.objKey);
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
    if (!single && namespace !== undefined && this.#wide.has(kindKey(ref.client, ref.resource))) {
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
    return [...this.#entries.values()].map((e) => ({
      cluster: e.client.name,
      clientId: e.client.id,
      resource: e.resource,
      namespace: e.namespace,
      ...(e.name !== undefined ? { name: e.name } : {}),
      refCount: e.users.size,
      objects: e.informer.size,
      synced: e.informer.hasSynced(),
      health: e.informer.health(),
    }));
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
      const { client, resource } = r.ref;
      const namespace = r.ref.clusterWide ? undefined : r.ref.namespace;
      const name = r.ref.single ? r.ref.name : undefined;
      const informer = new Informer({
        client,
        resource,
        ...(namespace !== undefined ? { namespace } : {}),
        ...(name !== undefined ? { fieldSelector: `metadata.name=${name}` } : {}),
        logger: this.#logger,
        transform: stripForCache,
        onRecovered: () => {
          const entry = this.#entries.get(r.entryKey);
          if (entry) this.#onRecovered?.([...entry.users]);
        },
        onTrouble: () => {
          const entry = this.#entries.get(r.entryKey);
          if (entry) this.#onTrouble?.([...entry.users]);
        },
        ...this.#informerOptions,
      });
      const created: Entry = {
        key: r.entryKey,
        informer,
        client,
        resource,
        namespace,
        name,
        index: new Map(),
        users: new Set(),
        unsubscribe: () => {},
      };
      created.unsubscribe = informer.onEvent((e) => this.#dispatch(created, e));
      this.#entries.set(r.entryKey, created);
      informer.start();
      this.#logger.debug(
        { cluster: client.name, resource: gvr(resource), namespace, ...(name ? { name } : {}) },
        "started informer (shared by every ResourceSync that needs it)",
      );
      entry = created;
      if (name === undefined && namespace !== undefined) this.#maybeWiden(client, resource);
    }
    let keys = entry.index.get(r.objKey);
    if (!keys) {
      keys = new Set();
      entry.index.set(r.objKey, keys);
    }
    keys.add(rsKey);
    entry.users.add(rsKey);
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
      this.#wide.delete(kindKey(entry.client, entry.resource));
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

  /**
   * Waits until the informers of `wanted` (references of `rsKey`) have their first list, at most
   * `syncTimeoutMs`. Other references `rsKey` still holds from a failed attempt are not waited for. A namespace-wide
   * list refused with Forbidden is narrowed to single-object informers and waited for again; any other list
   * refused for good (no rights, unknown kind) fails at once (the informer keeps retrying in the background, so
   * a fix of RBAC is picked up).
   */
  async #waitSynced(rsKey: string, wanted: ResolvedRef[]): Promise<void> {
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
      if (refused.length > 0 || Date.now() >= deadline) throw this.#syncError(refused[0] ?? pending[0]);
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

  /**
   * Widening (see WatchesOptions.widening): starts the kind's cluster-wide informer beside the per-namespace
   * ones, and only once its first list is in moves every reference onto it and stops the per-namespace ones, so
   * no read ever meets an unsynced cache (which would look like a missing target).
   */
  #maybeWiden(client: ClusterClient, resource: ResourceInfo): void {
    const w = this.#widening;
    const kk = kindKey(client, resource);
    if (
      !w ||
      client !== w.local ||
      this.#wide.has(kk) ||
      this.#widenPending.has(kk) ||
      this.#wideRefused.has(kk)
    )
      return;
    const perNamespace = [...this.#entries.values()].filter(
      (e) =>
        e.client === client &&
        e.name === undefined &&
        e.namespace !== undefined &&
        gvr(e.resource) === gvr(resource),
    );
    if (perNamespace.length < w.at || perNamespace.length < w.minShare * w.namespaceCount()) return;
    this.#widenPending.add(kk);
    const holder = `\u0000widening ${kk}`;
    const probe: WatchRef = { client, resource, namespace: undefined, name: "" };
    const wideRef: ResolvedRef = {
      entryKey: entryKeyOf(client, resource, undefined),
      objKey: "",
      ref: { ...probe, clusterWide: true },
    };
    this.#addRef(holder, wideRef);
    const entry = this.#entries.get(wideRef.entryKey);
    if (!entry) return;
    const settle = (ok: boolean) => {
      this.#widenPending.delete(kk);
      if (!ok) {
        this.#wideRefused.add(kk);
        this.#removeRef(holder, wideRef);
        this.#logger.info(
          { resource: gvr(resource) },
          "cluster-wide list refused: keeping per-namespace watches",
        );
        return;
      }
      this.#wide.add(kk);
      for (const [rsKey, refs] of this.#refs) {
        const moved = refs.map((r) =>
          r.ref.client === client && gvr(r.ref.resource) === gvr(resource) ? this.#resolve(r.ref) : r,
        );
        if (moved.every((m, i) => m.entryKey === refs[i]?.entryKey)) continue;
        for (const m of moved) this.#addRef(rsKey, m);
        this.#refs.set(rsKey, moved);
        for (const [i, r] of refs.entries()) if (moved[i]?.entryKey !== r.entryKey) this.#removeRef(rsKey, r);
      }
      this.#removeRef(holder, wideRef);
      this.#logger.info(
        { resource: gvr(resource), namespaces: perNamespace.length },
        "watching this kind cluster-wide instead of namespace by namespace",
      );
    };
    // A slow first list (a large cluster) or a passing error is waited out: only a refusal (Forbidden and the
    // like) keeps the per-namespace watches for good. Meanwhile those serve every read.
    const outcome = new Promise<boolean>((resolve) => {
      const check = () => {
        if (this.#entries.get(wideRef.entryKey) !== entry) resolve(false);
        else if (entry.informer.hasSynced()) resolve(true);
        else if (isTerminal(entry.informer.health().lastErrorReason)) resolve(false);
        else setTimeout(check, WIDEN_CHECK_MS).unref();
      };
      void entry.informer.synced.then(check);
      check();
    });
    void outcome.then((ok) => {
      if (this.#entries.get(wideRef.entryKey) === entry) settle(ok);
      else this.#widenPending.delete(kk);
    });
  }

  #syncError(late: Entry | undefined): SinkerError {
    if (!late) return new SinkerError("Internal", "no informer to wait for");
    const what = `${late.resource.plural}${late.resource.group ? `.${late.resource.group}` : ""}`;
    const where = late.namespace ? ` in namespace "${late.namespace}"` : "";
    const { lastError, lastErrorReason } = late.informer.health();
    // keep a meaningful reason of the informer's last failure (Forbidden, Unauthorized…)
    const terminal = isTerminal(lastErrorReason);
    const reason = terminal && lastErrorReason ? lastErrorReason : "ClusterUnreachable";
    const when = terminal ? "" : ` within ${Math.round(this.#syncTimeoutMs / 1000)} s`;
    return new SinkerError(
      reason,
      `could not list ${what}${where} on cluster "${late.client.name}"${when}` +
        (lastError ? `: ${lastError}` : ""),
    );
  }
}
