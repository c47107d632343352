/**
 * A small Kubernetes API client for one cluster, working on raw JSON objects.
 *
 * @kubernetes/client-node is used only to load kubeconfigs and to compute credentials (bearer tokens, client
 * certificates, exec/auth-provider plugins when allowed); the HTTP layer is our own, on an undici Agent:
 * - one connection pool per ClusterClient (client-node 2.0.1 builds a new undici Agent on every
 *   `applySecurityAuthentication` call, i.e. a new pool per request),
 * - a response-headers timeout on every request, and no body timeout on watches (an idle timer instead),
 * - watches that support bookmarks and report 410 Gone (client-node's Watch drops lines it cannot parse,
 *   has a fixed 30 s timer and no bookmarks handling).
 *
 * Errors: every failure is a SinkerError. A non-2xx answer maps its HTTP status to a reason (see
 * `reasonForStatus`) and carries the API server's Status message, reduced (api-message.ts: no quoted values);
 * a body that is not a Status gives only the status code and reason phrase. Connection problems and 5xx are
 * `ClusterUnreachable`. Request bodies (which may be Secret data) never go into messages or logs.
 *
 * Servers are hostile (issue 10: a remote cluster is named by a tenant's kubeconfig):
 * - every non-watch request, discovery included, has a TOTAL deadline (connect + headers + whole body), not
 *   only gaps between chunks;
 * - response bodies are capped (objects and lists: 32 MiB; error bodies: 64 KiB are read, the rest dropped),
 *   a watch line is capped (16 MiB, watch-lines.ts), a list is capped in items and pages;
 * - a client for a remote cluster has a circuit breaker (circuit-breaker.ts): after repeated transport failures
 *   its requests fail at once for a cool-down, so a dead or slow cluster does not hold workers; its connections
 *   resolve host names through the address policy (kubeconfig-policy.ts), and its error messages keep only the
 *   Status reason, code and a reduced message.
 */
import { type OutgoingHttpHeaders, STATUS_CODES } from "node:http";
import type { RequestOptions } from "node:https";
import type { LookupFunction } from "node:net";
import { Agent, type Dispatcher, ProxyAgent, request } from "undici";
import { type ErrorReason, SinkerError } from "../errors.ts";
import { reduceApiMessage } from "./api-message.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";
import type { KubeConfig } from "./client-node.ts";
import { isPlainObject, type KubeObject } from "./object.ts";
import { currentRequestSignal } from "./request-signal.ts";
import { DEFAULT_MAX_WATCH_LINE_BYTES, type WatchEvent, WatchLineDecoder } from "./watch-lines.ts";

export { parseWatchLine, type WatchEvent, type WatchEventType, WatchLineDecoder } from "./watch-lines.ts";

export interface ResourceInfo {
  /** `v1` or `group/version`. */
  apiVersion: string;
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** The resource name in URLs, e.g. `configmaps`. */
  plural: string;
  namespaced: boolean;
}

export interface ClusterClientOptions {
  /** A label for logs and metrics: "local" or e.g. "secret/ns/name". Not unique: see `id`. */
  name: string;
  /** Response-headers timeout for every request (default 9000 ms). */
  responseHeadersTimeoutMs?: number;
  /** Adds Impersonate-User / Impersonate-Group headers on every request. */
  impersonate?: { user?: string; groups?: string[] };
  userAgent?: string;
  /**
   * Set for a cluster named by tenant input (a kubeconfig from a Secret): enables the circuit breaker, stricter
   * error messages and the address policy's `lookup` for connections.
   */
  remote?: {
    /** Resolves host names for connections (the address policy refuses denied addresses). */
    lookup?: LookupFunction;
    /**
     * The breaker of this cluster; share one instance among the successive clients of one cluster (e.g. a
     * client dropped when unused and made again) so that it outlives them. Default: a new one.
     */
    breaker?: CircuitBreaker;
  };
  /** Bounds (defaults: DEFAULT_CLIENT_LIMITS). */
  limits?: Partial<ClientLimits>;
}

export interface ClientLimits {
  /** Total time for one non-watch request: connect, headers and the whole body. */
  requestTimeoutMs: number;
  /** Largest response body of a non-watch request. */
  maxResponseBytes: number;
  /** Bytes of an error body read (the rest is dropped). */
  maxErrorBodyBytes: number;
  /** Longest watch line (one event). */
  maxWatchLineBytes: number;
  /** Most items of one list (all pages of a continued list together). */
  maxListItems: number;
  /** Most pages of one continued list. */
  maxListPages: number;
}

