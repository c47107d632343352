/**
 * Credentials and the connection pool of one cluster. @kubernetes/client-node computes the credentials from the
 * kubeconfig (bearer tokens, client certificates, exec/auth-provider plugins when allowed); the pool is our own
 * undici Agent, one per client (client-node 2.0.1 builds a new Agent, i.e. a new pool, on every
 * `applySecurityAuthentication` call).
 */
import type { OutgoingHttpHeaders } from "node:http";
import type { RequestOptions } from "node:https";
import type { LookupFunction } from "node:net";
import { Agent, type Dispatcher, ProxyAgent } from "undici";
import { SinkerError } from "../errors.ts";
import type { KubeConfig } from "./client-node.ts";

/** Body timeout of normal (non-watch) requests: time between two chunks of the response body. */
export const BODY_TIMEOUT_MS = 60_000;

export interface Credentials {
  headers: Record<string, string>;
  tls: {
    ca?: string | Buffer | Array<string | Buffer>;
    cert?: string | Buffer | Array<string | Buffer>;
    key?: RequestOptions["key"];
    rejectUnauthorized?: boolean;
    servername?: string;
  };
}

/** The kubeconfig's credentials as request headers and TLS options. Throws Unauthorized, with no detail. */
export async function credentials(kc: KubeConfig, cluster: string): Promise<Credentials> {
  const opts: RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(opts);
  } catch (err) {
    // messages from credential plugins may carry anything: keep only a generic description
    throw new SinkerError(
      "Unauthorized",
      `cluster "${cluster}": could not obtain credentials from the kubeconfig`,
      { cause: err },
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

export interface PoolOptions {
  /** The cluster's label, for messages. */
  cluster: string;
  /** The kubeconfig cluster's proxy-url, if any. */
  proxyUrl: string | undefined;
  headersTimeoutMs: number;
  /** Resolves host names for connections (remote clusters: the address policy). */
  lookup: LookupFunction | undefined;
}

/** The connection pool: an undici Agent (or ProxyAgent) with the kubeconfig's TLS settings. */
export function createPool(tls: Credentials["tls"], opts: PoolOptions): Dispatcher {
  const common = {
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: BODY_TIMEOUT_MS,
    keepAliveTimeout: 30_000,
    // HTTP/1.1: one TCP connection per watch. undici would negotiate HTTP/2 and multiplex every watch on one
    // connection, where the server's stream limit (Go's default 250) would queue normal requests behind
    // watches; one connection per watch is predictable and is what the connection count measures.
    allowH2: false,
  };
  if (opts.proxyUrl) {
    if (!/^https?:/.test(opts.proxyUrl)) {
      throw new SinkerError(
        "InvalidKubeconfig",
        `cluster "${opts.cluster}": only http(s) proxy-url is supported`,
      );
    }
    return new ProxyAgent({ uri: opts.proxyUrl, requestTls: tls, ...common });
  }
  const lookup = opts.lookup;
  return new Agent({
    connect: { ...tls, keepAlive: true, keepAliveInitialDelay: 30_000, ...(lookup ? { lookup } : {}) },
    ...common,
  });
}
