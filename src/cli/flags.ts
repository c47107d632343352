/**
 * Flags of `sinker` (the controller). Pure: the environment and the in-cluster namespace file are passed in, so
 * every case can be tested. `--flag value` and `--flag=value` are both accepted; booleans take no value or
 * `=true` / `=false`.
 */
import { defaultClusterShare } from "../controller/cluster-share.ts";
import { parseCidr } from "../kube/kubeconfig-policy.ts";
import type { LogFormat } from "../log.ts";
import { DEFAULT_LOG_DIRECTIVES, parseLogDirectives } from "../log.ts";

export interface AdminAddress {
  /** Host to listen on ("0.0.0.0", "::", "127.0.0.1", a name); IPv6 without brackets. */
  host: string;
  port: number;
}

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

export const DEFAULTS = {
  logLevel: DEFAULT_LOG_DIRECTIVES,
  logFormat: "plain" as LogFormat,
  responseHeadersTimeout: "9s",
  requestTimeout: "30s",
  adminAddr: "0.0.0.0:8080",
  concurrency: 8,
  resyncPeriod: "10m",
  maxChildrenPerSet: 1000,
  leaderElectionId: "sinker",
  leaseDuration: "15s",
  renewDeadline: "10s",
  retryPeriod: "2s",
} as const;

