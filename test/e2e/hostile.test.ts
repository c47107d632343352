/**
 * Hostile input (docs/security.md): the real `sinker` process against cluster a, attacked through what a tenant
 * controls — ResourceSyncs, Secrets, source objects and remote servers (a fake hostile HTTPS server, test/support).
 * Every attack runs next to a healthy "canary" ResourceSync (a local ConfigMap clone) that must keep converging
 * within seconds while the attack goes on, with /live answering 200 and the controller's memory bounded.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import { HostileServer, REFLECTED_SECRET } from "../support/hostile-server.ts";
import { killAllSinkers, Sinker } from "../support/sinker-process.ts";
import {
  Cluster,
  cmRef,
  configMap,
  deleteResourceSyncs,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

/** The Deployment's memory limit is 500 MiB: the controller must stay well below it under every attack. */
const MEMORY_BOUND = 400 * 1024 * 1024;
/**
 * How long the canary may take to converge while an attack runs: seconds when healthy, for ever when the attack
 * starves the controller; generous, so that a machine loaded by other work does not fail it.
 */
const CANARY_BOUND_MS = 30_000;

let sinker: Sinker;
let canaryNs: string;
let tick = 0;
const servers: HostileServer[] = [];
// Sinker runs as a child process here; the hostile servers stop first, so their clusters count as unreachable
// and force-delete lets the ResourceSyncs go.
const suite = useSuite({
  cleanupController: false,
  beforeCleanup: () => Promise.all(servers.map((s) => s.stop())).then(() => undefined),
  afterCleanup: killAllSinkers,
});
const { a } = suite;
const ns = (prefix: string) => suite.ns("a", prefix);

async function hostile(mode: ConstructorParameters<typeof HostileServer>[0]): Promise<HostileServer> {
  const s = await new HostileServer(mode).start();
  servers.push(s);
  return s;
}

const cm = cmRef;

/** A ConfigMap end in the cluster of the kubeconfig in Secret `secret` (key `value`). */
function remoteCm(name: string, secret: string, secretNamespace?: string) {
  return {
    ...cm(name),
    cluster: {
      namespace: "default",
      kubeConfig: {
        secretRef: { name: secret, key: "value", ...(secretNamespace ? { namespace: secretNamespace } : {}) },
      },
    },
  };
}

/** The canary converges: a fresh value in its source reaches its target within CANARY_BOUND_MS. */
async function canaryConverges(): Promise<void> {
  const value = `t${++tick}`;
  const started = Date.now();
  await a.apply(configMap(canaryNs, "canary-src", { tick: value }));
  await a.waitFor(
    `canary to converge to ${value}`,
    "v1",
    "ConfigMap",
    canaryNs,
    "canary-dst",
    (o) => (o?.data?.tick === value ? true : undefined),
    CANARY_BOUND_MS,
  );
  assert.ok(Date.now() - started <= CANARY_BOUND_MS + 1000);
}

/** /live is 200 and the resident memory is below the bound. */
async function healthy(): Promise<void> {
  assert.equal(await sinker.status("/live"), 200);
  const rss = await sinker.metric("process_resident_memory_bytes");
  assert.ok(rss > 0 && rss < MEMORY_BOUND, `resident memory ${Math.round(rss / 1024 / 1024)} MiB`);
}

/** Runs `check` while the canary keeps converging, until `check` returns something. */
async function whileCanaryConverges<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await canaryConverges();
    const got = await check();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await healthy();
  }
}

/** Ready=False with `reason` for ResourceSync `name`, observed while the canary keeps converging. */
/**
 * Waits until `name` is not Ready with `reason` (and, when given, a message matching `message`: on a loaded
 * machine a slow hostile list is first reported as not listed within the sync timeout, then as what it is).
 */
async function failsWith(
  n: string,
  name: string,
  reason: string,
  message?: RegExp,
): Promise<{ message: string }> {
  return whileCanaryConverges(`${n}/${name} to fail with ${reason}`, async () => {
    const rs = await a.get(RS_API, "ResourceSync", n, name);
    const ready = (
      rs?.status as { conditions?: Array<{ type: string; status: string; reason: string; message: string }> }
    )?.conditions?.find((c) => c.type === "Ready");
    const matches = ready?.status === "False" && ready.reason === reason;
    return matches && (!message || message.test(ready.message)) ? ready : undefined;
  });
}

