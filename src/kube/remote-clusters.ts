/**
 * Remote clusters reached through kubeconfigs kept in Secrets (docs/spec/resourcesync.md#remote-clusters).
 *
 * - `checkSecretAccess`: the cross-namespace rule (anchored `sinker.influxdata.io/allowed-namespaces`).
 * - `RemoteClusters`: decodes, validates and loads a kubeconfig from a Secret and hands out one ClusterClient per
 *   (Secret uid, resourceVersion, key): an unchanged Secret costs no new connection or discovery, a changed one
 *   gives a new client (with a new `id`, hence new informers in Watches).
 *
 * A kubeconfig from a Secret is tenant input. Unless `allowUnsafeKubeconfigs`, it may hold only the fields and
 * types of an allow-list (kubeconfig-policy.ts): no programs (`exec`, `auth-provider`), no files of the
 * controller, no proxy, no disabled TLS verification. It is checked on the raw YAML BEFORE @kubernetes/client-node
 * sees it, because client-node reads `token-file` while parsing. Its server must be an https URL whose address is
 * not link-local, metadata or denied by the operator (`--deny-remote-cidr`), also after DNS resolution.
 *
 * Nothing from the Secret's data is ever put in a message or a log line: only Secret, user and cluster names.
 */
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import { NAMESPACE_PATTERN } from "../api/schema.ts";
import { type ErrorReason, SinkerError } from "../errors.ts";
import { lazyModule } from "../lazy-module.ts";
import { compileRegex } from "../regex.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";
import { ClusterClient } from "./client.ts";
import { KubeConfig } from "./client-node.ts";
import { ClusterIdentities, registerKubeConfig } from "./cluster-identity.ts";
import { AddressPolicy, kubeconfigFindings, serverUrlProblem } from "./kubeconfig-policy.ts";
import { isPlainObject, type KubeObject } from "./object.ts";

export const ALLOWED_NAMESPACES_ANNOTATION = "sinker.influxdata.io/allowed-namespaces";
export const SECRET_ACCESS_DENIED_MESSAGE =
  "Referenced Kubeconfig Secret cannot be accessed due to namespace restrictions";

/**
 * May a ResourceSync in `rsNamespace` use this Secret? (The allowed-namespaces rule,
 * docs/spec/resourcesync.md#the-allowed-namespaces-rule.)
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
  if (!namespaceAllowed(pattern, rsNamespace)) throw denied();
}

/**
 * Does the allowed-namespaces expression match the whole namespace name? RE2 syntax on the linear-time engine
 * (as the Rust controller's regex crate: `(?i)`, `(?P<n>…)`, `\A`, `\z`, `[[:alpha:]]`), anchored at both
 * ends. An invalid expression matches nothing. Answers are cached by (expression, namespace): every reconcile
 * of every ResourceSync asks again, and a Secret update requeues them all.
 */
export function namespaceAllowed(pattern: string, namespace: string): boolean {
  const key = `${pattern}\u0000${namespace}`;
  const hit = answers.get(key);
  if (hit !== undefined) return hit;
  const compiled = compileRegex(pattern, "re2");
  const answer = compiled.ok && compiled.regex.matchesWhole(namespace);
  answers.set(key, answer);
  if (answers.size > ANSWER_CACHE_SIZE) {
    const oldest = answers.keys().next();
    if (!oldest.done) answers.delete(oldest.value);
  }
  return answer;
}

const ANSWER_CACHE_SIZE = 4096;
const answers = new Map<string, boolean>();

export interface RemoteClustersOptions {
  /** Operator opt-in: allow exec / auth-provider / file paths / proxy-url in kubeconfigs from Secrets. */
  allowUnsafeKubeconfigs: boolean;
  responseHeadersTimeoutMs: number;
  logger: Logger;
  userAgent?: string;
  /** Addresses remote servers may not have (default: link-local and metadata addresses). */
  addressPolicy?: AddressPolicy;
  /** Total deadline of one non-watch request (default: the client's, 30 s). */
  requestTimeoutMs?: number;
  /** Where the clusters' identities are kept (default: a registry of its own). */
  identities?: ClusterIdentities;
}

