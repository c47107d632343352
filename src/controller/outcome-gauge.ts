/**
 * sinker_resourcesyncs{state}: ResourceSyncs by last outcome, kept by counting transitions (never a walk over
 * every ResourceSync).
 */
import type { Metrics } from "../admin/metrics.ts";

export class OutcomeGauge {
  readonly #metrics: Metrics;
  readonly #outcomes = new Map<string, boolean>();
  readonly #counts = { synced: 0, failing: 0 };

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  /** The key's last outcome: synced (true), failing (false), or no longer counted (undefined). */
  set(key: string, ok: boolean | undefined): void {
    const before = this.#outcomes.get(key);
    if (before === ok) return;
    if (before !== undefined) this.#counts[before ? "synced" : "failing"]--;
    if (ok === undefined) this.#outcomes.delete(key);
    else {
      this.#outcomes.set(key, ok);
      this.#counts[ok ? "synced" : "failing"]++;
    }
    this.#metrics.resourceSyncs.set({ state: "synced" }, this.#counts.synced);
    this.#metrics.resourceSyncs.set({ state: "failing" }, this.#counts.failing);
  }
}
