/**
 * The fault suite: the controller against a cluster that goes away and comes back, a 410 Gone on
 * resume, rotated and broken kubeconfigs, a SIGKILL while converging, a lost leadership. Each test fails when
 * the behaviour breaks and prints its figures (lines starting with "# fault:"). The slow ones (hundreds of
 * ResourceSyncs) run when SINKER_FAULT_SUITE=1, as CI sets it.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { waitFor } from "../controlplane/testenv.ts";
import { killAllSinkers, type LogRecord, Sinker } from "../support/sinker-process.ts";
import {
  clusterRef,
  cmRef,
  condition,
  configMap,
  deleteResourceSyncs,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { apiserverPort, compactEtcd } from "./support/kube.ts";
import { useSuite } from "./support/suite.ts";
import { TcpProxy } from "./support/tcp-proxy.ts";

const slow = process.env.SINKER_FAULT_SUITE === "1";
const slowOnly = slow ? {} : { skip: "set SINKER_FAULT_SUITE=1 to run the slow fault suite" };

const suite = useSuite();
const { a, b } = suite;
const ns = suite.ns;

after(async () => {
  killAllSinkers();
});

const cm = cmRef;
const bRef = clusterRef;

function figure(line: string): void {
  process.stderr.write(`# fault: ${line}\n`);
}

const rsList = (n: string) => a.list(RS_API, "ResourceSync", n);

describe("faults with an in-process controller", () => {
  const suite = useSuite({ controller: true });

  it("a kubeconfig Secret rotated to other credentials, to a broken one and back is picked up within seconds", async () => {
    const n = await suite.ns("a", "rotate");
    const nb = await suite.ns("b", "rotate");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(n, "src", { k: "v1" }));
    await a.apply(resourceSync(n, "rs", { source: cm("src"), target: { ...cm("dst"), cluster: bRef(nb) } }));
    await waitReady(a, n, "rs", "True");

    let t = Date.now();
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b-restricted")));
    // the next write needs the new credentials: a source change
    await a.apply(configMap(n, "src", { k: "v2" }));
    await waitReady(a, n, "rs", "False", "Forbidden", 15_000);
    const toRestricted = Date.now() - t;

    t = Date.now();
    await a.apply(kubeconfigSecret(n, "cluster-b", "this: is: not a kubeconfig"));
    await waitReady(a, n, "rs", "False", "InvalidKubeconfig", 15_000);
    const toBroken = Date.now() - t;

    t = Date.now();
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await waitReady(a, n, "rs", "True", undefined, 15_000);
    await b.waitFor("latest source in b", "v1", "ConfigMap", nb, "dst", (o) => o?.data?.k === "v2", 10_000);
    const back = Date.now() - t;
    figure(
      `kubeconfig rotation picked up: restricted ${toRestricted} ms, broken ${toBroken} ms, fixed ${back} ms`,
    );
    // the reachability series of that cluster goes with its last client
    const series = async () =>
      (await suite.controller.metrics.remoteClusterReachable.get()).values.filter(
        (v) => v.labels.cluster === `secret/${n}/cluster-b`,
      );
    assert.equal((await series())[0]?.value, 1);
    await a.delete(RS_API, "ResourceSync", n, "rs");
    await a.waitGone(RS_API, "ResourceSync", n, "rs");
    await waitFor("the series removed", async () => (await series()).length === 0, { timeoutMs: 30_000 });
  });

  it("a 410 Gone on resume: the relist misses no change and no deletion", async () => {
    const n = await suite.ns("a", "gone410");
    const nb = await suite.ns("b", "gone410");
    const proxy = new TcpProxy(apiserverPort(suite.env, "b"));
    const port = await proxy.listen();
    try {
      const viaProxy = suite.env
        .kubeconfigText("b")
        .replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${port}`);
      assert.notEqual(viaProxy, suite.env.kubeconfigText("b"), "kubeconfig rewritten to the proxy");
      await a.apply(kubeconfigSecret(n, "via-proxy", viaProxy));
      const remote = (name: string) => ({ ...cm(name), cluster: bRef(nb, "via-proxy") });
      // b → a: sources behind the proxy
      for (const name of ["changes", "vanishes", "stays"]) await b.apply(configMap(nb, name, { v: "1" }));
      for (const name of ["changes", "vanishes", "stays"])
        await a.apply(resourceSync(n, `in-${name}`, { source: remote(name), target: cm(`local-${name}`) }));
      // a → b: targets behind the proxy
      await a.apply(configMap(n, "src", { v: "1" }));
      for (const name of ["deleted", "drifted"])
        await a.apply(resourceSync(n, `out-${name}`, { source: cm("src"), target: remote(name) }));
      for (const rs of ["in-changes", "in-vanishes", "in-stays", "out-deleted", "out-drifted"])
        await waitReady(a, n, rs, "True");
      await waitFor("watches on b to be open", async () =>
        suite.controller.controller
          .watchInfo()
          .filter((w) => w.cluster === `secret/${n}/via-proxy`)
          .every((w) => w.health.watching),
      );

      // The controller loses b; meanwhile b changes and etcd is compacted past every resourceVersion it saw.
      proxy.pause();
      await b.apply(configMap(nb, "changes", { v: "2" }));
      await b.delete("v1", "ConfigMap", nb, "vanishes");
      await b.delete("v1", "ConfigMap", nb, "deleted");
      await b.mergePatch("v1", "ConfigMap", nb, "drifted", { data: { v: "drift" } });
      await compactEtcd(suite.env);
      // A restarted API server's watch cache starts at the current revision: a watch resumed from an older
      // resourceVersion is answered 410 Gone (compaction alone may not do it: the watch cache keeps history).
      await suite.env.stopCluster("b");
      await suite.env.startCluster("b");
      const t0 = Date.now();
      proxy.resume();

      await a.waitFor(
        "change seen",
        "v1",
        "ConfigMap",
        n,
        "local-changes",
        (o) => o?.data?.v === "2",
        60_000,
      );
      await waitReady(a, n, "in-vanishes", "False", "SourceNotFound", 60_000);
      await b.waitFor(
        "deleted target re-created",
        "v1",
        "ConfigMap",
        nb,
        "deleted",
        (o) => o?.data?.v === "1",
        60_000,
      );
      await b.waitFor("drift undone", "v1", "ConfigMap", nb, "drifted", (o) => o?.data?.v === "1", 60_000);
      const expired = suite.controller.controller
        .watchInfo()
        .filter((w) => w.cluster === `secret/${n}/via-proxy`)
        .reduce((sum, w) => sum + w.health.expired, 0);
      assert.ok(expired >= 1, "the resumed watch got 410 Gone and relisted");
      figure(
        `410 on resume: ${expired} relist(s); every change and deletion handled ${Date.now() - t0} ms after b came back`,
      );
    } finally {
      await proxy.close();
    }
  });

  it(
    "cluster b's API server stopped 30 s under 200 a→b ResourceSyncs whose sources keep changing",
    slowOnly,
    async () => {
      const N = 200;
      const LOCAL = 20;
      const CHANGING = 20;
      const n = await suite.ns("a", "outage");
      const nb = await suite.ns("b", "outage");
      await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
      for (let i = 0; i < N; i++) {
        await a.apply(configMap(n, `src-${i}`, { v: "0" }));
        await a.apply(
          resourceSync(n, `r-${i}`, {
            source: cm(`src-${i}`),
            target: { ...cm(`dst-${i}`), cluster: bRef(nb) },
          }),
        );
      }
      for (let i = 0; i < LOCAL; i++) {
        await a.apply(configMap(n, `lsrc-${i}`, { v: "0" }));
        await a.apply(resourceSync(n, `l-${i}`, { source: cm(`lsrc-${i}`), target: cm(`ldst-${i}`) }));
      }
      await waitFor(
        "every ResourceSync synced",
        async () => (await rsList(n)).every((rs) => condition(rs, "Ready")?.status === "True"),
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      const unreachable = async () =>
        (await suite.controller.metrics.reconcileErrorsByReason.get()).values.find(
          (v) => v.labels.reason === "ClusterUnreachable",
        )?.value ?? 0;
      const reachable = async () =>
        (await suite.controller.metrics.remoteClusterReachable.get()).values.find(
          (v) => v.labels.cluster === `secret/${n}/cluster-b`,
        )?.value;

      // Sources keep changing through the outage: 20 a→b ones and the local ones, every 2 s.
      let round = 0;
      let changing = true;
      const changes = (async () => {
        while (changing) {
          round++;
          for (let i = 0; i < CHANGING; i++) await a.apply(configMap(n, `src-${i}`, { v: String(round) }));
          for (let i = 0; i < LOCAL; i++) await a.apply(configMap(n, `lsrc-${i}`, { v: String(round) }));
          await new Promise((r) => setTimeout(r, 2000));
        }
      })();
      const stopChanging = async () => {
        changing = false;
        await changes.catch(() => undefined);
      };

      const stopping = Date.now();
      await suite.env.stopCluster("b");
      // (stopCluster returns once the API server process is gone: the outage is measured from there)
      const t0 = Date.now();
      const stopMs = t0 - stopping;
      // Failed reconciles are counted over the outage itself: from the moment b is gone to the moment it is
      // started again (a graceful stop, or a start on a loaded machine, takes seconds of its own).
      const errors0 = await unreachable();
      let outageErrors = 0;
      let firstFailing = 0;
      let allFailing = 0;
      try {
        await waitFor(
          "every a→b ResourceSync to show the failure",
          async () => {
            const failing = (await rsList(n)).filter(
              (rs) => rs.metadata?.name?.startsWith("r-") && condition(rs, "Ready")?.status === "False",
            ).length;
            if (failing > 0 && !firstFailing) firstFailing = Date.now() - t0;
            return failing === N;
          },
          { timeoutMs: 25_000, intervalMs: 250 },
        );
        allFailing = Date.now() - t0;
        assert.equal(await reachable(), 0, "sinker_remote_cluster_reachable is 0");
        // local ones keep syncing meanwhile
        const r = round;
        await waitFor(
          "local ResourceSyncs keep syncing during the outage",
          async () => {
            for (let i = 0; i < LOCAL; i++)
              if (Number((await a.get("v1", "ConfigMap", n, `ldst-${i}`))?.data?.v ?? -1) < r) return false;
            return true;
          },
          { timeoutMs: 15_000, intervalMs: 250 },
        );
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 30_000 - (Date.now() - t0))));
      } catch (err) {
        await stopChanging();
        throw err;
      } finally {
        outageErrors = (await unreachable()) - errors0;
        await suite.env.startCluster("b");
      }
      const back = Date.now();
      await stopChanging();
      const last = String(round);
      await waitFor(
        "every target in b to hold its latest source",
        async () => {
          const targets = new Map((await b.list("v1", "ConfigMap", nb)).map((o) => [o.metadata?.name, o]));
          for (let i = 0; i < N; i++) {
            const want = i < CHANGING ? last : "0";
            if (targets.get(`dst-${i}`)?.data?.v !== want) return false;
          }
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );
      const recovered = Date.now() - back;
      await waitFor(
        "all Ready again",
        async () => (await rsList(n)).every((rs) => condition(rs, "Ready")?.status === "True"),
        {
          timeoutMs: 30_000,
        },
      );
      // (answered requests say so at once; the watches on b reopen after their reconnect backoff)
      await waitFor("sinker_remote_cluster_reachable back to 1", async () => (await reachable()) === 1, {
        timeoutMs: 60_000,
      });
      // Backoff: the 180 ResourceSyncs whose source did not change retry 0.5, 1, 2, 4, 8, 16 s… (≤ 7 each in
      // 30 s); the changing ones are retried on each of their changes.
      const bound = (N - CHANGING) * 7 + CHANGING * (round + 7);
      figure(
        `b down 30 s (stopping it took ${stopMs} ms), ${N} a→b + ${LOCAL} local: first failing condition ${firstFailing} ms, all ${N} ${allFailing} ms; ` +
          `${outageErrors} failed reconciles (requests to b) during the outage (bound ${bound}, ${round} source rounds); ` +
          `every target right ${recovered} ms after b's return`,
      );
      assert.ok(outageErrors <= bound, `${outageErrors} > ${bound}: retries do not back off`);
    },
  );
});

describe("faults of the process", () => {
  /** A sinker process against cluster a (json logs; debug for the reconciler when asked). */
  const sinker = (extra: string[] = []) =>
    new Sinker([
      "--kubeconfig",
      suite.env.kubeconfigPath("a"),
      "--admin-addr",
      "127.0.0.1:0",
      "--log-format",
      "json",
      ...extra,
    ]);

  it(
    "SIGKILL while converging 1,000 ResourceSyncs, some deleted and retargeted while down",
    slowOnly,
    async () => {
      const N = 1000;
      const n = await ns("a", "sigkill");
      for (let i = 0; i < N; i++) await a.apply(configMap(n, `src-${i}`, { i: String(i) }));
      let s = sinker();
      await waitFor("ready", async () => (await s.status("/ready")) === 200, { timeoutMs: 30_000 });
      const t0 = Date.now();
      // Created 16 at a time, so the controller is still converging when it is killed.
      let next = 0;
      const creating = Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < N; i = next++)
            await a.apply(resourceSync(n, `rs-${i}`, { source: cm(`src-${i}`), target: cm(`dst-${i}`) }));
        }),
      );
      const targets = async () =>
        (await a.list("v1", "ConfigMap", n)).filter((o) => o.metadata?.name?.startsWith("dst-")).length;
      await waitFor("a fifth converged", async () => (await targets()) >= N / 5, {
        timeoutMs: 120_000,
        intervalMs: 100,
      });
      await s.terminate("SIGKILL");
      const atKill = await targets();
      await creating;
      // While it is down: 100 deleted, 100 retargeted.
      for (let i = 0; i < 100; i++) await a.delete(RS_API, "ResourceSync", n, `rs-${i}`);
      for (let i = 100; i < 200; i++)
        await a.apply(resourceSync(n, `rs-${i}`, { source: cm(`src-${i}`), target: cm(`moved-${i}`) }));
      s = sinker();
      const t1 = Date.now();
      try {
        await waitFor(
          "every live ResourceSync converged, every deleted one gone",
          async () => {
            const list = await rsList(n);
            if (list.length !== N - 100) return false;
            return list.every(
              (rs) =>
                condition(rs, "Ready")?.status === "True" &&
                rs.metadata?.generation ===
                  (rs.status as { observedGeneration?: number } | undefined)?.observedGeneration,
            );
          },
          { timeoutMs: 300_000, intervalMs: 1000 },
        );
        const converged = Date.now() - t1;
        const objects = new Map((await a.list("v1", "ConfigMap", n)).map((o) => [o.metadata?.name ?? "", o]));
        const expected = new Set<string>();
        for (let i = 0; i < N; i++) expected.add(`src-${i}`);
        for (let i = 100; i < 200; i++) expected.add(`moved-${i}`);
        for (let i = 200; i < N; i++) expected.add(`dst-${i}`);
        const orphans = [...objects.keys()].filter((k) => !expected.has(k) && k !== "kube-root-ca.crt");
        const missing = [...expected].filter((k) => !objects.has(k));
        const wrong = [...expected].filter(
          (k) => !k.startsWith("src-") && objects.get(k)?.data?.i !== k.split("-")[1],
        );
        const stuck = (await rsList(n)).filter((rs) => rs.metadata?.deletionTimestamp).length;
        figure(
          `SIGKILL with ${atKill}/${N} targets written: after restart all converged in ${converged} ms ` +
            `(${Date.now() - t0} ms since the first create); orphans ${orphans.length}, missing ${missing.length}, ` +
            `wrong ${wrong.length}, stuck finalizers ${stuck}`,
        );
        assert.deepEqual(orphans, [], "no orphan target");
        assert.deepEqual(missing, []);
        assert.deepEqual(wrong, []);
        assert.equal(stuck, 0);
        await deleteResourceSyncs(a, [n], 300_000);
        const left = (await a.list("v1", "ConfigMap", n)).filter(
          (o) => !o.metadata?.name?.startsWith("src-") && o.metadata?.name !== "kube-root-ca.crt",
        );
        assert.deepEqual(
          left.map((o) => o.metadata?.name),
          [],
          "deleting them all leaves no target",
        );
      } finally {
        await s.terminate("SIGTERM");
      }
    },
  );

  it(
    "leadership lost mid-convergence: no write from the old leader after the new one's first write",
    slowOnly,
    async () => {
      const N = 200;
      const n = await ns("a", "leader-loss");
      const le = [
        "--leader-elect",
        "--leader-election-namespace",
        n,
        "--leader-election-lease-duration",
        "4s",
        "--leader-election-renew-deadline",
        "3s",
        "--leader-election-retry-period",
        "500ms",
        "--log-level",
        "sinker::reconciler=debug,sinker=info,warn",
      ];
      for (let i = 0; i < N; i++) await a.apply(configMap(n, `src-${i}`, { i: String(i) }));
      const one = sinker(le);
      await waitFor("one leads", async () => (await one.metric("sinker_leader")) === 1, {
        timeoutMs: 20_000,
      });
      const two = sinker(le);
      await waitFor("two stands by", async () => (await two.status("/ready")) === 200, { timeoutMs: 20_000 });
      try {
        let next = 0;
        const creating = Promise.all(
          Array.from({ length: 8 }, async () => {
            for (let i = next++; i < N; i = next++)
              await a.apply(resourceSync(n, `rs-${i}`, { source: cm(`src-${i}`), target: cm(`dst-${i}`) }));
          }),
        );
        const synced = (s: Sinker) => s.records.filter((r) => r.msg === "synced");
        await waitFor("one mid-convergence", async () => synced(one).length >= 20, {
          timeoutMs: 60_000,
          intervalMs: 50,
        });
        // Someone else takes the Lease: one must stop writing; two takes over once it expires.
        const path = `/apis/coordination.k8s.io/v1/namespaces/${n}/leases/sinker`;
        // (the leader renews every 500 ms: a write based on an older read gets 409, so read and write again)
        await waitFor(
          "the Lease taken",
          async () => {
            const lease = (await suite.env.request("a", "GET", path)).body as {
              spec: Record<string, unknown>;
            };
            const r = await suite.env.request("a", "PUT", path, {
              ...lease,
              spec: { ...lease.spec, holderIdentity: "intruder", leaseDurationSeconds: 4 },
            });
            return r.status === 200;
          },
          { timeoutMs: 10_000, intervalMs: 10 },
        );
        const exit = await one.exited;
        assert.equal(exit.code, 1);
        await creating;
        // the new leader reconciles every ResourceSync once when it starts
        await waitFor(
          "two reconciled every ResourceSync",
          async () => new Set(synced(two).map((r) => r.name)).size === N,
          {
            timeoutMs: 120_000,
            intervalMs: 500,
          },
        );
        assert.ok((await rsList(n)).every((rs) => condition(rs, "Ready")?.status === "True"));
        const time = (rec: LogRecord) => Date.parse(String(rec.time));
        const oneLast = Math.max(...synced(one).map(time));
        const twoFirst = Math.min(...synced(two).map(time));
        figure(
          `leadership lost: old leader's last write ${new Date(oneLast).toISOString()}, exit ${new Date(exit.at).toISOString()}, ` +
            `new leader's first ${new Date(twoFirst).toISOString()} (${synced(one).length} + ${synced(two).length} syncs)`,
        );
        assert.ok(synced(two).length > 0, "the new leader wrote");
        assert.ok(oneLast < twoFirst, "no write from the old leader after the new one's first");
        const objects: Obj[] = await a.list("v1", "ConfigMap", n);
        assert.equal(objects.filter((o) => o.metadata?.name?.startsWith("dst-")).length, N);
      } finally {
        await deleteResourceSyncs(a, [n], 120_000).catch(() => undefined);
        await two.terminate("SIGTERM");
        if (one.proc.exitCode === null) await one.terminate("SIGKILL");
      }
    },
  );
});
