/**
 * Remote clusters reached through kubeconfigs kept in Secrets (SPEC 2).
 *
 * - `checkSecretAccess`: the cross-namespace rule (anchored `sinker.influxdata.io/allowed-namespaces`).
 * - `RemoteClusters`: decodes, validates and loads a kubeconfig from a Secret and hands out one ClusterClient per
 *   (Secret uid, resourceVersion, key): an unchanged Secret costs no new connection or discovery, a changed one
 *   gives a new client (with a new `id`, hence new informers in Watches).
 *
 * A kubeconfig from a Secret is tenant input. Unless `allowUnsafeKubeconfigs`, it may not run programs (`exec`,
 * `auth-provider`), read files of the controller (token-file / tokenFile, client-certificate, client-key,
 * certificate-authority given as paths) or use a proxy (`proxy-url`). It is checked on the raw YAML BEFORE
 * @kubernetes/client-node sees it, because client-node reads `token-file` while parsing.
 *
 * Nothing from the Secret's data is ever put in a message or a log line: only Secret, user and cluster names.
 */
import { createContext, Script } from "node:vm";
import type { Logger } from "pino";
import { parse as parseYaml } from "yaml";
import { SinkerError } from "../errors.ts";
import { ClusterClient } from "./client.ts";
import { KubeConfig } from "./client-node.ts";
import { isPlainObject, type KubeObject } from "./object.ts";

export const ALLOWED_NAMESPACES_ANNOTATION = "sinker.influxdata.io/allowed-namespaces";
export const SECRET_ACCESS_DENIED_MESSAGE =
  "Referenced Kubeconfig Secret cannot be accessed due to namespace restrictions";

/**
 * SPEC 2: may a ResourceSync in `rsNamespace` use this Secret?
 * - same namespace: yes (a missing Secret there is an honest SecretNotFound);
 * - other namespace: only when the Secret exists and its allowed-namespaces annotation is a regular expression
 *   matching the WHOLE namespace name. Every refusal is the same SecretAccessDenied message.
 *
 * `secretNamespace` is the namespace the Secret was looked up in (needed when `secret` is undefined); when
 * omitted it is taken from the Secret, and a missing Secret counts as cross-namespace.
 */
export function checkSecretAccess(
  secret: KubeObject | undefined,
  rsNamespace: string,
  secretNamespace?: string,
): void {
  const ns = secretNamespace ?? secret?.metadata?.namespace;
  if (ns === rsNamespace) {
    if (!secret) {
      throw new SinkerError("SecretNotFound", `kubeconfig Secret not found in namespace "${rsNamespace}"`);
    }
    return;
  }
  const denied = () => new SinkerError("SecretAccessDenied", SECRET_ACCESS_DENIED_MESSAGE);
  const pattern = secret?.metadata?.annotations?.[ALLOWED_NAMESPACES_ANNOTATION];
  if (typeof pattern !== "string") throw denied();
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})$`);
  } catch {
    throw denied();
  }
  if (!boundedTest(re, rsNamespace)) throw denied();
}

// JavaScript regular expressions backtrack (the Rust original's are linear-time): an expression like `(a+)+`
// against a 63-character namespace would hang the controller. The match runs under a time limit instead, and
// an expression that takes longer counts as not matching.
const REGEX_TIME_LIMIT_MS = 100;
const regexScript = new Script("re.test(input)");
const regexContext = createContext({ re: /$^/, input: "" });

function boundedTest(re: RegExp, input: string): boolean {
  regexContext.re = re;
  regexContext.input = input;
  try {
    return regexScript.runInContext(regexContext, { timeout: REGEX_TIME_LIMIT_MS }) === true;
  } catch {
    return false;
  } finally {
    regexContext.re = /$^/;
    regexContext.input = "";
  }
}

export interface RemoteClustersOptions {
  /** Operator opt-in: allow exec / auth-provider / file paths / proxy-url in kubeconfigs from Secrets. */
  allowUnsafeKubeconfigs: boolean;
  responseHeadersTimeoutMs: number;
  logger: Logger;
  userAgent?: string;
}

export interface RemoteCluster {
  client: ClusterClient;
  /** The namespace of the kubeconfig's current context, if it sets one. */
  namespace: string | undefined;
}

/** Names what makes a parsed kubeconfig unsafe (empty: safe). Never includes values. */
export function unsafeKubeconfigFindings(config: unknown): string[] {
  const found: string[] = [];
  if (!isPlainObject(config)) return found;
  const named = (list: unknown, field: string): Array<{ name: string; body: Record<string, unknown> }> =>
    Array.isArray(list)
      ? list.filter(isPlainObject).map((e, i) => ({
          name: typeof e.name === "string" ? e.name : `#${i}`,
          body: isPlainObject(e[field]) ? (e[field] as Record<string, unknown>) : {},
        }))
      : [];
  for (const { name, body } of named(config.users, "user")) {
    if (body.exec !== undefined && body.exec !== null)
      found.push(`user "${name}" uses an exec credential plugin`);
    if (body["auth-provider"] !== undefined && body["auth-provider"] !== null) {
      found.push(`user "${name}" uses an auth-provider`);
    }
    for (const f of ["token-file", "tokenFile", "client-certificate", "client-key"]) {
      if (typeof body[f] === "string" && body[f] !== "") found.push(`user "${name}" reads ${f} from a file`);
    }
  }
  for (const { name, body } of named(config.clusters, "cluster")) {
    for (const f of ["certificate-authority"]) {
      if (typeof body[f] === "string" && body[f] !== "")
        found.push(`cluster "${name}" reads ${f} from a file`);
    }
    if (typeof body["proxy-url"] === "string" && body["proxy-url"] !== "") {
      found.push(`cluster "${name}" uses a proxy (proxy-url)`);
    }
  }
  return found;
}

