/**
 * What a kubeconfig taken from a Secret (tenant input) may contain, and where it may point.
 *
 * An ALLOW-LIST of fields and types (docs/security.md#kubeconfigs-are-tenant-input): anything Sinker does not know
 * it supports is refused, so a field
 * @kubernetes/client-node interprets in a way we did not think of (e.g. a number where a file path is expected,
 * which it reads as a file descriptor) never reaches it. Allowed:
 * - top level: apiVersion, kind, current-context (strings), clusters, users, contexts (lists), preferences and
 *   extensions (ignored by the client);
 * - cluster: server, certificate-authority-data, tls-server-name (strings), extensions;
 * - user: client-certificate-data, client-key-data, token, username, password (strings), extensions;
 * - context: cluster, user, namespace (strings), extensions.
 * Everything else (exec, auth-provider, any file path, proxy-url, impersonation, insecure-skip-tls-verify, wrong
 * types) is refused with UnsafeKubeconfig unless the operator runs with `--allow-unsafe-kubeconfigs`.
 *
 * The server URL must be `https://host[:port][/path]` without user info, query or fragment (always, also with
 * that flag). Its host may not be a link-local or cloud metadata address (nor any range the operator adds with
 * `--deny-remote-cidr`): checked here for literal addresses and known metadata names, and again for every
 * address a host name resolves to, when connecting (`AddressPolicy.lookup`), so DNS cannot bring it back.
 *
 * Messages name the entry and the field, never a value.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { BlockList, isIP } from "node:net";
import { isPlainObject } from "./object.ts";

type FieldType = "string" | "boolean" | "list" | "object" | "any";

const TOP_LEVEL: Record<string, FieldType> = {
  apiVersion: "string",
  kind: "string",
  "current-context": "string",
  clusters: "list",
  users: "list",
  contexts: "list",
  preferences: "object",
  extensions: "any",
};
const CLUSTER: Record<string, FieldType> = {
  server: "string",
  "certificate-authority-data": "string",
  "tls-server-name": "string",
  extensions: "any",
};
const USER: Record<string, FieldType> = {
  "client-certificate-data": "string",
  "client-key-data": "string",
  token: "string",
  username: "string",
  password: "string",
  extensions: "any",
};
const CONTEXT: Record<string, FieldType> = {
  cluster: "string",
  user: "string",
  namespace: "string",
  extensions: "any",
};

/** Fields with a known meaning that are refused by default, with why (for a clearer message). */
const KNOWN_UNSAFE: Record<string, string> = {
  exec: "runs a program (exec credential plugin)",
  "auth-provider": "uses an auth-provider",
  "token-file": "reads a file (token-file)",
  tokenFile: "reads a file (tokenFile)",
  "client-certificate": "reads a file (client-certificate)",
  "client-key": "reads a file (client-key)",
  "certificate-authority": "reads a file (certificate-authority)",
  "proxy-url": "uses a proxy (proxy-url)",
  "insecure-skip-tls-verify": "turns off TLS verification (insecure-skip-tls-verify)",
};

function typeOk(value: unknown, type: FieldType): boolean {
  switch (type) {
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    case "list":
      return Array.isArray(value);
    case "object":
      return isPlainObject(value);
    case "any":
      return true;
  }
}

function checkFields(
  body: Record<string, unknown>,
  allowed: Record<string, FieldType>,
  where: string,
  found: string[],
): void {
  for (const [field, value] of Object.entries(body)) {
    if (value === null || value === undefined) continue;
    const type = Object.hasOwn(allowed, field) ? allowed[field] : undefined;
    if (type === undefined) {
      const why = Object.hasOwn(KNOWN_UNSAFE, field)
        ? KNOWN_UNSAFE[field]
        : `has the unsupported field "${field}"`;
      found.push(`${where} ${why}`);
    } else if (!typeOk(value, type)) {
      found.push(`${where} field "${field}" must be a ${type}`);
    }
  }
}

/**
 * What makes a parsed kubeconfig fall outside the allow-list (empty: acceptable). Never includes values; field
 * names only when they are short identifiers.
 */
export function kubeconfigFindings(config: unknown): string[] {
  const found: string[] = [];
  if (!isPlainObject(config)) return ["the kubeconfig is not a mapping"];
  checkFields(sanitizedKeys(config), TOP_LEVEL, "the kubeconfig", found);
  const entries: Array<[string, string, Record<string, FieldType>]> = [
    ["clusters", "cluster", CLUSTER],
    ["users", "user", USER],
    ["contexts", "context", CONTEXT],
  ];
  for (const [list, field, allowed] of entries) {
    const items = config[list];
    if (!Array.isArray(items)) continue;
    items.forEach((item, i) => {
      const label = `${field} #${i + 1}`;
      if (!isPlainObject(item)) {
        found.push(`${label} is not a mapping`);
        return;
      }
      checkFields(sanitizedKeys(item), { name: "string", [field]: "object" }, label, found);
      const body = item[field];
      if (isPlainObject(body))
        checkFields(sanitizedKeys(body), allowed, `${label} (${safeName(item.name)})`, found);
    });
  }
  return found;
}

