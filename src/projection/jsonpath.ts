/**
 * Sinker's JSONPath entry point: RFC 9535 through json-p3, with compiled paths cached and hostile input bounded.
 *
 * Paths come from ResourceSyncs, that is from tenants, and are evaluated in the controller's process against
 * objects of up to a few MiB, so a path must not be able to hang the process or blow its stack:
 * - a path is at most MAX_FIELD_PATH_LENGTH characters;
 * - descendant segments (`..`) occur at most MAX_DESCENDANT_SEGMENTS times in a path (filters included): each
 *   one can multiply the work by the document's size, and no sensible mapping needs more;
 * - the descendant segment gives up below MAX_DESCENDANT_DEPTH levels (json-p3's recursion limit);
 * - each evaluation has a work budget (MAX_VISITS): every node a segment takes in or puts out and every object
 *   member iterated counts, so filters running queries per node, absolute queries inside filters and wide or
 *   deep documents all end in an error instead of running for minutes;
 * - `match()`/`search()` run on a linear-time engine (RE2, src/regex.ts), never on V8's backtracking RegExp,
 *   and charge a regex budget the estimated cost of each call (subject length × program size);
 * - with a projection's WorkBudget, every evaluation also spends from that budget, shared by all mappings;
 * - a RangeError (stack exhausted, e.g. comparing two very deep values in a filter) becomes a SinkerError.
 * Every failure is a SinkerError: InvalidJSONPath (syntax, length, too many `..`), AmbiguousJSONPath (several
 * nodes where at most one is allowed) or JSONPathLimitExceeded (an evaluation bound above).
 *
 * The work count hooks into json-p3's two segment classes (their prototypes, found through a compiled query);
 * it only counts queries compiled by Sinker's own environment.
 */
import { type FilterFunction, JSONPathEnvironment, type JSONPathQuery, type JSONValue } from "json-p3";
import { MAX_FIELD_PATH_LENGTH } from "../api/schema.ts";
import { SinkerError } from "../errors.ts";
import { compileRegex } from "../regex.ts";
import type { WorkBudget } from "./budget.ts";

export const MAX_DESCENDANT_SEGMENTS = 2;
export const MAX_DESCENDANT_DEPTH = 128;
export const MAX_VISITS = 500_000;
/** Estimated steps of match()/search() per evaluation (subject length × program size, see src/regex.ts). */
export const MAX_REGEX_WORK = 20_000_000;
/** Compiled paths kept (least recently used ones are dropped). */
export const CACHE_SIZE = 1000;

/** The work of one evaluation, counted per call. */
interface Evaluation {
  /** Nodes and object members visited. */
  visits: number;
  regexWork: number;
  /** The budget of the projection this evaluation belongs to, if any (shared by all its mappings). */
  budget: WorkBudget | undefined;
}

/**
 * The evaluation running now. json-p3 calls the hooks below without a context, so they find the call's counts
 * here; evaluations are synchronous, and `selectAll` sets it for the span of one and restores it after.
 */
let running: Evaluation | undefined;

class BoundedEnvironment extends JSONPathEnvironment {
  override entries(obj: { [key: string]: JSONValue }): Array<[string, JSONValue]> {
    const entries = super.entries(obj);
    charge(entries.length + 1);
    return entries;
  }

  protected override setupFilterFunctions(): void {
    super.setupFilterFunctions();
    for (const name of ["match", "search"] as const) {
      const original = this.functionRegister.get(name);
      if (original !== undefined) this.functionRegister.set(name, linearRegexFunction(name, original));
    }
  }
}

class VisitLimitError extends Error {}

/**
 * RFC 9535 `match()` (whole string) and `search()` (any substring) on the linear-time engine (src/regex.ts):
 * the pattern is RFC 9485 I-Regexp, read with RE2 syntax (a superset but for block escapes). An invalid or too
 * large pattern makes the function false, as RFC 9535 asks for a non-conforming pattern. Each call charges the
 * evaluation's regex budget an upper estimate of its cost, so a costly pattern on long strings ends in an error.
 */
