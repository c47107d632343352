/**
 * The function library of mapping expressions, every function of it metered (see cel-budget.ts): the CEL standard
 * library and cel-go's strings extension as @bufbuild/cel implements them, plus what Kubernetes users know from
 * its CEL environments: `base64.encode`/`base64.decode` (cel-go encoders) and the regular-expression functions
 * `matches`, `find`, `findAll`, all on Sinker's linear-time RE2 engine (src/regex.ts) with the pattern's cost
 * charged before it runs. Nothing here reaches the environment, files, clock or network: the functions are pure.
 */
import {
  type CelFunc,
  type CelList,
  CelScalar,
  type CelValue,
  celEnv,
  celFunc,
  celMethod,
  isCelError,
  isCelList,
  isCelMap,
  listType,
} from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import type { SinkerError } from "../errors.ts";
import { compileRegex } from "../regex.ts";
import type { WorkBudget } from "./budget.ts";
import { type ExpressionBudget, MAX_CEL_COLLECTION_SIZE, MAX_CEL_STRING_LENGTH } from "./cel-budget.ts";

const { STRING, BYTES, BOOL, INT, DYN } = CelScalar;

/** What the functions charge while one projection's expressions run (evaluation is synchronous). */
export interface Meter {
  budget: ExpressionBudget;
  work: WorkBudget;
}
let meter: Meter | undefined;

/** Runs `fn` with `m` as the meter of every function call. */
export function withMeter<T>(m: Meter, fn: () => T): T {
  const previous = meter;
  meter = m;
  try {
    return fn();
  } finally {
    meter = previous;
  }
}

/** The internal function added to every comprehension's loop condition: one step per iteration. */
export const TICK_FUNCTION = "@sinker_tick";

const tick = celFunc(TICK_FUNCTION, [DYN], DYN, (cond) => {
  meter?.budget.step();
  return cond;
});

function regex(pattern: string, subject: string): ReturnType<typeof compileRegex> & { ok: true } {
  const compiled = compileRegex(pattern);
  // The reason never quotes the pattern nor the subject (either may come from a Secret).
  if (!compiled.ok) throw new Error(`invalid regular expression: ${compiled.why}`);
  meter?.work.spendRegex(compiled.regex.cost(subject));
  return compiled;
}

const FIND_ALL_UNLIMITED = MAX_CEL_COLLECTION_SIZE + 1;

const extras: CelFunc[] = [
  tick,
  celFunc("base64.encode", [BYTES], STRING, (b) => Buffer.from(b).toString("base64")),
  celFunc("base64.decode", [STRING], BYTES, (s) => {
    // cel-go accepts standard base64 with or without padding, nothing else.
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.replace(/=+$/, "").length % 4 === 1) {
      throw new Error("invalid base64 data");
    }
    return new Uint8Array(Buffer.from(s, "base64"));
  }),
  celMethod("matches", STRING, [STRING], BOOL, function (pattern) {
    return regex(pattern, this).regex.matchesPart(this);
  }),
  celFunc("matches", [STRING, STRING], BOOL, (subject, pattern) =>
    regex(pattern, subject).regex.matchesPart(subject),
  ),
  celMethod("find", STRING, [STRING], STRING, function (pattern) {
    return regex(pattern, this).regex.findAll(this, 1)[0] ?? "";
  }),
  celMethod("findAll", STRING, [STRING], listType(STRING), function (pattern) {
    return regex(pattern, this).regex.findAll(this, FIND_ALL_UNLIMITED);
  }),
  celMethod("findAll", STRING, [STRING, INT], listType(STRING), function (pattern, limit) {
    const n =
      limit < 0n
        ? FIND_ALL_UNLIMITED
        : Number(limit > BigInt(FIND_ALL_UNLIMITED) ? FIND_ALL_UNLIMITED : limit);
    return regex(pattern, this).regex.findAll(this, n);
  }),
];

/** Size of a value for the step count and the size caps: characters, bytes or entries (shallow). */
export function sizeOf(v: unknown): number {
  if (typeof v === "string" || v instanceof Uint8Array) return v.length;
  if (isCelList(v) || isCelMap(v)) return v.size;
  return 0;
}

/**
 * Upper bound of what the functions that build large values would build, with the cap it must stay under;
 * checked before they run.
 */
