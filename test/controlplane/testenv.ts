// The test control plane: one etcd, two kube-apiservers (clusters "a" and "b", each under its own etcd prefix),
// each with its own kube-controller-manager (garbage collector + namespace controller). Real processes started
// from the binaries that build.ts caches; state in .testenv/ at the repository root.
//
// Test files use `load()` (the environment is started once per test run by test/e2e/global-setup.ts, or by
// hand with `npm run testenv -- up`); the command line (cli.ts) and the global setup use `up()` / `down()`.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import http from "node:http";
import https from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { nodeTierProcesses, readNodeState, startNodeTier, stopNodeTier } from "../node/nodes.ts";
import { runCommand } from "../support/run-command.ts";
import { ensureBinaries } from "./build.ts";

export type ClusterName = "a" | "b";
export type KubeconfigName = "a" | "b" | "b-restricted";
export const clusterNames: readonly ClusterName[] = ["a", "b"];

/** Namespace of cluster b in which the `b-restricted` user may do anything (and nowhere else). */
export const restrictedNamespace = "restricted";

export const repoRoot: string = resolve(import.meta.dirname, "..", "..");

/** Where the state lives: `.testenv/` at the repository root (SINKER_TESTENV_DIR overrides). */
export function envDir(): string {
  return process.env.SINKER_TESTENV_DIR ?? join(repoRoot, ".testenv");
}

/** CRDs installed at start-up when the file exists (SINKER_TESTENV_CRDS overrides the path). */
const crdsFile = process.env.SINKER_TESTENV_CRDS ?? join(repoRoot, "manifests", "crds.yaml");

// ---------------------------------------------------------------------------------------------------------------
// State

export type ProcState = { pid: number; bin: string; args: string[]; log: string; startedAt: string };

export type ClusterState = {
  name: ClusterName;
  port: number;
  server: string;
  etcdPrefix: string;
  pkiDir: string;
  apiserver: ProcState | null;
  controllerManager: ProcState | null;
};

export type State = {
  version: 1;
  dir: string;
  binDir: string;
  etcd: { port: number; peerPort: number; dataDir: string; proc: ProcState | null };
  clusters: Record<ClusterName, ClusterState>;
  kubeconfigs: Record<KubeconfigName, string>;
  /** sha256 of manifests/crds.yaml as last applied, null when there was none. */
  crdsHash: string | null;
  startedAt: string;
  /** "cli": `npm run testenv -- up` (test runs never stop it); "test-run": a test run's global setup. */
  startedBy: "cli" | "test-run";
  /** Set once start-up finished; an incomplete state is a crashed start-up, cleaned up by the next `up`. */
  complete: boolean;
  /** `up --node`: cluster a runs what real nodes need (test/node/nodes.ts), and the nodes run. */
  nodeTier?: boolean;
};

function statePath(dir: string): string {
  return join(dir, "state.json");
}

function readState(dir: string): State | null {
  const p = statePath(dir);
  if (!existsSync(p)) return null;
  try {
    const s = JSON.parse(readFileSync(p, "utf8")) as State;
    if (s.version !== 1) return null;
    // States written before these fields existed came from a finished `npm run testenv -- up`.
    s.startedBy ??= "cli";
    s.complete ??= true;
    return s;
  } catch {
    return null;
  }
}

function writeState(s: State): void {
  const p = statePath(s.dir);
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, p);
}

type Log = (msg: string) => void;
const defaultLog: Log = (msg) => process.stderr.write(`[testenv] ${msg}\n`);

// ---------------------------------------------------------------------------------------------------------------
// Polling

/** Polls `fn` until it returns something other than undefined/false, or throws `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? ` (last error: ${(lastError as Error).message ?? String(lastError)})` : "";
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

/** True when `pid` is a live (non-zombie) process running `bin`. Checking the program protects against killing
 * an unrelated process that reused the PID of one of ours after a crash or reboot. */