function linearRegexFunction(name: "match" | "search", original: FilterFunction): FilterFunction {
  const whole = name === "match";
  return {
    argTypes: original.argTypes,
    returnType: original.returnType,
    call(...args: unknown[]): unknown {
      const [subject, pattern] = args;
      if (typeof pattern !== "string" || typeof subject !== "string") return false;
      const compiled = compileRegex(pattern, "iregexp");
      if (!compiled.ok) return false;
      const cost = compiled.regex.cost(subject);
      if (running !== undefined) {
        running.regexWork += cost;
        if (running.regexWork > MAX_REGEX_WORK) throw new VisitLimitError();
        running.budget?.spendRegex(cost);
      }
      return whole ? compiled.regex.matchesWhole(subject) : compiled.regex.matchesPart(subject);
    },
  };
}

/** Adds work to the current evaluation's count; throws once the budget is spent. */
function charge(work: number): void {
  const e = running;
  if (e === undefined) return;
  e.visits += work;
  if (e.visits > MAX_VISITS) throw new VisitLimitError();
  e.budget?.spend(work);
}

const environment = new BoundedEnvironment({ maxRecursionDepth: MAX_DESCENDANT_DEPTH });

const COUNTED = Symbol("sinker.countedSegment");

interface Segment {
  environment: unknown;
  resolve(nodes: unknown[]): unknown[];
  /** DescendantSegment only: the recursive generator walking a subtree. */
  visit?: (node: unknown, depth?: number) => Generator<unknown>;
}

/** Makes every segment evaluation of Sinker's environment charge the nodes it takes in and puts out. */
function countSegmentWork(query: JSONPathQuery): void {
  const proto = Object.getPrototypeOf(query.segments[0]) as Segment & { [COUNTED]?: true };
  if (proto[COUNTED]) return;
  const resolve = proto.resolve;
  proto.resolve = function (this: Segment, nodes: unknown[]): unknown[] {
    if (this.environment !== environment) return resolve.call(this, nodes);
    charge(nodes.length);
    const out = resolve.call(this, nodes);
    charge(out.length);
    return out;
  };
  const visit = proto.visit;
  if (typeof visit === "function") {
    proto.visit = function* (this: Segment, node: unknown, depth?: number): Generator<unknown> {
      if (this.environment === environment) charge(1);
      yield* visit.call(this, node, depth);
    };
  }
  proto[COUNTED] = true;
}
countSegmentWork(environment.compile("$.a"));
countSegmentWork(environment.compile("$..a"));

export interface CompiledPath {
  /** The path as written in the ResourceSync (`""` for the whole object). */
  readonly source: string;
  /** The RFC 9535 query actually evaluated, e.g. `$.data.foo`. */
  readonly expression: string;
  /** Null: the whole object (no query to run). */
  readonly query: JSONPathQuery | null;
}

const cache = new Map<string, CompiledPath>();

/** The absolute expression for a path as written: `$.` prefixed unless it starts with `$`; empty = `$`. */
export function toExpression(path: string): string {
  if (path === "") return "$";
  return path.startsWith("$") ? path : `$.${path}`;
}

/**
 * Compiles a `fromFieldPath` (cached). Empty or omitted selects the whole object. Throws SinkerError
 * InvalidJSONPath naming the path when it is not valid RFC 9535 or is too long/complex.
 */
