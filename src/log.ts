/**
 * Logging: pino, one record per line, with per-module levels chosen by `--log-level` / `SINKER_LOG` directives.
 *
 * Directives (as Rust's env_logger / tracing, which the Rust Sinker used): comma-separated `target=level` and at
 * most one bare level, e.g. `sinker=info,warn` (the default), `sinker::controller=trace,warn`, `debug`.
 * - A target matches a module when it is the module's name or a `::`-separated prefix of it (`sinker` matches
 *   `sinker::reconciler`, `sinker::rec` does not); the longest matching target wins.
 * - The bare level applies to every module no target matches (without one: `error`).
 * - A bare word that is not a level is a target enabled at `trace` (env_logger's rule).
 * - Levels: trace, debug, info, warn, error, fatal, off (`silent` = `off`), case-insensitive.
 *
 * Module loggers are `logger.child({ module: "sinker::…" })`: any child created with a `module` binding gets the
 * level the directives give that module, however deep it is created. Records of the root logger count as
 * module `sinker`. Give `module` once per chain (pino does not de-duplicate bindings).
 *
 * Module names used by Sinker (see MODULES): sinker::controller, sinker::reconciler, sinker::watches,
 * sinker::informer, sinker::remote-clusters, sinker::events, sinker::admin, sinker::leader, sinker::kube.
 *
 * Never log Secret data: well-known secret-bearing keys are redacted (log-redact.ts), and code must not pass
 * whole Secrets or kubeconfig text to a logger in the first place.
 */
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from "pino";
import { redactRecord } from "./log-redact.ts";

export type LogFormat = "plain" | "json";
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "off";

export const DEFAULT_LOG_DIRECTIVES = "sinker=info,warn";
/** The root module: records of the root logger (no `module` binding) belong to it. */
export const ROOT_MODULE = "sinker";

/** The module names Sinker's code uses, for `moduleLogger` and docs/operations.md#logging. */
export const MODULES = [
  "sinker::controller",
  "sinker::reconciler",
  "sinker::watches",
  "sinker::informer",
  "sinker::remote-clusters",
  "sinker::events",
  "sinker::admin",
  "sinker::leader",
  "sinker::kube",
] as const;
export type ModuleName = (typeof MODULES)[number];

export interface LogDirectives {
  /** target → level, in the order given (a later duplicate target wins). */
  targets: ReadonlyMap<string, LogLevel>;
  /** Level of modules no target matches. */
  defaultLevel: LogLevel;
}

const LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warn: "warn",
  error: "error",
  fatal: "fatal",
  off: "off",
  silent: "off",
};

const TARGET_RE = /^[A-Za-z_][A-Za-z0-9_-]*(::[A-Za-z_][A-Za-z0-9_-]*)*$/;

/** Parses a directive string. Throws an Error with a one-line message on a bad directive. */
export function parseLogDirectives(text: string): LogDirectives {
  const targets = new Map<string, LogLevel>();
  let defaultLevel: LogLevel | undefined;
  for (const raw of text.split(",")) {
    const part = raw.trim();
    if (part === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) {
      const level = LEVELS[part.toLowerCase()];
      if (level) {
        defaultLevel = level;
      } else if (TARGET_RE.test(part)) {
        targets.set(part, "trace");
      } else {
        throw new Error(`invalid log directive "${part}": expected a level or target=level`);
      }
      continue;
    }
    const target = part.slice(0, eq).trim();
    const levelText = part.slice(eq + 1).trim();
    if (!TARGET_RE.test(target)) {
      throw new Error(
        `invalid log directive "${part}": "${target}" is not a module name like sinker::controller`,
      );
    }
    const level = LEVELS[levelText.toLowerCase()];
    if (!level) {
      throw new Error(
        `invalid log directive "${part}": unknown level "${levelText}" (trace, debug, info, warn, error, off)`,
      );
    }
    targets.set(target, level);
  }
  return { targets, defaultLevel: defaultLevel ?? "error" };
}

/** The level the directives give a module: the longest matching target, else the default level. */
export function levelForModule(directives: LogDirectives, module: string): LogLevel {
  let best: { length: number; level: LogLevel } | undefined;
  for (const [target, level] of directives.targets) {
    const matches = module === target || module.startsWith(`${target}::`);
    if (matches && (!best || target.length >= best.length)) best = { length: target.length, level };
  }
  return best?.level ?? directives.defaultLevel;
}

function pinoLevel(level: LogLevel): LevelWithSilent {
  return level === "off" ? "silent" : level;
}

export interface LoggerOptions {
  /** Directive string, e.g. `sinker=info,warn`. */
  level: string;
  format: LogFormat;
}

/** Anything with a `write(line)`: a file descriptor stream, or a test buffer. */
export interface LogDestination {
  write(line: string): unknown;
}

/** How long a record may wait in the stdout batch, and how much the batch holds before it is written at once. */
export const LOG_BATCH_MS = 100;
const LOG_BATCH_BYTES = 64 * 1024;

