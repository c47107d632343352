/**
 * The admin HTTP server: `GET /live`, `GET /ready`, `GET /metrics` (HEAD too). Anything else is 404, another
 * method on a known path is 405. Plain node:http, no framework: three routes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Metrics } from "./metrics.ts";

export interface AdminServerOptions {
  /** Listen address; IPv6 without brackets. */
  host: string;
  /** 0 picks a free port (see the returned address). */
  port: number;
  metrics: Metrics;
  /** /live answers 200 while this returns true, else 503. */
  live: () => boolean;
  /** /ready answers 200 while this returns true, else 503. */
  ready: () => boolean;
  logger: Logger;
}

export interface AdminServer {
  readonly address: { host: string; port: number };
  /** Stops listening and closes idle and open connections. */
  close(): Promise<void>;
}

const ROUTES = new Set(["/live", "/ready", "/metrics"]);

export async function startAdminServer(opts: AdminServerOptions): Promise<AdminServer> {
  const { logger } = opts;
  const server = createServer((req, res) => {
    handle(req, res, opts).catch((err: unknown) => {
      logger.error({ err }, "admin request failed");
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      }
      res.end("internal error\n");
    });
  });
  // Probes and scrapes are short; do not let a slow client hold sockets forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host: opts.host, port: opts.port });
  });
  server.on("error", (err) => logger.error({ err }, "admin server error"));
  const info = server.address() as AddressInfo;
  const address = { host: info.address, port: info.port };
  logger.info({ address: `${formatHost(address.host)}:${address.port}` }, "admin server listening");

  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function formatHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: AdminServerOptions): Promise<void> {
  const path = (req.url ?? "/").split("?")[0] ?? "/";
  if (!ROUTES.has(path)) {
    return send(res, req, 404, "text/plain; charset=utf-8", "not found\n");
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return send(res, req, 405, "text/plain; charset=utf-8", "method not allowed\n");
  }
  switch (path) {
    case "/live": {
      const ok = safe(opts.live);
      return send(res, req, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "not live\n");
    }
    case "/ready": {
      const ok = safe(opts.ready);
      return send(res, req, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? "ok\n" : "not ready\n");
    }
    default: {
      const body = await opts.metrics.text();
      return send(res, req, 200, opts.metrics.contentType, body);
    }
  }
}

/** A probe callback that throws counts as failing, not as a 500. */
function safe(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

function send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}
