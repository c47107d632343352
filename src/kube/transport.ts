/**
 * The transport of one cluster's client: credentials and connection pool (connection.ts), the request headers,
 * the circuit breaker of a remote cluster, and `send`, one request with a total deadline, bounded bodies and the
 * cancellation of the work in progress. Servers are hostile (a remote cluster is named by a tenant's
 * kubeconfig): every non-watch request, discovery included, has a TOTAL deadline (connect + headers + whole
 * body), response bodies are capped, and after repeated transport failures a remote cluster's requests fail at
 * once for a cool-down (circuit-breaker.ts). Watches use the same pool and breaker (watch.ts).
 */
import type { LookupFunction } from "node:net";
import { type Dispatcher, request } from "undici";
import { SinkerError } from "../errors.ts";
import {
  apiError,
  cancelledError,
  deadlineError,
  isConnectionReset,
  isTimeout,
  transportError,
} from "./api-errors.ts";
import { CircuitBreaker } from "./circuit-breaker.ts";
import type { KubeConfig } from "./client-node.ts";
import { BODY_TIMEOUT_MS, createPool, credentials } from "./connection.ts";
import { isPlainObject, type KubeObject } from "./object.ts";
import type { Method } from "./request.ts";
import { currentRequestSignal } from "./request-signal.ts";
import { DEFAULT_MAX_WATCH_LINE_BYTES } from "./watch-lines.ts";

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

/** How long the credentials' request headers are reused (Transport.connection). */
export const CREDENTIALS_TTL_MS = 10_000;

export const DEFAULT_CLIENT_LIMITS: Readonly<ClientLimits> = {
  requestTimeoutMs: 30_000,
  maxResponseBytes: 32 * 1024 * 1024,
  maxErrorBodyBytes: 64 * 1024,
  maxWatchLineBytes: DEFAULT_MAX_WATCH_LINE_BYTES,
  maxListItems: 100_000,
  maxListPages: 1000,
};

/** Set for a cluster named by tenant input (a kubeconfig from a Secret). */
export interface RemoteOptions {
  /** Resolves host names for connections (the address policy refuses denied addresses). */
  lookup?: LookupFunction;
  /**
   * The breaker of this cluster; share one instance among the successive clients of one cluster (e.g. a
   * client dropped when unused and made again) so that it outlives them. Default: a new one.
   */
  breaker?: CircuitBreaker;
}

export interface TransportOptions {
  /** The cluster's label, for messages. */
  name: string;
  /** The API server URL, without a trailing slash. */
  server: string;
  headersTimeoutMs: number;
  limits: ClientLimits;
  remote: RemoteOptions | undefined;
  /** Sent on every request besides the credentials (user agent, accept, impersonation). */
  headers: Record<string, string | string[]>;
}

/** One request of `send`. */
export interface SendRequest {
  method: Method;
  /** Path and query, from request.ts. */
  path: string;
  /** JSON text; never put into messages or logs (it may be Secret data). */
  body?: string;
  contentType?: string;
  /** What the request does, for messages: "get configmaps". */
  what: string;
  /** A 404 answer gives undefined instead of a NotFound error. */
  notFoundOk?: boolean;
}

/** What a request goes out with: the pool and the headers (credentials included). */
export interface Connection {
  dispatcher: Dispatcher;
  headers: Record<string, string | string[]>;
  /** The credentials came from the cache (Transport.connection), not computed for this request. */
  reused: boolean;
}

export class Transport {
  readonly name: string;
  readonly server: string;
  readonly limits: ClientLimits;
  readonly headersTimeoutMs: number;
  /** Whether the cluster is named by tenant input (stricter messages). */
  readonly remote: boolean;
  /** Remote clusters only. */
  readonly breaker: CircuitBreaker | undefined;
  readonly #kc: KubeConfig;
  readonly #extraHeaders: Record<string, string | string[]>;
  readonly #lookup: LookupFunction | undefined;
  #dispatcher: Dispatcher | undefined;
  #pendingDispatcher: Promise<Dispatcher> | undefined;
  /** The request headers with the credentials, and when they were computed (performance.now()). */
  #headers: { at: number; values: Record<string, string | string[]> } | undefined;
  #closed = false;

