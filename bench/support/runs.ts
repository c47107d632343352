/** Several runs of the scale benchmark: which one the table shows, and the ratios of each. */
import type { ScenarioResult, Sut } from "./scenario.ts";

/** One run: each system measured once, in the same conditions. */
export type Run = Partial<Record<Sut, ScenarioResult>>;

/** Sinker / ideal of a figure in one run; NaN when either system was not measured. */
export function ratio(r: Run, get: (x: ScenarioResult) => number): number {
  return r.sinker && r.ideal ? get(r.sinker) / get(r.ideal) : Number.NaN;
}

/**
 * The run whose convergence ratio is the median (the lower middle one of an even count): one whole run, so that
 * the table's figures all come from the same conditions. With a single system, its median convergence.
 */
export function medianRun(all: readonly Run[]): Run {
  const key = (r: Run) => {
    const x = ratio(r, (s) => s.convergenceMs);
    return Number.isFinite(x) ? x : ((r.sinker ?? r.ideal)?.convergenceMs ?? 0);
  };
  const sorted = [...all].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? {};
}
