/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics:
 * - A candidate tries every retry period (with up to 20% jitter) to take the Lease. It may when the Lease does
 *   not exist, has no holder (released), or has not changed for its leaseDurationSeconds as measured on the
 *   candidate's own clock since it last saw it change (so clock skew between replicas does not matter).
 * - The leader renews every retry period. When it has not managed to renew for the renew deadline, it gives up
 *   leadership at once (onStoppedLeading) and does not try again: the process should exit and restart clean.
 *   renewDeadline < leaseDuration guarantees it stops before anyone else can take over.
 * - Every write is a create or a replace with the last seen resourceVersion, so two candidates can never both
 *   win: the loser gets a 409 Conflict.
 * - stop() releases a held Lease (holderIdentity cleared, leaseDurationSeconds 1) so another replica takes over
 *   within one retry period instead of one lease duration.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { asSinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { KubeObject } from "../kube/object.ts";

export interface LeaderElectorOptions {
  client: ClusterClient;
  namespace: string;
  /** Name of the Lease. */
  name: string;
  /** Default: hostname + "_" + random suffix. */
  identity?: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  /** Called once, when this process becomes the leader. */
  onStartedLeading: () => void;
  /** Called once, when this process stops being the leader (lost the Lease, or stop() while leading). */
  onStoppedLeading: () => void;
  /** Called when the observed leader changes (including to this process). */
  onNewLeader?: (identity: string) => void;
}

export type LeaderState = "candidate" | "leading" | "lost" | "stopped";

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** RFC 3339 with microseconds, as the API server's MicroTime ("2006-01-02T15:04:05.000000Z07:00"). */
export function microTime(date: Date = new Date()): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * The pod's name (POD_NAME, from the downward API) + "_" + 8 random hex characters, else the host name: unique per
 * process and recognisable in `kubectl get lease -o yaml`. The host name alone does not name the pod when it runs
 * with hostNetwork (every replica on a node would be the node).
 */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.POD_NAME || hostname()}_${randomBytes(4).toString("hex")}`;
}

const JITTER = 1.2;

export class LeaderElector {
  readonly identity: string;
  readonly #opts: LeaderElectorOptions;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  #state: LeaderState = "candidate";
  #resource: ResourceInfo | undefined;
  /** The Lease as last read or written by us. */
  #lease: KubeObject | undefined;
  /** Identity of the observed record and the local time it was last seen to change. */
  #observed: { key: string; at: number } | undefined;
  #lastLeader = "";
  #run: Promise<void> | undefined;
  /** Consecutive failed attempts, to keep a long outage from logging a warning every retry period. */
  #failures = 0;

  constructor(opts: LeaderElectorOptions) {
    if (opts.leaseDurationMs <= opts.renewDeadlineMs) {
      throw new Error("leader election: lease duration must be greater than the renew deadline");
    }
    if (opts.renewDeadlineMs <= opts.retryPeriodMs * JITTER) {
      throw new Error("leader election: renew deadline must be greater than 1.2 × the retry period");
    }
    this.#opts = opts;
    this.identity = opts.identity ?? defaultIdentity();
    this.#log = opts.logger;
  }

  get state(): LeaderState {
    return this.#state;
  }

  isLeader(): boolean {
    return this.#state === "leading";
  }

  /** Starts campaigning in the background. Errors are logged and retried; it never rejects. */
  start(): void {
    this.#run ??= this.#loop().catch((err: unknown) => {
      this.#log.error({ err }, "leader election loop failed");
    });
  }

  /**
   * Stops campaigning or leading. With `release` (default), a held Lease is released so another replica can
   * take it at once; `release: false` just stops renewing, as a crashed process would.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    if (this.#state === "stopped") return;
    const wasLeading = this.#state === "leading";
    this.#state = "stopped";
    this.#abort.abort();
    await this.#run;
    // Also when still a candidate: an attempt in flight may just have taken the Lease.
    if (opts.release !== false) await this.#release();
    if (wasLeading) this.#opts.onStoppedLeading();
  }

  async #loop(): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, leaseDurationMs, namespace, name } = this.#opts;
    this.#log.info(
      { lease: `${namespace}/${name}`, identity: this.identity, leaseDurationMs },
      "waiting to become the leader",
    );
    // Campaign.
    while (this.#state === "candidate") {
      if (await this.#tryAcquireOrRenew()) break;
      if (!(await this.#sleep(retryPeriodMs * (1 + Math.random() * (JITTER - 1))))) return;
    }
    if (this.#state !== "candidate") return;
    this.#state = "leading";
    this.#log.info({ lease: `${namespace}/${name}`, identity: this.identity }, "became the leader");
    this.#opts.onStartedLeading();

    // Lead: renew every retry period; give up when no renewal succeeded for the renew deadline.
    let lastRenew = Date.now();
    while (this.#state === "leading") {
      if (!(await this.#sleep(retryPeriodMs))) return;
      const remaining = lastRenew + renewDeadlineMs - Date.now();
      const renewed = remaining > 0 && (await this.#withDeadline(this.#tryAcquireOrRenew(), remaining));
      if (this.#state !== "leading") return;
      if (renewed) {
        lastRenew = Date.now();
        continue;
      }
      if (Date.now() - lastRenew >= renewDeadlineMs) {
        this.#state = "lost";
        this.#log.error(
          { lease: `${namespace}/${name}`, identity: this.identity, renewDeadlineMs },
          "lost leadership: could not renew the Lease within the renew deadline",
        );
        this.#opts.onStoppedLeading();
        return;
      }
    }
  }

  /** Resolves false when stop() interrupted the sleep. */
  async #sleep(ms: number): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
      return true;
    } catch {
      return false;
    }
  }

  async #withDeadline(p: Promise<boolean>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #resourceInfo(): Promise<ResourceInfo> {
    this.#resource ??= await this.#opts.client.resolve("coordination.k8s.io/v1", "Lease");
    return this.#resource;
  }

  /** One attempt. True when we hold the Lease afterwards. Never throws. */
  async #tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name } = this.#opts;
    const now = new Date();
    const leaseDurationSeconds = Math.ceil(this.#opts.leaseDurationMs / 1000);
    try {
      const res = await this.#resourceInfo();
      // The leader renews from its own copy (one request); anyone else reads first.
      let current =
        this.#state === "leading" && this.#lease ? this.#lease : await client.get(res, namespace, name);
      if (current === undefined) {
        const created = await client.create(res, namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          } satisfies LeaseSpec,
        });
        this.#seen(created);
        this.#failures = 0;
        return true;
      }
      const spec = (current.spec ?? {}) as LeaseSpec;
      this.#seen(current);
      const holder = spec.holderIdentity ?? "";
      const ours = holder === this.identity;
      if (!ours && holder !== "") {
        const durationMs = (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
        const observedAt = this.#observed?.at ?? now.getTime();
        if (observedAt + durationMs > now.getTime()) return false; // held by a live leader
      }
      const next: LeaseSpec = {
        ...spec,
        holderIdentity: this.identity,
        leaseDurationSeconds,
        renewTime: microTime(now),
        acquireTime: ours && spec.acquireTime ? spec.acquireTime : microTime(now),
        // As client-go: every change of holder counts, also taking over a released Lease.
        leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      };
      current = await client.replace(res, { ...current, spec: next });
      this.#seen(current);
      this.#failures = 0;
      return true;
    } catch (err) {
      const error = asSinkerError(err);
      // A conflict means someone else wrote first: re-read next time.
      this.#lease = undefined;
      // A leader's failure always matters; a candidate's repeats every retry period: warn once in a while.
      this.#failures++;
      const loud = this.#state === "leading" || this.#failures % 30 === 1;
      const level = error.reason === "Conflict" || !loud ? "debug" : "warn";
      this.#log[level](
        { lease: `${namespace}/${name}`, reason: error.reason, err: error.message, failures: this.#failures },
        this.#state === "leading" ? "failed to renew the Lease" : "failed to acquire the Lease",
      );
      return false;
    }
  }

  #seen(lease: KubeObject): void {
    this.#lease = lease;
    const spec = (lease.spec ?? {}) as LeaseSpec;
    const key = `${spec.holderIdentity ?? ""}|${spec.renewTime ?? ""}|${spec.acquireTime ?? ""}|${spec.leaseTransitions ?? 0}`;
    if (this.#observed?.key !== key) this.#observed = { key, at: Date.now() };
    const holder = spec.holderIdentity ?? "";
    if (holder !== this.#lastLeader) {
      this.#lastLeader = holder;
      if (holder !== "") {
        if (holder !== this.identity) this.#log.info({ leader: holder }, "new leader observed");
        this.#opts.onNewLeader?.(holder);
      }
    }
  }

  /** Clears holderIdentity so another candidate takes the Lease at its next attempt. Best effort, bounded. */
  async #release(): Promise<void> {
    const { client, namespace, name } = this.#opts;
    const lease = this.#lease;
    if (!lease) return;
    const spec = (lease.spec ?? {}) as LeaseSpec;
    if (spec.holderIdentity !== this.identity) return;
    const now = microTime();
    const released: KubeObject = {
      ...lease,
      spec: { ...spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
    };
    try {
      const res = await this.#resourceInfo();
      const ok = await this.#withDeadline(
        client.replace(res, released).then(() => true),
        Math.max(1000, this.#opts.retryPeriodMs),
      );
      if (ok) this.#log.info({ lease: `${namespace}/${name}` }, "released the Lease");
      else this.#log.warn({ lease: `${namespace}/${name}` }, "timed out releasing the Lease");
    } catch (err) {
      this.#log.warn(
        { lease: `${namespace}/${name}`, err: asSinkerError(err).message },
        "could not release the Lease; another replica takes over when it expires",
      );
    }
  }
}
