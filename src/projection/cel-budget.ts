/**
 * The cost budget of CEL expressions (mapping `expression`s), one per projection for all its expressions together.
 *
 * Neither CEL engine on npm tracks evaluation cost the way cel-go does, so Sinker meters it itself (cel.ts wraps
 * every function of the environment and adds a tick to every comprehension iteration):
 * - steps: one per function call and per comprehension iteration, plus one per 64 characters (or list/map
 *   entries) of the values a call takes and returns;
 * - sizes: no call may return a string or bytes longer than MAX_CEL_STRING_LENGTH, nor a list or map with more
 *   than MAX_CEL_COLLECTION_SIZE entries (checked before the calls that would build them: `+`, `join`,
 *   `replace`, `format`);
 * - time: MAX_CEL_MILLIS of the controller thread's CPU time per projection, checked every CLOCK_EVERY steps, so
 *   that what the step count prices too low (deep equality of large values, say) is still stopped. CPU time, not
 *   wall-clock time: on a busy machine (or while the JIT warms up) a cheap expression must not fail.
 * Exceeding any of them fails the mapping with ExpressionBudgetExceeded.
 */
import { SinkerError } from "../errors.ts";

/**
 * Steps per projection: about 0.1 s on one core (a metered step costs 0.5 µs here). cel-go's usual limit in
 * Kubernetes ecosystems is 1,000,000 cost units, also about 0.1 s.
 */
export const MAX_CEL_STEPS = 200_000;
/** Longest string or bytes value an expression may build. */
export const MAX_CEL_STRING_LENGTH = 1024 * 1024;
/** Most entries of a list or map an expression may build. */
export const MAX_CEL_COLLECTION_SIZE = 100_000;
/** CPU time of all expressions of one projection: the backstop for work the steps price too low. */
export const MAX_CEL_MILLIS = 250;
/** Steps between two readings of the thread's CPU time (a reading costs a few µs). */
const CLOCK_EVERY = 128;

/** Characters (or entries) that cost one step when passed to or returned from a call. */
const UNITS_PER_STEP = 64;

export class ExpressionBudget {
  #steps = 0;
  #nextClock = CLOCK_EVERY;
  /** CPU time (µs) of this thread when the first expression started. */
  #cpuStart: number | undefined;
  /** Set once the budget is spent: an error absorbed by `||` or `&&` must still fail the mapping. */
  exceeded: SinkerError | undefined;
  readonly maxSteps: number;
  readonly maxMillis: number;

  constructor(maxSteps = MAX_CEL_STEPS, maxMillis = MAX_CEL_MILLIS) {
    this.maxSteps = maxSteps;
    this.maxMillis = maxMillis;
  }

  /** Starts the clock (at the first expression of the projection). */
  start(): void {
    this.#cpuStart ??= cpuMicros();
  }

  /** Spends `n` steps and checks the clock; throws ExpressionBudgetExceeded once spent. */
  step(n = 1): void {
    if (this.exceeded !== undefined) throw this.exceeded;
    this.#steps += n;
    if (this.#steps > this.maxSteps) {
      this.fail(`more than ${this.maxSteps} evaluation steps`);
    }
    if (this.#steps >= this.#nextClock && this.#cpuStart !== undefined) {
      this.#nextClock = this.#steps + CLOCK_EVERY;
      if (cpuMicros() - this.#cpuStart > this.maxMillis * 1000)
        this.fail(`more than ${this.maxMillis} ms of CPU`);
    }
  }

  /** Steps for values of the given sizes (characters or entries). */
  stepForSizes(units: number): void {
    this.step(1 + Math.floor(units / UNITS_PER_STEP));
  }

  fail(why: string): never {
    this.exceeded = new SinkerError(
      "ExpressionBudgetExceeded",
      `the expressions of this ResourceSync need too much work (all together): ${why}`,
    );
    throw this.exceeded;
  }

  get spentSteps(): number {
    return this.#steps;
  }
}

function cpuMicros(): number {
  const { user, system } = process.threadCpuUsage();
  return user + system;
}
