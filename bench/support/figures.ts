/** Small helpers of the benchmarks: latency percentiles and a process's memory and CPU from Linux /proc. */
import { readFileSync } from "node:fs";

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of `values` (ms), rounded to 0.1 ms. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((x, y) => x - y);
  const at = (p: number) => {
    if (sorted.length === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return Math.round((sorted[rank - 1] ?? Number.NaN) * 10) / 10;
  };
  return { count: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

/** Peak resident set (VmHWM) and current RSS of `pid`, in MiB. */
export function memoryMiB(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { peak: kb("VmHWM") / 1024, now: kb("VmRSS") / 1024 };
}

/** CPU seconds (user + system) `pid` has used so far. Linux reports clock ticks of 1/100 s. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // the command name (field 2) may hold spaces: fields after it are counted from its closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