/** Nothing in conditions, Events or the log carries `secret`. */
async function nowhere(n: string, secret: string): Promise<void> {
  for (const rs of await a.list(RS_API, "ResourceSync", n)) {
    assert.ok(!JSON.stringify(rs.status ?? {}).includes(secret), `status of ${rs.metadata?.name} leaks`);
  }
  for (const e of await a.list("v1", "Event", n)) {
    assert.ok(!JSON.stringify(e).includes(secret), `Event ${e.metadata?.name} leaks: ${String(e.message)}`);
  }
  assert.ok(!JSON.stringify(sinker.records).includes(secret), "the log leaks");
}

before(async () => {
  sinker = new Sinker([
    "--kubeconfig",
    suite.env.kubeconfigPath("a"),
    "--admin-addr",
    "127.0.0.1:0",
    "--log-format",
    "json",
    "--kube-api-request-timeout",
    "3s",
  ]);
  await waitFor("/ready 200", async () => (await sinker.status("/ready")) === 200, { timeoutMs: 30_000 });
  canaryNs = await ns("canary");
  await a.apply(configMap(canaryNs, "canary-src", { tick: "t0" }));
  await a.apply(resourceSync(canaryNs, "canary", { source: cm("canary-src"), target: cm("canary-dst") }));
  await waitReady(a, canaryNs, "canary", "True");
  await canaryConverges();
  await healthy();
});

describe("hostile ResourceSyncs and source objects", () => {
  it("match()/search() patterns that backtrack exponentially answer at once (linear-time engine)", async () => {
    const n = await ns("regex");
    await a.apply(configMap(n, "src", { v: `${"a".repeat(60_000)}b` }));
    // one target each: two ResourceSyncs on one target would conflict
    const mapping = (target: string, path: string) => ({
      source: cm("src"),
      target: cm(target),
      mappings: [{ fromFieldPath: path, toFieldPath: "data.hit" }],
    });
    await a.apply(resourceSync(n, "nested", mapping("dst-nested", "$.data[?match(@, '((a)+)+')]")));
    await a.apply(
      resourceSync(n, "alternation", mapping("dst-alternation", "$.data[?search(@, '((a|b)*)*c')]")),
    );
    await a.apply(resourceSync(n, "costly", mapping("dst-costly", "$.data[?match(@, '(?:a?){500}a{500}')]")));
    await waitReady(a, n, "nested", "True");
    await waitReady(a, n, "alternation", "True");
    const costly = await failsWith(n, "costly", "JSONPathLimitExceeded");
    assert.match(costly.message, /too much work/);
    await canaryConverges();
    await healthy();
  });

  it("one work budget for all mappings; a source too deep is refused", async () => {
    const n = await ns("budget");
    const data: Record<string, string> = {};
    for (let i = 0; i < 8000; i++) data[`k${i}`] = "v";
    await a.apply(configMap(n, "wide", data));
    const walk = { fromFieldPath: "$.data[?@ == 'nope']", toFieldPath: "data.x" };
    await a.apply(resourceSync(n, "one", { source: cm("wide"), target: cm("dst-one"), mappings: [walk] }));
    await a.apply(
      resourceSync(n, "many", {
        source: cm("wide"),
        target: cm("dst-many"),
        mappings: Array.from({ length: 256 }, () => walk),
      }),
    );
    await waitReady(a, n, "one", "True");
    const many = await failsWith(n, "many", "ProjectionBudgetExceeded");
    assert.match(many.message, /all mappings together/);
    let deep: unknown = "leaf";
    for (let i = 0; i < 300; i++) deep = { a: deep };
    await a.apply({
      apiVersion: RS_API,
      kind: "SinkerContainer",
      metadata: { name: "deep", namespace: n },
      spec: { deep },
    });
    await a.apply(
      resourceSync(n, "deep", {
        source: { resourceRef: { apiVersion: RS_API, kind: "SinkerContainer", name: "deep" } },
        target: cm("dst-deep"),
        mappings: [{ fromFieldPath: "spec.nothing", toFieldPath: "data.x" }],
      }),
    );
    assert.match((await failsWith(n, "deep", "SourceTooLarge")).message, /nested more than 256 levels/);
    await healthy();
  });

  it("a backtracking allowed-namespaces expression on many ResourceSyncs, and a huge invalid kubeconfig", async () => {
    const secrets = await ns("secrets");
    const n = await ns("tenant");
    const annotation = "sinker.influxdata.io/allowed-namespaces";
    await a.apply(kubeconfigSecret(secrets, "shared", "not: used", { [annotation]: "(.?){30}.{30}" }));
    for (let i = 0; i < 100; i++) {
      await a.apply(
        resourceSync(n, `rs-${i}`, { source: cm("src"), target: remoteCm(`dst-${i}`, "shared", secrets) }),
      );
    }
    // Secret updates requeue every ResourceSync that uses it
    for (let i = 0; i < 5; i++) {
      await a.apply(
        kubeconfigSecret(secrets, "shared", `not: used-${i}`, { [annotation]: `(.?){30}.{30}|x${i}` }),
      );
    }
    await whileCanaryConverges("all 100 to be refused", async () => {
      const all = await a.list(RS_API, "ResourceSync", n);
      const refused = all.filter((rs) =>
        (rs.status as { conditions?: Array<{ type: string; reason: string }> } | undefined)?.conditions?.some(
          (c) => c.type === "Ready" && c.reason === "SecretAccessDenied",
        ),
      );
      return refused.length === 100 ? true : undefined;
    });
    // A kubeconfig of about 1 MB that is not valid: refused by size, not re-parsed on every reconcile.
    await a.apply(kubeconfigSecret(n, "huge", `a: [\n${"#".repeat(700_000)}`));
    await a.apply(resourceSync(n, "huge", { source: cm("src"), target: remoteCm("dst", "huge") }));
    assert.match((await failsWith(n, "huge", "InvalidKubeconfig")).message, /larger than 512 KiB/);
    await healthy();
  });
});

