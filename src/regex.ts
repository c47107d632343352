/**
 * Linear-time regular expressions for every pattern a tenant supplies (the allowed-namespaces annotation,
 * JSONPath `match()`/`search()`).
 *
 * JavaScript's RegExp backtracks, so a pattern like `((a)+)+` takes exponential time, and no syntactic guard
 * catches every such shape. re2js (a port of RE2) matches in time linear in the subject for a given program,
 * and its syntax is RE2's, which is also what the Rust controller's regex crate accepts: `(?i)`, `(?P<name>…)`,
 * `\A`, `\z`, `[[:alpha:]]`, `\pL`. Backreferences and lookaround do not exist in it.
 *
 * The remaining cost factor is the size of the compiled program (`a{1000}` is 1000 instructions): patterns are
 * at most MAX_PATTERN_LENGTH characters and MAX_PROGRAM_SIZE instructions, and `cost()` tells callers how much
 * work a match may take so that they can charge it to a budget.
 *
 * Compiled programs are cached by (dialect, pattern) in a bounded LRU, failures included, so that a pattern
 * evaluated on every reconcile is parsed once.
 */
import type { RE2JS } from "re2js";
import { lazyModule } from "./lazy-module.ts";

export const MAX_PATTERN_LENGTH = 4096;
export const MAX_PROGRAM_SIZE = 20_000;
export const REGEX_CACHE_SIZE = 1000;

/** `re2`: RE2 syntax as written. `iregexp`: RFC 9485 (JSONPath): `.` matches neither `\n` nor `\r`. */
export type RegexDialect = "re2" | "iregexp";

export interface LinearRegex {
  /** Does the pattern match the whole subject? */
  matchesWhole(subject: string): boolean;
  /** Does the pattern match somewhere in the subject? */
  matchesPart(subject: string): boolean;
  /** The first `limit` non-overlapping matches, left to right (CEL `find`/`findAll`). */
  findAll(subject: string, limit: number): string[];
  /** An upper estimate of the steps one match on `subject` takes (subject length × program size). */
  cost(subject: string): number;
}

/** A refused pattern: `why` never quotes the pattern (it may come from a Secret). */
export type CompiledRegex = { ok: true; regex: LinearRegex } | { ok: false; why: string };

/** re2js, loaded at the first pattern (most installations have none: about 1 MiB of resident memory). */
const re2js = lazyModule<typeof import("re2js")>(import.meta.url, "re2js");

const cache = new Map<string, CompiledRegex>();

/** Compiles (or takes from the cache) a pattern. Never throws. */
export function compileRegex(pattern: string, dialect: RegexDialect = "re2"): CompiledRegex {
  const key = `${dialect}\u0000${pattern}`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const compiled = compileUncached(pattern, dialect);
  cache.set(key, compiled);
  if (cache.size > REGEX_CACHE_SIZE) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return compiled;
}

/** Number of cached compilations (tests). */
export function cachedRegexCount(): number {
  return cache.size;
}

function compileUncached(pattern: string, dialect: RegexDialect): CompiledRegex {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return { ok: false, why: `longer than ${MAX_PATTERN_LENGTH} characters` };
  }
  let re: RE2JS;
  try {
    re = re2js().RE2JS.compile(dialect === "iregexp" ? iRegexpToRe2(pattern) : pattern);
  } catch {
    // The parser's message quotes the pattern.
    return { ok: false, why: "not a valid RE2 regular expression" };
  }
  const size = programSize(re);
  if (size > MAX_PROGRAM_SIZE) {
    return { ok: false, why: `compiles to more than ${MAX_PROGRAM_SIZE} instructions` };
  }
  return {
    ok: true,
    regex: {
      matchesWhole: (subject) => re.testExact(subject),
      matchesPart: (subject) => re.test(subject),
      findAll: (subject, limit) => {
        const found: string[] = [];
        const m = re.matcher(subject);
        while (found.length < limit && m.find()) found.push(m.group() ?? "");
        return found;
      },
      cost: (subject) => (subject.length + 1) * size,
    },
  };
}

function programSize(re: RE2JS): number {
  const prog = (re.re2() as { prog?: { numInst?: () => number } }).prog;
  const n = typeof prog?.numInst === "function" ? prog.numInst() : Number.POSITIVE_INFINITY;
  return Math.max(1, n);
}

/**
 * RFC 9485 I-Regexp to RE2: the syntaxes agree except for `.`, which in I-Regexp matches any character but
 * `\n` and `\r` (RE2's excludes only `\n`). Escapes and character classes are copied as they are.
 */
export function iRegexpToRe2(pattern: string): string {
  let out = "";
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      out += pattern.slice(i, i + 2);
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
      out += c;
    } else if (c === "[") {
      inClass = true;
      // `[]...]` and `[^]...]`: a `]` right after the opening is a literal
      if (pattern[i + 1] === "^") {
        out += "[^";
        i++;
      } else out += c;
      if (pattern[i + 1] === "]") {
        out += "\\]";
        i++;
      }
    } else if (c === ".") {
      out += "[^\\n\\r]";
    } else {
      out += c;
    }
  }
  return out;
}
