/**
 * The event-loop delay series (`nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds`, prom-client's
 * names), sampled only while Sinker has work.
 *
 * Why not prom-client's own: its sampler is a timer that runs for the life of the process (every 100 ms here, 10 ms
 * by default), and an idle controller then spends about half of its CPU waking up for it (measured: 0.30 s of CPU
 * per idle minute with it, 0.13–0.21 without; 10 wake-ups a second against 0.4). Stalls only matter while there is
 * work to delay, so the sampler runs from the first sign of work (`busy()`: a key queued, by the work queue of
 * either controller, or the start) until IDLE_AFTER_MS without any, and an idle process does not wake up for it.
 *
 * What is reported is the delay beyond the sampling interval, i.e. how late the sampling timer fired (Node's
 * histogram records whole intervals, so prom-client's series never read below the interval). A scrape with no
 * sample since the one before (an idle process) reads 0 on every series: nothing waited.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Gauge, type Registry } from "prom-client";

/** The sampling interval, ms. */
export const EVENT_LOOP_RESOLUTION_MS = 100;
/** Sampling stops this long after the last sign of work, ms. */
export const IDLE_AFTER_MS = 2_000;

/** The series, in the order `collect` fills them: name suffix and help. */
const SERIES = [
  ["min", "The minimum event-loop delay since the last scrape, while Sinker had work."],
  ["max", "The maximum event-loop delay since the last scrape, while Sinker had work."],
  ["mean", "The mean event-loop delay since the last scrape, while Sinker had work."],
  ["stddev", "The standard deviation of the event-loop delays since the last scrape, while Sinker had work."],
  ["p50", "The 50th percentile of the event-loop delays since the last scrape, while Sinker had work."],
  ["p90", "The 90th percentile of the event-loop delays since the last scrape, while Sinker had work."],
  ["p99", "The 99th percentile of the event-loop delays since the last scrape, while Sinker had work."],
] as const;

type DelaySeries = (typeof SERIES)[number][0];

/** A series' name, as prom-client names it. */
const nameOf = (series: DelaySeries) => `nodejs_eventloop_lag_${series}_seconds`;

/** The series' names. */
export const EVENT_LOOP_DELAY_NAMES: readonly string[] = SERIES.map(([s]) => nameOf(s));

export class EventLoopDelay {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({
    resolution: EVENT_LOOP_RESOLUTION_MS,
  });
  #sampling = false;
  #lastBusy = 0;
  #idleCheck: NodeJS.Timeout | undefined;

  constructor(registry: Registry) {
    const gauges = new Map<DelaySeries, Gauge>();
    for (const [series, help] of SERIES) {
      // the first series' collect fills them all from one reading of the histogram, then resets it
      const collect = series === "min" ? () => this.#collect(gauges) : undefined;
      const name = nameOf(series);
      gauges.set(series, new Gauge({ name, help, registers: [registry], ...(collect ? { collect } : {}) }));
    }
  }

  /** There is work: sample (again) from now until IDLE_AFTER_MS after the last call. */
  busy(): void {
    this.#lastBusy = performance.now();
    if (this.#sampling) return;
    this.#sampling = true;
    this.#histogram.enable();
    this.#checkIdleIn(IDLE_AFTER_MS);
  }

  /** Is the sampler running (tests)? */
  get sampling(): boolean {
    return this.#sampling;
  }

  /** Stops sampling at once. */
  stop(): void {
    clearTimeout(this.#idleCheck);
    this.#histogram.disable();
    this.#sampling = false;
  }

  #checkIdleIn(ms: number): void {
    this.#idleCheck = setTimeout(() => {
      const quiet = performance.now() - this.#lastBusy;
      if (quiet >= IDLE_AFTER_MS) this.stop();
      else this.#checkIdleIn(IDLE_AFTER_MS - quiet);
    }, ms);
    this.#idleCheck.unref();
  }

  #collect(gauges: Map<DelaySeries, Gauge>): void {
    const h = this.#histogram;
    const sampled = h.count > 0;
    /** Seconds beyond the sampling interval (a recorded interval is never much shorter than it). */
    const late = (ns: number) => (sampled ? Math.max(0, ns / 1e9 - EVENT_LOOP_RESOLUTION_MS / 1000) : 0);
    const values: Record<DelaySeries, number> = {
      min: late(h.min),
      max: late(h.max),
      mean: late(h.mean),
      // the spread of the intervals is the spread of the delays
      stddev: sampled ? h.stddev / 1e9 : 0,
      p50: late(h.percentile(50)),
      p90: late(h.percentile(90)),
      p99: late(h.percentile(99)),
    };
    for (const [series, gauge] of gauges) gauge.set(values[series]);
    h.reset();
  }
}
