/**
 * Widening of local watches (WatchesOptions.widening): once one kind is watched namespace by namespace in enough
 * namespaces, one cluster-wide informer replaces those informers. Its first list is waited for beside them, and
 * only then are the references moved onto it, so no read ever meets an unsynced cache.
 */
import type { Logger } from "pino";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import {
  type Entry,
  entryKeyOf,
  gvr,
  isTerminal,
  kindKey,
  type ResolvedRef,
  type WatchesOptions,
  type WatchRef,
} from "./watch-refs.ts";

/** How often a pending cluster-wide watch's health is looked at (in memory, no request) while it lists. */
const WIDEN_CHECK_MS = 500;

/** What widening needs of the Watches it serves. */
export interface WideningHost {
  logger: Logger;
  entries: ReadonlyMap<string, Entry>;
  /** rsKey → its current references (moved onto the cluster-wide informer). */
  refs: Map<string, ResolvedRef[]>;
  addRef(rsKey: string, r: ResolvedRef): void;
  removeRef(rsKey: string, r: ResolvedRef): void;
  resolve(ref: WatchRef): ResolvedRef;
}

export class Widening {
  readonly #options: WatchesOptions["widening"];
  readonly #host: WideningHost;
  /** `client|gvr` of kinds watched cluster-wide (widened), being widened, or whose cluster-wide list failed. */
  readonly #wide = new Set<string>();
  readonly #pending = new Set<string>();
  readonly #refused = new Set<string>();

  constructor(options: WatchesOptions["widening"], host: WideningHost) {
    this.#options = options;
    this.#host = host;
  }

  /** Whether the kind (kindKey) is watched cluster-wide. */
  isWide(kind: string): boolean {
    return this.#wide.has(kind);
  }

  /** The kind's cluster-wide informer stopped: it starts again namespace by namespace. */
  forget(kind: string): void {
    this.#wide.delete(kind);
  }

  /**
   * Starts the kind's cluster-wide informer beside the per-namespace
   * ones, and only once its first list is in moves every reference onto it and stops the per-namespace ones, so
   * no read ever meets an unsynced cache (which would look like a missing target).
   */
  consider(client: ClusterClient, resource: ResourceInfo): void {
    const w = this.#options;
    const kk = kindKey(client, resource);
    if (!w || client !== w.local || this.#wide.has(kk) || this.#pending.has(kk) || this.#refused.has(kk))
      return;
    const perNamespace = [...this.#host.entries.values()].filter(
      (e) =>
        e.client === client &&
        e.name === undefined &&
        e.namespace !== undefined &&
        gvr(e.resource) === gvr(resource),
    );
    if (perNamespace.length < w.at || perNamespace.length < w.minShare * w.namespaceCount()) return;
    this.#pending.add(kk);
    const holder = `\u0000widening ${kk}`;
    const probe: WatchRef = { client, resource, namespace: undefined, name: "" };
    const wideRef: ResolvedRef = {
      entryKey: entryKeyOf(client, resource, undefined),
      objKey: "",
      ref: { ...probe, clusterWide: true },
    };
    this.#host.addRef(holder, wideRef);
    const entry = this.#host.entries.get(wideRef.entryKey);
    if (!entry) return;
    const settle = (ok: boolean) => {
      this.#pending.delete(kk);
      if (!ok) {
        this.#refused.add(kk);
        this.#host.removeRef(holder, wideRef);
        this.#host.logger.info(
          { resource: gvr(resource) },
          "cluster-wide list refused: keeping per-namespace watches",
        );
        return;
      }
      this.#wide.add(kk);
      for (const [rsKey, refs] of this.#host.refs) {
        const moved = refs.map((r) =>
          r.ref.client === client && gvr(r.ref.resource) === gvr(resource) ? this.#host.resolve(r.ref) : r,
        );
        if (moved.every((m, i) => m.entryKey === refs[i]?.entryKey)) continue;
        for (const m of moved) this.#host.addRef(rsKey, m);
        this.#host.refs.set(rsKey, moved);
        for (const [i, r] of refs.entries())
          if (moved[i]?.entryKey !== r.entryKey) this.#host.removeRef(rsKey, r);
      }
      this.#host.removeRef(holder, wideRef);
      this.#host.logger.info(
        { resource: gvr(resource), namespaces: perNamespace.length },
        "watching this kind cluster-wide instead of namespace by namespace",
      );
    };
    // A slow first list (a large cluster) or a passing error is waited out: only a refusal (Forbidden and the
    // like) keeps the per-namespace watches for good. Meanwhile those serve every read.
    const outcome = new Promise<boolean>((resolve) => {
      const check = () => {
        if (this.#host.entries.get(wideRef.entryKey) !== entry) resolve(false);
        else if (entry.informer.hasSynced()) resolve(true);
        else if (isTerminal(entry.informer.health().lastErrorReason)) resolve(false);
        else setTimeout(check, WIDEN_CHECK_MS).unref();
      };
      void entry.informer.synced.then(check);
      check();
    });
    void outcome.then((ok) => {
      if (this.#host.entries.get(wideRef.entryKey) === entry) settle(ok);
      else this.#pending.delete(kk);
    });
  }
}