describe("hostile remote servers", () => {
  it("a server sending one byte per second holds no worker: total deadline, then the circuit breaker", async () => {
    const server = await hostile("slow-bytes");
    const n = await ns("slow");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(kubeconfigSecret(n, "slow", server.kubeconfig()));
    // as many as the controller has workers (8 by default): they must not hold them all
    for (let i = 0; i < 8; i++) {
      await a.apply(
        resourceSync(n, `slow-${i}`, { source: cm("src"), target: remoteCm(`dst-${i}`, "slow") }),
      );
    }
    const failed = await failsWith(n, "slow-0", "ClusterUnreachable");
    assert.match(failed.message, /no complete answer within 3 s|circuit breaker open/);
    const breaker = await whileCanaryConverges("the circuit breaker to open", async () => {
      const rs = await a.get(RS_API, "ResourceSync", n, "slow-1");
      return JSON.stringify(rs?.status ?? {}).includes("circuit breaker open") ? true : undefined;
    });
    assert.ok(breaker);
    // the breaker keeps the server from being asked again and again
    const seen = server.requests.length;
    await canaryConverges();
    await canaryConverges();
    assert.ok(server.requests.length - seen <= 4, `${server.requests.length - seen} more requests`);
    await healthy();
  });

  it("a slow server holds at most its share of the workers, however many Secrets name it", async () => {
    const server = await hostile("slow-bytes");
    const n = await ns("share");
    const b = new Cluster(suite.env, "b");
    await a.apply(configMap(n, "src", { k: "v" }));
    // A remote canary next to the local one: its cluster (b) has a share of its own.
    await a.apply(kubeconfigSecret(canaryNs, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(
      resourceSync(canaryNs, "canary-b", { source: cm("canary-src"), target: remoteCm(n, "cluster-b") }),
    );
    await waitReady(a, canaryNs, "canary-b", "True");
    const share = await sinker.metric("sinker_max_concurrent_reconciles_per_cluster");
    const workers = await sinker.metric("controller_runtime_max_concurrent_reconciles", {
      controller: "resourcesync",
    });
    assert.equal(share, Math.floor(workers / 2));
    // Twice as many ResourceSyncs as workers, each with a copy of the kubeconfig in a Secret of its own: each
    // has a circuit breaker of its own, so only the share keeps them from holding every worker for 3 s at once.
    for (let i = 0; i < 2 * workers; i++) {
      await a.apply(kubeconfigSecret(n, `slow-${i}`, server.kubeconfig()));
      await a.apply(
        resourceSync(n, `slow-${i}`, { source: cm("src"), target: remoteCm(`dst-${i}`, `slow-${i}`) }),
      );
    }
    const times: number[] = [];
    const deadline = Date.now() + 20_000;
    let round = 0;
    // Several rounds of deadlines and breaker probes; the canaries converge all along.
    while (Date.now() < deadline) {
      const value = `share-${++round}`;
      const started = Date.now();
      await a.apply(configMap(canaryNs, "canary-src", { tick: value }));
      for (const [cluster, namespace, name] of [
        [a, canaryNs, "canary-dst"],
        [b, "default", n],
      ] as const) {
        await cluster.waitFor(
          `canary ${name} to converge to ${value}`,
          "v1",
          "ConfigMap",
          namespace,
          name,
          (o) => (o?.data?.tick === value ? true : undefined),
          CANARY_BOUND_MS,
        );
      }
      times.push(Date.now() - started);
      await healthy();
      assert.ok(server.maxOpen <= share, `${server.maxOpen} requests at once to one server (share ${share})`);
    }
    times.sort((x, y) => x - y);
    process.stderr.write(
      `# share ${share} of ${workers} workers, ${server.requests.length} requests to the slow server (at most ` +
        `${server.maxOpen} at once); canaries (local and cluster b) converged ${times.length} times, median ` +
        `${times[times.length >> 1]} ms, max ${times[times.length - 1]} ms\n`,
    );
    // the attack did run, and was held back by the share, not by failures
    assert.ok(server.requests.length >= share, `${server.requests.length} requests`);
    assert.equal(server.maxOpen, share);
    assert.ok((await sinker.metric("sinker_parked_reconciles_total")) > 0);
    await failsWith(n, `slow-${2 * workers - 1}`, "ClusterUnreachable");
    await healthy();
    // end the attack: the tests after this one measure their own (stop() again in after() is harmless)
    await server.stop();
    await deleteResourceSyncs(a, [n]);
  });

  it("a watch line without a newline is cut at 16 MiB, not buffered without bound", async () => {
    const server = await hostile("endless-line");
    const n = await ns("endless");
    await a.apply(kubeconfigSecret(n, "endless", server.kubeconfig()));
    await a.apply(resourceSync(n, "endless", { source: remoteCm("src", "endless"), target: cm("dst") }));
    await failsWith(n, "endless", "SourceNotFound");
    await whileCanaryConverges("the watch to be cut", async () =>
      server.closedWatchBytes.length >= 1 ? true : undefined,
    );
    process.stderr.write(
      `# watch lines cut after ${server.closedWatchBytes.map((b) => Math.round(b / 1048576)).join(", ")} MiB\n`,
    );
    for (const bytes of server.closedWatchBytes) {
      assert.ok(
        bytes < 24 * 1024 * 1024,
        `the client read ${Math.round(bytes / 1024 / 1024)} MiB of one line`,
      );
    }
    await healthy();
  });

  it("huge bodies and lists that page forever end in ResponseTooLarge", async () => {
    const pages = await hostile("huge-body");
    const n = await ns("huge");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(kubeconfigSecret(n, "pages", pages.kubeconfig()));
    await a.apply(resourceSync(n, "pages", { source: cm("src"), target: remoteCm("dst", "pages") }));
    const guard = /more than 100000 items or 1000 pages/;
    assert.match((await failsWith(n, "pages", "ClusterUnreachable", guard)).message, guard);
    const body = await hostile("huge-body");
    body.endlessPages = false;
    await a.apply(kubeconfigSecret(n, "body", body.kubeconfig()));
    await a.apply(resourceSync(n, "body", { source: cm("src"), target: remoteCm("dst", "body") }));
    assert.match((await failsWith(n, "body", "ResponseTooLarge")).message, /returned more than 32 MiB/);
    for (const bytes of body.abandonedBodyBytes) {
      assert.ok(bytes < 48 * 1024 * 1024, `the client read ${Math.round(bytes / 1024 / 1024)} MiB`);
    }
    await healthy();
  });

  it("error bodies, quoted values and redirects of a remote server are never reflected", async () => {
    const server = await hostile("reflect");
    const n = await ns("reflect");
    await a.apply(configMap(n, "src", { k: "v" }));
    await a.apply(kubeconfigSecret(n, "reflect", server.kubeconfig()));
    for (const name of ["plain", "quoted", "redirect"]) {
      await a.apply(resourceSync(n, name, { source: cm("src"), target: remoteCm(name, "reflect") }));
    }
    assert.match((await failsWith(n, "plain", "Forbidden")).message, /: HTTP 403 Forbidden$/);
    assert.match(
      (await failsWith(n, "quoted", "Invalid")).message,
      /HTTP 422 Unprocessable Entity \(Invalid\): .*Invalid value: <value omitted>: bad label/,
    );
    assert.match((await failsWith(n, "redirect", "BadRequest")).message, /: HTTP 302 Found$/);
    assert.ok(!server.requests.some((r) => r.url.includes("meta-data")), "the redirect was followed");
    await nowhere(n, REFLECTED_SECRET);
    await healthy();
  });
});

describe("hostile kubeconfigs", () => {
  it("only allow-listed fields and https servers that are not link-local or metadata addresses", async () => {
    const server = await hostile("reflect");
    const n = await ns("kubeconfig");
    await a.apply(configMap(n, "src", { k: "v" }));
    const good = server.kubeconfig();
    const cases: Array<[string, string, string, RegExp]> = [
      [
        "fd-token",
        good.replace("{token: not-a-real-token}", "{token-file: 3}"),
        "UnsafeKubeconfig",
        /token-file/,
      ],
      [
        "fd-cert",
        good.replace("{token: not-a-real-token}", "{client-certificate: 0, client-key: 1}"),
        "UnsafeKubeconfig",
        /client-certificate/,
      ],
      [
        "fd-ca",
        good.replace("certificate-authority-data:", "certificate-authority: 2, x:"),
        "UnsafeKubeconfig",
        /certificate-authority/,
      ],
      [
        "insecure",
        good.replace("certificate-authority-data:", "insecure-skip-tls-verify: true, x:"),
        "UnsafeKubeconfig",
        /TLS verification/,
      ],
      ["http", good.replace("https://", "http://"), "InvalidKubeconfig", /must be an https/],
      ["query", good.replace(server.url, `${server.url}/latest/meta-data/?`), "InvalidKubeconfig", /query/],
      ["fragment", good.replace(server.url, `${server.url}/#x`), "InvalidKubeconfig", /fragment/],
      ["userinfo", good.replace("https://", "https://admin:pw@"), "InvalidKubeconfig", /user info/],
      ["metadata-ip", good.replace(server.url, "https://169.254.169.254"), "BlockedAddress", /metadata/],
      [
        "metadata-name",
        good.replace(server.url, "https://metadata.google.internal"),
        "BlockedAddress",
        /metadata/,
      ],
    ];
    for (const [name, text] of cases) {
      await a.apply(kubeconfigSecret(n, name, text));
      await a.apply(resourceSync(n, name, { source: cm("src"), target: remoteCm("dst", name) }));
    }
    for (const [name, , reason, message] of cases) {
      const failed = await failsWith(n, name, reason);
      assert.match(failed.message, message, name);
      assert.ok(!failed.message.includes("127.0.0.1") && !failed.message.includes("169.254"), failed.message);
    }
    assert.deepEqual(server.requests, [], "a refused kubeconfig must not reach its server");
    await healthy();
  });
});

describe("API server errors quoting Secret data", () => {
  it("a 422 of the real API server quoting a Secret value reaches no status, Event or log", async () => {
    const n = await ns("quote");
    // base64 of "hunter2": the '=' padding makes it an invalid label value, which the API server quotes
    const secretValue = Buffer.from("hunter2").toString("base64");
    await a.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "creds", namespace: n },
      data: { password: secretValue },
    } as Obj);
    const source = { resourceRef: { apiVersion: "v1", kind: "Secret", name: "creds" } };
    await a.apply(
      resourceSync(n, "label", {
        source,
        target: cm("dst-label"),
        mappings: [{ fromFieldPath: "data.password", toFieldPath: "metadata.labels.x" }],
      }),
    );
    await a.apply(
      resourceSync(n, "labels", {
        source,
        target: cm("dst-labels"),
        mappings: [{ fromFieldPath: "data", toFieldPath: "metadata.labels" }],
      }),
    );
    assert.match(
      (await failsWith(n, "label", "Invalid")).message,
      /metadata\.labels: Invalid value: <value omitted>/,
    );
    await failsWith(n, "labels", "Invalid");
    await nowhere(n, secretValue.replace(/=+$/, ""));
    await healthy();
  });
});