export const DEFAULT_CLIENT_LIMITS: Readonly<ClientLimits> = {
  requestTimeoutMs: 30_000,
  maxResponseBytes: 32 * 1024 * 1024,
  maxErrorBodyBytes: 64 * 1024,
  maxWatchLineBytes: DEFAULT_MAX_WATCH_LINE_BYTES,
  maxListItems: 100_000,
  maxListPages: 1000,
};

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  /** Only meaningful with resourceVersion: "NotOlderThan" | "Exact". */
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  resourceVersion: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Asks the server to end the watch after this many seconds (the server adds no jitter: the caller should). */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
  signal: AbortSignal;
  /**
   * No bytes for this many seconds (events, bookmarks) → the watch is aborted and the promise rejects with
   * ClusterUnreachable. Default: timeoutSeconds + 60, or 300 without timeoutSeconds.
   */
  idleTimeoutSeconds?: number;
  /** Called once the server accepted the watch (2xx response headers). */
  onOpen?: () => void;
}

export interface DeleteOptions {
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
}

const DEFAULT_HEADERS_TIMEOUT_MS = 9000;
/** Body timeout of normal (non-watch) requests: time between two chunks of the response body. */
const BODY_TIMEOUT_MS = 60_000;
/** Least time between two discovery refreshes of one group/version caused by an unknown kind. */
const DISCOVERY_REFRESH_INTERVAL_MS = 5000;

const PATCH_CONTENT_TYPES = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
} as const;

/** Maps an HTTP status of a Kubernetes API answer to an error reason. */
export function reasonForStatus(status: number): ErrorReason {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 422:
      return "Invalid";
    case 429:
      return "Throttled";
    default:
      return status >= 500 ? "ClusterUnreachable" : "BadRequest";
  }
}

/**
 * Builds the SinkerError for a non-2xx answer. `body` is the response body text (a meta/v1 Status when an API
 * server answered). Only a Status's message is used, reduced (no quoted values); any other body gives the
 * status code and reason phrase only. For a `remote` cluster, the message keeps the Status reason and a reduced
 * message of at most 300 characters.
 */