export function isAlive(pid: number, bin?: string): boolean {
  if (existsSync("/proc/self/stat")) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const st = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (st === "Z" || st === "X") return false;
      if (bin) {
        const argv0 = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "";
        if (argv0 !== bin) return false;
      }
      return true;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function startProcess(bin: string, args: string[], logFile: string): ProcState {
  const fd = openSync(logFile, "a");
  try {
    const child = spawn(bin, args, { detached: true, stdio: ["ignore", fd, fd] });
    child.on("error", () => {});
    if (child.pid === undefined) throw new Error(`could not start ${bin}`);
    child.unref();
    return { pid: child.pid, bin, args, log: logFile, startedAt: new Date().toISOString() };
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; returns once the process is gone. */
export async function stopProcess(p: ProcState | null, graceMs = 10_000): Promise<void> {
  if (!p || !isAlive(p.pid, p.bin)) return;
  try {
    process.kill(p.pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(p.pid, p.bin)) return;
    await sleep(100);
  }
  try {
    process.kill(p.pid, "SIGKILL");
  } catch {
    return;
  }
  await waitFor(`process ${p.pid} (${p.bin}) to die after SIGKILL`, () => !isAlive(p.pid, p.bin), {
    timeoutMs: 5000,
  });
}

export function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function ensureRunning(p: ProcState, name: string): void {
  if (!isAlive(p.pid, p.bin)) {
    throw new Error(`${name} (pid ${p.pid}) exited; last lines of ${p.log}:\n${tail(p.log)}`);
  }
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((res, rej) => {
          const s = createServer();
          s.once("error", rej);
          s.listen(0, "127.0.0.1", () => res(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (!a || typeof a === "string") throw new Error("no port");
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

// ---------------------------------------------------------------------------------------------------------------
// PKI (openssl CLI; ECDSA P-256 keys, fast to generate)

export function runCmd(
  cmd: string,
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(cmd, args, { ...opts, timeoutMs: 300_000 });
}

async function openssl(cwd: string, args: string[]): Promise<void> {
  const r = await runCmd("openssl", args, { cwd });
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed:\n${r.stderr}`);
}

const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function leafCert(dir: string, name: string, subject: string, ext: string[]): Promise<void> {
  await openssl(dir, [
    "req",
    "-new",
    ...ecKey,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  ]);
  writeFileSync(join(dir, `${name}.ext`), `${ext.join("\n")}\n`);
  const serial = `0x${randomBytes(16).toString("hex")}`;
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    serial,
    "-days",
    "3650",
    "-sha256",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
  rmSync(join(dir, `${name}.csr`));
  rmSync(join(dir, `${name}.ext`));
}

const adminUser = "sinker-testenv-admin";
/** The user of the `b-restricted` kubeconfig (tests grant it more rights with Roles of their own). */
export const restrictedUser = "sinker-testenv-restricted";

/** CA, apiserver serving cert, admin (system:masters) and restricted client certs, service-account key pair. */
async function generatePki(dir: string, cluster: ClusterName): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await openssl(dir, [
    "req",
    "-x509",
    ...ecKey,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "3650",
    "-sha256",
    "-subj",
    `/CN=sinker-testenv-${cluster}-ca`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ]);
  const leaf = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"];
  await Promise.all([
    leafCert(dir, "apiserver", `/CN=kube-apiserver-${cluster}`, [
      ...leaf,
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
    ]),
    leafCert(dir, "admin", `/O=system:masters/CN=${adminUser}`, [...leaf, "extendedKeyUsage=clientAuth"]),
    leafCert(dir, "restricted", `/CN=${restrictedUser}`, [...leaf, "extendedKeyUsage=clientAuth"]),
    (async () => {
      await openssl(dir, [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "sa.key",
      ]);
      await openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    })(),
  ]);
}

function writeKubeconfig(
  file: string,
  opts: { name: string; server: string; pkiDir: string; user: "admin" | "restricted"; namespace?: string },
): void {
  const b64 = (f: string) => readFileSync(join(opts.pkiDir, f)).toString("base64");
  const context: Record<string, string> = { cluster: opts.name, user: opts.name };
  if (opts.namespace) context.namespace = opts.namespace;
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      { name: opts.name, cluster: { server: opts.server, "certificate-authority-data": b64("ca.crt") } },
    ],
    users: [
      {
        name: opts.name,
        user: {
          "client-certificate-data": b64(`${opts.user}.crt`),
          "client-key-data": b64(`${opts.user}.key`),
        },
      },
    ],
    contexts: [{ name: opts.name, context }],
    "current-context": opts.name,
    preferences: {},
  };
  writeFileSync(file, stringify(doc), { mode: 0o600 });
}

// ---------------------------------------------------------------------------------------------------------------
// Raw HTTPS

export type Response = {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: raw Kubernetes JSON, read freely by tests
  body: any;
};

type Tls = { ca: Buffer; cert: Buffer; key: Buffer };

function tlsOf(pkiDir: string, user: "admin" | "restricted"): Tls {
  return {
    ca: readFileSync(join(pkiDir, "ca.crt")),
    cert: readFileSync(join(pkiDir, `${user}.crt`)),
    key: readFileSync(join(pkiDir, `${user}.key`)),
  };
}

function send(
  url: string,
  options: https.RequestOptions,
  body: string | undefined,
  timeoutMs: number,
): Promise<Response> {
  return new Promise((res, rej) => {
    const mod = url.startsWith("https:") ? https : http;
    const req = mod.request(url, { ...options, timeout: timeoutMs }, (resp) => {
      const chunks: Buffer[] = [];
      resp.on("data", (c: Buffer) => chunks.push(c));
      resp.on("error", rej);
      resp.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        if (/json/.test(String(resp.headers["content-type"] ?? "")) || /^\s*[[{]/.test(text)) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        res({ status: resp.statusCode ?? 0, body: parsed });
      });
    });
    req.on("timeout", () =>
      req.destroy(new Error(`${options.method ?? "GET"} ${url}: no response in ${timeoutMs} ms`)),
    );
    req.on("error", rej);
    req.end(body);
  });
}

function encodeBody(
  method: string,
  body: unknown,
  contentType: string | undefined,
): { data?: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body === undefined) return { headers };
  const data = typeof body === "string" ? body : JSON.stringify(body);
  headers["content-type"] =
    contentType ?? (method.toUpperCase() === "PATCH" ? "application/merge-patch+json" : "application/json");
  headers["content-length"] = String(Buffer.byteLength(data));
  return { data, headers };
}

async function rawRequest(
  server: string,
  tls: Tls,
  method: string,
  path: string,
  body?: unknown,
  contentType?: string,
): Promise<Response> {
  const { data, headers } = encodeBody(method, body, contentType);
  return send(`${server}${path}`, { method, headers, ...tls, agent: false }, data, 30_000);
}

async function readyz(c: ClusterState): Promise<boolean> {
  try {
    const r = await send(
      `${c.server}/readyz`,
      { ...tlsOf(c.pkiDir, "admin"), agent: false },
      undefined,
      5000,
    );
    return r.status === 200;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Starting the pieces

function etcdArgs(s: State): string[] {
  const client = `http://127.0.0.1:${s.etcd.port}`;
  const peer = `http://127.0.0.1:${s.etcd.peerPort}`;
  return [
    "--name=sinker-testenv",
    `--data-dir=${s.etcd.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=sinker-testenv=${peer}`,
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

async function startEtcd(s: State, log: Log): Promise<void> {
  const t = Date.now();
  const proc = startProcess(join(s.binDir, "etcd"), etcdArgs(s), join(s.dir, "logs", "etcd.log"));
  s.etcd.proc = proc;
  writeState(s);
  await waitFor(
    `etcd /health on port ${s.etcd.port}`,
    async () => {
      ensureRunning(proc, "etcd");
      try {
        const r = await send(`http://127.0.0.1:${s.etcd.port}/health`, {}, undefined, 2000);
        return r.status === 200 && (r.body as { health?: string }).health === "true";
      } catch (err) {
        if ((err as Error).message.includes("exited")) throw err;
        return false;
      }
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nlast lines of ${proc.log}:\n${tail(proc.log)}`);
  });
  log(`etcd ready on 127.0.0.1:${s.etcd.port} (${elapsed(t)})`);
}

function apiserverArgs(s: State, c: ClusterState): string[] {
  const pki = c.pkiDir;
  const node = s.nodeTier === true && c.name === "a";
  return [
    `--etcd-servers=http://127.0.0.1:${s.etcd.port}`,
    `--etcd-prefix=${c.etcdPrefix}`,
    `--secure-port=${c.port}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--cert-dir=${pki}`,
    `--tls-cert-file=${join(pki, "apiserver.crt")}`,
    `--tls-private-key-file=${join(pki, "apiserver.key")}`,
    `--client-ca-file=${join(pki, "ca.crt")}`,
    "--authorization-mode=RBAC",
    "--service-cluster-ip-range=10.0.0.0/24",
    // Pods get their service-account token volume from the ServiceAccount admission plugin: only the node tier
    // runs pods (elsewhere no controller creates the ServiceAccounts it would require).
    ...(node ? [] : ["--disable-admission-plugins=ServiceAccount"]),
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${join(pki, "sa.pub")}`,
    `--service-account-signing-key-file=${join(pki, "sa.key")}`,
    "--profiling=false",
    // PodTemplates are served without the watch cache, straight from etcd: a watch or an Exact list from a
    // compacted revision then gets 410 Gone every time, which the 410 tests need. (Through the watch cache,
    // whether an old resourceVersion is refused depends on the cache's state, not only on the compaction.)
    // No controller of the test environment uses PodTemplates; every other kind keeps the watch cache.
    `--watch-cache-sizes=${UNCACHED_RESOURCE}#0`,
    // Benchmark identities (static bearer tokens) and an audit log of their requests only: the benchmark
    // attributes every API request to the process under test exactly. Other users are not audited (level None).
    `--token-auth-file=${join(pki, "tokens.csv")}`,
    `--audit-policy-file=${join(s.dir, "audit-policy.yaml")}`,
    `--audit-log-path=${auditLogPath(s, c.name)}`,
    "--audit-log-maxsize=0",
  ];
}

/**
 * Users that authenticate with a static token (tokens.csv, made at start-up), each in group system:masters, and
 * whose requests the API servers write to their audit logs. The benchmark runs the process it measures as one.
 */
export const AUDITED_USERS = ["sinker-bench", "ideal-copier"] as const;
export type AuditedUser = (typeof AUDITED_USERS)[number];

/** Users the node tier audits besides AUDITED_USERS: the ServiceAccounts Sinker's pods run as (kustomize, Helm). */
export const NODE_TIER_AUDITED_USERS = [
  "system:serviceaccount:sinker:sinker",
  "system:serviceaccount:sinker-helm:sinker",
];

/** The audit log (JSON lines, audit.k8s.io/v1 Events) of cluster `name`'s API server. */
export function auditLogPath(s: State, name: ClusterName): string {
  return join(s.dir, "logs", `audit-${name}.log`);
}

/** Writes the audit policy and, when missing, cluster `c`'s token file: before its API server starts. */
function writeAuthFiles(s: State, c: ClusterState): void {
  const policy = {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    omitStages: ["RequestReceived"],
    rules: [
      { level: "Metadata", users: [...AUDITED_USERS, ...(s.nodeTier ? NODE_TIER_AUDITED_USERS : [])] },
      { level: "None" },
    ],
  };
  writeFileSync(join(s.dir, "audit-policy.yaml"), stringify(policy));
  const tokens = join(c.pkiDir, "tokens.csv");
  if (!existsSync(tokens)) {
    const lines = AUDITED_USERS.map((u) => `${randomBytes(24).toString("hex")},${u},${u},"system:masters"`);
    writeFileSync(tokens, `${lines.join("\n")}\n`, { mode: 0o600 });
  }
}

function readToken(c: ClusterState, user: AuditedUser): string {
  for (const line of readFileSync(join(c.pkiDir, "tokens.csv"), "utf8").split("\n")) {
    const [token, name] = line.split(",");
    if (name === user && token) return token;
  }
  throw new Error(`no token for ${user} in ${c.pkiDir}/tokens.csv`);
}

/** The one resource whose watches and lists the test API servers serve from etcd, bypassing the watch cache. */
export const UNCACHED_RESOURCE = "podtemplates";

/** What the node tier's cluster a adds: Deployments become ReplicaSets and pods, PodDisruptionBudgets get a
 * status, nodes lose their not-ready taint, namespaces get their default ServiceAccount and the kube-root-ca.crt ConfigMap that token volumes use. */
const NODE_TIER_CONTROLLERS = [
  "deployment-controller",
  "replicaset-controller",
  "disruption-controller",
  "serviceaccount-controller",
  "root-ca-certificate-publisher-controller",
  // Lifts the not-ready taint a kubelet registers its node with, once the node reports Ready.
  "node-lifecycle-controller",
];

function controllerManagerArgs(s: State, c: ClusterState): string[] {
  const node = s.nodeTier === true && c.name === "a";
  const controllers = [
    "garbage-collector-controller",
    "namespace-controller",
    ...(node ? NODE_TIER_CONTROLLERS : []),
  ];
  return [
    `--kubeconfig=${s.kubeconfigs[c.name]}`,
    "--leader-elect=false",
    `--controllers=${controllers.join(",")}`,
    ...(node ? [`--root-ca-file=${join(c.pkiDir, "ca.crt")}`] : []),
    "--secure-port=0",
    "--use-service-account-credentials=false",
    `--cluster-name=sinker-testenv-${c.name}`,
    "--profiling=false",
  ];
}

function sameArgs(a: readonly string[] | undefined, b: readonly string[]): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}

export function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

async function startApiserver(s: State, c: ClusterState, log: Log): Promise<void> {
  const t = Date.now();
  writeAuthFiles(s, c);
  const proc = startProcess(
    join(s.binDir, "kube-apiserver"),
    apiserverArgs(s, c),
    join(s.dir, "logs", `kube-apiserver-${c.name}.log`),
  );
  c.apiserver = proc;
  writeState(s);
  await waitFor(
    `kube-apiserver ${c.name} /readyz on port ${c.port}`,
    async () => {
      ensureRunning(proc, `kube-apiserver ${c.name}`);
      return readyz(c);
    },
    { timeoutMs: 90_000, intervalMs: 250 },
  ).catch((err: Error) => {
    if (err.message.includes("exited")) throw err;
    throw new Error(`${err.message}\nlast lines of ${proc.log}:\n${tail(proc.log)}`);
  });
  log(`kube-apiserver ${c.name} ready on ${c.server} (${elapsed(t)})`);
}

async function startControllerManager(s: State, c: ClusterState, log: Log): Promise<void> {
  const proc = startProcess(
    join(s.binDir, "kube-controller-manager"),
    controllerManagerArgs(s, c),
    join(s.dir, "logs", `kube-controller-manager-${c.name}.log`),
  );
  c.controllerManager = proc;
  writeState(s);
  log(`kube-controller-manager ${c.name} started (pid ${proc.pid})`);
}

/** Proves the garbage collector and the namespace controller of cluster `c` work: an orphaned dependent is
 * collected and a namespace deletion completes. Without this a test running right after start-up could race the
 * garbage collector's initial discovery. */
async function probeControllers(c: ClusterState, log: Log): Promise<void> {
  const t = Date.now();
  const tls = tlsOf(c.pkiDir, "admin");
  const req = (method: string, path: string, body?: unknown) => rawRequest(c.server, tls, method, path, body);
  const suffix = randomBytes(4).toString("hex");
  const ns = `testenv-probe-${suffix}`;
  const cms = "/api/v1/namespaces/default/configmaps";
  const owner = await req("POST", cms, { metadata: { name: `testenv-probe-owner-${suffix}` } });
  if (owner.status !== 201) throw new Error(`probe: creating a ConfigMap in ${c.name}: ${owner.status}`);
  const child = await req("POST", cms, {
    metadata: {
      name: `testenv-probe-child-${suffix}`,
      ownerReferences: [
        { apiVersion: "v1", kind: "ConfigMap", name: owner.body.metadata.name, uid: owner.body.metadata.uid },
      ],
    },
  });
  if (child.status !== 201)
    throw new Error(`probe: creating a dependent ConfigMap in ${c.name}: ${child.status}`);
  const nsr = await req("POST", "/api/v1/namespaces", { metadata: { name: ns } });
  if (nsr.status !== 201) throw new Error(`probe: creating namespace ${ns} in ${c.name}: ${nsr.status}`);
  await req("DELETE", `${cms}/${owner.body.metadata.name}`);
  await req("DELETE", `/api/v1/namespaces/${ns}`);
  const check = async () => {
    ensureRunning(c.controllerManager as ProcState, `kube-controller-manager ${c.name}`);
    const a = await req("GET", `${cms}/${child.body.metadata.name}`);
    const b = await req("GET", `/api/v1/namespaces/${ns}`);
    return a.status === 404 && b.status === 404;
  };
  await waitFor(`the garbage collector and namespace controller of cluster ${c.name} to work`, check, {
    timeoutMs: 90_000,
    intervalMs: 250,
  }).catch((err: Error) => {
    const p = c.controllerManager as ProcState;
    throw new Error(`${err.message}\nlast lines of ${p.log}:\n${tail(p.log)}`);
  });
  log(`cluster ${c.name}: garbage collector and namespace controller working (${elapsed(t)})`);
}

async function bootstrapRestricted(c: ClusterState): Promise<void> {
  const tls = tlsOf(c.pkiDir, "admin");
  const apply = async (path: string, obj: Record<string, unknown>) => {
    const r = await rawRequest(
      c.server,
      tls,
      "PATCH",
      `${path}?fieldManager=sinker-testenv&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
    if (r.status !== 200 && r.status !== 201) {
      throw new Error(`applying ${path} in cluster ${c.name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  };
  const ns = restrictedNamespace;
  await apply(`/api/v1/namespaces/${ns}`, { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } });
  const rbac = `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}`;
  await apply(`${rbac}/roles/restricted-all`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "restricted-all", namespace: ns },
    rules: [
      {
        apiGroups: [
          "",
          "apps",
          "batch",
          "autoscaling",
          "policy",
          "networking.k8s.io",
          "discovery.k8s.io",
          "coordination.k8s.io",
          "events.k8s.io",
          "rbac.authorization.k8s.io",
          "sinker.influxdata.io",
        ],
        resources: ["*"],
        verbs: ["*"],
      },
    ],
  });
  await apply(`${rbac}/rolebindings/restricted-all`, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "restricted-all", namespace: ns },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "restricted-all" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: restrictedUser }],
  });
}

function crdsHash(): string | null {
  if (!existsSync(crdsFile)) return null;
  return createHash("sha256").update(readFileSync(crdsFile)).digest("hex");
}

async function kubectlOrThrow(s: State, args: string[]): Promise<string> {
  const r = await runCmd(join(s.binDir, "kubectl"), args);
  if (r.code !== 0)
    throw new Error(`kubectl ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Server-side applies manifests/crds.yaml (if present) to cluster `c` and waits until its CRDs are Established. */
async function applyCrds(s: State, c: ClusterState, log: Log): Promise<void> {
  if (!existsSync(crdsFile)) return;
  const t = Date.now();
  const kc = `--kubeconfig=${s.kubeconfigs[c.name]}`;
  await kubectlOrThrow(s, [
    kc,
    "apply",
    "--server-side",
    "--force-conflicts",
    "--field-manager=sinker-testenv",
    "-f",
    crdsFile,
  ]);
  await kubectlOrThrow(s, [kc, "wait", "--for=condition=Established", "--timeout=60s", "-f", crdsFile]);
  log(`cluster ${c.name}: applied ${relative(repoRoot, crdsFile)}, CRDs Established (${elapsed(t)})`);
}

/** Starts cluster `c`'s apiserver and controller manager (etcd must be running). */
async function startClusterProcesses(
  s: State,
  c: ClusterState,
  log: Log,
  opts: { crds: boolean },
): Promise<void> {
  await startApiserver(s, c, log);
  if (opts.crds) await applyCrds(s, c, log);
  await startControllerManager(s, c, log);
}

// ---------------------------------------------------------------------------------------------------------------
// Health, up, down

export type ProcessStatus = {
  name: string;
  pid: number | null;
  alive: boolean;
  rssMiB: number | null;
  port: number | null;
  log: string | null;
};

export type Status = {
  dir: string;
  state: State | null;
  processes: ProcessStatus[];
  /** Per cluster: "ready", "stopped" (by stopCluster), or "unhealthy: <why>". */
  clusters: Record<ClusterName, string>;
  /** Every process alive and every started cluster ready. */
  healthy: boolean;
};

function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

function procStatus(name: string, p: ProcState | null, port: number | null): ProcessStatus {
  const alive = p !== null && isAlive(p.pid, p.bin);
  return {
    name,
    pid: p?.pid ?? null,
    alive,
    rssMiB: p && alive ? rssMiB(p.pid) : null,
    port,
    log: p?.log ?? null,
  };
}

export async function status(): Promise<Status> {
  const dir = envDir();
  const s = readState(dir);
  const clusters: Record<ClusterName, string> = { a: "unhealthy: not started", b: "unhealthy: not started" };
  if (!s) return { dir, state: null, processes: [], clusters, healthy: false };
  const processes: ProcessStatus[] = [procStatus("etcd", s.etcd.proc, s.etcd.port)];
  let healthy = processes[0]?.alive === true;
  for (const name of clusterNames) {
    const c = s.clusters[name];
    const api = procStatus(`kube-apiserver-${name}`, c.apiserver, c.port);
    const kcm = procStatus(`kube-controller-manager-${name}`, c.controllerManager, null);
    processes.push(api, kcm);
    if (!c.apiserver && !c.controllerManager) {
      clusters[name] = "stopped";
    } else if (!api.alive || !kcm.alive) {
      clusters[name] = `unhealthy: ${!api.alive ? "kube-apiserver" : "kube-controller-manager"} not running`;
      healthy = false;
    } else if (!(await readyz(c))) {
      clusters[name] = "unhealthy: /readyz failing";
      healthy = false;
    } else {
      clusters[name] = "ready";
    }
  }
  const nodes = readNodeState(dir);
  for (const p of nodes ? nodeTierProcesses(nodes) : []) {
    const ps = procStatus(p.name, p.proc, null);
    processes.push(ps);
    healthy &&= ps.alive;
  }
  return { dir, state: s, processes, clusters, healthy };
}

async function stopAll(s: State): Promise<void> {
  await stopNodeTier(s.dir, defaultLog);
  for (const name of clusterNames) await stopProcess(s.clusters[name].controllerManager);
  await Promise.all(clusterNames.map((name) => stopProcess(s.clusters[name].apiserver)));
  await stopProcess(s.etcd.proc);
}

// One `up`/`down`/`stop`/`start` at a time per .testenv directory, across processes (several developers or test
// runs may share a work tree). The lock lives outside the work tree so it never shows up in `git status`.
function lockPath(): string {
  const h = createHash("sha256").update(resolve(envDir())).digest("hex").slice(0, 16);
  return join(tmpdir(), `sinker-testenv-${h}.lock`);
}

async function withLock<T>(fn: () => Promise<T>, log: Log): Promise<T> {
  const path = lockPath();
  const deadline = Date.now() + 10 * 60_000;
  let told = false;
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(path, "utf8").trim() || "0");
      if (!holder || !isAlive(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`process ${holder} holds ${path} for more than 10 minutes`);
      if (!told) log(`waiting for process ${holder}, which is starting or stopping the test environment`);
      told = true;
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

export type UpResult = { env: TestEnv; started: boolean; seconds: number };

/** Starts the control plane unless it is already up, which makes it a no-op apart from repairs: a cluster left
 * stopped (or whose controller manager died) is started again and a changed manifests/crds.yaml is re-applied.
 * Anything worse (a crashed earlier run, etcd gone) is cleaned up and started afresh.
 * `by` records who started it: test runs (global setup) stop only an environment that a test run started. */
export async function up(
  opts: { log?: Log; by?: "cli" | "test-run"; node?: boolean } = {},
): Promise<UpResult> {
  const log = opts.log ?? defaultLog;
  return withLock(() => upLocked(log, opts.by ?? "cli", opts.node === true), log);
}

async function upLocked(log: Log, by: "cli" | "test-run", node: boolean): Promise<UpResult> {
  const r = await upControlPlane(log, by, node);
  if (node) await startNodeTier(r.env.state, log);
  return r;
}

async function upControlPlane(log: Log, by: "cli" | "test-run", node: boolean): Promise<UpResult> {
  const t0 = Date.now();
  const dir = envDir();
  const st = await status();
  if (st.state?.complete && st.processes[0]?.alive) {
    let s = st.state;
    try {
      // Asked for the node tier: cluster a restarts below with its flags (they differ from the running ones).
      if (node && !s.nodeTier) {
        s.nodeTier = true;
        writeState(s);
      }
      for (const n of clusterNames) {
        const c = s.clusters[n];
        if (st.clusters[n] === "ready" && !sameArgs(c.apiserver?.args, apiserverArgs(s, c))) {
          // Started by an older version of this file: its flags (e.g. the watch-cache setting the 410 tests rely
          // on) are not what the tests expect. Restart it on the same port with the same certificates.
          log(`cluster ${n}: kube-apiserver runs with outdated flags: restarting it`);
          await stopProcess(c.controllerManager);
          await stopProcess(c.apiserver);
          c.controllerManager = null;
          c.apiserver = null;
          writeState(s);
          await startClusterLocked(n, log);
        } else if (st.clusters[n] !== "ready") {
          log(`cluster ${n}: ${st.clusters[n]}: starting it`);
          await startClusterLocked(n, log);
        }
      }
      s = readState(dir) ?? s;
      const h = crdsHash();
      if (h !== s.crdsHash) {
        for (const n of clusterNames) await applyCrds(s, s.clusters[n], log);
        s.crdsHash = h;
      }
      // A developer's explicit `up` keeps the environment alive past the end of a test run that started it.
      if (by === "cli") s.startedBy = "cli";
      writeState(s);
      log(`already up (${dir})`);
      return { env: new TestEnv(s), started: false, seconds: (Date.now() - t0) / 1000 };
    } catch (err) {
      log(`could not repair the running test environment (${(err as Error).message}): starting afresh`);
    }
  }
  const stale = readState(dir);
  if (stale) {
    log(
      `cleaning up a previous test environment in ${dir} that is not healthy (${JSON.stringify(st.clusters)})`,
    );
    await stopAll(stale);
  }
  rmSync(dir, { recursive: true, force: true });

  const { binDir } = await ensureBinaries({ quiet: true });
  mkdirSync(join(dir, "logs"), { recursive: true });
  writeFileSync(join(dir, ".gitignore"), "*\n");
  const [etcdPort, peerPort, portA, portB] = await freePorts(4);
  if (!etcdPort || !peerPort || !portA || !portB) throw new Error("could not pick free ports");
  const cluster = (name: ClusterName, port: number): ClusterState => ({
    name,
    port,
    server: `https://127.0.0.1:${port}`,
    etcdPrefix: `/cluster-${name}/registry`,
    pkiDir: join(dir, "pki", name),
    apiserver: null,
    controllerManager: null,
  });
  const s: State = {
    version: 1,
    dir,
    binDir,
    etcd: { port: etcdPort, peerPort, dataDir: join(dir, "etcd"), proc: null },
    clusters: { a: cluster("a", portA), b: cluster("b", portB) },
    kubeconfigs: {
      a: join(dir, "a.kubeconfig"),
      b: join(dir, "b.kubeconfig"),
      "b-restricted": join(dir, "b-restricted.kubeconfig"),
    },
    crdsHash: crdsHash(),
    startedAt: new Date().toISOString(),
    startedBy: by,
    complete: false,
    nodeTier: node,
  };
  writeState(s);
  try {
    let t = Date.now();
    await Promise.all(clusterNames.map((n) => generatePki(s.clusters[n].pkiDir, n)));
    log(`PKI generated (${elapsed(t)})`);
    for (const n of clusterNames) {
      const c = s.clusters[n];
      writeKubeconfig(s.kubeconfigs[n], { name: n, server: c.server, pkiDir: c.pkiDir, user: "admin" });
    }
    const b = s.clusters.b;
    writeKubeconfig(s.kubeconfigs["b-restricted"], {
      name: "b-restricted",
      server: b.server,
      pkiDir: b.pkiDir,
      user: "restricted",
      namespace: restrictedNamespace,
    });
    await startEtcd(s, log);
    // One API server after the other: two starting at once on 2 cores makes both slow.
    for (const n of clusterNames) {
      const c = s.clusters[n];
      await startApiserver(s, c, log);
      // CRDs before the controller managers: the garbage collector discovers types at start, then every 30 s.
      await applyCrds(s, c, log);
    }
    t = Date.now();
    await bootstrapRestricted(b);
    log(
      `cluster b: namespace ${restrictedNamespace} + Role/RoleBinding for ${restrictedUser} (${elapsed(t)})`,
    );
    for (const n of clusterNames) await startControllerManager(s, s.clusters[n], log);
    await Promise.all(clusterNames.map((n) => probeControllers(s.clusters[n], log)));
  } catch (err) {
    log(`start-up failed; stopping what was started (logs kept in ${join(dir, "logs")})`);
    await stopAll(s);
    throw err;
  }
  s.complete = true;
  writeState(s);
  const seconds = (Date.now() - t0) / 1000;
  log(`up in ${seconds.toFixed(1)} s; kubeconfigs: ${Object.values(s.kubeconfigs).join(", ")}`);
  return { env: new TestEnv(s), started: true, seconds };
}

/** Stops every process recorded in .testenv/state.json (by PID: SIGTERM, then SIGKILL) and removes .testenv. */
export async function down(opts: { log?: Log } = {}): Promise<void> {
  const log = opts.log ?? defaultLog;
  await withLock(() => downLocked(log), log);
}

async function downLocked(log: Log): Promise<void> {
  const dir = envDir();
  const s = readState(dir);
  if (s) {
    await stopAll(s);
    log("stopped etcd, kube-apiserver a/b, kube-controller-manager a/b");
  }
  rmSync(dir, { recursive: true, force: true });
  log(`removed ${dir}`);
}

// Test runs sharing one environment: each registers itself; the last one to finish stops an environment that a
// test run (not a developer's `npm run testenv -- up`) started.

/** `up` for a test run's global setup; registers this process as a user of the environment. */
export async function upForTestRun(opts: { log?: Log; node?: boolean } = {}): Promise<UpResult> {
  const log = opts.log ?? defaultLog;
  return withLock(async () => {
    const r = await upLocked(log, "test-run", opts.node === true);
    mkdirSync(join(envDir(), "users"), { recursive: true });
    writeFileSync(join(envDir(), "users", String(process.pid)), "");
    return r;
  }, log);
}

/** Unregisters this test run; stops the environment if a test run started it and no other test run uses it. */
export async function releaseTestRun(opts: { log?: Log } = {}): Promise<"stopped" | "kept"> {
  const log = opts.log ?? defaultLog;
  return withLock(async () => {
    const usersDir = join(envDir(), "users");
    rmSync(join(usersDir, String(process.pid)), { force: true });
    const s = readState(envDir());
    if (s?.startedBy !== "test-run") return "kept";
    const others = existsSync(usersDir) ? readdirSync(usersDir).filter((p) => isAlive(Number(p))) : [];
    if (others.length > 0) {
      log(`test environment kept: still used by the test run(s) of process ${others.join(", ")}`);
      return "kept";
    }
    await downLocked(log);
    return "stopped";
  }, log);
}

function requireState(): State {
  const s = readState(envDir());
  if (!s) {
    throw new Error(
      `No test control plane: ${statePath(envDir())} is missing. Start it with \`npm run testenv -- up\` ` +
        "(or run the tests through `npm run test:e2e`, whose global setup starts it).",
    );
  }
  return s;
}

/** Stops cluster `name`'s controller manager and apiserver (etcd and the other cluster keep running). */
export async function stopCluster(name: ClusterName, opts: { log?: Log } = {}): Promise<void> {
  const log = opts.log ?? defaultLog;
  await withLock(async () => {
    const s = requireState();
    const c = s.clusters[name];
    await stopProcess(c.controllerManager);
    await stopProcess(c.apiserver);
    c.controllerManager = null;
    c.apiserver = null;
    writeState(s);
    log(`cluster ${name} stopped`);
  }, log);
}

/** Starts cluster `name` again on the same port with the same certificates, so its kubeconfigs stay valid.
 * Returns when its apiserver is ready and its garbage collector and namespace controller work. */
export async function startCluster(name: ClusterName, opts: { log?: Log } = {}): Promise<void> {
  const log = opts.log ?? defaultLog;
  await withLock(() => startClusterLocked(name, log), log);
}

async function startClusterLocked(name: ClusterName, log: Log): Promise<void> {
  const s = requireState();
  const c = s.clusters[name];
  if (c.apiserver && isAlive(c.apiserver.pid, c.apiserver.bin) && (await readyz(c))) {
    if (c.controllerManager && isAlive(c.controllerManager.pid, c.controllerManager.bin)) return;
    // Only the controller manager is missing (it crashed or was killed): start just that.
    await startControllerManager(s, c, log);
    await probeControllers(c, log);
    return;
  }
  await stopProcess(c.controllerManager);
  await stopProcess(c.apiserver);
  if (!s.etcd.proc || !isAlive(s.etcd.proc.pid, s.etcd.proc.bin)) {
    throw new Error(
      "etcd is not running: restart the whole control plane (`npm run testenv -- down` then `up`)",
    );
  }
  await startClusterProcesses(s, c, log, { crds: false });
  await probeControllers(c, log);
}

// ---------------------------------------------------------------------------------------------------------------
// The library face for tests

/** A running test control plane, as recorded in .testenv/state.json. */
export class TestEnv {
  readonly state: State;
  readonly binDir: string;
  readonly kubectlPath: string;
  readonly #configs = new Map<KubeconfigName, KubeConfig>();

  constructor(state: State) {
    this.state = state;
    this.binDir = state.binDir;
    this.kubectlPath = join(state.binDir, "kubectl");
  }

  /** Path of `.testenv/<name>.kubeconfig` (certificates embedded; the file can be put in a Secret as it is). */
  kubeconfigPath(name: KubeconfigName): string {
    return this.state.kubeconfigs[name];
  }

  /** The kubeconfig's text. */
  kubeconfigText(name: KubeconfigName): string {
    return readFileSync(this.kubeconfigPath(name), "utf8");
  }

  /** A @kubernetes/client-node KubeConfig for that kubeconfig (a fresh object each call). */
  kubeConfig(name: KubeconfigName): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath(name));
    return kc;
  }

  /**
   * A kubeconfig (YAML text, CA embedded) for one of the AUDITED_USERS on cluster `name`, authenticating with
   * its static token: the API server's audit log records every request it makes.
   */
  auditedKubeconfigText(name: ClusterName, user: AuditedUser, namespace?: string): string {
    const c = this.state.clusters[name];
    const context: Record<string, string> = { cluster: name, user };
    if (namespace) context.namespace = namespace;
    return stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        {
          name,
          cluster: {
            server: c.server,
            "certificate-authority-data": readFileSync(join(c.pkiDir, "ca.crt")).toString("base64"),
          },
        },
      ],
      users: [{ name: user, user: { token: readToken(c, user) } }],
      contexts: [{ name: `${user}@${name}`, context }],
      "current-context": `${user}@${name}`,
    });
  }

  /** The audit log file of cluster `name`'s API server (see AUDITED_USERS). */
  auditLog(name: ClusterName): string {
    return auditLogPath(this.state, name);
  }

  /** API server URL of a cluster (https://127.0.0.1:<port>). */
  server(name: KubeconfigName): string {
    return this.state.clusters[name === "b-restricted" ? "b" : name].server;
  }

  /** One raw JSON request. `body` is sent as JSON (or as is when a string); contentType defaults to
   * application/json (PATCH: application/merge-patch+json; use application/apply-patch+yaml for server-side
   * apply). Never throws on an HTTP status: check `status`. */
  async request(
    name: KubeconfigName,
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<Response> {
    let kc = this.#configs.get(name);
    if (!kc) {
      kc = this.kubeConfig(name);
      this.#configs.set(name, kc);
    }
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const server = kc.getCurrentCluster()?.server ?? this.server(name);
    const { data, headers } = encodeBody(method, body, contentType);
    return send(
      `${server}${path}`,
      { ...opts, method, headers: { ...(opts.headers as Record<string, string>), ...headers } },
      data,
      30_000,
    );
  }

  /** Creates namespace `<prefix>-<random>` and returns its name. */
  async createNamespace(name: KubeconfigName, prefix: string): Promise<string> {
    const base = prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, "-")
      .slice(0, 50)
      .replace(/^-+|-+$/g, "");
    const ns = `${base || "test"}-${randomBytes(4).toString("hex")}`;
    const r = await this.request(name, "POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns },
    });
    if (r.status !== 201)
      throw new Error(`creating namespace ${ns} in ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return ns;
  }

  /** Deletes a namespace (absent is fine); with `wait`, returns only once it is gone. */
  async deleteNamespace(
    name: KubeconfigName,
    namespace: string,
    opts: { wait?: boolean; timeoutMs?: number } = {},
  ): Promise<void> {
    const path = `/api/v1/namespaces/${namespace}`;
    const r = await this.request(name, "DELETE", path);
    if (r.status !== 200 && r.status !== 202 && r.status !== 404) {
      throw new Error(`deleting namespace ${namespace} in ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    }
    if (opts.wait) {
      await waitFor(
        `namespace ${namespace} in cluster ${name} to be gone`,
        async () => (await this.request(name, "GET", path)).status === 404,
        { timeoutMs: opts.timeoutMs ?? 60_000 },
      );
    }
  }

  /** Runs the built kubectl against a cluster; never throws on a non-zero exit. */
  kubectl(
    name: KubeconfigName,
    args: string[],
    opts: { input?: string } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCmd(this.kubectlPath, [`--kubeconfig=${this.kubeconfigPath(name)}`, ...args], opts);
  }

  /** Stops cluster b (or a): its apiserver and controller manager. Its kubeconfigs stay valid for startCluster. */
  stopCluster(name: ClusterName): Promise<void> {
    return stopCluster(name);
  }

  /** Starts a stopped cluster again, same port and certificates; resolves when it is ready. */
  startCluster(name: ClusterName): Promise<void> {
    return startCluster(name);
  }
}

/** The running control plane, for test files. Throws a clear error when it is not up. */
export function load(): TestEnv {
  return new TestEnv(requireState());
}
