/**
 * The per-cluster share of the workers (docs/security.md#what-a-remote-server-cannot-do): at most `limit`
 * reconciles may be in flight against one remote API server at once, so ResourceSyncs of a dead, slow or malicious
 * cluster, each holding a worker up to a request's total deadline, never hold them all. The local cluster is not
 * limited.
 *
 * A reconcile takes a `Lease` when it starts and enters each remote server when it first gets that server's
 * client (resolve.ts, through `ReconcileContext.hold`), before it sends anything there. When the server's share
 * is used up, `enter` parks the key and throws `ClusterBusy`: the reconcile ends at once without a request, a
 * status write or a failure, and its worker is free. A slot freed on that server wakes the parked key that waited
 * longest (a woken key that no longer needs the slot passes the wake-up on); the controller's timer re-adds a parked
 * key anyway after a while, so no key depends on a wake-up alone. Level-triggered: a parked key is simply
 * reconciled again later, from the caches.
 *
 * The key is the cluster, not the kubeconfig Secret: the CA its kubeconfig trusts (cluster-identity.ts
 * `shareKey`, known without a request), else the API server's origin (scheme, host, port). Copies of one
 * kubeconfig in many Secrets (each with a circuit breaker of its own) and aliases of one server (`localhost`, an
 * IP, a DNS name) share one cluster's slots. A tenant who controls a server can give it several CAs, names or
 * ports, each with a share of its own; the share bounds one cluster, the circuit breaker and the request
 * deadlines bound what each of those costs (docs/security.md).
 */

/** The share when `--max-concurrent-reconciles-per-cluster` is not given: half the workers, at least one. */
export function defaultClusterShare(concurrency: number): number {
  return Math.max(1, Math.floor(concurrency / 2));
}

/**
 * What identifies one API server for the share: `https://host:port`, host lower-case without a trailing dot,
 * the default port written out, no path (one server behind several paths is still one server). A string that is
 * not an http(s) URL (e.g. a CA key, `ca:…`) is its own key.
 */
export function serverKey(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return server;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return server;
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const port = url.port || (url.protocol === "http:" ? "80" : "443");
  return `${url.protocol}//${host}:${port}`;
}

/** May one more reconcile start against a server that has `inFlight` reconciles, under a share of `limit`? */
export function admits(inFlight: number, limit: number): boolean {
  return inFlight < limit;
}

/** Thrown by `Lease.enter` when the server's share is used up; the reconcile ends without a request. */
export class ClusterBusy extends Error {
  readonly server: string;
  constructor(server: string) {
    super("the remote cluster's share of workers is in use"); // no URL: it is Secret data
    this.server = server;
  }
}

/** The servers one reconcile holds slots of. */
export interface Lease {
  /**
   * Takes a slot of `server` (once per server per reconcile). When its share is used up, parks the reconcile's
   * key on it and throws ClusterBusy.
   */
  enter(server: string): void;
  /** Frees every slot taken (waking one parked key per slot). Idempotent. */
  release(): void;
}

export class ClusterShare {
  readonly limit: number;
  readonly #inFlight = new Map<string, number>();
  /** Server key → parked ResourceSync keys, oldest first. */
  readonly #parked = new Map<string, Set<string>>();
  /** ResourceSync key → the server key it is parked on. */
  readonly #parkedOn = new Map<string, string>();
  /** Woken keys not started yet → the server key they were woken for. */
  readonly #woken = new Map<string, string>();
  readonly #wake: (key: string) => void;

  /** `wake`: a parked key may go now (the controller queues it). */
  constructor(limit: number, wake: (key: string) => void) {
    this.limit = Math.max(1, limit);
    this.#wake = wake;
  }

  /** Starts the reconcile of `key`: it is no longer parked. */
  lease(key: string): Lease {
    /** A key woken for a slot that it then does not take (its spec changed) passes the slot on at the end. */
    const parkedOn = this.#parkedOn.get(key) ?? this.#woken.get(key);
    this.#woken.delete(key);
    this.#unpark(key);
    const held = new Set<string>();
    let released = false;
    return {
      enter: (server) => {
        const k = serverKey(server);
        if (released || held.has(k)) return;
        const n = this.#inFlight.get(k) ?? 0;
        if (!admits(n, this.limit)) {
          // parked at once, not when the reconcile has unwound: a slot freed meanwhile must find it
          this.park(key, k);
          throw new ClusterBusy(k);
        }
        this.#inFlight.set(k, n + 1);
        held.add(k);
      },
      release: () => {
        if (released) return;
        released = true;
        for (const k of held) this.#leave(k);
        if (parkedOn !== undefined && !held.has(parkedOn)) this.#wakeIfFree(parkedOn);
      },
    };
  }

  /** `key` waits for a slot of `server` (what `enter` does when the share is used up). */
  park(key: string, server: string): void {
    const k = serverKey(server);
    this.#unpark(key);
    let keys = this.#parked.get(k);
    if (!keys) {
      keys = new Set();
      this.#parked.set(k, keys);
    }
    keys.add(key);
    this.#parkedOn.set(key, k);
  }

  /** Reconciles in flight against `server` (tests, diagnostics). */
  inFlight(server: string): number {
    return this.#inFlight.get(serverKey(server)) ?? 0;
  }

  /** Keys parked right now (a gauge). */
  get parked(): number {
    return this.#parkedOn.size;
  }

  #leave(k: string): void {
    const n = (this.#inFlight.get(k) ?? 1) - 1;
    if (n <= 0) this.#inFlight.delete(k);
    else this.#inFlight.set(k, n);
    this.#wakeIfFree(k);
  }

  /** Wakes the key parked longest on server `k` when a slot of `k` is free. */
  #wakeIfFree(k: string): void {
    if (!admits(this.#inFlight.get(k) ?? 0, this.limit)) return;
    const next = this.#parked.get(k)?.values().next();
    if (next && !next.done) {
      this.#unpark(next.value);
      this.#woken.set(next.value, k);
      this.#wake(next.value);
    }
  }

  #unpark(key: string): void {
    const k = this.#parkedOn.get(key);
    if (k === undefined) return;
    this.#parkedOn.delete(key);
    const keys = this.#parked.get(k);
    keys?.delete(key);
    if (keys?.size === 0) this.#parked.delete(k);
  }
}