export interface RemoteCluster {
  client: ClusterClient;
  /** The namespace of the kubeconfig's current context, if it sets one. */
  namespace: string | undefined;
}

/** Kubeconfig text larger than this is refused before it is parsed (real ones are a few KiB). */
export const MAX_KUBECONFIG_BYTES = 512 * 1024;
/** Parsed kubeconfigs (and refusals) kept, by content. */
export const KUBECONFIG_CACHE_SIZE = 64;

type Parsed =
  | { ok: true; kubeConfig: KubeConfig; namespace: string | undefined }
  | { ok: false; reason: ErrorReason; detail: string };

const parsedCache = new Map<string, Parsed>();

/**
 * Parses and checks kubeconfig text. Throws InvalidKubeconfig / UnsafeKubeconfig / BlockedAddress with messages
 * that name `where` (e.g. `Secret ns/name key "value"`) and never any value from the text. Results, refusals
 * included, are cached by content: a Secret reconciled again costs a hash, not a parse. The returned KubeConfig
 * may be shared: do not change it.
 */
export function loadKubeconfig(
  text: string,
  where: string,
  allowUnsafe: boolean,
  policy: AddressPolicy = DEFAULT_ADDRESS_POLICY,
): { kubeConfig: KubeConfig; namespace: string | undefined } {
  const key = createHash("sha256")
    .update(`${allowUnsafe}\u0000${policy.cidrs.join(",")}\u0000`)
    .update(text)
    .digest("base64");
  let parsed = parsedCache.get(key);
  if (parsed === undefined) {
    parsed = parseKubeconfig(text, allowUnsafe, policy);
    parsedCache.set(key, parsed);
    if (parsedCache.size > KUBECONFIG_CACHE_SIZE) {
      const oldest = parsedCache.keys().next();
      if (!oldest.done) parsedCache.delete(oldest.value);
    }
  } else {
    parsedCache.delete(key);
    parsedCache.set(key, parsed);
  }
  if (!parsed.ok) throw new SinkerError(parsed.reason, `kubeconfig in ${where} ${parsed.detail}`);
  return { kubeConfig: parsed.kubeConfig, namespace: parsed.namespace };
}

const DEFAULT_ADDRESS_POLICY = new AddressPolicy();
/** Circuit breakers kept (one per Secret and server; least recently used dropped). */
const MAX_BREAKERS = 4096;
const NAMESPACE_RE = new RegExp(NAMESPACE_PATTERN, "u");
/** The YAML parser, loaded at the first remote kubeconfig (about 1 MiB of resident memory otherwise). */
const yaml = lazyModule<typeof import("yaml")>(import.meta.url, "yaml");