export const HELP = `sinker — keeps Kubernetes resources in sync, in a cluster and across clusters

Usage:
  sinker [flags]            run the controller
  sinker manifests          print the CustomResourceDefinitions as YAML
  sinker render [flags]     print the object a ResourceSync would apply, offline
  sinker diff [NAME]        show what applying ResourceSyncs now would change on their targets
  sinker version            print the version

Logging:
  --log-level <directives>      comma-separated target=level directives and a bare default level, e.g.
                                "sinker::reconciler=debug,sinker=info,warn" (env SINKER_LOG; default "${DEFAULTS.logLevel}")
                                levels: trace, debug, info, warn, error, off
  --log-format plain|json       plain: one readable line per record; json: one JSON object per line (default ${DEFAULTS.logFormat})

Cluster access (as kubectl; without any, KUBECONFIG, ~/.kube/config, then in-cluster credentials):
  --kubeconfig <file>           kubeconfig file to use
  --context <name>              kubeconfig context to use
  --cluster <name>              kubeconfig cluster to use
  --user <name>                 kubeconfig user to use
  --as <user>                   impersonate this user on every request to the local cluster
  --as-group <group>            impersonate this group (repeatable; needs --as)
  --kube-api-response-headers-timeout <duration>
                                give up on an API request without response headers after this long (default ${DEFAULTS.responseHeadersTimeout})
  --kube-api-request-timeout <duration>
                                give up on an API request (not a watch) not complete after this long: connect,
                                headers and whole body (default ${DEFAULTS.requestTimeout})

Admin server:
  --admin-addr <host:port>      /live, /ready and /metrics (default ${DEFAULTS.adminAddr}; IPv6 as [::]:8080)

Controller:
  --concurrency <n>             ResourceSyncs reconciled at once (default ${DEFAULTS.concurrency})
  --max-concurrent-reconciles-per-cluster <n>
                                reconciles in flight at once against one remote API server (same scheme, host
                                and port), so a slow or dead cluster cannot hold every worker; the local cluster
                                is not limited (default: half of --concurrency, at least 1)
  --resync-period <duration>    reconcile every synced ResourceSync again after about this long (±10 % jitter),
                                repairing what a missed event would leave; costs no request while the target
                                matches (default ${DEFAULTS.resyncPeriod})
  --max-children-per-set <n>    most child ResourceSyncs one ResourceSyncSet or ClusterResourceSyncSet may create
                                (selected sources × destinations); beyond it the set reports ChildLimitReached
                                (default ${DEFAULTS.maxChildrenPerSet})
  --allow-cluster-scoped        allow local cluster-scoped kinds as source or target (security: any tenant who can
                                create a ResourceSync then reads/writes them with the controller's rights)
  --allow-unsafe-kubeconfigs    allow kubeconfigs from Secrets that run programs (exec, auth-provider), read local
                                files, use a proxy or skip TLS verification (any field outside the allow-list)
  --deny-remote-cidr <cidr>     refuse remote cluster servers in this address range, e.g. 10.0.0.0/8 (repeatable;
                                link-local and cloud metadata addresses are always refused)

Leader election (a coordination.k8s.io/v1 Lease; run several replicas, one reconciles):
  --leader-elect                enable leader election (default off)
  --leader-election-id <name>   name of the Lease (default ${DEFAULTS.leaderElectionId})
  --leader-election-namespace <ns>
                                namespace of the Lease (default: the pod's namespace in a cluster, else "default")
  --leader-election-lease-duration <duration>   how long a Lease is valid without renewal (default ${DEFAULTS.leaseDuration})
  --leader-election-renew-deadline <duration>   how long the leader retries renewing before it gives up (default ${DEFAULTS.renewDeadline})
  --leader-election-retry-period <duration>     time between two acquire or renew attempts (default ${DEFAULTS.retryPeriod})

  -h, --help                    print this help

Durations are Go-style: 500ms, 9s, 1m30s, 1h.
`;

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go-style duration (`500ms`, `9s`, `1m30s`, `1.5h`, `0`) into milliseconds. Throws an Error with a
 * one-line message when it is not one. Negative durations are refused.
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m || m[1] === undefined || m[2] === undefined) {
      throw new Error(`invalid duration "${text}": expected e.g. 500ms, 9s, 1m30s`);
    }
    ms += Number(m[1]) * (DURATION_UNITS[m[2]] ?? Number.NaN);
    pos = re.lastIndex;
  }
  if (s === "" || !Number.isFinite(ms))
    throw new Error(`invalid duration "${text}": expected e.g. 500ms, 9s, 1m30s`);
  return ms;
}

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces, IPv4). Throws on a bad address. */
export function parseAddress(text: string): AdminAddress {
  const bad = (why: string) =>
    new Error(`invalid address "${text}": ${why} (expected host:port, e.g. 0.0.0.0:8080 or [::]:8080)`);
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") throw bad("unclosed [ or missing :port");
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!/^[0-9A-Fa-f:.]+(%[\w.-]+)?$/.test(host) || !host.includes(":"))
      throw bad(`"${host}" is not an IPv6 address`);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw bad("missing :port");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) throw bad("an IPv6 host must be in brackets");
    if (host === "") host = "0.0.0.0";
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))
      throw bad(`"${host}" is not a host name or address`);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(`port "${portText}" is not 0-65535`);
  return { host, port: Number(portText) };
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Kind = "string" | "bool" | "list";
interface FlagSpec {
  kind: Kind;
}
const FLAGS: Readonly<Record<string, FlagSpec>> = {
  "log-level": { kind: "string" },
  "log-format": { kind: "string" },
  kubeconfig: { kind: "string" },
  context: { kind: "string" },
  cluster: { kind: "string" },
  user: { kind: "string" },
  as: { kind: "string" },
  "as-group": { kind: "list" },
  "kube-api-response-headers-timeout": { kind: "string" },
  "kube-api-request-timeout": { kind: "string" },
  "admin-addr": { kind: "string" },
  concurrency: { kind: "string" },
  "max-concurrent-reconciles-per-cluster": { kind: "string" },
  "resync-period": { kind: "string" },
  "max-children-per-set": { kind: "string" },
  "allow-cluster-scoped": { kind: "bool" },
  "allow-unsafe-kubeconfigs": { kind: "bool" },
  "deny-remote-cidr": { kind: "list" },
  "leader-elect": { kind: "bool" },
  "leader-election-id": { kind: "string" },
  "leader-election-namespace": { kind: "string" },
  "leader-election-lease-duration": { kind: "string" },
  "leader-election-renew-deadline": { kind: "string" },
  "leader-election-retry-period": { kind: "string" },
};

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
  const strings = new Map<string, string>();
  const bools = new Map<string, boolean>();
  const lists = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      if (i + 1 < argv.length) return { ok: false, error: `unexpected argument "${argv[i + 1]}"` };
      break;
    }
    if (!arg.startsWith("--") || arg === "--") {
      return { ok: false, error: `unexpected argument "${arg}" (see sinker --help)` };
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    const spec = FLAGS[name];
    if (!spec) return { ok: false, error: `unknown flag --${name} (see sinker --help)` };
    if (spec.kind === "bool") {
      if (inline === undefined) bools.set(name, true);
      else if (inline === "true") bools.set(name, true);
      else if (inline === "false") bools.set(name, false);
      else return { ok: false, error: `invalid value "${inline}" for --${name}: expected true or false` };
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        return { ok: false, error: `flag --${name} needs a value` };
      }
      value = next;
      i++;
    }
    if (spec.kind === "list") {
      const list = lists.get(name) ?? [];
      list.push(value);
      lists.set(name, list);
    } else {
      strings.set(name, value);
    }
  }

  try {
    return { ok: true, config: buildConfig(strings, bools, lists, env, environment) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

function buildConfig(
  strings: ReadonlyMap<string, string>,
  bools: ReadonlyMap<string, boolean>,
  lists: ReadonlyMap<string, string[]>,
  env: NodeJS.ProcessEnv,
  environment: ParseEnvironment,
): ControllerConfig {
  const flagError = (flag: string, message: string) => new Error(`invalid value for --${flag}: ${message}`);
  const nonEmpty = (flag: string): string | undefined => {
    const v = strings.get(flag);
    if (v !== undefined && v.trim() === "") throw flagError(flag, "must not be empty");
    return v;
  };
  const duration = (flag: string, fallback: string): number => {
    const text = strings.get(flag) ?? fallback;
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch (err) {
      throw flagError(flag, (err as Error).message);
    }
    if (ms <= 0) throw flagError(flag, `duration "${text}" must be greater than 0`);
    return ms;
  };

  // Logging
  const fromEnv = env.SINKER_LOG !== undefined && env.SINKER_LOG.trim() !== "" ? env.SINKER_LOG : undefined;
  const logLevel = strings.get("log-level") ?? fromEnv ?? DEFAULTS.logLevel;
  try {
    parseLogDirectives(logLevel);
  } catch (err) {
    const source = strings.has("log-level") ? "--log-level" : "SINKER_LOG";
    throw new Error(`invalid value for ${source}: ${(err as Error).message}`);
  }
  const logFormat = strings.get("log-format") ?? DEFAULTS.logFormat;
  if (logFormat !== "plain" && logFormat !== "json") {
    throw flagError("log-format", `"${logFormat}" is not one of plain, json`);
  }

  // Cluster access
  const as = nonEmpty("as");
  const asGroups = lists.get("as-group") ?? [];
  for (const g of asGroups) if (g.trim() === "") throw flagError("as-group", "must not be empty");
  if (asGroups.length > 0 && as === undefined) {
    throw new Error("--as-group needs --as: impersonating groups without a user is not possible");
  }
  const responseHeadersTimeoutMs = duration(
    "kube-api-response-headers-timeout",
    DEFAULTS.responseHeadersTimeout,
  );
  const requestTimeoutMs = duration("kube-api-request-timeout", DEFAULTS.requestTimeout);
  if (requestTimeoutMs < 1000) throw flagError("kube-api-request-timeout", "must be at least 1s");

  // Admin server
  let adminAddr: AdminAddress;
  try {
    adminAddr = parseAddress(strings.get("admin-addr") ?? DEFAULTS.adminAddr);
  } catch (err) {
    throw flagError("admin-addr", (err as Error).message);
  }

  // Controller
  const concurrencyText = strings.get("concurrency") ?? String(DEFAULTS.concurrency);
  if (!/^\d+$/.test(concurrencyText) || Number(concurrencyText) < 1 || Number(concurrencyText) > 1000) {
    throw flagError("concurrency", `"${concurrencyText}" is not a whole number from 1 to 1000`);
  }
  const shareText = strings.get("max-concurrent-reconciles-per-cluster");
  if (
    shareText !== undefined &&
    (!/^\d+$/.test(shareText) || Number(shareText) < 1 || Number(shareText) > 1000)
  ) {
    throw flagError(
      "max-concurrent-reconciles-per-cluster",
      `"${shareText}" is not a whole number from 1 to 1000`,
    );
  }

  const childrenText = strings.get("max-children-per-set") ?? String(DEFAULTS.maxChildrenPerSet);
  if (!/^\d+$/.test(childrenText) || Number(childrenText) < 1 || Number(childrenText) > 1_000_000) {
    throw flagError("max-children-per-set", `"${childrenText}" is not a whole number from 1 to 1000000`);
  }

  const denyRemoteCidrs = lists.get("deny-remote-cidr") ?? [];
  for (const c of denyRemoteCidrs) {
    try {
      parseCidr(c);
    } catch (err) {
      throw flagError("deny-remote-cidr", (err as Error).message);
    }
  }

  // Leader election
  const id = nonEmpty("leader-election-id") ?? DEFAULTS.leaderElectionId;
  if (id.length > 253 || !DNS_SUBDOMAIN.test(id)) {
    throw flagError("leader-election-id", `"${id}" is not a valid Lease name (lower-case DNS subdomain)`);
  }
  const namespace =
    nonEmpty("leader-election-namespace") ?? environment.podNamespace?.()?.trim() ?? "default";
  if (namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    throw flagError("leader-election-namespace", `"${namespace}" is not a valid namespace name`);
  }
  const leaseDurationMs = duration("leader-election-lease-duration", DEFAULTS.leaseDuration);
  const renewDeadlineMs = duration("leader-election-renew-deadline", DEFAULTS.renewDeadline);
  const retryPeriodMs = duration("leader-election-retry-period", DEFAULTS.retryPeriod);
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

  const config: ControllerConfig = {
    logLevel,
    logFormat,
    asGroups,
    responseHeadersTimeoutMs,
    requestTimeoutMs,
    adminAddr,
    allowClusterScoped: bools.get("allow-cluster-scoped") ?? false,
    allowUnsafeKubeconfigs: bools.get("allow-unsafe-kubeconfigs") ?? false,
    denyRemoteCidrs,
    concurrency: Number(concurrencyText),
    maxConcurrentPerCluster:
      shareText === undefined ? defaultClusterShare(Number(concurrencyText)) : Number(shareText),
    resyncPeriodMs: duration("resync-period", DEFAULTS.resyncPeriod),
    maxChildrenPerSet: Number(childrenText),
    leaderElection: {
      enabled: bools.get("leader-elect") ?? false,
      id,
      namespace,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    },
  };
  const kubeconfig = nonEmpty("kubeconfig");
  const context = nonEmpty("context");
  const cluster = nonEmpty("cluster");
  const user = nonEmpty("user");
  if (kubeconfig !== undefined) config.kubeconfig = kubeconfig;
  if (context !== undefined) config.context = context;
  if (cluster !== undefined) config.cluster = cluster;
  if (user !== undefined) config.user = user;
  if (as !== undefined) config.as = as;
  return config;
}