export function apiError(
  cluster: string,
  status: number,
  body: string,
  what: string,
  remote = false,
): SinkerError {
  const phrase = STATUS_CODES[status] ?? "";
  let message = `HTTP ${status}${phrase ? ` ${phrase}` : ""}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined; // not JSON (a proxy, a load balancer, a hostile server): never reflected
  }
  if (
    isPlainObject(parsed) &&
    parsed.kind === "Status" &&
    typeof parsed.message === "string" &&
    parsed.message !== ""
  ) {
    if (remote) {
      const reason =
        typeof parsed.reason === "string" && /^[A-Za-z]{1,64}$/.test(parsed.reason) ? parsed.reason : "";
      let reduced = reduceApiMessage(parsed.message).replace(/[^\x20-\x7e]/g, "?");
      if (reduced.length > 300) reduced = `${reduced.slice(0, 300)}…`;
      message = `${message}${reason ? ` (${reason})` : ""}: ${reduced}`;
    } else {
      message = reduceApiMessage(parsed.message);
    }
  }
  const reason = reasonForStatus(status);
  const prefix =
    reason === "ClusterUnreachable" ? `cluster "${cluster}" failed ${what}` : `cluster "${cluster}"`;
  const immutableFields = status === 422 ? immutableFieldsOf(parsed) : undefined;
  return new SinkerError(reason, `${prefix}: ${message}`, {
    status,
    ...(immutableFields ? { immutableFields } : {}),
  });
}

const IMMUTABLE = /\bfield is immutable\b/;
/** A field path as API servers write them (`type`, `spec.selector`, `data[key]`); anything else is dropped. */
const FIELD_PATH = /^[A-Za-z0-9_.\-[\]/]{1,256}$/;
const MAX_IMMUTABLE_FIELDS = 8;

/**
 * The fields a 422 Status refuses as immutable: its `details.causes` whose message says "field is immutable"
 * (`type`, or `data` of an immutable ConfigMap or Secret), or [] when only its message says so. undefined: not
 * an immutability refusal. Bounded and filtered, as the answer may come from a hostile server.
 */
export function immutableFieldsOf(status: unknown): readonly string[] | undefined {
  if (!isPlainObject(status)) return undefined;
  const fields: string[] = [];
  const details = status.details;
  const causes = isPlainObject(details) && Array.isArray(details.causes) ? details.causes : [];
  for (const cause of causes.slice(0, 64)) {
    if (!isPlainObject(cause) || typeof cause.message !== "string") continue;
    if (!IMMUTABLE.test(cause.message.slice(0, 1024))) continue;
    const field = typeof cause.field === "string" && FIELD_PATH.test(cause.field) ? cause.field : "";
    if (field && !fields.includes(field) && fields.length < MAX_IMMUTABLE_FIELDS) fields.push(field);
  }
  if (fields.length > 0) return fields;
  const anyCause = causes.some(
    (c) => isPlainObject(c) && typeof c.message === "string" && IMMUTABLE.test(c.message.slice(0, 1024)),
  );
  const inMessage = typeof status.message === "string" && IMMUTABLE.test(status.message.slice(0, 4096));
  return anyCause || inMessage ? [] : undefined;
}

/** Wraps a transport error (connection refused, TLS, timeouts) into ClusterUnreachable. */
export function transportError(cluster: string, err: unknown, what: string): SinkerError {
  if (err instanceof SinkerError) return err;
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = typeof e?.code === "string" ? e.code : typeof e?.cause?.code === "string" ? e.cause.code : "";
  const msg =
    typeof e?.cause?.message === "string" && e.cause.message !== ""
      ? e.cause.message
      : typeof e?.message === "string"
        ? e.message
        : String(err);
  const detail =
    code === "UND_ERR_HEADERS_TIMEOUT"
      ? "no response headers within the timeout"
      : code === "UND_ERR_BODY_TIMEOUT"
        ? "response body stalled"
        : code === "ESINKERBLOCKED"
          ? "the server's address is link-local, cloud metadata or denied by the operator"
          : msg;
  return new SinkerError("ClusterUnreachable", `cluster "${cluster}" unreachable (${what}): ${detail}`, {
    cause: err,
  });
}

function cancelledError(cluster: string, what: string): SinkerError {
  return new SinkerError("Cancelled", `cluster "${cluster}": ${what} cancelled`);
}

/** A headers or body timeout of undici. */
function isTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = e?.code ?? e?.cause?.code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

function isConnectionReset(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = e?.code ?? e?.cause?.code;
  return code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE";
}

/** `apps/v1` → { group: "apps", version: "v1" }, `v1` → { group: "", version: "v1" }. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const parts = apiVersion.split("/");
  if (parts.length === 1 && parts[0]) return { group: "", version: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { group: parts[0], version: parts[1] };
  throw new SinkerError(
    "UnknownKind",
    `invalid apiVersion "${apiVersion}": expected "version" or "group/version"`,
  );
}

interface GroupVersionCache {
  /** Kinds of this group/version; undefined when the group/version does not exist on the server. */
  kinds: Map<string, ResourceInfo> | undefined;
  fetchedAt: number;
}

let nextClientId = 1;

interface Credentials {
  headers: Record<string, string>;
  tls: {
    ca?: string | Buffer | Array<string | Buffer>;
    cert?: string | Buffer | Array<string | Buffer>;
    key?: RequestOptions["key"];
    rejectUnauthorized?: boolean;
    servername?: string;
  };
}

export class ClusterClient {
  /** Label for logs and metrics. Two clients may share a name (e.g. a rotated kubeconfig): use `id` to tell. */
  readonly name: string;
  /** Unique per instance within this process. */
  readonly id: number;
  /** The API server URL, without a trailing slash. */
  readonly server: string;
  readonly #kc: KubeConfig;
  readonly #headersTimeoutMs: number;
  readonly #extraHeaders: Record<string, string | string[]>;
  #dispatcher: Dispatcher | undefined;
  readonly #discovery = new Map<string, Promise<GroupVersionCache>>();
  #closed = false;
  readonly #limits: ClientLimits;
  readonly #remote: ClusterClientOptions["remote"];
  /** Remote clusters only. */
  readonly #breaker: CircuitBreaker | undefined;
  /** Continue token handed out → [pages so far, items so far] of that list (bounded, see list()). */
  readonly #listChains = new Map<string, [number, number]>();

  private constructor(kc: KubeConfig, opts: ClusterClientOptions, server: string) {
    this.#kc = kc;
    this.name = opts.name;
    this.id = nextClientId++;
    this.server = server;
    this.#headersTimeoutMs = opts.responseHeadersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.#limits = { ...DEFAULT_CLIENT_LIMITS, ...opts.limits };
    this.#remote = opts.remote;
    this.#breaker = opts.remote ? (opts.remote.breaker ?? new CircuitBreaker()) : undefined;
    const extra: Record<string, string | string[]> = {
      "user-agent": opts.userAgent ?? "sinker",
      accept: "application/json",
    };
    if (opts.impersonate?.user) extra["impersonate-user"] = opts.impersonate.user;
    if (opts.impersonate?.groups && opts.impersonate.groups.length > 0) {
      extra["impersonate-group"] = [...opts.impersonate.groups];
    }
    this.#extraHeaders = extra;
  }

  /** Uses the kubeconfig's current context. Throws InvalidKubeconfig when it names no usable cluster. */
  static fromKubeConfig(kc: KubeConfig, opts: ClusterClientOptions): ClusterClient {
    const cluster = kc.getCurrentCluster();
    if (!cluster) {
      throw new SinkerError(
        "InvalidKubeconfig",
        `kubeconfig for "${opts.name}" has no current context or cluster`,
      );
    }
    let url: URL;
    try {
      url = new URL(cluster.server);
    } catch {
      throw new SinkerError(
        "InvalidKubeconfig",
        `kubeconfig for "${opts.name}": cluster server is not a URL`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new SinkerError("InvalidKubeconfig", `kubeconfig for "${opts.name}": server must be http(s)`);
    }
    return new ClusterClient(kc, opts, cluster.server.replace(/\/+$/, ""));
  }

  toString(): string {
    return `ClusterClient(${this.name}#${this.id})`;
  }

  /** Closes the connection pool. Requests after close fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    if (d) await d.close().catch(() => d.destroy());
  }

  // ---------------------------------------------------------------- discovery

  /**
   * Group/version/kind → resource and scope, from the cluster's discovery (`/api/v1`, `/apis/<g>/<v>`), cached
   * per group/version. An unknown kind (or group/version) refreshes that group/version once, at most every 5 s,
   * before failing with UnknownKind.
   */
  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const { group, version } = parseApiVersion(apiVersion);
    const gv = group === "" ? version : `${group}/${version}`;
    let cache = await this.#discoverGroupVersion(gv, false);
    let info = cache.kinds?.get(kind);
    if (info) return info;
    if (Date.now() - cache.fetchedAt >= DISCOVERY_REFRESH_INTERVAL_MS) {
      cache = await this.#discoverGroupVersion(gv, true);
      info = cache.kinds?.get(kind);
      if (info) return info;
    }
    const why =
      cache.kinds === undefined ? `API group/version "${gv}" is not served` : `kind "${kind}" is not served`;
    throw new SinkerError(
      "UnknownKind",
      `cluster "${this.name}": ${why} (apiVersion "${apiVersion}", kind "${kind}"); is the CRD installed?`,
    );
  }

  /** Forgets cached discovery, e.g. after a CRD change. */
  invalidateDiscovery(): void {
    this.#discovery.clear();
  }

  #discoverGroupVersion(gv: string, refresh: boolean): Promise<GroupVersionCache> {
    const cached = this.#discovery.get(gv);
    if (cached && !refresh) return cached;
    const p = this.#fetchGroupVersion(gv);
    this.#discovery.set(gv, p);
    // errors (cluster unreachable, forbidden) are not cached
    p.catch(() => {
      if (this.#discovery.get(gv) === p) this.#discovery.delete(gv);
    });
    return p;
  }

  async #fetchGroupVersion(gv: string): Promise<GroupVersionCache> {
    const path = gv.includes("/") ? `/apis/${gv}` : `/api/${gv}`;
    const res = await this.#send("GET", path, undefined, undefined, `discovery of ${gv}`, true);
    if (res === undefined) return { kinds: undefined, fetchedAt: Date.now() };
    const kinds = new Map<string, ResourceInfo>();
    const { group, version } = parseApiVersion(gv);
    const resources = isPlainObject(res) && Array.isArray(res.resources) ? res.resources : [];
    for (const r of resources) {
      if (!isPlainObject(r) || typeof r.name !== "string" || typeof r.kind !== "string") continue;
      if (r.name.includes("/")) continue; // subresource
      if (kinds.has(r.kind)) continue;
      kinds.set(r.kind, {
        apiVersion: gv,
        group,
        version,
        kind: r.kind,
        plural: r.name,
        namespaced: r.namespaced === true,
      });
    }
    return { kinds, fetchedAt: Date.now() };
  }

  // ---------------------------------------------------------------- CRUD

  /** The object, or undefined when it does not exist (404). */
  async get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const obj = await this.#send(
      "GET",
      this.#path(res, namespace, name),
      undefined,
      undefined,
      `get ${res.plural}`,
      true,
    );
    return obj === undefined ? undefined : this.#withTypeMeta(res, obj);
  }

  /** One page (or all, without `limit`). Items get apiVersion and kind filled in. */
  async list(res: ResourceInfo, namespace: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    const q = new URLSearchParams();
    if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
    if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
    if (opts.limit !== undefined) q.set("limit", String(opts.limit));
    if (opts.continue) q.set("continue", opts.continue);
    if (opts.resourceVersion !== undefined) q.set("resourceVersion", opts.resourceVersion);
    if (opts.resourceVersionMatch) q.set("resourceVersionMatch", opts.resourceVersionMatch);
    const body = await this.#send(
      "GET",
      this.#path(res, namespace, undefined, q),
      undefined,
      undefined,
      `list ${res.plural}`,
    );
    if (!isPlainObject(body) || !Array.isArray(body.items)) {
      throw new SinkerError(
        "ClusterUnreachable",
        `cluster "${this.name}": list ${res.plural} returned no items`,
      );
    }
    const meta = isPlainObject(body.metadata) ? body.metadata : {};
    // A continued list: count its pages and items across calls (a hostile server may never stop paging).
    const chain = (opts.continue ? this.#listChains.get(opts.continue) : undefined) ?? [0, 0];
    if (opts.continue) this.#listChains.delete(opts.continue);
    const pages = chain[0] + 1;
    const total = chain[1] + body.items.length;
    if (total > this.#limits.maxListItems || pages > this.#limits.maxListPages) {
      this.#breaker?.failure();
      throw new SinkerError(
        "ResponseTooLarge",
        `cluster "${this.name}": list ${res.plural} returned more than ${this.#limits.maxListItems} items or ` +
          `${this.#limits.maxListPages} pages`,
      );
    }
    const items = body.items.filter(isPlainObject).map((o) => this.#withTypeMeta(res, o as KubeObject));
    const out: ListResult = {
      items,
      resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : "",
    };
    if (typeof meta.continue === "string" && meta.continue !== "") {
      out.continue = meta.continue;
      this.#listChains.set(meta.continue, [pages, total]);
      // Abandoned lists leave entries behind: keep the newest few.
      if (this.#listChains.size > 64) {
        const oldest = this.#listChains.keys().next();
        if (!oldest.done) this.#listChains.delete(oldest.value);
      }
    }
    return out;
  }

  /**
   * Streams watch events until the server ends the watch (resolves), `signal` aborts (resolves), or an error
   * (rejects: HTTP error, broken stream, idle timeout). ERROR events (e.g. a 410 Gone Status) are passed to
   * `onEvent` like any other; the server ends the stream after one. An exception thrown by `onEvent` ends the
   * watch and rejects with it.
   */
  async watch(
    res: ResourceInfo,
    namespace: string | undefined,
    opts: WatchOptions,
    onEvent: (e: WatchEvent) => void,
  ): Promise<void> {
    if (opts.signal.aborted) return;
    const q = new URLSearchParams({ watch: "1", resourceVersion: opts.resourceVersion });
    if (opts.allowWatchBookmarks) q.set("allowWatchBookmarks", "true");
    if (opts.timeoutSeconds !== undefined)
      q.set("timeoutSeconds", String(Math.max(1, Math.floor(opts.timeoutSeconds))));
    if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
    if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
    const idleMs =
      1000 *
      (opts.idleTimeoutSeconds ?? (opts.timeoutSeconds !== undefined ? opts.timeoutSeconds + 60 : 300));
    const what = `watch ${res.plural}`;
    const local = new AbortController();
    const signal = AbortSignal.any([opts.signal, local.signal]);
    let idleFired = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        idleFired = true;
        local.abort();
      }, idleMs);
    };
    const path = this.#path(res, namespace, undefined, q);
    try {
      arm();
      const dispatcher = await this.#getDispatcher();
      const headers = await this.#headers(undefined);
      this.#admit();
      let response: Dispatcher.ResponseData;
      try {
        response = await request(this.server + path, {
          method: "GET",
          headers,
          dispatcher,
          signal,
          bodyTimeout: 0,
          headersTimeout: this.#headersTimeoutMs,
        });
      } catch (err) {
        if (opts.signal.aborted && !idleFired) {
          this.#breaker?.abandon(); // not the server's fault; a probe must not stay pending
          return;
        }
        this.#breaker?.failure(idleFired || isTimeout(err));
        throw idleFired ? this.#idleError(what, idleMs) : transportError(this.name, err, what);
      }
      this.#breaker?.success();
      if (response.statusCode < 200 || response.statusCode >= 300) {
        const text = await readErrorBody(response.body, this.#limits.maxErrorBodyBytes);
        throw apiError(this.name, response.statusCode, text, what, this.#remote !== undefined);
      }
      arm();
      opts.onOpen?.();
      let handlerFailed = false;
      const decoder = new WatchLineDecoder((e) => {
        if (e.type !== "ERROR" && e.type !== "BOOKMARK") this.#withTypeMeta(res, e.object);
        // An ERROR event's Status message is reduced like any API error message (it ends up in logs/status).
        if (e.type === "ERROR" && typeof e.object.message === "string") {
          const reduced = reduceApiMessage(e.object.message);
          e.object.message = this.#remote ? reduced.slice(0, 300).replace(/[^\x20-\x7e]/g, "?") : reduced;
        }
        try {
          onEvent(e);
        } catch (err) {
          handlerFailed = true;
          throw err;
        }
      }, this.#limits.maxWatchLineBytes);
      try {
        for await (const chunk of response.body) {
          arm();
          decoder.write(chunk as Uint8Array);
        }
        decoder.end();
      } catch (err) {
        response.body.destroy();
        if (err instanceof SinkerError && err.reason === "ResponseTooLarge") this.#breaker?.failure();
        if (handlerFailed || err instanceof SinkerError) throw err;
        if (opts.signal.aborted && !idleFired) return;
        if (idleFired) throw this.#idleError(what, idleMs);
        if (signal.aborted) return;
        throw transportError(this.name, err, what);
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  #idleError(what: string, idleMs: number): SinkerError {
    return new SinkerError(
      "ClusterUnreachable",
      `cluster "${this.name}": ${what} received nothing for ${Math.round(idleMs / 1000)} s`,
    );
  }

  /** Server-side apply (PATCH application/apply-patch+yaml, JSON body). `dryRun`: the server computes and
   * validates the result without storing it (`dryRun=All`), as `sinker diff` needs. */
  async apply(
    res: ResourceInfo,
    obj: KubeObject,
    opts: { fieldManager: string; force: boolean; subresource?: "status"; dryRun?: boolean },
  ): Promise<KubeObject> {
    const name = obj.metadata?.name;
    if (!name) throw new SinkerError("InvalidSpec", "apply: object has no metadata.name");
    const q = new URLSearchParams({ fieldManager: opts.fieldManager });
    if (opts.force) q.set("force", "true");
    if (opts.dryRun) q.set("dryRun", "All");
    const path = this.#path(res, obj.metadata?.namespace, name, q, opts.subresource);
    const out = await this.#send(
      "PATCH",
      path,
      JSON.stringify(obj),
      "application/apply-patch+yaml",
      `apply ${res.plural}`,
    );
    return this.#withTypeMeta(res, out as KubeObject);
  }

  async patch(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    body: unknown,
    type: "merge" | "json" | "strategic",
    opts: { subresource?: string; fieldManager?: string } = {},
  ): Promise<KubeObject> {
    const q = new URLSearchParams();
    if (opts.fieldManager) q.set("fieldManager", opts.fieldManager);
    const path = this.#path(res, namespace, name, q, opts.subresource);
    const out = await this.#send(
      "PATCH",
      path,
      JSON.stringify(body),
      PATCH_CONTENT_TYPES[type],
      `patch ${res.plural}`,
    );
    return this.#withTypeMeta(res, out as KubeObject);
  }

  async create(
    res: ResourceInfo,
    namespace: string | undefined,
    obj: KubeObject,
    opts: { fieldManager?: string } = {},
  ): Promise<KubeObject> {
    const body = this.#withTypeMeta(res, { ...obj });
    const q = opts.fieldManager ? new URLSearchParams({ fieldManager: opts.fieldManager }) : undefined;
    const out = await this.#send(
      "POST",
      this.#path(res, namespace, undefined, q),
      JSON.stringify(body),
      "application/json",
      `create ${res.plural}`,
    );
    return this.#withTypeMeta(res, out as KubeObject);
  }

  /** PUT; the object's metadata.resourceVersion (if any) is the optimistic-concurrency precondition. */
  async replace(
    res: ResourceInfo,
    obj: KubeObject,
    opts: { subresource?: string } = {},
  ): Promise<KubeObject> {
    const name = obj.metadata?.name;
    if (!name) throw new SinkerError("InvalidSpec", "replace: object has no metadata.name");
    const body = this.#withTypeMeta(res, { ...obj });
    const path = this.#path(res, obj.metadata?.namespace, name, undefined, opts.subresource);
    const out = await this.#send(
      "PUT",
      path,
      JSON.stringify(body),
      "application/json",
      `replace ${res.plural}`,
    );
    return this.#withTypeMeta(res, out as KubeObject);
  }

  async delete(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<"deleted" | "pending" | "notfound"> {
    const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    const out = await this.#send(
      "DELETE",
      this.#path(res, namespace, name),
      JSON.stringify(body),
      "application/json",
      `delete ${res.plural}`,
      true,
    );
    if (out === undefined) return "notfound";
    // Removed at once: a Status (or, for some kinds, the object as it was). Still there, waiting for its
    // finalizers or a grace period: the object with a deletionTimestamp.
    return out.kind !== "Status" && out.metadata?.deletionTimestamp ? "pending" : "deleted";
  }

  // ---------------------------------------------------------------- plumbing

  #path(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string | undefined,
    query?: URLSearchParams,
    subresource?: string,
  ): string {
    let p = res.group === "" ? `/api/${res.version}` : `/apis/${res.group}/${res.version}`;
    if (res.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
    else if (res.namespaced && name !== undefined) {
      throw new SinkerError("InvalidSpec", `${res.kind} "${name}" is namespaced but no namespace was given`);
    }
    p += `/${res.plural}`;
    if (name !== undefined) p += `/${encodeURIComponent(name)}`;
    if (subresource) p += `/${subresource}`;
    const qs = query?.toString();
    return qs ? `${p}?${qs}` : p;
  }

  #withTypeMeta(res: ResourceInfo, obj: KubeObject): KubeObject {
    if (obj.apiVersion === undefined) obj.apiVersion = res.apiVersion;
    if (obj.kind === undefined) obj.kind = res.kind;
    return obj;
  }

  /**
   * One request. Returns the parsed JSON body; undefined for a 404 when `notFoundOk`. Throws SinkerError.
   */
  async #send(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    body: string | undefined,
    contentType: string | undefined,
    what: string,
    notFoundOk = false,
  ): Promise<KubeObject | undefined> {
    const dispatcher = await this.#getDispatcher();
    const headers = await this.#headers(contentType);
    // the cancellation of the reconcile (or other work) this request is part of: leadership lost, stopping
    const cancellation = currentRequestSignal();
    if (cancellation?.aborted) throw cancelledError(this.name, what);
    this.#admit();
    // One deadline for the whole exchange, retry included: connect, headers and every byte of the body. (A timer
    // cleared at the end, not AbortSignal.timeout, which would keep every request's signal alive until it fires.)
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#limits.requestTimeoutMs);
    const onCancel = () => controller.abort();
    cancellation?.addEventListener("abort", onCancel, { once: true });
    try {
      return await this.#exchange(
        method,
        path,
        body,
        headers,
        dispatcher,
        controller.signal,
        what,
        notFoundOk,
      );
    } catch (err) {
      if (cancellation?.aborted) throw cancelledError(this.name, what);
      throw err;
    } finally {
      clearTimeout(timer);
      cancellation?.removeEventListener("abort", onCancel);
    }
  }

  /** One exchange of #send; `deadline` aborts on the total deadline or on cancellation. */
  async #exchange(
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    path: string,
    body: string | undefined,
    headers: Record<string, string | string[]>,
    dispatcher: Dispatcher,
    deadline: AbortSignal,
    what: string,
    notFoundOk: boolean,
  ): Promise<KubeObject | undefined> {
    let response: Dispatcher.ResponseData | undefined;
    let text = "";
    for (let attempt = 1; response === undefined; attempt++) {
      try {
        response = await request(this.server + path, {
          method,
          headers,
          body,
          dispatcher,
          signal: deadline,
          headersTimeout: this.#headersTimeoutMs,
          bodyTimeout: BODY_TIMEOUT_MS,
          // undici closes the connection after a body on a method that "expects no payload" unless told not to:
          // every DELETE (its body is DeleteOptions) would cost a new TLS handshake with the API server
          reset: false,
        });
        text =
          response.statusCode >= 200 && response.statusCode < 300
            ? await readBody(response, this.#limits.maxResponseBytes, this.name, what)
            : await readErrorBody(response.body, this.#limits.maxErrorBodyBytes);
      } catch (err) {
        // a pooled keep-alive connection that the server (or a load balancer) closed meanwhile: a GET is safe
        // to send once more on a fresh connection
        if (method === "GET" && attempt === 1 && isConnectionReset(err) && !deadline.aborted) {
          response = undefined;
          continue;
        }
        if (currentRequestSignal()?.aborted) {
          this.#breaker?.abandon();
          throw cancelledError(this.name, what);
        }
        this.#breaker?.failure(deadline.aborted || isTimeout(err));
        if (err instanceof SinkerError) throw err;
        if (deadline.aborted) {
          throw new SinkerError(
            "ClusterUnreachable",
            `cluster "${this.name}" unreachable (${what}): no complete answer within ` +
              `${Math.round(this.#limits.requestTimeoutMs / 1000)} s`,
            { cause: err },
          );
        }
        throw transportError(this.name, err, what);
      }
    }
    if (response.statusCode === 404 && notFoundOk) {
      this.#breaker?.success();
      return undefined;
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      this.#breaker?.success();
      throw apiError(this.name, response.statusCode, text, what, this.#remote !== undefined);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!isPlainObject(parsed)) {
      this.#breaker?.failure();
      throw new SinkerError(
        "ClusterUnreachable",
        `cluster "${this.name}": ${what} returned a body that is not a JSON object`,
      );
    }
    this.#breaker?.success();
    return parsed as KubeObject;
  }

  /** Throws at once when the circuit breaker of this (remote) cluster is open. */
  #admit(): void {
    if (this.#breaker === undefined || this.#breaker.allow()) return;
    throw new SinkerError(
      "ClusterUnreachable",
      `cluster "${this.name}" failed repeatedly: requests suspended for ` +
        `${Math.ceil(this.#breaker.retryInMs() / 1000)} s (circuit breaker open)`,
    );
  }

  /** The state of this client's circuit breaker ("closed" for a local client, which has none). */
  get breakerState(): "closed" | "open" | "half-open" {
    return this.#breaker?.state ?? "closed";
  }

  async #credentials(): Promise<Credentials> {
    const opts: RequestOptions = {};
    try {
      await this.#kc.applyToHTTPSOptions(opts);
    } catch (err) {
      // messages from credential plugins may carry anything: keep only a generic description
      throw new SinkerError(
        "Unauthorized",
        `cluster "${this.name}": could not obtain credentials from the kubeconfig`,
        {
          cause: err,
        },
      );
    }
    const headers: Record<string, string> = {};
    const h: OutgoingHttpHeaders =
      opts.headers && !Array.isArray(opts.headers) ? (opts.headers as OutgoingHttpHeaders) : {};
    for (const [k, v] of Object.entries(h)) if (v !== undefined) headers[k.toLowerCase()] = String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString("base64")}`;
    const tls: Credentials["tls"] = {};
    if (opts.ca !== undefined) tls.ca = opts.ca;
    if (opts.cert !== undefined) tls.cert = opts.cert;
    if (opts.key !== undefined) tls.key = opts.key;
    if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
    if (opts.servername !== undefined) tls.servername = opts.servername;
    return { headers, tls };
  }

  #pendingDispatcher: Promise<Dispatcher> | undefined;

  #getDispatcher(): Promise<Dispatcher> {
    if (this.#closed) {
      return Promise.reject(
        new SinkerError("ClusterUnreachable", `cluster "${this.name}": client is closed`),
      );
    }
    if (this.#dispatcher) return Promise.resolve(this.#dispatcher);
    if (!this.#pendingDispatcher) {
      this.#pendingDispatcher = this.#credentials().then(
        ({ tls }) => {
          const proxyUrl = this.#kc.getCurrentCluster()?.proxyUrl;
          const common = {
            headersTimeout: this.#headersTimeoutMs,
            bodyTimeout: BODY_TIMEOUT_MS,
            keepAliveTimeout: 30_000,
            // HTTP/1.1: one TCP connection per watch. undici would negotiate HTTP/2 and multiplex every watch on
            // one connection, where the server's stream limit (Go's default 250) would queue normal requests
            // behind watches; one connection per watch is predictable and is what the connection count measures.
            allowH2: false,
          };
          let d: Dispatcher;
          if (proxyUrl) {
            if (!/^https?:/.test(proxyUrl)) {
              throw new SinkerError(
                "InvalidKubeconfig",
                `cluster "${this.name}": only http(s) proxy-url is supported`,
              );
            }
            d = new ProxyAgent({ uri: proxyUrl, requestTls: tls, ...common });
          } else {
            const lookup = this.#remote?.lookup;
            d = new Agent({
              connect: {
                ...tls,
                keepAlive: true,
                keepAliveInitialDelay: 30_000,
                ...(lookup ? { lookup } : {}),
              },
              ...common,
            });
          }
          this.#dispatcher = d;
          this.#pendingDispatcher = undefined;
          return d;
        },
        (err: unknown) => {
          this.#pendingDispatcher = undefined;
          throw err;
        },
      );
    }
    return this.#pendingDispatcher;
  }

  async #headers(contentType: string | undefined): Promise<Record<string, string | string[]>> {
    const { headers } = await this.#credentials();
    const out: Record<string, string | string[]> = { ...headers, ...this.#extraHeaders };
    if (contentType) out["content-type"] = contentType;
    return out;
  }
}

/** Reads a 2xx body, failing with ResponseTooLarge past `max` bytes (announced or received). */
async function readBody(
  response: Dispatcher.ResponseData,
  max: number,
  cluster: string,
  what: string,
): Promise<string> {
  const tooLarge = () =>
    new SinkerError(
      "ResponseTooLarge",
      `cluster "${cluster}": ${what} returned more than ${Math.round(max / 1024 / 1024)} MiB`,
    );
  const announced = Number(response.headers["content-length"]);
  if (Number.isFinite(announced) && announced > max) {
    response.body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      response.body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** The first `max` bytes of an error body (a Status is small); the rest is not read. Never throws. */
async function readErrorBody(body: Dispatcher.ResponseData["body"], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= max) break;
    }
  } catch {
    // a broken error body: what we have is enough
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks, size).subarray(0, max).toString("utf8");
}