function parseKubeconfig(text: string, allowUnsafe: boolean, policy: AddressPolicy): Parsed {
  const fail = (reason: ErrorReason, detail: string): Parsed => ({ ok: false, reason, detail });
  if (Buffer.byteLength(text) > MAX_KUBECONFIG_BYTES) {
    return fail("InvalidKubeconfig", `is larger than ${MAX_KUBECONFIG_BYTES / 1024} KiB`);
  }
  let raw: unknown;
  try {
    raw = yaml().parse(text);
  } catch {
    // the parser's message quotes the offending text: do not pass it on
    return fail("InvalidKubeconfig", "is not valid YAML");
  }
  if (!isPlainObject(raw)) return fail("InvalidKubeconfig", "is not a YAML mapping");
  if (!allowUnsafe) {
    const findings = kubeconfigFindings(raw);
    if (findings.length > 0) {
      return fail(
        "UnsafeKubeconfig",
        `is refused: ${findings.slice(0, 5).join("; ")}${findings.length > 5 ? "; …" : ""}. Kubeconfigs from ` +
          "Secrets may only hold inline certificates (*-data), a token or a user name and password, " +
          "tls-server-name, and may not run programs, read files, use proxies or skip TLS verification unless " +
          "the operator allows unsafe kubeconfigs",
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
    return fail("InvalidKubeconfig", `cannot be loaded${safe}`);
  }
  const current = kc.getCurrentContext();
  if (!current) return fail("InvalidKubeconfig", "has no current-context");
  const ctx = kc.getContextObject(current);
  if (!ctx) return fail("InvalidKubeconfig", `names a current-context that is not defined`);
  const cluster = kc.getCluster(ctx.cluster);
  if (!cluster) return fail("InvalidKubeconfig", `has a context whose cluster is not defined`);
  if (ctx.user && !kc.getUser(ctx.user)) {
    return fail("InvalidKubeconfig", `has a context whose user is not defined`);
  }
  if (ctx.namespace && !NAMESPACE_RE.test(ctx.namespace)) {
    return fail("InvalidKubeconfig", "has a context namespace that is not a valid namespace name");
  }
  const urlProblem = serverUrlProblem(cluster.server, policy);
  if (urlProblem) return fail(urlProblem.reason, `is refused: ${urlProblem.detail}`);
  return { ok: true, kubeConfig: kc, namespace: ctx.namespace || undefined };
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
  readonly #addressPolicy: AddressPolicy;
  readonly #requestTimeoutMs: number | undefined;
  /** Which cluster each client reaches (fetched once per client, see cluster-identity.ts). */
  readonly identities: ClusterIdentities;
  /** `${uid}/${resourceVersion}/${key}` → client */
  readonly #cache = new Map<string, CacheEntry>();
  /**
   * Circuit breakers by Secret uid + server URL: they outlive the clients (dropped when unused, made again on
   * the next reconcile), and one tenant's failures (e.g. a wrong CA for a shared server) never open another's.
   */
  readonly #breakers = new Map<string, CircuitBreaker>();
  /** `${uid}/${resourceVersion}/${key}` → why its kubeconfig was refused (bounded; not even decoded again). */
  readonly #refused = new Map<string, SinkerError>();
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
    this.#addressPolicy = opts.addressPolicy ?? DEFAULT_ADDRESS_POLICY;
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.identities = opts.identities ?? new ClusterIdentities();
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
    const refused = this.#refused.get(cacheKey);
    if (refused) throw refused;

    let kubeConfig: KubeConfig;
    let namespace: string | undefined;
    try {
      const text = secretValue(secret, key);
      if (text === undefined) throw new SinkerError("InvalidKubeconfig", `${where} does not exist`);
      ({ kubeConfig, namespace } = loadKubeconfig(text, where, this.#allowUnsafe, this.#addressPolicy));
    } catch (err) {
      if (err instanceof SinkerError) {
        this.#refused.set(cacheKey, err);
        if (this.#refused.size > KUBECONFIG_CACHE_SIZE) {
          const oldest = this.#refused.keys().next();
          if (!oldest.done) this.#refused.delete(oldest.value);
        }
      }
      throw err;
    }
    const client = ClusterClient.fromKubeConfig(kubeConfig, {
      name: `secret/${meta.namespace ?? ""}/${meta.name ?? ""}`,
      responseHeadersTimeoutMs: this.#headersTimeoutMs,
      ...(this.#userAgent ? { userAgent: this.#userAgent } : {}),
      remote: {
        lookup: this.#addressPolicy.lookup,
        breaker: this.#breakerFor(`${uid}\u0000${kubeConfig.getCurrentCluster()?.server ?? ""}`),
      },
      ...(this.#requestTimeoutMs ? { limits: { requestTimeoutMs: this.#requestTimeoutMs } } : {}),
    });
    registerKubeConfig(client, kubeConfig);
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

  #breakerFor(key: string): CircuitBreaker {
    let breaker = this.#breakers.get(key);
    if (breaker === undefined) {
      breaker = new CircuitBreaker();
      if (this.#breakers.size >= MAX_BREAKERS) {
        const oldest = this.#breakers.keys().next();
        if (!oldest.done) this.#breakers.delete(oldest.value);
      }
    } else this.#breakers.delete(key);
    this.#breakers.set(key, breaker);
    return breaker;
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
