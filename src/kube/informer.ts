/**
 * List + watch of one resource in one cluster (one namespace or all), with an in-memory store.
 *
 * The loop: list (paginated) → diff against the store (synthetic deleted / added / modified events) → watch from
 * the list's resourceVersion with bookmarks and a randomised `timeoutSeconds` (5–10 min, so the server rotates
 * the watch and many informers do not reconnect in step) and an idle timer → when the server ends the watch,
 * watch again from the last resourceVersion seen → on 410 Gone / "too old resource version", list again. Errors
 * are retried with exponential backoff and jitter, forever, while started.
 *
 * Objects in the store are SHARED with every caller (get/list/events): callers must not mutate them. With
 * NODE_ENV=development or test they are deep-frozen, so a mutation throws (in strict mode) right where it happens.
 */
import type { Logger } from "pino";
import { SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo, WatchEvent } from "./client.ts";
import type { InformerEvent, InformerHealth, InformerOptions } from "./informer-types.ts";
import { isPlainObject, type KubeObject, objectKey } from "./object.ts";

export { stripForCache } from "./cache-transform.ts";
export type { InformerEvent, InformerEventType, InformerHealth, InformerOptions } from "./informer-types.ts";

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function isExpired(status: KubeObject): boolean {
  return status.code === 410 || status.reason === "Expired" || status.reason === "Gone";
}

export class Informer {
  readonly client: ClusterClient;
  readonly resource: ResourceInfo;
  readonly namespace: string | undefined;
  readonly fieldSelector: string | undefined;
  /** Resolves when the first list is in the store. Never rejects. */
  readonly synced: Promise<void>;

  readonly #logger: Logger;
  readonly #pageSize: number;
  readonly #timeoutRange: [number, number];
  readonly #idleTimeoutSeconds: number;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #freeze: boolean;
  readonly #transform: (object: KubeObject) => KubeObject;
  readonly #onRecovered: (() => void) | undefined;
  readonly #onTrouble: (() => void) | undefined;
  /** A failure since the last success: the next success is a recovery. */
  #failing = false;
  readonly #store = new Map<string, KubeObject>();
  readonly #handlers = new Set<(e: InformerEvent) => void>();
  #resolveSynced!: () => void;
  #hasSynced = false;
  #eventsSeen = 0;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #health: InformerHealth = { watching: false, consecutiveFailures: 0, lists: 0, watches: 0, expired: 0 };

