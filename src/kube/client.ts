/**
 * A small Kubernetes API client for one cluster, working on raw JSON objects: the facade over
 * - request.ts: request building (paths, queries, type fields), pure;
 * - transport.ts: credentials and connection pool (connection.ts), headers, the circuit breaker, `send` with
 *   its total deadline and bounded bodies;
 * - api-errors.ts: the mapping of answers and failures to SinkerErrors;
 * - discovery.ts: kind → resource, cached per group/version;
 * - watch.ts: one watch request with its idle timer;
 * - list-guard.ts: the bound on continued lists.
 *
 * @kubernetes/client-node is used only to load kubeconfigs and to compute credentials; the HTTP layer is our
 * own, on undici: one connection pool per ClusterClient, a response-headers timeout on every request, and no
 * body timeout on watches (an idle timer instead).
 *
 * Servers are hostile (a remote cluster is named by a tenant's kubeconfig;
 * docs/security.md#what-a-remote-server-cannot-do): every non-watch request, discovery included, has a total
 * deadline; response bodies are capped (objects and lists: 32 MiB; error bodies: 64 KiB are read, the rest
 * dropped), a watch line is capped (16 MiB), a list is capped in items and pages; a remote client has a circuit
 * breaker, resolves host names through the address policy (kubeconfig-policy.ts), and its error messages keep only
 * the Status reason, code and a reduced message.
 */
import { SinkerError } from "../errors.ts";
import type { KubeConfig } from "./client-node.ts";
import { Discovery } from "./discovery.ts";
import { ListGuard } from "./list-guard.ts";
import { isPlainObject, type KubeObject } from "./object.ts";
import {
  APPLY_CONTENT_TYPE,
  type ApplyOptions,
  applyQuery,
  type DeleteOptions,
  deleteBody,
  type ListOptions,
  type ListResult,
  listQuery,
  PATCH_CONTENT_TYPES,
  type PatchType,
  type ResourceInfo,
  resourcePath,
  type WatchOptions,
  withTypeMeta,
} from "./request.ts";
import {
  type ClientLimits,
  DEFAULT_CLIENT_LIMITS,
  type RemoteOptions,
  type SendRequest,
  Transport,
} from "./transport.ts";
import { watchResource } from "./watch.ts";
import type { WatchEvent } from "./watch-lines.ts";

export { apiError, reasonForStatus, transportError } from "./api-errors.ts";
export type {
  ApplyOptions,
  DeleteOptions,
  ListOptions,
  ListResult,
  PatchType,
  ResourceInfo,
  WatchOptions,
} from "./request.ts";
export { parseApiVersion } from "./request.ts";
export { type ClientLimits, DEFAULT_CLIENT_LIMITS, type RemoteOptions } from "./transport.ts";
export { parseWatchLine, type WatchEvent, type WatchEventType, WatchLineDecoder } from "./watch-lines.ts";

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
  remote?: RemoteOptions;
  /** Bounds (defaults: DEFAULT_CLIENT_LIMITS). */
  limits?: Partial<ClientLimits>;
}

const DEFAULT_HEADERS_TIMEOUT_MS = 9000;

let nextClientId = 1;

/** The headers of every request besides the credentials. */
function fixedHeaders(opts: ClusterClientOptions): Record<string, string | string[]> {
  const extra: Record<string, string | string[]> = {
    "user-agent": opts.userAgent ?? "sinker",
    accept: "application/json",
  };
  if (opts.impersonate?.user) extra["impersonate-user"] = opts.impersonate.user;
  if (opts.impersonate?.groups && opts.impersonate.groups.length > 0) {
    extra["impersonate-group"] = [...opts.impersonate.groups];
  }
  return extra;
}

export class ClusterClient {
  /** Label for logs and metrics. Two clients may share a name (e.g. a rotated kubeconfig): use `id` to tell. */
  readonly name: string;
  /** Unique per instance within this process. */
  readonly id: number;
  /** The API server URL, without a trailing slash. */
  readonly server: string;
  readonly #transport: Transport;
  readonly #discovery: Discovery;
  readonly #lists: ListGuard;