function growth(name: string, target: unknown, args: readonly unknown[]): [number, number] {
  const strings = (n: number): [number, number] => [n, MAX_CEL_STRING_LENGTH];
  switch (name) {
    case "_+_": {
      const n = sizeOf(args[0]) + sizeOf(args[1]);
      return isCelList(args[0]) ? [n, MAX_CEL_COLLECTION_SIZE] : strings(n);
    }
    case "join": {
      const list = target as CelList;
      let n = list.size * (typeof args[0] === "string" ? args[0].length : 0);
      for (const item of list) n += sizeOf(item);
      return strings(n);
    }
    case "replace": {
      const s = sizeOf(target);
      const from = Math.max(1, sizeOf(args[0]));
      return strings(s + (Math.floor(s / from) + 1) * sizeOf(args[1]));
    }
    case "format":
      // The arguments are printed whole: their deep size, walked no further than the cap.
      return strings(sizeOf(target) + deepSize(args[0], MAX_CEL_STRING_LENGTH));
    case "split":
      // With an empty separator, one entry per character (otherwise the result is checked once built).
      return args[0] === "" ? [sizeOf(target), MAX_CEL_COLLECTION_SIZE] : [0, 0];
    default:
      return [0, 0];
  }
}

/** Characters and entries of a value, all levels, counting no further than `limit`. */
function deepSize(root: unknown, limit: number): number {
  let n = 0;
  const stack: unknown[] = [root];
  while (stack.length > 0 && n <= limit) {
    const v = stack.pop();
    n += 1 + sizeOf(v); // characters, or entries, counted before any entry is pushed
    if (n > limit) break;
    if (isCelList(v)) for (const e of v) stack.push(e);
    else if (isCelMap(v)) for (const [k, e] of v) stack.push(k, e);
  }
  return n;
}

function checkSize(v: unknown, why: string): void {
  const n = sizeOf(v);
  if (typeof v === "string" || v instanceof Uint8Array) {
    if (n > MAX_CEL_STRING_LENGTH) meter?.budget.fail(`${why} a value longer than ${MAX_CEL_STRING_LENGTH}`);
  } else if (n > MAX_CEL_COLLECTION_SIZE) {
    meter?.budget.fail(`${why} a list or map of more than ${MAX_CEL_COLLECTION_SIZE} entries`);
  }
}

/** `f` with a meter around it: same name, signature and id, so it replaces `f` in the environment. */
function metered(f: CelFunc): CelFunc {
  const run = (target: CelValue | undefined, args: CelValue[]): CelValue => {
    const m = meter;
    if (m !== undefined) {
      let units = sizeOf(target);
      for (const a of args) units += sizeOf(a);
      m.budget.stepForSizes(units);
      const [grows, cap] = growth(f.name, target, args);
      if (grows > cap) m.budget.fail(`${f.name} would build a value larger than ${cap}`);
    }
    const result = f.call(0, target, args);
    if (result === undefined) throw new Error(`no matching overload for ${f.name}`);
    if (isCelError(result)) throw result;
    if (m !== undefined) {
      checkSize(result, `${f.name} built`);
      const units = sizeOf(result);
      if (units >= 64) m.budget.stepForSizes(units - 64);
    }
    return result;
  };
  if (f.target === undefined) {
    return celFunc(f.name, f.arguments, f.result, (...args: CelValue[]) => run(undefined, args));
  }
  return celMethod(f.name, f.target, f.arguments, f.result, function (this: CelValue, ...args: CelValue[]) {
    return run(this, args);
  });
}

/** The environment of mapping expressions: every function metered, no variables declared (bound at run). */
export function meteredEnvironment(): ReturnType<typeof celEnv> {
  const base = celEnv({ funcs: [...strings, ...extras] });
  const all = [...(base.funcs as unknown as Iterable<CelFunc>)];
  return celEnv({ funcs: all.map((f) => (f === tick ? f : metered(f))) });
}

/** Names of every function of the environment (compile-time check of calls). */
export function functionNames(env: ReturnType<typeof celEnv>): Set<string> {
  return new Set([...(env.funcs as unknown as Iterable<CelFunc>)].map((f) => f.name));
}

/** A SinkerError thrown through the engine: the budget's own error, or undefined. */
export function budgetError(m: Meter): SinkerError | undefined {
  return m.budget.exceeded;
}