/**
 * Records to `sink` in batches: one write per LOG_BATCH_MS (or per LOG_BATCH_BYTES) instead of one per record.
 * A synchronous write to a pipe per record cost a fifth of a ResourceSync deletion's CPU (the reader is woken
 * each time); batched, a burst of records costs one write. What is pending is written on process exit (a clean
 * stop, a fatal error, an uncaught exception); only a SIGKILL loses it, at most LOG_BATCH_MS of records.
 */
export function batchedOutput(sink: LogDestination): LogDestination & { flush(): void } {
  let pending = "";
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const batch = pending;
    pending = "";
    sink.write(batch);
  };
  process.on("exit", flush);
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= LOG_BATCH_BYTES) flush();
      else if (!timer) {
        timer = setTimeout(flush, LOG_BATCH_MS);
        timer.unref();
      }
    },
    flush,
  };
}

/**
 * Creates the root logger. Records go to `destination`, else to stdout in batches (batchedOutput: written
 * synchronously, at the latest LOG_BATCH_MS after the record and on exit). Throws an Error when the directive
 * string is invalid.
 */
export function createLogger(options: LoggerOptions, destination?: LogDestination): Logger {
  const directives = parseLogDirectives(options.level);
  const out: LogDestination = destination ?? batchedOutput(pino.destination({ dest: 1, sync: true }));
  const stream: DestinationStream =
    options.format === "plain"
      ? { write: (line: string) => out.write(formatPlain(line)) }
      : { write: (line) => out.write(line) };
  const levelCache = new Map<string, LevelWithSilent>();
  const levelOf = (module: string): LevelWithSilent => {
    let level = levelCache.get(module);
    if (level === undefined) {
      level = pinoLevel(levelForModule(directives, module));
      levelCache.set(module, level);
    }
    return level;
  };
  const root = pino(
    {
      level: levelOf(ROOT_MODULE),
      base: null,
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      // secrets censored and errors serialized by redactRecord (child bindings: see child below)
      formatters: { level: (label) => ({ level: label }), log: redactRecord },
      serializers: { err: (err: unknown) => err }, // pino's default would serialize a serialized error again
    },
    stream,
  );
  // Every child, grandchildren too (pino makes a child with Object.create(parent), so it inherits this method):
  // its bindings redacted like a record, and its level the one the directives give its module.
  const pinoChild = root.child;
  root.child = function child(this: Logger, bindings: Record<string, unknown>, opts?: object) {
    const made = pinoChild.call(this, redactRecord(bindings), opts);
    if (typeof bindings.module === "string") made.level = levelOf(bindings.module);
    return made;
  } as Logger["child"];
  return root;
}

const LEVEL_METHODS = new Set(["fatal", "error", "warn", "info", "debug", "trace"]);
const noop = () => {};

/**
 * `parent.child(bindings())`, made only when something is logged through it at an enabled level: a child per
 * reconcile costs a JSON round trip of its bindings (pino), paid for nothing by the many reconciles that log
 * nothing at the configured level.
 */
export function lazyChild(parent: Logger, bindings: () => Record<string, unknown>): Logger {
  let real: Logger | undefined;
  return new Proxy(parent, {
    get(target, prop) {
      if (typeof prop === "string" && LEVEL_METHODS.has(prop) && !target.isLevelEnabled(prop)) return noop;
      real ??= target.child(bindings());
      const value = Reflect.get(real, prop, real);
      return typeof value === "function" ? value.bind(real) : value;
    },
  });
}

/** A module logger: `root.child({ module: name })`, at the level the directives give that module. */
export function moduleLogger(root: Logger, name: ModuleName | `sinker::${string}`): Logger {
  return root.child({ module: name });
}

const PLAIN_SKIP = new Set(["time", "level", "msg", "module"]);

/**
 * One JSON record → one readable line: `<time> <LEVEL> <module>: <msg> key=value …` (an error as
 * `err="Type: message"`; the stack only for level error and above, on the same line, `\n` escaped).
 */
export function formatPlain(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith("\n") ? line : `${line}\n`;
  }
  const level = String(record.level ?? "info").toUpperCase();
  const module = typeof record.module === "string" ? record.module : ROOT_MODULE;
  let text = `${String(record.time ?? "")} ${level.padStart(5)} ${module}: ${String(record.msg ?? "")}`;
  for (const [key, value] of Object.entries(record)) {
    if (PLAIN_SKIP.has(key) || value === undefined) continue;
    text += ` ${key}=${plainValue(key, value, level)}`;
  }
  return `${text}\n`;
}

function plainValue(key: string, value: unknown, level: string): string {
  if ((key === "err" || key === "error") && value !== null && typeof value === "object") {
    const err = value as { type?: unknown; message?: unknown; stack?: unknown };
    const head = `${typeof err.type === "string" ? `${err.type}: ` : ""}${String(err.message ?? "")}`;
    const withStack =
      (level === "ERROR" || level === "FATAL") && typeof err.stack === "string" ? err.stack : head;
    return JSON.stringify(withStack);
  }
  if (typeof value === "string") return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return JSON.stringify(value);
}
