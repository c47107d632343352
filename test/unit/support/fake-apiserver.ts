// A stub HTTP server that speaks just enough of the Kubernetes API (ConfigMaps, plain HTTP) to inject transport
// faults a real kube-apiserver cannot be made to produce on demand: reset connections, late response headers,
// silent watches, failing lists. Kubernetes API semantics are tested against the real control plane in test/e2e.
import http from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import type { KubeObject } from "../../../src/kube/object.ts";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

type Event = { type: "ADDED" | "MODIFIED" | "DELETED"; object: KubeObject; rv: number };

export class FakeApiServer {
  readonly requests: RecordedRequest[] = [];
  readonly objects = new Map<string, KubeObject>();
  readonly events: Event[] = [];
  rv = 100;
  /** Watches from a resourceVersion below this get a 410 Gone ERROR event. */
  compactedRv = 0;
  /** When set, a request without `Authorization: Bearer <acceptToken>` gets 401. */
  acceptToken: string | undefined;
  /** When set, answers every request with this status and Status message. */
  failWith: { status: number; message: string } | undefined;
  /** Destroys the connection of the next N requests without answering. */
  resetNext = 0;
  /** Delay before answering (ms), for timeout tests. */
  delayMs = 0;
  openWatches = 0;
  readonly #watchers = new Set<(e: Event) => void>();
  readonly #server: http.Server;
  port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        this.requests.push({
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          body,
        });
        if (this.resetNext > 0) {
          this.resetNext--;
          req.socket.destroy();
          return;
        }
        setTimeout(() => this.#handle(req, res, body), this.delayMs);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: "u", token: "t0ken" }],
      contexts: [{ name: "fake", cluster: "fake", user: "u", namespace: "ctx-ns" }],
      currentContext: "fake",
    });
    return kc;
  }

  /** Creates or updates a ConfigMap and notifies watchers. */
  put(namespace: string, name: string, data: Record<string, string>): KubeObject {
    const key = `${namespace}/${name}`;
    const existed = this.objects.has(key);
    this.rv++;
    const obj: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace, resourceVersion: String(this.rv), uid: `uid-${name}` },
      data,
    };
    this.objects.set(key, obj);
    this.#emit({ type: existed ? "MODIFIED" : "ADDED", object: obj, rv: this.rv });
    return obj;
  }

  remove(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    this.rv++;
    this.#emit({
      type: "DELETED",
      object: { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.rv) } },
      rv: this.rv,
    });
  }

  /** Ends every open watch (like an apiserver restart would). */
  dropWatches(): void {
    this.#server.closeAllConnections();
  }

  watchRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.url.includes("watch=1"));
  }

  #emit(e: Event): void {
    this.events.push(e);
    for (const w of this.#watchers) w(e);
  }

  #status(res: http.ServerResponse, code: number, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", message, code }));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? "/", "http://x");
    if (this.failWith) {
      this.#status(res, this.failWith.status, this.failWith.message);
      return;
    }
    if (this.acceptToken !== undefined && req.headers.authorization !== `Bearer ${this.acceptToken}`) {
      this.#status(res, 401, "Unauthorized");
      return;
    }
    if (url.pathname === "/api/v1") {
      res.end(
        JSON.stringify({
          kind: "APIResourceList",
          groupVersion: "v1",
          resources: [
            { name: "configmaps", kind: "ConfigMap", namespaced: true },
            { name: "namespaces", kind: "Namespace", namespaced: false },
            { name: "namespaces/status", kind: "Namespace", namespaced: false },
          ],
        }),
      );
      return;
    }
    const m = /^\/api\/v1(?:\/namespaces\/([^/]+))?\/configmaps(?:\/([^/]+))?(?:\/status)?$/.exec(
      url.pathname,
    );
    if (!m) {
      this.#status(res, 404, "the server could not find the requested resource");
      return;
    }
    const ns = m[1];
    const name = m[2];
    if (url.searchParams.get("watch") === "1") {
      this.#watch(url, ns, res);
      return;
    }
    if (req.method === "GET" && name) {
      const obj = this.objects.get(`${ns}/${name}`);
      if (!obj) {
        this.#status(res, 404, `configmaps "${name}" not found`);
        return;
      }
      res.end(JSON.stringify(obj));
      return;
    }
    if (req.method === "GET") {
      const items = [...this.objects.values()]
        .filter((o) => ns === undefined || o.metadata?.namespace === ns)
        .map((o) => {
          const { apiVersion: _a, kind: _k, ...rest } = o;
          return rest;
        });
      const limit = Number(url.searchParams.get("limit") ?? "0");
      const start = Number(url.searchParams.get("continue") ?? "0");
      const page = limit > 0 ? items.slice(start, start + limit) : items;
      const next = limit > 0 && start + limit < items.length ? String(start + limit) : undefined;
      res.end(
        JSON.stringify({
          kind: "ConfigMapList",
          apiVersion: "v1",
          metadata: { resourceVersion: String(this.rv), ...(next ? { continue: next } : {}) },
          items: page,
        }),
      );
      return;
    }
    if (req.method === "DELETE" && name) {
      if (!this.objects.has(`${ns}/${name}`)) {
        this.#status(res, 404, `configmaps "${name}" not found`);
        return;
      }
      this.remove(ns ?? "", name);
      res.end(JSON.stringify({ kind: "Status", status: "Success" }));
      return;
    }
    if ((req.method === "POST" || req.method === "PATCH" || req.method === "PUT") && ns) {
      const obj = JSON.parse(body) as KubeObject;
      const n = name ?? obj.metadata?.name ?? "";
      if (n.includes("invalid")) {
        this.#status(res, 422, `ConfigMap "${n}" is invalid: metadata.name: bad`);
        return;
      }
      const data = (obj.data ?? {}) as Record<string, string>;
      const out = this.put(ns, n, data);
      res.writeHead(req.method === "POST" ? 201 : 200, { "content-type": "application/json" });
      res.end(JSON.stringify(out));
      return;
    }
    this.#status(res, 405, "method not allowed");
  }

  #watch(url: URL, ns: string | undefined, res: http.ServerResponse): void {
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    res.writeHead(200, { "content-type": "application/json" });
    res.flushHeaders(); // like kube-apiserver: headers go out at once, events follow
    const send = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    if (from < this.compactedRv) {
      send("ERROR", {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        message: `too old resource version: ${from} (${this.compactedRv})`,
        reason: "Expired",
        code: 410,
      });
      res.end();
      return;
    }
    const matches = (e: Event) => ns === undefined || e.object.metadata?.namespace === ns;
    for (const e of this.events) if (e.rv > from && matches(e)) send(e.type, e.object);
    const watcher = (e: Event) => {
      if (matches(e)) send(e.type, e.object);
    };
    this.#watchers.add(watcher);
    this.openWatches++;
    const timeout = Number(url.searchParams.get("timeoutSeconds") ?? "0");
    let timer: NodeJS.Timeout | undefined;
    if (timeout > 0) {
      timer = setTimeout(() => {
        if (url.searchParams.get("allowWatchBookmarks") === "true") {
          send("BOOKMARK", {
            kind: "ConfigMap",
            apiVersion: "v1",
            metadata: { resourceVersion: String(this.rv) },
          });
        }
        res.end();
      }, timeout * 1000);
    }
    res.on("close", () => {
      if (timer) clearTimeout(timer);
      this.#watchers.delete(watcher);
      this.openWatches--;
    });
  }
}