  private constructor(kc: KubeConfig, opts: ClusterClientOptions, server: string) {
    this.name = opts.name;
    this.id = nextClientId++;
    this.server = server;
    const limits = { ...DEFAULT_CLIENT_LIMITS, ...opts.limits };
    this.#transport = new Transport(kc, {
      name: opts.name,
      server,
      headersTimeoutMs: opts.responseHeadersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
      limits,
      remote: opts.remote,
      headers: fixedHeaders(opts),
    });
    this.#discovery = new Discovery(opts.name, (path, what) =>
      this.#transport.send({ method: "GET", path, what, notFoundOk: true }),
    );
    this.#lists = new ListGuard(limits);
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
  close(): Promise<void> {
    return this.#transport.close();
  }

  /** The state of this client's circuit breaker ("closed" for a local client, which has none). */
  get breakerState(): "closed" | "open" | "half-open" {
    return this.#transport.breaker?.state ?? "closed";
  }

  // ---------------------------------------------------------------- discovery

  /**
   * Group/version/kind → resource and scope, from the cluster's discovery, cached per group/version. An
   * unknown kind (or group/version) refreshes that group/version once, at most every 5 s, before failing with
   * UnknownKind.
   */
  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    return this.#discovery.resolve(apiVersion, kind);
  }

  /** Forgets cached discovery, e.g. after a CRD change. */
  invalidateDiscovery(): void {
    this.#discovery.invalidate();
  }

  // ---------------------------------------------------------------- CRUD

  /** The object, or undefined when it does not exist (404). */
  async get(res: ResourceInfo, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    const obj = await this.#transport.send({
      method: "GET",
      path: resourcePath(res, { namespace, name }),
      what: `get ${res.plural}`,
      notFoundOk: true,
    });
    return obj === undefined ? undefined : withTypeMeta(res, obj);
  }

  /** One page (or all, without `limit`). Items get apiVersion and kind filled in. */
  async list(res: ResourceInfo, namespace: string | undefined, opts: ListOptions = {}): Promise<ListResult> {
    const body = await this.#transport.send({
      method: "GET",
      path: resourcePath(res, { namespace, query: listQuery(opts) }),
      what: `list ${res.plural}`,
    });
    if (!isPlainObject(body) || !Array.isArray(body.items)) {
      throw new SinkerError(
        "ClusterUnreachable",
        `cluster "${this.name}": list ${res.plural} returned no items`,
      );
    }
    const meta = isPlainObject(body.metadata) ? body.metadata : {};
    const next = typeof meta.continue === "string" && meta.continue !== "" ? meta.continue : undefined;
    if (!this.#lists.page(opts.continue || undefined, body.items.length, next)) {
      this.#transport.breaker?.failure();
      const limits = this.#transport.limits;
      throw new SinkerError(
        "ResponseTooLarge",
        `cluster "${this.name}": list ${res.plural} returned more than ${limits.maxListItems} items or ` +
          `${limits.maxListPages} pages`,
      );
    }
    const items = body.items.filter(isPlainObject).map((o) => withTypeMeta(res, o as KubeObject));
    const out: ListResult = {
      items,
      resourceVersion: typeof meta.resourceVersion === "string" ? meta.resourceVersion : "",
    };
    if (next !== undefined) out.continue = next;
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
    return watchResource(this.#transport, res, namespace, opts, onEvent);
  }

  /** Server-side apply (PATCH application/apply-patch+yaml, JSON body). `dryRun`: the server computes and
   * validates the result without storing it (`dryRun=All`), as `sinker diff` needs. */
  async apply(res: ResourceInfo, obj: KubeObject, opts: ApplyOptions): Promise<KubeObject> {
    const name = obj.metadata?.name;
    if (!name) throw new SinkerError("InvalidSpec", "apply: object has no metadata.name");
    const namespace = obj.metadata?.namespace;
    const subresource = opts.subresource;
    return this.#write(res, {
      method: "PATCH",
      path: resourcePath(res, { namespace, name, subresource, query: applyQuery(opts) }),
      body: JSON.stringify(obj),
      contentType: APPLY_CONTENT_TYPE,
      what: `apply ${res.plural}`,
    });
  }

  async patch(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    body: unknown,
    type: PatchType,
    opts: { subresource?: string; fieldManager?: string } = {},
  ): Promise<KubeObject> {
    const query = new URLSearchParams();
    if (opts.fieldManager) query.set("fieldManager", opts.fieldManager);
    return this.#write(res, {
      method: "PATCH",
      path: resourcePath(res, { namespace, name, subresource: opts.subresource, query }),
      body: JSON.stringify(body),
      contentType: PATCH_CONTENT_TYPES[type],
      what: `patch ${res.plural}`,
    });
  }

  async create(
    res: ResourceInfo,
    namespace: string | undefined,
    obj: KubeObject,
    opts: { fieldManager?: string } = {},
  ): Promise<KubeObject> {
    const query = opts.fieldManager ? new URLSearchParams({ fieldManager: opts.fieldManager }) : undefined;
    return this.#write(res, {
      method: "POST",
      path: resourcePath(res, { namespace, ...(query ? { query } : {}) }),
      body: JSON.stringify(withTypeMeta(res, { ...obj })),
      contentType: "application/json",
      what: `create ${res.plural}`,
    });
  }

  /** PUT; the object's metadata.resourceVersion (if any) is the optimistic-concurrency precondition. */
  async replace(
    res: ResourceInfo,
    obj: KubeObject,
    opts: { subresource?: string } = {},
  ): Promise<KubeObject> {
    const name = obj.metadata?.name;
    if (!name) throw new SinkerError("InvalidSpec", "replace: object has no metadata.name");
    return this.#write(res, {
      method: "PUT",
      path: resourcePath(res, { namespace: obj.metadata?.namespace, name, subresource: opts.subresource }),
      body: JSON.stringify(withTypeMeta(res, { ...obj })),
      contentType: "application/json",
      what: `replace ${res.plural}`,
    });
  }

  async delete(
    res: ResourceInfo,
    namespace: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): Promise<"deleted" | "pending" | "notfound"> {
    const out = await this.#transport.send({
      method: "DELETE",
      path: resourcePath(res, { namespace, name }),
      body: JSON.stringify(deleteBody(opts)),
      contentType: "application/json",
      what: `delete ${res.plural}`,
      notFoundOk: true,
    });
    if (out === undefined) return "notfound";
    // Removed at once: a Status (or, for some kinds, the object as it was). Still there, waiting for its
    // finalizers or a grace period: the object with a deletionTimestamp.
    return out.kind !== "Status" && out.metadata?.deletionTimestamp ? "pending" : "deleted";
  }

  /** A write whose answer is the object written. */
  async #write(res: ResourceInfo, req: SendRequest): Promise<KubeObject> {
    return withTypeMeta(res, (await this.#transport.send(req)) as KubeObject);
  }
}
