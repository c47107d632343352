/**
 * A fake HOSTILE Kubernetes API server for tests (docs/security.md#what-a-remote-server-cannot-do): an HTTPS server
 * a tenant's kubeconfig could point to, which answers discovery well enough to be used and then attacks the client:
 * - `slow-bytes`: every answer sends its headers, then one byte per second, forever;
 * - `endless-line`: watches stream bytes without a newline, as fast as the client reads them;
 * - `huge-body`: GET, PATCH and lists answer a body of `hugeBytes` (never ending JSON), lists page forever;
 * - `reflect`: applies fail with a body that is not a Status (a metadata service's answer, for any name), a
 *   Status quoting a secret (name `quoted`) or a redirect to the metadata address (name `redirect`).
 * It is not a Kubernetes API server (behaviour is tested against the real control plane): only transport and
 * content faults. Its certificate is made with the openssl CLI in a directory under `.testenv/`, removed on stop.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { envDir } from "../controlplane/testenv.ts";

export type HostileMode = "slow-bytes" | "endless-line" | "huge-body" | "reflect";

/** What the `reflect` mode puts in its bodies: it must never appear in a status, Event or log. */
export const REFLECTED_SECRET = "TOKEN-c2VjcmV0LWZyb20tbWV0YWRhdGE";

export interface SeenRequest {
  method: string;
  url: string;
}

function pki(dir: string): { key: string; cert: string; ca: string } {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
  run(["req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=hostile-ca", "-days", "2", "-out", "ca.crt"]);
  run(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "srv.key"]);
  run(["req", "-new", "-key", "srv.key", "-subj", "/CN=127.0.0.1", "-out", "srv.csr"]);
  const ext = join(dir, "ext.cnf");
  execFileSync("sh", ["-c", `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > '${ext}'`]);
  run([
    "x509",
    "-req",
    "-in",
    "srv.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    "srv.crt",
  ]);
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { key: read("srv.key"), cert: read("srv.crt"), ca: read("ca.crt") };
}

const DISCOVERY = {
  kind: "APIResourceList",
  apiVersion: "v1",
  groupVersion: "v1",
  resources: [
    {
      name: "configmaps",
      singularName: "configmap",
      namespaced: true,
      kind: "ConfigMap",
      verbs: ["get", "list"],
    },
  ],
};

