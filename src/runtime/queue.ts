/**
 * A work queue with the semantics of client-go's rate-limited delaying queue, which controller-runtime and
 * kube-rs both build on:
 *  - a key waiting in the queue is stored once, however often it is added (de-duplication);
 *  - a key is never handed to two workers at once: added while in flight, it is queued again when the worker
 *    calls `done`;
 *  - `addAfter` delays an add, `addRateLimited` delays it by the key's own exponential backoff, `forget` resets it;
 *  - an add may carry a check, for a change that the work in flight may itself have caused (the watch event of
 *    its own write, seen before the write's answer): while the key is in flight, such adds queue it again on
 *    `done` only if one of their checks still holds then.
 * Written here because no maintained npm package offers these guarantees for async workers.
 */

export interface QueueObserver {
  /** A key was added (before de-duplication), as workqueue_adds_total counts. */
  added(): void;
  /** A rate-limited retry was scheduled. */
  retried(): void;
  /** Queue length changed. */
  depth(n: number): void;
  /** Seconds a key waited in the queue before a worker took it. */
  waited(seconds: number): void;
  /** Seconds a worker held a key. */
  worked(seconds: number): void;
}

export interface BackoffOptions {
  /** First retry delay. */
  baseMs: number;
  /** Longest retry delay. */
  maxMs: number;
}

const noObserver: QueueObserver = {
  added() {},
  retried() {},
  depth() {},
  waited() {},
  worked() {},
};

/** Past this many checked adds during one piece of work, the key is simply queued again (bounded memory). */
const MAX_CHECKS = 16;

/** A check that throws counts as holding: when in doubt, the key runs again. */
function holds(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return true;
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys waiting in `queue`, with the time they were first added (for the wait metric). */
  private readonly dirty = new Map<string, number>();
  /** Keys a worker holds, with the time it took them. */
  private readonly processing = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  /** Keys in flight every add of which, since they were taken, came with a check (see `add`). */
  private readonly checks = new Map<string, Array<() => boolean>>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private shuttingDown = false;
  private readonly observer: QueueObserver;
  private readonly backoff: BackoffOptions;

  constructor(options: { observer?: QueueObserver; backoff?: Partial<BackoffOptions> } = {}) {
    this.observer = options.observer ?? noObserver;
    this.backoff = { baseMs: 500, maxMs: 5 * 60_000, ...options.backoff };
  }

  get length(): number {
    return this.queue.length;
  }

  /** Keys held by workers right now, with the millisecond time each was taken. */
  inFlight(): ReadonlyMap<string, number> {
    return this.processing;
  }

  /**
   * Queues the key. `stillNeeded`: for a key in flight, the add counts at `done` only if this returns true then
   * (or another add without a check came); for a key not in flight it is ignored.
   */
  add(key: string, stillNeeded?: () => boolean): void {
    if (this.shuttingDown) return;
    this.observer.added();
    // A key in flight is re-queued by done(); queuing it now would let a second worker take it.
    if (this.processing.has(key)) {
      const checks = this.checks.get(key);
      if (!stillNeeded || (checks && checks.length >= MAX_CHECKS)) this.checks.delete(key);
      else if (checks) checks.push(stillNeeded);
      else if (!this.dirty.has(key)) this.checks.set(key, [stillNeeded]);
      if (!this.dirty.has(key)) this.dirty.set(key, Date.now());
      return;
    }
    if (this.dirty.has(key)) return;
    this.dirty.set(key, Date.now());
    this.push(key);
  }

  /** Adds the key after `delayMs`; an earlier pending delayed add for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Adds the key after its exponential backoff (base · 2^failures, capped) and counts one more failure. */
  addRateLimited(key: string): number {
    const delay = this.nextBackoff(key);
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
    this.observer.retried();
    this.addAfter(key, delay);
    return delay;
  }

  /** The delay the key's next `addRateLimited` will wait. */
  nextBackoff(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    return Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(failures, 30));
  }

  /** Resets the key's backoff after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Whether the key waits in the queue or a worker holds it (not: a delayed add). */
  pending(key: string): boolean {
    return this.dirty.has(key) || this.processing.has(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Waits for the next key; resolves `undefined` once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The worker is finished with the key; a key added meanwhile is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined) this.observer.worked((Date.now() - started) / 1000);
    const checks = this.checks.get(key);
    this.checks.delete(key);
    // every add while in flight came with a check, and none holds now: the work itself caused them
    if (checks && !checks.some(holds)) this.dirty.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Stops handing out keys; waiting workers get `undefined`. Keys in flight may still call done(). */
  shutdown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.checks.clear();
    this.observer.depth(0);
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.start(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.observer.depth(this.queue.length);
  }

  private take(): string | undefined {
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.observer.depth(this.queue.length);
    this.start(key);
    return key;
  }

  private start(key: string): void {
    const addedAt = this.dirty.get(key) ?? Date.now();
    this.dirty.delete(key);
    this.processing.set(key, Date.now());
    this.observer.waited((Date.now() - addedAt) / 1000);
  }
}