  constructor(kc: KubeConfig, opts: TransportOptions) {
    this.#kc = kc;
    this.name = opts.name;
    this.server = opts.server;
    this.limits = opts.limits;
    this.headersTimeoutMs = opts.headersTimeoutMs;
    this.remote = opts.remote !== undefined;
    this.breaker = opts.remote ? (opts.remote.breaker ?? new CircuitBreaker()) : undefined;
    this.#lookup = opts.remote?.lookup;
    this.#extraHeaders = opts.headers;
  }

  /** Closes the connection pool. Requests after close fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const d = this.#dispatcher;
    this.#dispatcher = undefined;
    if (d) await d.close().catch(() => d.destroy());
  }

  /**
   * The pool and the headers of a request. The credentials' headers are computed anew at most every
   * CREDENTIALS_TTL_MS (tokens rotate: a projected token file is replaced well before it expires) and after a
   * 401; computing them for every request cost as much CPU as parsing the answer.
   */
  async connection(contentType?: string): Promise<Connection> {
    const dispatcher = await this.#getDispatcher();
    const now = performance.now();
    let headers = this.#headers;
    const reused = headers !== undefined && now - headers.at <= CREDENTIALS_TTL_MS;
    if (!headers || !reused) {
      const c = await credentials(this.#kc, this.name);
      headers = { at: now, values: { ...c.headers, ...this.#extraHeaders } };
      this.#headers = headers;
    }
    const out = contentType ? { ...headers.values, "content-type": contentType } : headers.values;
    return { dispatcher, headers: out, reused };
  }

  /** A 401: the credentials are computed anew for the next request (a token rotated early). */
  credentialsRefused(): void {
    this.#headers = undefined;
  }

  /** Throws at once when the circuit breaker of this (remote) cluster is open. */
  admit(): void {
    if (this.breaker === undefined || this.breaker.allow()) return;
    throw new SinkerError(
      "ClusterUnreachable",
      `cluster "${this.name}" failed repeatedly: requests suspended for ` +
        `${Math.ceil(this.breaker.retryInMs() / 1000)} s (circuit breaker open)`,
    );
  }

  /**
   * One request. Returns the parsed JSON body; undefined for a 404 when `notFoundOk`. Throws SinkerError.
   */
  async send(req: SendRequest): Promise<KubeObject | undefined> {
    const conn = await this.connection(req.contentType);
    // the cancellation of the reconcile (or other work) this request is part of: leadership lost, stopping
    const cancellation = currentRequestSignal();
    if (cancellation?.aborted) throw cancelledError(this.name, req.what);
    this.admit();
    // One deadline for the whole exchange, retry included: connect, headers and every byte of the body. (A timer
    // cleared at the end, not AbortSignal.timeout, which would keep every request's signal alive until it fires.)
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.limits.requestTimeoutMs);
    const onCancel = () => controller.abort();
    cancellation?.addEventListener("abort", onCancel, { once: true });
    try {
      try {
        return await this.#exchange(req, conn, controller.signal);
      } catch (err) {
        // Refused with cached credentials: when the credentials computed now differ (a token that expired or
        // rotated within CREDENTIALS_TTL_MS), sent once more with them; a 401 is refused before anything is done,
        // so any method is safe. The same credentials again (a server that refuses them) are not sent twice.
        if (!conn.reused || !(err instanceof SinkerError) || err.reason !== "Unauthorized") throw err;
        if (controller.signal.aborted) throw err;
        const fresh = await this.connection(req.contentType);
        if (sameHeaders(fresh.headers, conn.headers)) throw err;
        return await this.#exchange(req, fresh, controller.signal);
      }
    } catch (err) {
      if (cancellation?.aborted) throw cancelledError(this.name, req.what);
      throw err;
    } finally {
      clearTimeout(timer);
      cancellation?.removeEventListener("abort", onCancel);
    }
  }

  /** One exchange of `send`; `deadline` aborts on the total deadline or on cancellation. */
  async #exchange(
    req: SendRequest,
    conn: Connection,
    deadline: AbortSignal,
  ): Promise<KubeObject | undefined> {
    const { method, what } = req;
    let response: Dispatcher.ResponseData | undefined;
    let text = "";
    for (let attempt = 1; response === undefined; attempt++) {
      try {
        response = await request(this.server + req.path, {
          method,
          headers: conn.headers,
          body: req.body,
          dispatcher: conn.dispatcher,
          signal: deadline,
          headersTimeout: this.headersTimeoutMs,
          bodyTimeout: BODY_TIMEOUT_MS,
          // undici closes the connection after a body on a method that "expects no payload" unless told not to:
          // every DELETE (its body is DeleteOptions) would cost a new TLS handshake with the API server
          reset: false,
        });
        text =
          response.statusCode >= 200 && response.statusCode < 300
            ? await readBody(response, this.limits.maxResponseBytes, this.name, what)
            : await readErrorBody(response.body, this.limits.maxErrorBodyBytes);
      } catch (err) {
        // a pooled keep-alive connection that the server (or a load balancer) closed meanwhile: a GET is safe
        // to send once more on a fresh connection
        if (method === "GET" && attempt === 1 && isConnectionReset(err) && !deadline.aborted) {
          response = undefined;
          continue;
        }
        throw this.#failed(err, what, deadline);
      }
    }
    return this.#answer(response.statusCode, text, req);
  }

  /** The error of a request that got no complete answer, after telling the breaker. */
  #failed(err: unknown, what: string, deadline: AbortSignal): SinkerError {
    if (currentRequestSignal()?.aborted) {
      this.breaker?.abandon();
      return cancelledError(this.name, what);
    }
    this.breaker?.failure(deadline.aborted || isTimeout(err));
    if (err instanceof SinkerError) return err;
    if (deadline.aborted) return deadlineError(this.name, what, this.limits.requestTimeoutMs, err);
    return transportError(this.name, err, what);
  }

