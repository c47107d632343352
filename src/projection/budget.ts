/**
 * The work budget of one projection (all its mappings together): a tenant can make a projection do a lot of work
 * (many mappings, each a query walking the whole source, regular expressions, copies of large values), and the
 * projection runs on the controller's event loop. One budget spans every mapping, so adding mappings does not
 * add budget; exceeding it fails the reconcile with ProjectionBudgetExceeded.
 */
import { SinkerError } from "../errors.ts";

/** Nodes visited by queries plus nodes copied into the target, over all mappings of one projection. */
export const MAX_PROJECTION_WORK = 2_000_000;
/** Estimated regular-expression steps (subject length × program size), over all mappings of one projection. */
export const MAX_PROJECTION_REGEX_WORK = 20_000_000;

export class WorkBudget {
  #work = 0;
  #regexWork = 0;
  readonly maxWork: number;
  readonly maxRegexWork: number;

  constructor(maxWork = MAX_PROJECTION_WORK, maxRegexWork = MAX_PROJECTION_REGEX_WORK) {
    this.maxWork = maxWork;
    this.maxRegexWork = maxRegexWork;
  }

  /** Spends `n` units of node work; throws ProjectionBudgetExceeded once the budget is spent. */
  spend(n: number): void {
    this.#work += n;
    if (this.#work > this.maxWork) throw exceeded(`visits or copies more than ${this.maxWork} nodes`);
  }

  /** Spends `n` estimated regular-expression steps. */
  spendRegex(n: number): void {
    this.#regexWork += n;
    if (this.#regexWork > this.maxRegexWork) throw exceeded("runs too costly regular expressions");
  }

  get spent(): { work: number; regexWork: number } {
    return { work: this.#work, regexWork: this.#regexWork };
  }
}

function exceeded(why: string): SinkerError {
  return new SinkerError(
    "ProjectionBudgetExceeded",
    `the projection needs too much work: all mappings together ${why}`,
  );
}
