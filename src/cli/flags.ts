/**
 * Flags of `sinker` (the controller). The flags themselves are declared once, in flag-table.ts; this module
 * tokenises the command line with `node:util` parseArgs and turns the values into a checked `ControllerConfig`.
 * Pure: the environment and the in-cluster namespace file are passed in, so every case can be tested.
 * `--flag value` and `--flag=value` are both accepted; booleans take no value or `=true` / `=false`.
 */
import { parseArgs } from "node:util";
import { defaultClusterShare } from "../controller/cluster-share.ts";
import { parseCidr } from "../kube/kubeconfig-policy.ts";
import type { LogFormat } from "../log.ts";
import { parseLogDirectives } from "../log.ts";
import { FLAGS, flagDefault, flagSpec, renderHelp } from "./flag-table.ts";
import { type AdminAddress, DNS_LABEL, DNS_SUBDOMAIN, parseAddress, parseDuration } from "./flag-values.ts";

export type { AdminAddress } from "./flag-values.ts";
export { parseAddress, parseDuration } from "./flag-values.ts";

export interface LeaderElectionConfig {
  enabled: boolean;
  /** Name of the coordination.k8s.io/v1 Lease. */
  id: string;
  namespace: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ControllerConfig {
  /** Log directives (`--log-level`, else SINKER_LOG, else `sinker=info,warn`); already validated. */
  logLevel: string;
  logFormat: LogFormat;
  /** As kubectl: explicit kubeconfig file; else KUBECONFIG, ~/.kube/config, in-cluster. */
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
  /** Impersonation of every request to the local cluster. */
  as?: string;
  asGroups: string[];
  responseHeadersTimeoutMs: number;
  /** Total time of one non-watch API request (connect, headers, whole body). */
  requestTimeoutMs: number;
  adminAddr: AdminAddress;
  allowClusterScoped: boolean;
  allowUnsafeKubeconfigs: boolean;
  /** Extra CIDR ranges remote clusters may not be reached at (besides link-local and metadata addresses). */
  denyRemoteCidrs: string[];
  concurrency: number;
  /** Reconciles in flight at once against one remote API server; default half of `concurrency`, at least 1. */
  maxConcurrentPerCluster: number;
  /** Every synced ResourceSync is reconciled again after about this long (jittered ±10 %). */
  resyncPeriodMs: number;
  /** Most child ResourceSyncs one ResourceSyncSet or ClusterResourceSyncSet may create. */
  maxChildrenPerSet: number;
  leaderElection: LeaderElectionConfig;
}

export type ParseResult =
  | { ok: true; config: ControllerConfig }
  | { ok: true; help: string }
  | { ok: false; error: string };

export interface ParseEnvironment {
  /** The namespace of the pod when running in a cluster (the service account's namespace file), if any. */
  podNamespace?: () => string | undefined;
}

/** The `sinker --help` text. */
export const HELP = renderHelp();

/** The values given on the command line, by flag name; a flag given twice keeps its last value. */
interface Given {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
}

/**
 * Parses the controller's command line. `--help` anywhere → `{ ok: true, help }`. Any problem → `{ ok: false,
 * error }` with a one-line message naming the flag (the caller prints it and exits 2).
 */
export function parseControllerFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  environment: ParseEnvironment = {},
): ParseResult {
  if (argv.includes("--help") || argv.includes("-h")) return { ok: true, help: HELP };
  const given = readFlags(argv);
  if (typeof given === "string") return { ok: false, error: given };
  try {
    return { ok: true, config: buildConfig(given, env, environment) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const PARSE_OPTIONS = Object.fromEntries(
  FLAGS.map((f) => [f.name, { type: f.type === "boolean" ? ("boolean" as const) : ("string" as const) }]),
);

/**
 * Splits argv with parseArgs (lenient, so the messages stay ours) and checks each token against the table.
 * Returns the values, or the first problem as a one-line message.
 */
function readFlags(argv: readonly string[]): Given | string {
  const { tokens } = parseArgs({
    args: [...argv],
    options: PARSE_OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const given: Given = { strings: new Map(), bools: new Map(), lists: new Map() };
  for (const [i, token] of tokens.entries()) {
    if (token.kind === "option-terminator") {
      const next = tokens[i + 1];
      if (next !== undefined) return `unexpected argument "${argv[next.index]}"`;
      break;
    }
    if (token.kind === "positional" || !token.rawName.startsWith("--")) {
      return `unexpected argument "${argv[token.index]}" (see sinker --help)`;
    }
    const spec = flagSpec(token.name);
    if (spec === undefined) return `unknown flag --${token.name} (see sinker --help)`;
    const { value, inlineValue } = token;
    if (spec.type === "boolean") {
      if (value === undefined || value === "true") given.bools.set(spec.name, true);
      else if (value === "false") given.bools.set(spec.name, false);
      else return `invalid value "${value}" for --${spec.name}: expected true or false`;
      continue;
    }
    // A value that is itself a flag means the value was left out (`--context --user x`).
    if (value === undefined || (!inlineValue && value.startsWith("--") && value.length > 2)) {
      return `flag --${spec.name} needs a value`;
    }
    if (spec.type === "list") given.lists.set(spec.name, [...(given.lists.get(spec.name) ?? []), value]);
    else given.strings.set(spec.name, value);
  }
  return given;
}

/** Reads the values of the flags by name, with the table's defaults; errors name the flag. */
class FlagValues {
  readonly #given: Given;
  constructor(given: Given) {
    this.#given = given;
  }

  has(flag: string): boolean {
    return this.#given.strings.has(flag);
  }
  string(flag: string): string | undefined {
    return this.#given.strings.get(flag);
  }
  /** The given value, else the table's default. */
  text(flag: string): string {
    return this.#given.strings.get(flag) ?? flagDefault(flag);
  }
  list(flag: string): string[] {
    return this.#given.lists.get(flag) ?? [];
  }
  bool(flag: string): boolean {
    return this.#given.bools.get(flag) ?? false;
  }
  nonEmpty(flag: string): string | undefined {
    const v = this.#given.strings.get(flag);
    if (v !== undefined && v.trim() === "") throw flagError(flag, "must not be empty");
    return v;
  }
  /** A positive Go-style duration, in milliseconds. */
  duration(flag: string): number {
    const text = this.text(flag);
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      throw flagError(flag, (err as Error).message);
    }
    if (ms <= 0) throw flagError(flag, `duration "${text}" must be greater than 0`);
    return ms;
  }
  /** A whole number from 1 to `max` (1000 unless said). */
  count(flag: string, text: string, max = 1000): number {
    if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
      throw flagError(flag, `"${text}" is not a whole number from 1 to ${max}`);
    }
    return Number(text);
  }
}

function flagError(flag: string, message: string): Error {
  return new Error(`invalid value for --${flag}: ${message}`);
}

function buildConfig(given: Given, env: NodeJS.ProcessEnv, environment: ParseEnvironment): ControllerConfig {
  const v = new FlagValues(given);
  const { logLevel, logFormat } = logging(v, env);
  const access = clusterAccess(v);
  let adminAddr: AdminAddress;
  try {
    adminAddr = parseAddress(v.text("admin-addr"));
  } catch (err) {
    throw flagError("admin-addr", (err as Error).message);
  }
  const concurrency = v.count("concurrency", v.text("concurrency"));
  const shareText = v.string("max-concurrent-reconciles-per-cluster");
  const maxConcurrentPerCluster =
    shareText === undefined
      ? defaultClusterShare(concurrency)
      : v.count("max-concurrent-reconciles-per-cluster", shareText);
  const denyRemoteCidrs = v.list("deny-remote-cidr");
  for (const c of denyRemoteCidrs) {
    try {
      parseCidr(c);
    } catch (err) {
      throw flagError("deny-remote-cidr", (err as Error).message);
    }
  }
  const leaderElection = leaderElectionConfig(v, environment);
  const config: ControllerConfig = {
    logLevel,
    logFormat,
    asGroups: access.asGroups,
    responseHeadersTimeoutMs: access.responseHeadersTimeoutMs,
    requestTimeoutMs: access.requestTimeoutMs,
    adminAddr,
    allowClusterScoped: v.bool("allow-cluster-scoped"),
    allowUnsafeKubeconfigs: v.bool("allow-unsafe-kubeconfigs"),
    denyRemoteCidrs,
    concurrency,
    maxConcurrentPerCluster,
    resyncPeriodMs: v.duration("resync-period"),
    maxChildrenPerSet: v.count("max-children-per-set", v.text("max-children-per-set"), 1_000_000),
    leaderElection,
  };
  for (const key of ["kubeconfig", "context", "cluster", "user"] as const) {
    const value = v.nonEmpty(key);
    if (value !== undefined) config[key] = value;
  }
  if (access.as !== undefined) config.as = access.as;
  return config;
}

function logging(v: FlagValues, env: NodeJS.ProcessEnv): { logLevel: string; logFormat: LogFormat } {
  const fromEnv = env.SINKER_LOG !== undefined && env.SINKER_LOG.trim() !== "" ? env.SINKER_LOG : undefined;
  const logLevel = v.string("log-level") ?? fromEnv ?? v.text("log-level");
  try {
    parseLogDirectives(logLevel);
  } catch (err) {
    const source = v.has("log-level") ? "--log-level" : "SINKER_LOG";
    throw new Error(`invalid value for ${source}: ${(err as Error).message}`);
  }
  const logFormat = v.text("log-format");
  if (logFormat !== "plain" && logFormat !== "json") {
    throw flagError("log-format", `"${logFormat}" is not one of plain, json`);
  }
  return { logLevel, logFormat };
}

function clusterAccess(v: FlagValues) {
  const as = v.nonEmpty("as");
  const asGroups = v.list("as-group");
  for (const g of asGroups) if (g.trim() === "") throw flagError("as-group", "must not be empty");
  if (asGroups.length > 0 && as === undefined) {
    throw new Error("--as-group needs --as: impersonating groups without a user is not possible");
  }
  const responseHeadersTimeoutMs = v.duration("kube-api-response-headers-timeout");
  const requestTimeoutMs = v.duration("kube-api-request-timeout");
  if (requestTimeoutMs < 1000) throw flagError("kube-api-request-timeout", "must be at least 1s");
  return { as, asGroups, responseHeadersTimeoutMs, requestTimeoutMs };
}

function leaderElectionConfig(v: FlagValues, environment: ParseEnvironment): LeaderElectionConfig {
  const id = v.nonEmpty("leader-election-id") ?? v.text("leader-election-id");
  if (id.length > 253 || !DNS_SUBDOMAIN.test(id)) {
    throw flagError("leader-election-id", `"${id}" is not a valid Lease name (lower-case DNS subdomain)`);
  }
  const namespace =
    v.nonEmpty("leader-election-namespace") ?? environment.podNamespace?.()?.trim() ?? "default";
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    throw flagError("leader-election-namespace", `"${namespace}" is not a valid namespace name`);
  }
  const leaseDurationMs = v.duration("leader-election-lease-duration");
  const renewDeadlineMs = v.duration("leader-election-renew-deadline");
  const retryPeriodMs = v.duration("leader-election-retry-period");
  if (leaseDurationMs <= renewDeadlineMs) {
    throw new Error(
      "--leader-election-lease-duration must be greater than --leader-election-renew-deadline " +
        "(else two replicas could lead at once)",
    );
  }
  if (renewDeadlineMs <= retryPeriodMs * 1.2) {
    throw new Error(
      "--leader-election-renew-deadline must be greater than 1.2 × --leader-election-retry-period " +
        "(else the leader gives up before it could retry)",
    );
  }
  return { enabled: v.bool("leader-elect"), id, namespace, leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}