export class HostileServer {
  readonly mode: HostileMode;
  readonly requests: SeenRequest[] = [];
  /** TCP connections accepted (also those that never got as far as a request). */
  connections = 0;
  /** Requests open right now (answer not ended and connection not closed), and the most ever open at once. */
  open = 0;
  maxOpen = 0;
  /** Bytes sent on watch connections that the client then closed (endless-line). */
  readonly closedWatchBytes: number[] = [];
  /** Bytes sent on bodies the client gave up on (huge-body). */
  readonly abandonedBodyBytes: number[] = [];
  hugeBytes = 256 * 1024 * 1024;
  /** huge-body: lists page forever (else they answer one empty page and the apply gets the huge body). */
  endlessPages = true;
  port = 0;
  readonly #dir: string;
  readonly #ca: string;
  readonly #server: https.Server;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(mode: HostileMode) {
    this.mode = mode;
    mkdirSync(envDir(), { recursive: true });
    this.#dir = mkdtempSync(join(envDir(), "hostile-"));
    const { key, cert, ca } = pki(this.#dir);
    this.#ca = ca;
    this.#server = https.createServer({ key, cert }, (req, res) => {
      this.requests.push({ method: req.method ?? "", url: req.url ?? "" });
      this.open++;
      this.maxOpen = Math.max(this.maxOpen, this.open);
      res.once("close", () => this.open--);
      req.resume();
      this.#handle(req.method ?? "GET", new URL(req.url ?? "/", "https://x"), res);
    });
  }

  async start(): Promise<this> {
    this.#server.on("connection", () => this.connections++);
    await new Promise<void>((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#dir, { recursive: true, force: true });
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig Sinker accepts by default (https, inline CA, a token): the attack is in the answers. */
  kubeconfig(namespace = "default"): string {
    const ca = Buffer.from(this.#ca).toString("base64");
    return `apiVersion: v1
kind: Config
clusters: [{name: hostile, cluster: {server: "${this.url}", certificate-authority-data: ${ca}}}]
users: [{name: u, user: {token: not-a-real-token}}]
contexts: [{name: c, context: {cluster: hostile, user: u, namespace: ${namespace}}}]
current-context: c
`;
  }

  /** Answers one request; the result only tells that it was answered. */
  #handle(method: string, url: URL, res: import("node:http").ServerResponse): true | undefined {
    const json = (status: number, body: unknown): true => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
      return true;
    };
    const isDiscovery = url.pathname === "/api/v1";
    const isWatch = url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true";
    switch (this.mode) {
      case "slow-bytes": {
        res.writeHead(200, { "content-type": "application/json" });
        res.write("{");
        const t = setInterval(() => {
          if (res.destroyed) {
            clearInterval(t);
            this.#timers.delete(t);
          } else res.write(" ");
        }, 1000);
        this.#timers.add(t);
        return;
      }
      case "endless-line": {
        if (isDiscovery) return json(200, DISCOVERY);
        if (!isWatch)
          return json(200, { kind: "ConfigMapList", metadata: { resourceVersion: "1" }, items: [] });
        res.writeHead(200, { "content-type": "application/json" });
        const chunk = Buffer.alloc(64 * 1024, "a");
        let sent = 0;
        res.write('{"type":"ADDED","object":{"data":"');
        const pump = () => {
          while (!res.destroyed && res.write(chunk)) sent += chunk.length;
          if (!res.destroyed) sent += chunk.length;
        };
        res.on("drain", pump);
        res.on("close", () => this.closedWatchBytes.push(sent));
        pump();
        return;
      }
      case "huge-body": {
        if (isDiscovery) return json(200, DISCOVERY);
        if (isWatch) {
          res.writeHead(200, { "content-type": "application/json" });
          return; // silent watch
        }
        if (method === "GET" && url.pathname.endsWith("/configmaps") && !this.endlessPages) {
          return json(200, { kind: "ConfigMapList", metadata: { resourceVersion: "1" }, items: [] });
        }
        if (method === "GET" && url.pathname.endsWith("/configmaps")) {
          // a list that pages forever
          const page = Number(url.searchParams.get("continue") ?? "0");
          return json(200, {
            kind: "ConfigMapList",
            metadata: { resourceVersion: "1", continue: String(page + 1) },
            items: [{ metadata: { name: `cm-${page}`, namespace: "default" } }],
          });
        }
        res.writeHead(200, { "content-type": "application/json" });
        const chunk = Buffer.alloc(64 * 1024, "x");
        let sent = 0;
        res.write('{"kind":"ConfigMap","data":{"x":"');
        const pump = () => {
          while (!res.destroyed && sent < this.hugeBytes && res.write(chunk)) sent += chunk.length;
          if (sent >= this.hugeBytes && !res.destroyed) res.end('"}}');
        };
        res.on("drain", pump);
        res.on("close", () => {
          if (sent < this.hugeBytes) this.abandonedBodyBytes.push(sent);
        });
        pump();
        return;
      }
      case "reflect": {
        if (isDiscovery) return json(200, DISCOVERY);
        if (isWatch) {
          res.writeHead(200, { "content-type": "application/json" });
          return; // silent watch
        }
        if (method === "GET")
          return json(200, { kind: "ConfigMapList", metadata: { resourceVersion: "1" }, items: [] });
        if (url.pathname.endsWith("/quoted")) {
          return json(422, {
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            reason: "Invalid",
            code: 422,
            message: `ConfigMap "quoted" is invalid: metadata.labels: Invalid value: "${REFLECTED_SECRET}": bad label`,
          });
        }
        if (url.pathname.endsWith("/redirect")) {
          // a redirect to the cloud metadata service: must not be followed, nor its body shown
          res.writeHead(302, {
            location: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
          });
          res.end(`see http://169.254.169.254/ ${REFLECTED_SECRET}`);
          return;
        }
        res.writeHead(403, { "content-type": "text/plain" });
        res.end(`ami-id\ninstance-id\niam/security-credentials/admin ${REFLECTED_SECRET}\n`);
        return;
      }
    }
  }
}