/** The object with keys that are not plain identifiers renamed, so a key (tenant text) is never echoed. */
function sanitizedKeys(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    Object.defineProperty(out, /^[A-Za-z][-A-Za-z]{0,40}$/.test(k) ? k : "<unnamed>", {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Names of entries are structure, not secrets, but keep them short and printable. */
function safeName(name: unknown): string {
  return typeof name === "string" && /^[-\w.@:]{1,63}$/.test(name) ? `"${name}"` : "unnamed";
}

/** Cloud metadata endpoints reached by name. */
const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata", "metadata.goog", "instance-data"]);

/** Ranges refused by default: link-local (incl. 169.254.169.254), and metadata addresses outside them. */
export const DEFAULT_DENIED_CIDRS = [
  "169.254.0.0/16",
  "fe80::/10",
  "fd00:ec2::254/128",
  "100.100.100.200/32",
];

/** Parses `a.b.c.d/n` or `v6::/n`. Throws an Error with a one-line message. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const family = m?.[1] ? isIP(m[1]) : 0;
  const prefix = Number(m?.[2]);
  if (!m?.[1] || family === 0 || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`invalid CIDR "${text}": expected e.g. 10.0.0.0/8 or fd00::/8`);
  }
  return { address: m[1], prefix, family: family === 4 ? "ipv4" : "ipv6" };
}

/** Addresses a remote cluster may not be reached at. */
export class AddressPolicy {
  readonly #denied = new BlockList();
  readonly cidrs: readonly string[];

  constructor(extraDeniedCidrs: readonly string[] = []) {
    this.cidrs = [...DEFAULT_DENIED_CIDRS, ...extraDeniedCidrs];
    for (const c of this.cidrs) {
      const { address, prefix, family } = parseCidr(c);
      this.#denied.addSubnet(address, prefix, family);
    }
  }

  /** Is this literal IP address refused? */
  deniesAddress(ip: string): boolean {
    const bare = ip.replace(/^\[|\]$/g, "");
    const family = isIP(bare);
    if (family === 0) return false;
    return this.#denied.check(bare, family === 4 ? "ipv4" : "ipv6");
  }

  /** Is this URL host (name or literal address) refused before any lookup? */
  deniesHost(host: string): boolean {
    const name = host.toLowerCase().replace(/\.$/, "");
    return METADATA_HOSTS.has(name) || this.deniesAddress(name);
  }

  /**
   * A `lookup` for net/tls.connect: resolves like dns.lookup and fails with EADDRNOTAVAIL-like error when any
   * resolved address is refused.
   */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, "", 0);
        return;
      }
      const list = addresses as LookupAddress[];
      if (list.some((a) => this.deniesAddress(a.address))) {
        const e: NodeJS.ErrnoException = new Error("the server's address is refused by the address policy");
        e.code = "ESINKERBLOCKED";
        callback(e, "", 0);
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, list[0]?.address ?? "", list[0]?.family ?? 4);
    });
  };
}

/**
 * What is wrong with a remote cluster's server URL, if anything: it must be `https://host[:port][/path]`, without
 * user info, query or fragment, its host not refused by `policy`. The detail never quotes the URL.
 */
export function serverUrlProblem(
  server: unknown,
  policy: AddressPolicy,
): { reason: "InvalidKubeconfig" | "BlockedAddress"; detail: string } | undefined {
  const invalid = (why: string) => ({
    reason: "InvalidKubeconfig" as const,
    detail: `the cluster server ${why}`,
  });
  if (typeof server !== "string" || server === "") return invalid("is missing");
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return invalid("is not a URL");
  }
  if (url.protocol !== "https:") return invalid("must be an https:// URL");
  if (url.username !== "" || url.password !== "") return invalid("URL must not carry user info");
  if (url.search !== "" || server.includes("?")) return invalid("URL must not have a query");
  if (url.hash !== "" || server.includes("#")) return invalid("URL must not have a fragment");
  if (policy.deniesHost(url.hostname)) {
    return {
      reason: "BlockedAddress",
      detail: "the cluster server is a link-local, cloud metadata or operator-denied address",
    };
  }
  return undefined;
}
