/**
 * The controller's flags, declared once: this table drives parsing (flags.ts, through `node:util` parseArgs),
 * the `--help` text (below) and is checked against the flag table of docs/cli.md by a unit test. Adding a flag here
 * is the whole declaration; `buildConfig` then reads its value by name.
 */
import { DEFAULT_LOG_DIRECTIVES } from "../log.ts";

/** `string`: one value (the last one wins); `list`: repeatable; `boolean`: no value, or `=true` / `=false`. */
export type FlagType = "string" | "list" | "boolean";

export interface FlagSpec {
  name: string;
  type: FlagType;
  /** The value's placeholder in help and docs/cli.md, e.g. `<duration>`. */
  value?: string;
  /** The value used when the flag is absent (parsed like a given value). */
  default?: string;
  /** How the default is said when it is not a literal value (help only). */
  defaultText?: string;
  /** Environment variable used when the flag is absent. */
  env?: string;
  section: Section;
  help: string;
}

type Section = "logging" | "access" | "admin" | "controller" | "leader";

const SECTIONS: ReadonlyArray<[Section, string]> = [
  ["logging", "Logging:"],
  [
    "access",
    "Cluster access (as kubectl; without any, KUBECONFIG, ~/.kube/config, then in-cluster credentials):",
  ],
  ["admin", "Admin server:"],
  ["controller", "Controller:"],
  ["leader", "Leader election (a coordination.k8s.io/v1 Lease; run several replicas, one reconciles):"],
];

export const FLAGS: readonly FlagSpec[] = [
  {
    name: "log-level",
    type: "string",
    value: "<directives>",
    default: DEFAULT_LOG_DIRECTIVES,
    env: "SINKER_LOG",
    section: "logging",
    help:
      'comma-separated target=level directives and a bare default level, e.g. "sinker::reconciler=debug,' +
      'sinker=info,warn"; levels: trace, debug, info, warn, error, off',
  },
  {
    name: "log-format",
    type: "string",
    value: "plain|json",
    default: "plain",
    section: "logging",
    help: "plain: one readable line per record; json: one JSON object per line",
  },
  { name: "kubeconfig", type: "string", value: "<file>", section: "access", help: "kubeconfig file to use" },
  { name: "context", type: "string", value: "<name>", section: "access", help: "kubeconfig context to use" },
  { name: "cluster", type: "string", value: "<name>", section: "access", help: "kubeconfig cluster to use" },
  { name: "user", type: "string", value: "<name>", section: "access", help: "kubeconfig user to use" },
  {
    name: "as",
    type: "string",
    value: "<user>",
    section: "access",
    help: "impersonate this user on every request to the local cluster",
  },
  {
    name: "as-group",
    type: "list",
    value: "<group>",
    section: "access",
    help: "impersonate this group (repeatable; needs --as)",
  },
  {
    name: "kube-api-response-headers-timeout",
    type: "string",
    value: "<duration>",
    default: "9s",
    section: "access",
    help: "give up on an API request without response headers after this long",
  },
  {
    name: "kube-api-request-timeout",
    type: "string",
    value: "<duration>",
    default: "30s",
    section: "access",
    help: "give up on an API request (not a watch) not complete after this long: connect, headers and whole body",
  },
  {
    name: "admin-addr",
    type: "string",
    value: "<host:port>",
    default: "0.0.0.0:8080",
    section: "admin",
    help: "/live, /ready and /metrics; IPv6 as [::]:8080",
  },
  {
    name: "concurrency",
    type: "string",
    value: "<n>",
    default: "8",
    section: "controller",
    help: "ResourceSyncs reconciled at once",
  },
  {
    name: "max-concurrent-reconciles-per-cluster",
    type: "string",
    value: "<n>",
    defaultText: "half of --concurrency, at least 1",
    section: "controller",
    help:
      "reconciles in flight at once against one remote API server (same scheme, host and port), so a slow or " +
      "dead cluster cannot hold every worker; the local cluster is not limited",
  },
  {
    name: "resync-period",
    type: "string",
    value: "<duration>",
    default: "10m",
    section: "controller",
    help:
      "reconcile every synced ResourceSync again after about this long (±10 % jitter), repairing what a " +
      "missed event would leave; costs no request while the target matches",
  },
  {
    name: "max-children-per-set",
    type: "string",
    value: "<n>",
    default: "1000",
    section: "controller",
    help:
      "most child ResourceSyncs one ResourceSyncSet or ClusterResourceSyncSet may create (selected sources × " +
      "destinations); beyond it the set reports ChildLimitReached",
  },
  {
    name: "allow-cluster-scoped",
    type: "boolean",
    section: "controller",
    help:
      "allow local cluster-scoped kinds as source or target (security: any tenant who can create a " +
      "ResourceSync then reads/writes them with the controller's rights)",
  },
  {
    name: "allow-unsafe-kubeconfigs",
    type: "boolean",
    section: "controller",
    help:
      "allow kubeconfigs from Secrets that run programs (exec, auth-provider), read local files, use a proxy " +
      "or skip TLS verification (any field outside the allow-list)",
  },
  {
    name: "deny-remote-cidr",
    type: "list",
    value: "<cidr>",
    section: "controller",
    help:
      "refuse remote cluster servers in this address range, e.g. 10.0.0.0/8 (repeatable; link-local and " +
      "cloud metadata addresses are always refused)",
  },
  { name: "leader-elect", type: "boolean", section: "leader", help: "enable leader election" },
  {
    name: "leader-election-id",
    type: "string",
    value: "<name>",
    default: "sinker",
    section: "leader",
    help: "name of the Lease",
  },
  {
    name: "leader-election-namespace",
    type: "string",
    value: "<ns>",
    defaultText: 'the pod\'s namespace in a cluster, else "default"',
    section: "leader",
    help: "namespace of the Lease",
  },
  {
    name: "leader-election-lease-duration",
    type: "string",
    value: "<duration>",
    default: "15s",
    section: "leader",
    help: "how long a Lease is valid without renewal",
  },
  {
    name: "leader-election-renew-deadline",
    type: "string",
    value: "<duration>",
    default: "10s",
    section: "leader",
    help: "how long the leader retries renewing before it gives up",
  },
  {
    name: "leader-election-retry-period",
    type: "string",
    value: "<duration>",
    default: "2s",
    section: "leader",
    help: "time between two acquire or renew attempts",
  },
];

const BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

export function flagSpec(name: string): FlagSpec | undefined {
  return BY_NAME.get(name);
}

/** The default of a flag that has one (a programming error otherwise, caught by the unit tests). */
export function flagDefault(name: string): string {
  const d = BY_NAME.get(name)?.default;
  if (d === undefined) throw new Error(`flag --${name} has no default`);
  return d;
}

const COLUMN = 32;
const WIDTH = 114;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

function defaultNote(f: FlagSpec): string {
  if (f.type === "boolean") return "";
  const d = f.default === undefined ? f.defaultText : /[,= ]/.test(f.default) ? `"${f.default}"` : f.default;
  if (d === undefined) return "";
  return f.env === undefined ? ` (default ${d})` : ` (env ${f.env}; default ${d})`;
}

/** One flag's help entry: the flag in the first column, its wrapped text from column 32. */
export function helpEntry(f: FlagSpec): string {
  const head = `  --${f.name}${f.value === undefined ? "" : ` ${f.value}`}`;
  const body = wrap(`${f.help}${defaultNote(f)}`, WIDTH - COLUMN);
  const pad = " ".repeat(COLUMN);
  const first =
    head.length < COLUMN - 1 ? `${head.padEnd(COLUMN)}${body[0] ?? ""}` : `${head}\n${pad}${body[0]}`;
  return [first, ...body.slice(1).map((l) => pad + l)].join("\n");
}

/** The `sinker --help` text, generated from the table. */
export function renderHelp(): string {
  const sections = SECTIONS.map(([id, title]) =>
    [title, ...FLAGS.filter((f) => f.section === id).map(helpEntry)].join("\n"),
  );
  const names = FLAGS.filter((f) => f.type === "boolean").map((f) => `--${f.name}`);
  const switches = `Switches (${names.join(", ")}) are off unless given; they also take =true or =false.`;
  return `sinker — keeps Kubernetes resources in sync, in a cluster and across clusters

Usage:
  sinker [flags]            run the controller
  sinker manifests          print the CustomResourceDefinitions as YAML
  sinker render [flags]     print the object a ResourceSync would apply, offline
  sinker diff [NAME]        show what applying ResourceSyncs now would change on their targets
  sinker version            print the version

${sections.join("\n\n")}

  -h, --help                    print this help

${wrap(switches, WIDTH).join("\n")}
Durations are Go-style: 500ms, 9s, 1m30s, 1h.
`;
}
