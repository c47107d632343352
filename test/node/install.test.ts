/**
 * Sinker as users run it: the image built from the Dockerfile (podman), loaded into two real kubelet nodes of
 * cluster a, installed with the Helm chart and then with `kubectl apply -k` of manifests/ through a test overlay
 * (the image's local name, host network, the API server's loopback address). Both replicas run as uid 1000 on a
 * read-only root filesystem, become Ready through their probes, one leads, the examples sync in-cluster and to
 * cluster b, a deleted leader hands over within the Lease, a rolling update completes under the
 * PodDisruptionBudget, the ServiceAccount token Sinker presents is the kubelet's rotating one, and Sinker's
 * requests need nothing its RBAC lacks (what it has and never used is printed).
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { load, repoRoot, type TestEnv, waitFor } from "../controlplane/testenv.ts";
import { runCommand } from "../support/run-command.ts";
import { toolPath } from "../tools/build.ts";
import { type BuiltImage, buildSinkerImage, podman, ULIMITS } from "./image.ts";
import { importImage } from "./nodes.ts";
import { leaderPod, podOfHolder, writeOverlay } from "./overlay.ts";
import {
  auditEvents,
  containerPid,
  getInNode,
  getJson,
  isReady,
  type Json,
  kubectl,
  leaseHolder,
  metric,
  nodes,
  pods,
  processFacts,
  unusedGrants,
  waitReadyPods,
} from "./support.ts";

const IMAGE = "localhost/sinker:node-test";
const IMAGE_2 = "localhost/sinker:node-test-2";
const NS = "sinker";
const SA_USER = `system:serviceaccount:${NS}:sinker`;
const LEASE_SECONDS = 15;

let env: TestEnv;
let work: string;
let image: BuiltImage;
const report: string[] = [];
const note = (line: string) => {
  report.push(line);
  process.stderr.write(`[node tier] ${line}\n`);
};

before(async () => {
  env = load();
  nodes(env);
  work = join(env.state.dir, "node", "test");
  mkdirSync(work, { recursive: true });
});

after(async () => {
  await kubectl(env, ["delete", "-k", join(work, "overlay"), "--ignore-not-found", "--wait=false"]).catch(
    () => {},
  );
  process.stderr.write(`\n[node tier] report:\n${report.map((l) => `  ${l}`).join("\n")}\n`);
  rmSync(work, { recursive: true, force: true });
});

describe("the image, built from the Dockerfile", () => {
  it("builds with podman against the stand-in base, runs as the node user, and starts", async () => {
    image = await buildSinkerImage(IMAGE, work, (m) => note(m));
    note(`image ${IMAGE}: ${(image.sizeBytes / 1e6).toFixed(1)} MB, built in ${image.seconds.toFixed(1)} s`);
    const user = (await podman(["image", "inspect", "--format", "{{.Config.User}}", IMAGE])).trim();
    assert.equal(user, "node");
    const t0 = Date.now();
    const out = await podman([
      "run",
      "--rm",
      "--network=none",
      ...ULIMITS,
      "--read-only",
      "-u",
      "1000",
      IMAGE,
      "version",
    ]);
    note(`\`sinker version\` in a container: ${Date.now() - t0} ms (${out.trim()})`);
    for (const n of nodes(env)) await importImage(n, image.archive);
    // The same image under a second tag: the rolling update's "new version".
    await podman(["tag", IMAGE, IMAGE_2]);
    const second = join(work, "sinker-image-2.tar");
    await podman(["save", "--format", "docker-archive", "-o", second, IMAGE_2]);
    for (const n of nodes(env)) await importImage(n, second);
  });
});

describe("the shipped pod template", () => {
  it("is admitted by the restricted Pod Security Standard as it is", async () => {
    const docs = parseAllDocuments(readFileSync(join(repoRoot, "manifests", "deployment.yaml"), "utf8"));
    const spec = docs[0]?.toJS().spec.template.spec;
    const ns = await env.createNamespace("a", "pss");
    try {
      await kubectl(env, ["label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"]);
      await kubectl(env, ["-n", ns, "create", "serviceaccount", "sinker"]);
      const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "sinker", namespace: ns }, spec };
      await kubectl(env, ["create", "--dry-run=server", "-f", "-"], JSON.stringify(pod));
    } finally {
      await env.deleteNamespace("a", ns);
    }
  });
});

describe("helm install", () => {
  it("starts two ready replicas, one leads, and it syncs; helm uninstall removes it", async () => {
    const helm = toolPath("helm");
    const [repo, tag] = IMAGE.split(":");
    const args = [
      "install",
      "sinker",
      join(repoRoot, "charts", "sinker"),
      "--namespace",
      "sinker-helm",
      "--create-namespace",
      `--kubeconfig=${env.kubeconfigPath("a")}`,
      `--set=image.repository=${repo}`,
      `--set=image.tag=${tag}`,
      "--set=hostNetwork=true",
      `--set-json=extraEnv=[{"name":"KUBERNETES_SERVICE_HOST","value":"127.0.0.1"},{"name":"KUBERNETES_SERVICE_PORT","value":"${env.state.clusters.a.port}"}]`,
    ];
    const home = join(work, "helm-home");
    const helmEnv = {
      PATH: process.env.PATH,
      HOME: home,
      HELM_CACHE_HOME: home,
      HELM_CONFIG_HOME: home,
      HELM_DATA_HOME: home,
    };
    const run = async (a: string[]) => {
      const r = await runCommand(helm, a, { env: helmEnv as NodeJS.ProcessEnv, timeoutMs: 300_000 });
      assert.equal(r.code, 0, `helm ${a[0]}: ${r.stderr}`);
    };
    const t0 = Date.now();
    await run(args);
    const ready = await waitReadyPods(env, "sinker-helm", 2);
    note(`helm install: 2 pods Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after \`helm install\``);
    // The chart mounts the token the usual way (ServiceAccount admission, the kubelet's projected volume).
    assert.ok(
      ready.every((p: Json) => p.spec.volumes.some((v: Json) => v.name.startsWith("kube-api-access-"))),
    );
    await leaderPod(env, "sinker-helm");
    const ns = await env.createNamespace("a", "helm-sync");
    try {
      await kubectl(env, ["-n", ns, "apply", "-f", join(repoRoot, "examples", "clone-in-cluster.yaml")]);
      await waitFor(
        "the example clone to exist",
        async () => {
          const r = await env.request("a", "GET", `/api/v1/namespaces/${ns}/configmaps/app-settings-copy`);
          return r.status === 200;
        },
        { timeoutMs: 60_000 },
      );
      await kubectl(env, ["-n", ns, "delete", "resourcesync", "--all", "--timeout=60s"]);
    } finally {
      await env.deleteNamespace("a", ns);
    }
    await run([
      "uninstall",
      "sinker",
      "--namespace",
      "sinker-helm",
      "--wait",
      `--kubeconfig=${env.kubeconfigPath("a")}`,
    ]);
    await env.deleteNamespace("a", "sinker-helm", { wait: true, timeoutMs: 120_000 });
  });
});

describe("kubectl apply -k manifests (test overlay)", () => {
  let startedAt = 0;

  it("starts two replicas, Ready through /ready, as uid 1000 on a read-only root filesystem", async () => {
    writeOverlay(env, join(work, "overlay"), IMAGE);
    startedAt = Date.now();
    await kubectl(env, ["apply", "-k", join(work, "overlay"), "--server-side"]);
    const ready = await waitReadyPods(env, NS, 2);
    note(`kubectl apply -k: 2 pods Ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after the apply`);
    assert.notEqual(ready[0].spec.nodeName, ready[1].spec.nodeName, "one replica per node (host port 8080)");
    for (const p of ready) {
      const facts = processFacts(await containerPid(env, p));
      assert.equal(facts.uid, 1000, `pod ${p.metadata.name} runs as uid 1000`);
      assert.ok(facts.rootReadOnly, `pod ${p.metadata.name} has a read-only root filesystem`);
      const c = p.spec.containers[0];
      assert.equal(c.readinessProbe.httpGet.path, "/ready");
      assert.equal(c.livenessProbe.httpGet.path, "/live");
      assert.equal((await getInNode(env, p, "/ready")).status, 200);
      assert.equal((await getInNode(env, p, "/live")).status, 200);
      // Ready came from the kubelet's probe: the condition turned True after the container started.
      const started = Date.parse(p.status.containerStatuses[0].state.running.startedAt);
      const readyAt = Date.parse(
        p.status.conditions.find((x: Json) => x.type === "Ready").lastTransitionTime,
      );
      assert.ok(readyAt >= started, "Ready after the container started");
      note(
        `pod ${p.metadata.name}: container start to Ready ${((readyAt - started) / 1000).toFixed(0)} s (1 s resolution)`,
      );
    }
  });

  it("one replica leads: the Lease names it and only it reports sinker_leader 1", async () => {
    const { holder } = await leaderPod(env, NS);
    assert.ok(holder.length > 0);
  });

  it("syncs the examples in-cluster and to cluster b", async () => {
    const ns = await env.createNamespace("a", "examples");
    await kubectl(env, ["create", "namespace", "sinker-remotes"]).catch(() => "");
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: "cluster-b",
        namespace: "sinker-remotes",
        annotations: { "sinker.influxdata.io/allowed-namespaces": ns },
      },
      data: { value: Buffer.from(env.kubeconfigText("b")).toString("base64") },
    };
    await kubectl(env, ["apply", "--server-side", "-f", "-"], JSON.stringify(secret));
    await env.request("b", "POST", "/api/v1/namespaces", { metadata: { name: "demo" } });
    for (const f of ["clone-in-cluster.yaml", "copy-secret-to-cluster-b.yaml"]) {
      await kubectl(env, ["-n", ns, "apply", "-f", join(repoRoot, "examples", f)]);
    }
    for (const rs of ["clone-in-cluster", "copy-secret-to-cluster-b"]) {
      await waitFor(
        `ResourceSync ${rs} Ready`,
        async () => {
          const o = await getJson(
            env,
            `/apis/sinker.influxdata.io/v1alpha1/namespaces/${ns}/resourcesyncs/${rs}`,
          );
          return (o.status?.conditions ?? []).some((c: Json) => c.type === "Ready" && c.status === "True");
        },
        { timeoutMs: 90_000 },
      );
    }
    const copy = await env.request("b", "GET", "/api/v1/namespaces/demo/secrets/db-credentials");
    assert.equal(copy.status, 200, "the Secret reached cluster b");
    // Deleting a ResourceSync deletes its target (finalizer, delete, TargetDeleted Event).
    await kubectl(env, ["-n", ns, "delete", "resourcesync", "clone-in-cluster", "--timeout=90s"]);
    const target = await env.request("a", "GET", `/api/v1/namespaces/${ns}/configmaps/app-settings-copy`);
    assert.equal(target.status, 404, "the clone was deleted with its ResourceSync");
  });

  it("deleting the leader pod hands the Lease to the other replica within the lease duration", async () => {
    const { leader, standby, holder } = await leaderPod(env, NS);
    const t0 = Date.now();
    await kubectl(env, ["-n", NS, "delete", "pod", leader.metadata.name, "--wait=false"]);
    const next = await waitFor(
      "a new Lease holder",
      async () => {
        const h = await leaseHolder(env, NS);
        return h && h !== holder ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const seconds = (Date.now() - t0) / 1000;
    // The released Lease goes to whichever replica asks first: the standby (every retry period) or the pod that
    // replaces the deleted one (at once on start-up, and pods start within a second here).
    const taker = await waitFor(
      `the pod named by the new holder ${next}`,
      async () => podOfHolder(await pods(env, NS), next),
      { timeoutMs: 30_000 },
    );
    assert.notEqual(taker.metadata.name, leader.metadata.name, "the deleted leader does not hold the Lease");
    const role = taker.metadata.name === standby.metadata.name ? "the standby" : "the replacement pod";
    note(
      `failover: the Lease moved to ${role} ${taker.metadata.name} ${seconds.toFixed(1)} s after the leader pod's deletion`,
    );
    // The Lease shows the new holder as soon as its write lands; the process flips its gauge just after.
    await waitFor(
      `${role} ${taker.metadata.name} (${next}) to report sinker_leader 1`,
      async () => metric((await getInNode(env, taker, "/metrics")).body, "sinker_leader") === 1,
      { timeoutMs: 30_000 },
    );
    assert.ok(seconds < LEASE_SECONDS, `hand-over within the ${LEASE_SECONDS} s lease (took ${seconds} s)`);
    await waitReadyPods(env, NS, 2);
  });

  it("a leader killed outright (SIGKILL, no release) is replaced once its lease runs out", async () => {
    const { leader, holder } = await leaderPod(env, NS);
    const pid = await containerPid(env, leader);
    const t0 = Date.now();
    process.kill(pid, "SIGKILL");
    const next = await waitFor(
      "a new Lease holder after the kill",
      async () => {
        const h = await leaseHolder(env, NS);
        return h && h !== holder ? h : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const seconds = (Date.now() - t0) / 1000;
    const taker = podOfHolder(await pods(env, NS), next)?.metadata.name ?? next;
    note(`failover after SIGKILL of the leader: the Lease moved to ${taker} after ${seconds.toFixed(1)} s`);
    // The standby takes over once the Lease has not been renewed for its duration (15 s), checking every 2 s.
    assert.ok(seconds < LEASE_SECONDS + 10, `taken over ${seconds} s after the kill`);
    await waitReadyPods(env, NS, 2);
    await leaderPod(env, NS);
  });

  it("a rolling update to a new image completes, never below one available replica", async () => {
    const t0 = Date.now();
    const [name, tag] = IMAGE_2.split(":");
    writeOverlay(env, join(work, "overlay"), `${name}:${tag}`);
    await kubectl(env, ["apply", "-k", join(work, "overlay"), "--server-side"]);
    let minAvailable = 2;
    await waitFor(
      "the rollout to finish",
      async () => {
        const d = await getJson(env, `/apis/apps/v1/namespaces/${NS}/deployments/sinker`);
        const ready = (await pods(env, NS)).filter(isReady);
        minAvailable = Math.min(minAvailable, ready.length);
        const st = d.status ?? {};
        return (
          st.observedGeneration === d.metadata.generation &&
          st.updatedReplicas === 2 &&
          st.readyReplicas === 2 &&
          (st.replicas ?? 0) === 2 &&
          ready.every((p: Json) => p.spec.containers[0].image === IMAGE_2)
        );
      },
      { timeoutMs: 300_000, intervalMs: 200 },
    );
    note(
      `rolling update: done in ${((Date.now() - t0) / 1000).toFixed(1)} s; fewest Ready pods seen: ${minAvailable}`,
    );
    assert.ok(minAvailable >= 1, "one replica stayed available throughout");
    await leaderPod(env, NS);
  });

  it("the PodDisruptionBudget lets one pod be evicted, not both", async () => {
    const pdb = await waitFor(
      "the PodDisruptionBudget's status",
      async () => {
        const p = await getJson(env, `/apis/policy/v1/namespaces/${NS}/poddisruptionbudgets/sinker`);
        return p.status?.currentHealthy === 2 && p.status?.disruptionsAllowed === 1 ? p : undefined;
      },
      { timeoutMs: 60_000 },
    );
    assert.equal(pdb.spec.maxUnavailable, 1);
    const [p1, p2] = (await pods(env, NS)).filter(isReady);
    const evict = (p: Json) =>
      env.request("a", "POST", `/api/v1/namespaces/${NS}/pods/${p.metadata.name}/eviction`, {
        apiVersion: "policy/v1",
        kind: "Eviction",
        metadata: { name: p.metadata.name, namespace: NS },
      });
    assert.equal((await evict(p1)).status, 201, "the first eviction is allowed");
    assert.equal((await evict(p2)).status, 429, "the second is refused while the first is not replaced");
    await waitReadyPods(env, NS, 2);
    await leaderPod(env, NS);
  });

  it("the kubelet's probes act on Sinker: a frozen replica turns NotReady, then is restarted by /live", async () => {
    const { standby } = await leaderPod(env, NS);
    const name = standby.metadata.name;
    const restarts = (p: Json) => p.status?.containerStatuses?.[0]?.restartCount ?? 0;
    const before = restarts(standby);
    const t0 = Date.now();
    process.kill(await containerPid(env, standby), "SIGSTOP");
    const get = () => getJson(env, `/api/v1/namespaces/${NS}/pods/${name}`);
    await waitFor(`pod ${name} NotReady`, async () => !isReady(await get()), { timeoutMs: 90_000 });
    const notReady = (Date.now() - t0) / 1000;
    await waitFor(`pod ${name}'s container restarted`, async () => restarts(await get()) > before, {
      timeoutMs: 180_000,
    });
    const restarted = (Date.now() - t0) / 1000;
    await waitFor(`pod ${name} Ready again`, async () => isReady(await get()), { timeoutMs: 120_000 });
    note(
      `probes: frozen replica NotReady after ${notReady.toFixed(0)} s, restarted by liveness after ${restarted.toFixed(0)} s`,
    );
    await leaderPod(env, NS);
  });

  it("presents the kubelet's rotating service-account token: a new one once the kubelet rotates it", async () => {
    // The overlay's token lives 10 minutes; the kubelet replaces it after about 8. One pod must run that long.
    const ready = await waitReadyPods(env, NS, 2);
    const pod = ready.sort(
      (x: Json, y: Json) =>
        Date.parse(x.metadata.creationTimestamp) - Date.parse(y.metadata.creationTimestamp),
    )[0];
    const podName = pod.metadata.name;
    const credentials = () => {
      const ids = new Set<string>();
      for (const e of auditEvents(env, SA_USER, startedAt)) {
        const extra = e.user?.extra ?? {};
        if (extra["authentication.kubernetes.io/pod-name"]?.[0] !== podName) continue;
        const id = extra["authentication.kubernetes.io/credential-id"]?.[0];
        if (id) ids.add(id);
      }
      return ids;
    };
    const t0 = Date.now();
    const ids = await waitFor(
      `pod ${podName} to present a second token`,
      () => {
        const s = credentials();
        return s.size >= 2 ? s : undefined;
      },
      { timeoutMs: 11 * 60_000, intervalMs: 2000 },
    );
    note(
      `token rotation: pod ${podName} presented ${ids.size} tokens (waited ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
    const denied = auditEvents(env, SA_USER, startedAt).filter((e: Json) => e.responseStatus?.code === 401);
    assert.deepEqual(denied.length, 0, "no request with an expired or unknown token");
  });

  it("needs no right the manifests lack; lists the rights it never used", async () => {
    // Only this installation's requests (an earlier one's pods may have outlived its Role on a reused cluster).
    const events = auditEvents(env, SA_USER, startedAt);
    assert.ok(events.length > 0, "the audit log holds Sinker's requests");
    const forbidden = events.filter((e: Json) => e.responseStatus?.code === 403);
    assert.deepEqual(
      forbidden.map((e: Json) => `${e.verb} ${e.requestURI}`),
      [],
      "requests the ClusterRole/Role of manifests/ refused",
    );
    const rules: Json[] = [];
    for (const d of parseAllDocuments(readFileSync(join(repoRoot, "manifests", "rbac.yaml"), "utf8"))) {
      const o = d.toJS();
      if (o?.kind === "ClusterRole" || o?.kind === "Role") rules.push(...o.rules);
    }
    const unused = unusedGrants(rules, events);
    note(
      `RBAC: ${events.length} requests audited, none refused; granted and never used: ${unused.join(", ") || "none"}`,
    );
  });
});
