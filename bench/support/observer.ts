/**
 * The benchmark's eyes: watches the target namespaces (the benchmark's own admin identity, not audited) and
 * records when each target first holds an expected value, and when it disappears. Every timing figure of the
 * benchmark comes from these watch events, never from polling.
 */
import pino from "pino";
import type { ClusterClient, ResourceInfo } from "../../src/kube/client.ts";
import { Informer } from "../../src/kube/informer.ts";
import type { KubeObject } from "../../src/kube/object.ts";

export type ReadValue = (o: KubeObject) => string | undefined;

interface Expectation {
  value: string;
  /** Must see this value before the expected one counts (a drift that must be seen, then undone). */
  after?: string;
  sawAfter?: boolean;
  resolve: (at: number) => void;
}

export class TargetObserver {
  /** cluster name → informer of the target namespace there */
  readonly #informers = new Map<string, Informer>();
  /** "cluster/name" → expectation */
  readonly #expect = new Map<string, Expectation>();
  readonly #gone = new Map<string, (at: number) => void>();
  readonly #readValue: ReadValue;

  constructor(
    ends: Array<{ cluster: string; client: ClusterClient; namespace: string }>,
    res: ResourceInfo,
    readValue: ReadValue,
  ) {
    this.#readValue = readValue;
    const logger = pino({ level: "silent" });
    for (const end of ends) {
      const inf = new Informer({
        client: end.client,
        resource: res,
        namespace: end.namespace,
        logger,
        freeze: false,
      });
      inf.onEvent((e) => this.#onEvent(end.cluster, e.type, e.object));
      this.#informers.set(end.cluster, inf);
    }
  }

  async start(): Promise<void> {
    for (const inf of this.#informers.values()) inf.start();
    await Promise.all([...this.#informers.values()].map((i) => i.synced));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#informers.values()].map((i) => i.stop()));
  }

  /** Resolves with the time (ms) the target first holds `value` (now, if it already does). */
  whenValue(cluster: string, name: string, value: string, opts: { after?: string } = {}): Promise<number> {
    return new Promise((resolve) => {
      const key = `${cluster}/${name}`;
      const current = this.#current(cluster, name);
      if (!opts.after && current !== undefined && this.#readValue(current) === value) {
        resolve(performance.now());
        return;
      }
      this.#expect.set(key, { value, ...(opts.after ? { after: opts.after } : {}), resolve });
    });
  }

  /** Resolves with the time (ms) the target is deleted (now, if it does not exist). */
  whenGone(cluster: string, name: string): Promise<number> {
    return new Promise((resolve) => {
      if (this.#current(cluster, name) === undefined) resolve(performance.now());
      else this.#gone.set(`${cluster}/${name}`, resolve);
    });
  }

  #current(cluster: string, name: string): KubeObject | undefined {
    const inf = this.#informers.get(cluster);
    return inf?.get(inf.namespace, name);
  }

  #onEvent(cluster: string, type: string, o: KubeObject): void {
    const at = performance.now();
    const key = `${cluster}/${o.metadata?.name ?? ""}`;
    if (type === "deleted") {
      const done = this.#gone.get(key);
      this.#gone.delete(key);
      done?.(at);
      return;
    }
    const want = this.#expect.get(key);
    if (!want) return;
    const value = this.#readValue(o);
    if (want.after !== undefined && !want.sawAfter) {
      if (value === want.after) want.sawAfter = true;
      return;
    }
    if (value === want.value) {
      this.#expect.delete(key);
      want.resolve(at);
    }
  }
}