/**
 * Parses and checks kubeconfig text. Throws InvalidKubeconfig / UnsafeKubeconfig with messages that name
 * `where` (e.g. `Secret ns/name key "value"`) and never any value from the text.
 */
export function loadKubeconfig(
  text: string,
  where: string,
  allowUnsafe: boolean,
): { kubeConfig: KubeConfig; namespace: string | undefined } {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch {
    // the parser's message quotes the offending text: do not pass it on
    throw new SinkerError("InvalidKubeconfig", `kubeconfig in ${where} is not valid YAML`);
  }
  if (!isPlainObject(raw))
    throw new SinkerError("InvalidKubeconfig", `kubeconfig in ${where} is not a YAML mapping`);
  if (!allowUnsafe) {
    const findings = unsafeKubeconfigFindings(raw);
    if (findings.length > 0) {
      throw new SinkerError(
        "UnsafeKubeconfig",
        `kubeconfig in ${where} is refused: ${findings.join("; ")}. Kubeconfigs from Secrets may not run programs, ` +
          "read files or use proxies unless the operator allows unsafe kubeconfigs",
      );
    }
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(JSON.stringify(raw));
  } catch (err) {
    const m = err instanceof Error ? err.message : "";
    // client-node's own validation messages name only the entry ("clusters[0].cluster.server is missing")
    const safe = /^(clusters|users|contexts)\[\d+\]\.[\w.]+ is missing$/.test(m) ? `: ${m}` : "";
    throw new SinkerError("InvalidKubeconfig", `kubeconfig in ${where} cannot be loaded${safe}`);
  }
  const current = kc.getCurrentContext();
  if (!current) throw new SinkerError("InvalidKubeconfig", `kubeconfig in ${where} has no current-context`);
  const ctx = kc.getContextObject(current);
  if (!ctx) {
    throw new SinkerError(
      "InvalidKubeconfig",
      `kubeconfig in ${where}: current-context "${current}" is not defined`,
    );
  }
  if (!kc.getCluster(ctx.cluster)) {
    throw new SinkerError(
      "InvalidKubeconfig",
      `kubeconfig in ${where}: cluster "${ctx.cluster}" is not defined`,
    );
  }
  if (ctx.user && !kc.getUser(ctx.user)) {
    throw new SinkerError("InvalidKubeconfig", `kubeconfig in ${where}: user "${ctx.user}" is not defined`);
  }
  return { kubeConfig: kc, namespace: ctx.namespace || undefined };
}

interface CacheEntry {
  cluster: RemoteCluster;
  secretUid: string;
  key: string;
  /** `namespace/name/key` of the Secret. */
  secretRef: string;
}

export class RemoteClusters {
  readonly #allowUnsafe: boolean;
  readonly #headersTimeoutMs: number;
  readonly #logger: Logger;
  readonly #userAgent: string | undefined;
  /** `${uid}/${resourceVersion}/${key}` → client */
  readonly #cache = new Map<string, CacheEntry>();
  readonly #namespaces = new WeakMap<ClusterClient, string | undefined>();
  /** `namespace/name/key` of a Secret → the entry last loaded from it (kept while its client is cached). */
  readonly #lastBySecret = new Map<string, CacheEntry>();
  /** Clients in use by work in progress (reconciles between awaits): never pruned while held. */
  readonly #held = new Map<ClusterClient, number>();

  constructor(opts: RemoteClustersOptions) {
    this.#allowUnsafe = opts.allowUnsafeKubeconfigs;
    this.#headersTimeoutMs = opts.responseHeadersTimeoutMs;
    this.#logger = opts.logger;
    this.#userAgent = opts.userAgent;
  }