  /** The parsed answer of a complete exchange, or its error. */
  #answer(status: number, text: string, req: SendRequest): KubeObject | undefined {
    if (status === 404 && req.notFoundOk) {
      this.breaker?.success();
      return undefined;
    }
    if (status < 200 || status >= 300) {
      this.breaker?.success();
      if (status === 401) this.credentialsRefused();
      throw apiError(this.name, status, text, req.what, this.remote);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!isPlainObject(parsed)) {
      this.breaker?.failure();
      throw new SinkerError(
        "ClusterUnreachable",
        `cluster "${this.name}": ${req.what} returned a body that is not a JSON object`,
      );
    }
    this.breaker?.success();
    return parsed as KubeObject;
  }

  #getDispatcher(): Promise<Dispatcher> {
    if (this.#closed) {
      return Promise.reject(
        new SinkerError("ClusterUnreachable", `cluster "${this.name}": client is closed`),
      );
    }
    if (this.#dispatcher) return Promise.resolve(this.#dispatcher);
    if (!this.#pendingDispatcher) {
      this.#pendingDispatcher = credentials(this.#kc, this.name).then(
        ({ tls }) => {
          const d = createPool(tls, {
            cluster: this.name,
            proxyUrl: this.#kc.getCurrentCluster()?.proxyUrl,
            headersTimeoutMs: this.headersTimeoutMs,
            lookup: this.#lookup,
          });
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
}

function sameHeaders(a: Record<string, string | string[]>, b: Record<string, string | string[]>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => String(a[k]) === String(b[k]) && k in b);
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
export async function readErrorBody(body: Dispatcher.ResponseData["body"], max: number): Promise<string> {
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