export function compilePath(path: string | undefined): CompiledPath {
  const key = path ?? "";
  const hit = cache.get(key);
  if (hit !== undefined) {
    // Refresh its place in the LRU order.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const compiled = compileUncached(key);
  cache.set(key, compiled);
  if (cache.size > CACHE_SIZE) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return compiled;
}

/** Number of compiled paths currently cached (for tests and metrics). */
export function cachedPathCount(): number {
  return cache.size;
}

function compileUncached(path: string): CompiledPath {
  if (path.length > MAX_FIELD_PATH_LENGTH) {
    throw new SinkerError(
      "InvalidJSONPath",
      `invalid JSONPath ${quote(path)}: longer than ${MAX_FIELD_PATH_LENGTH} characters`,
    );
  }
  const expression = toExpression(path);
  if (expression === "$") return { source: path, expression, query: null };
  let query: JSONPathQuery;
  try {
    query = environment.compile(expression);
  } catch (err) {
    throw new SinkerError("InvalidJSONPath", `invalid JSONPath ${quote(path)}: ${errorText(err)}`, {
      cause: err,
    });
  }
  const descendants = countDescendantSegments(query.toString());
  if (descendants > MAX_DESCENDANT_SEGMENTS) {
    throw new SinkerError(
      "InvalidJSONPath",
      `invalid JSONPath ${quote(path)}: ${descendants} descendant segments (..), at most ` +
        `${MAX_DESCENDANT_SEGMENTS} are allowed`,
    );
  }
  return { source: path, expression, query };
}

/** Counts `..` outside string literals in json-p3's canonical serialization of a query. */
function countDescendantSegments(canonical: string): number {
  let count = 0;
  let quoteChar: string | null = null;
  for (let i = 0; i < canonical.length; i++) {
    const c = canonical[i];
    if (quoteChar !== null) {
      if (c === "\\") i++;
      else if (c === quoteChar) quoteChar = null;
    } else if (c === "'" || c === '"') {
      quoteChar = c;
    } else if (c === "." && canonical[i + 1] === ".") {
      count++;
      i++;
    }
  }
  return count;
}

/**
 * Every node the path selects, in document order. The values are the document's own (not copies). With a
 * `workBudget`, the evaluation also spends from it (the budget of a whole projection).
 */
export function selectAll(path: CompiledPath, document: unknown, workBudget?: WorkBudget): unknown[] {
  if (path.query === null) return [document];
  const outer = running;
  running = { visits: 0, regexWork: 0, budget: workBudget };
  try {
    return path.query.query(document as JSONValue).values();
  } catch (err) {
    throw evaluationError(path, err);
  } finally {
    running = outer;
  }
}

export type Selection = { found: false } | { found: true; value: unknown };

/**
 * The one node the path selects, or `found: false` when it selects nothing. Throws SinkerError
 * AmbiguousJSONPath naming the path when it selects more than one node. The value is the document's own.
 */
export function selectOne(path: CompiledPath, document: unknown, workBudget?: WorkBudget): Selection {
  if (path.query === null) return { found: true, value: document };
  const values = selectAll(path, document, workBudget);
  if (values.length > 1) {
    throw new SinkerError(
      "AmbiguousJSONPath",
      `JSONPath ${quote(path.source)} selects more than one node; it must select at most one`,
    );
  }
  return values.length === 0 ? { found: false } : { found: true, value: values[0] };
}

function evaluationError(path: CompiledPath, err: unknown): SinkerError {
  if (err instanceof SinkerError) {
    return new SinkerError(err.reason, `JSONPath ${quote(path.source)}: ${err.message}`, { cause: err });
  }
  const name = err instanceof Error ? err.name : "";
  let why: string;
  if (err instanceof VisitLimitError)
    why =
      "it needs too much work on this document (it visits too many nodes or runs costly regular expressions)";
  else if (name === "JSONPathRecursionLimitError") why = `descends more than ${MAX_DESCENDANT_DEPTH} levels`;
  else if (err instanceof RangeError) why = "the document is too deeply nested to evaluate it";
  // Other errors are not quoted: they might carry values of the document, which may be a Secret.
  else why = name === "" ? "evaluation failed" : `evaluation failed (${name})`;
  return new SinkerError(
    "JSONPathLimitExceeded",
    `JSONPath ${quote(path.source)} cannot be evaluated: ${why}`,
    {
      cause: err,
    },
  );
}

function quote(path: string): string {
  return JSON.stringify(path.length > 120 ? `${path.slice(0, 120)}…` : path);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