  constructor(opts: InformerOptions) {
    this.client = opts.client;
    this.resource = opts.resource;
    this.namespace = opts.resource.namespaced ? opts.namespace : undefined;
    this.fieldSelector = opts.fieldSelector;
    this.#logger = opts.logger.child({
      cluster: opts.client.name,
      resource: opts.resource.group ? `${opts.resource.plural}.${opts.resource.group}` : opts.resource.plural,
      ...(this.namespace ? { namespace: this.namespace } : {}),
    });
    this.#pageSize = opts.pageSize ?? 500;
    this.#timeoutRange = opts.watchTimeoutSeconds ?? [300, 600];
    this.#idleTimeoutSeconds = opts.idleTimeoutSeconds ?? 150;
    this.#backoff = opts.backoff ?? { initialMs: 500, maxMs: 30_000 };
    this.#freeze = opts.freeze ?? (process.env.NODE_ENV === "development" || process.env.NODE_ENV === "test");
    this.#transform = opts.transform ?? ((o) => o);
    this.#onRecovered = opts.onRecovered;
    this.#onTrouble = opts.onTrouble;
    this.synced = new Promise<void>((resolve) => {
      this.#resolveSynced = resolve;
    });
  }

  start(): void {
    if (this.#loop) return;
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = this.#run(abort.signal).catch((err: unknown) => {
      // #run never throws; this is a last resort so a bug cannot become an unhandled rejection
      this.#logger.error({ err }, "informer loop crashed");
    });
  }

  /** Stops the watch and waits for the loop to end. The store is kept (but no longer updated). */
  async stop(): Promise<void> {
    this.#abort?.abort();
    this.#wakeUp?.();
    const loop = this.#loop;
    this.#loop = undefined;
    this.#abort = undefined;
    await loop;
    this.#health.watching = false;
  }

  get running(): boolean {
    return this.#loop !== undefined;
  }

  hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** The cached object (shared: do not mutate). For a cluster-scoped resource, namespace is ignored. */
  get(namespace: string | undefined, name: string): KubeObject | undefined {
    return this.#store.get(objectKey(this.resource.namespaced ? namespace : undefined, name));
  }

  /** All cached objects (shared: do not mutate). */
  list(): KubeObject[] {
    return [...this.#store.values()];
  }

  get size(): number {
    return this.#store.size;
  }

  /** Registers a handler; returns its unsubscribe function. A handler that throws is logged and ignored. */
  onEvent(handler: (e: InformerEvent) => void): () => void {
    this.#handlers.add(handler);
    return () => {
      this.#handlers.delete(handler);
    };
  }

  health(): InformerHealth {
    return { ...this.#health };
  }

  // ---------------------------------------------------------------- the loop

  async #run(signal: AbortSignal): Promise<void> {
    let resourceVersion: string | undefined;
    // 410s in a row without a useful watch in between: relisting at once is right the first time, backoff after
    let expiredStreak = 0;
    while (!signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          resourceVersion = await this.#relist(signal);
          if (signal.aborted) break;
        }
        const started = Date.now();
        const before = this.#eventsSeen;
        const outcome = await this.#watchOnce(resourceVersion, signal, (rv) => {
          resourceVersion = rv;
        });
        if (signal.aborted) break;
        if (outcome === "expired") {
          resourceVersion = undefined;
          await this.#expired(++expiredStreak, signal);
          continue;
        }
        expiredStreak = 0;
        if (Date.now() - started < 1000 && this.#eventsSeen === before) {
          // the server ended the watch at once and said nothing: do not spin
          this.#health.consecutiveFailures++;
          await this.#sleep(this.#delay(this.#health.consecutiveFailures), signal);
        } else {
          this.#health.consecutiveFailures = 0;
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof SinkerError && err.reason === "Gone") {
          resourceVersion = undefined;
          await this.#expired(++expiredStreak, signal);
          continue;
        }
        this.#health.consecutiveFailures++;
        this.#failing = true;
        // the second failure in a row: a dropped connection that reconnects at once is no trouble worth a
        // reconcile of every user; a cluster that refuses the reconnect too is
        if (this.#health.consecutiveFailures === 2 && this.#hasSynced)
          this.#call(this.#onTrouble, "onTrouble");
        const message = err instanceof Error ? err.message : String(err);
        this.#health.lastError = message;
        this.#health.lastErrorReason = err instanceof SinkerError ? err.reason : "Internal";
        const delay = this.#delay(this.#health.consecutiveFailures);
        const log = { err: message, failures: this.#health.consecutiveFailures, retryInMs: delay };
        if (this.#health.consecutiveFailures === 1) this.#logger.warn(log, "list/watch failed");
        else this.#logger.debug(log, "list/watch failed again");
        await this.#sleep(delay, signal);
      }
    }
    this.#health.watching = false;
  }

  /** Our resourceVersion is too old (410 Gone): list again, at once the first time, with backoff after that. */
  async #expired(streak: number, signal: AbortSignal): Promise<void> {
    this.#health.expired++;
    this.#logger.info("resourceVersion expired (410 Gone): listing again");
    if (streak > 1) await this.#sleep(this.#delay(streak - 1), signal);
  }

  #delay(failures: number): number {
    const base = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** Math.min(failures - 1, 30));
    return Math.round(base * (0.5 + Math.random()));
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        this.#wakeUp = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wakeUp = done;
    });
  }

  /** Lists everything (paginated), replaces the store, emits the differences. Returns the list's resourceVersion. */
  async #relist(signal: AbortSignal): Promise<string> {
    const fresh = new Map<string, KubeObject>();
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.client.list(this.resource, this.namespace, {
        limit: this.#pageSize,
        ...(cont ? { continue: cont } : {}),
        ...(this.fieldSelector ? { fieldSelector: this.fieldSelector } : {}),
      });
      if (signal.aborted) return rv;
      for (const item of page.items) {
        const name = item.metadata?.name;
        if (!name) continue;
        fresh.set(
          objectKey(this.namespace === undefined ? item.metadata?.namespace : this.namespace, name),
          this.#transform(item),
        );
      }
      cont = page.continue;
      rv = page.resourceVersion;
    } while (cont);
    this.#health.lists++;
    // (a continued list is consistent at the first page's resourceVersion; the last page carries the same one)
    const events: InformerEvent[] = [];
    const initial = !this.#hasSynced ? { initial: true } : {};
    for (const [key, old] of this.#store) {
      if (!fresh.has(key)) {
        this.#store.delete(key);
        events.push({ type: "deleted", object: old, old, ...initial });
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.#store.get(key);
      if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) continue;
      const stored = this.#freeze ? deepFreeze(obj) : obj;
      this.#store.set(key, stored);
      events.push(
        old
          ? { type: "modified", object: stored, old, ...initial }
          : { type: "added", object: stored, ...initial },
      );
    }
    this.#health.lastSyncAt = Date.now();
    this.#health.consecutiveFailures = 0;
    delete this.#health.lastError;
    delete this.#health.lastErrorReason;
    this.#recovered();
    if (!this.#hasSynced) {
      this.#hasSynced = true;
      this.#logger.debug({ objects: this.#store.size }, "initial list done");
    }
    for (const e of events) this.#emit(e);
    this.#resolveSynced();
    return rv;
  }

  /** One watch request. Returns "expired" when the server says the resourceVersion is too old. */
  async #watchOnce(
    resourceVersion: string,
    signal: AbortSignal,
    setResourceVersion: (rv: string) => void,
  ): Promise<"ended" | "expired"> {
    const [lo, hi] = this.#timeoutRange;
    const timeoutSeconds = Math.round(lo + Math.random() * Math.max(0, hi - lo));
    let expired = false;
    let failure: SinkerError | undefined;
    this.#health.watches++;
    try {
      await this.client.watch(
        this.resource,
        this.namespace,
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          signal,
          onOpen: () => {
            // the server accepted the watch: whatever failed before is over
            this.#health.watching = true;
            this.#health.consecutiveFailures = 0;
            delete this.#health.lastError;
            delete this.#health.lastErrorReason;
            this.#recovered();
          },
          ...(this.fieldSelector ? { fieldSelector: this.fieldSelector } : {}),
          idleTimeoutSeconds: this.#idleTimeoutSeconds,
        },
        (e) => {
          const r = this.#onWatchEvent(e);
          if (r === "expired") expired = true;
          else if (r instanceof SinkerError) failure = r;
          else if (r !== undefined) setResourceVersion(r);
        },
      );
    } finally {
      this.#health.watching = false;
    }
    if (expired) return "expired";
    if (failure) throw failure;
    return "ended";
  }

  /** Applies one watch event. Returns the new resourceVersion, "expired", or an error from an ERROR event. */
  #onWatchEvent(e: WatchEvent): string | "expired" | SinkerError | undefined {
    this.#eventsSeen++;
    this.#health.lastSyncAt = Date.now();
    if (e.type === "ERROR") {
      if (isExpired(e.object)) return "expired";
      const msg = typeof e.object.message === "string" ? e.object.message : "watch error";
      const code = typeof e.object.code === "number" ? e.object.code : undefined;
      return new SinkerError("ClusterUnreachable", `cluster "${this.client.name}": watch error: ${msg}`, {
        ...(code !== undefined ? { status: code } : {}),
      });
    }
    const rv = e.object.metadata?.resourceVersion;
    if (e.type === "BOOKMARK") return rv;
    const name = e.object.metadata?.name;
    if (!name) return rv;
    const key = objectKey(this.namespace === undefined ? e.object.metadata?.namespace : this.namespace, name);
    const old = this.#store.get(key);
    if (e.type === "DELETED") {
      this.#store.delete(key);
      const object = this.#freeze ? deepFreeze(this.#transform(e.object)) : this.#transform(e.object);
      this.#emit(old ? { type: "deleted", object, old } : { type: "deleted", object });
      return rv;
    }
    if (old && old.metadata?.resourceVersion === rv) return rv; // unchanged: dedupe
    const object = this.#freeze ? deepFreeze(this.#transform(e.object)) : this.#transform(e.object);
    this.#store.set(key, object);
    this.#emit(old ? { type: "modified", object, old } : { type: "added", object });
    return rv;
  }

  #recovered(): void {
    if (!this.#failing) return;
    this.#failing = false;
    this.#call(this.#onRecovered, "onRecovered");
  }

  #call(handler: (() => void) | undefined, what: string): void {
    try {
      handler?.();
    } catch (err) {
      this.#logger.error({ err: err instanceof Error ? err.message : String(err) }, `${what} threw`);
    }
  }

  #emit(e: InformerEvent): void {
    for (const h of this.#handlers) {
      try {
        h(e);
      } catch (err) {
        this.#logger.error(
          { err: err instanceof Error ? err.message : String(err) },
          "informer event handler threw",
        );
      }
    }
  }
}

/** For tests and diagnostics: true when `value` looks like a meta/v1 Status saying 410 Gone. */
export function isGoneStatus(value: unknown): boolean {
  return isPlainObject(value) && isExpired(value as KubeObject);
}
