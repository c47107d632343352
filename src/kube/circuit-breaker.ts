/**
 * A per-cluster circuit breaker: after `threshold` consecutive transport failures (connection refused, TLS
 * failures, truncated or oversized answers), or at once after a timeout (a request held until its deadline held
 * a worker as long, and concurrent callers may have waited on it too), the cluster is "open": requests fail at
 * once, without touching the network, for a cool-down. Then one request is let through as a probe ("half-open"): success
 * closes the breaker, failure opens it again with a doubled cool-down (up to `maxCooldownMs`). So a dead, slow or
 * malicious cluster costs the workers of other ResourceSyncs nothing after a few attempts.
 *
 * Pure state machine with an injected clock; HTTP answers (even 4xx/5xx) count as success, as the cluster
 * answered. controller-runtime has no equivalent; this follows the classic pattern (Nygard, "Release It!").
 */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker (default 5). */
  threshold?: number;
  /**
   * First cool-down (default 10 s), doubled on each failed probe up to `maxCooldownMs` (default 15 s: a cluster
   * back from an outage is noticed within 15 s, and one probe per 15 s costs nothing; watches and lists go through
   * the breaker too, so a longer cap would delay recovery after the cluster is back by as much).
   */
  cooldownMs?: number;
  maxCooldownMs?: number;
  now?: () => number;
}

export type BreakerState = "closed" | "open" | "half-open";

export class CircuitBreaker {
  readonly #threshold: number;
  readonly #baseCooldownMs: number;
  readonly #maxCooldownMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openUntil = 0;
  #cooldownMs: number;
  #probing = false;
  #state: BreakerState = "closed";

  constructor(opts: CircuitBreakerOptions = {}) {
    this.#threshold = opts.threshold ?? 5;
    this.#baseCooldownMs = opts.cooldownMs ?? 10_000;
    this.#maxCooldownMs = opts.maxCooldownMs ?? 15_000;
    this.#cooldownMs = this.#baseCooldownMs;
    this.#now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Milliseconds until a probe is allowed (0 when closed or probing is allowed now). */
  retryInMs(): number {
    return this.#state === "open" ? Math.max(0, this.#openUntil - this.#now()) : 0;
  }

  /**
   * May a request go out now? When open and the cool-down has passed, exactly one caller gets `true` (the probe)
   * until it reports its outcome.
   */
  allow(): boolean {
    if (this.#state === "closed") return true;
    if (this.#state === "open" && this.#now() >= this.#openUntil) {
      this.#state = "half-open";
      this.#probing = false;
    }
    if (this.#state === "half-open" && !this.#probing) {
      this.#probing = true;
      return true;
    }
    return false;
  }

  /** The request ended without telling anything about the server (cancelled): a probe may be sent again. */
  abandon(): void {
    this.#probing = false;
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#cooldownMs = this.#baseCooldownMs;
    this.#state = "closed";
  }

  /**
   * A failed request. `timedOut`: the server held the request until a deadline, which holds a worker as long:
   * the breaker opens at once instead of after `threshold` such failures.
   */
  failure(timedOut = false): void {
    if (this.#state === "half-open") {
      this.#cooldownMs = Math.min(this.#cooldownMs * 2, this.#maxCooldownMs);
      this.#open();
      return;
    }
    if (this.#state === "open") return;
    this.#failures++;
    if (timedOut || this.#failures >= this.#threshold) this.#open();
  }

  #open(): void {
    this.#state = "open";
    this.#probing = false;
    this.#openUntil = this.#now() + this.#cooldownMs;
  }
}