  /**
   * The client for the kubeconfig under `key` in `secret` (data, base64, or stringData), plus its context's
   * namespace. Same Secret uid + resourceVersion + key → the same instance. Throws InvalidKubeconfig or
   * UnsafeKubeconfig.
   */
  clusterFor(secret: KubeObject, key: string): RemoteCluster {
    const meta = secret.metadata ?? {};
    const where = `Secret ${meta.namespace ?? ""}/${meta.name ?? ""} key "${key}"`;
    const uid = meta.uid ?? `${meta.namespace}/${meta.name}`;
    const cacheKey = `${uid}/${meta.resourceVersion ?? ""}/${key}`;
    const secretRef = `${meta.namespace ?? ""}/${meta.name ?? ""}/${key}`;
    const hit = this.#cache.get(cacheKey);
    if (hit) {
      this.#lastBySecret.set(secretRef, hit);
      return hit.cluster;
    }

    const text = secretValue(secret, key);
    if (text === undefined) throw new SinkerError("InvalidKubeconfig", `${where} does not exist`);
    const { kubeConfig, namespace } = loadKubeconfig(text, where, this.#allowUnsafe);
    const client = ClusterClient.fromKubeConfig(kubeConfig, {
      name: `secret/${meta.namespace ?? ""}/${meta.name ?? ""}`,
      responseHeadersTimeoutMs: this.#headersTimeoutMs,
      ...(this.#userAgent ? { userAgent: this.#userAgent } : {}),
    });
    const cluster: RemoteCluster = { client, namespace };
    const entry: CacheEntry = { cluster, secretUid: uid, key, secretRef };
    this.#cache.set(cacheKey, entry);
    this.#lastBySecret.set(secretRef, entry);
    this.#namespaces.set(client, namespace);
    this.#logger.debug(
      { cluster: client.name, clientId: client.id, resourceVersion: meta.resourceVersion },
      "loaded kubeconfig from Secret",
    );
    return cluster;
  }

  /**
   * The cluster last loaded from this Secret key, while its client is still cached: lets a ResourceSync being
   * deleted clean its recorded target up after its kubeconfig Secret went first (a namespace being deleted).
   */
  lastClusterFor(namespace: string, name: string, key: string): RemoteCluster | undefined {
    return this.#lastBySecret.get(`${namespace}/${name}/${key}`)?.cluster;
  }

  /** Marks the client as in use until the returned function is called (reference-counted). */
  hold(client: ClusterClient): () => void {
    this.#held.set(client, (this.#held.get(client) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.#held.get(client) ?? 1) - 1;
      if (n <= 0) this.#held.delete(client);
      else this.#held.set(client, n);
    };
  }

  /** Same as `clusterFor(secret, key).client`. */
  clientFor(secret: KubeObject, key: string): ClusterClient {
    return this.clusterFor(secret, key).client;
  }

  /** The namespace of the current context of the kubeconfig this client was made from. */
  defaultNamespace(client: ClusterClient): string | undefined {
    return this.#namespaces.get(client);
  }

  /** Number of cached clients (a metric). */
  get size(): number {
    return this.#cache.size;
  }

  /**
   * Drops (and closes) the cached clients neither in `inUse` (e.g. `watches.clientsInUse()`) nor held by work
   * in progress (`hold`). Returns how many were dropped.
   */
  async prune(inUse: Set<ClusterClient>): Promise<number> {
    const dropped: ClusterClient[] = [];
    for (const [k, e] of this.#cache) {
      const client = e.cluster.client;
      if (!inUse.has(client) && !this.#held.has(client)) {
        this.#cache.delete(k);
        if (this.#lastBySecret.get(e.secretRef) === e) this.#lastBySecret.delete(e.secretRef);
        dropped.push(client);
      }
    }
    await Promise.all(dropped.map((c) => c.close()));
    if (dropped.length > 0)
      this.#logger.debug({ dropped: dropped.length }, "dropped unused remote cluster clients");
    return dropped.length;
  }

  /** Names of the clusters that have a cached client (a series per name). */
  clusterNames(): Set<string> {
    return new Set([...this.#cache.values()].map((e) => e.cluster.client.name));
  }

  async closeAll(): Promise<void> {
    const all = [...this.#cache.values()].map((e) => e.cluster.client);
    this.#cache.clear();
    this.#lastBySecret.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}

/** The text under `key`: `data` (base64) first, then `stringData`. */
function secretValue(secret: KubeObject, key: string): string | undefined {
  const data = secret.data;
  if (isPlainObject(data) && typeof data[key] === "string") {
    return Buffer.from(data[key], "base64").toString("utf8");
  }
  const stringData = secret.stringData;
  if (isPlainObject(stringData) && typeof stringData[key] === "string") return stringData[key];
  return undefined;
}
