/** The demo's scenario: install, apply examples/, then timed edits, drift, re-creation and deletion. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Watch } from "@kubernetes/client-node";
import { crdObjects } from "../../src/api/crds.ts";
import { repoRoot } from "../../test/controlplane/testenv.ts";
import { env, get, kubectl, listSyncs, must, type Obj, path, ready } from "./cluster.ts";
import { EXPECTED_SYNCS, NS, REMOTES_NS } from "./constants.ts";
import { fanOut } from "./fanout-step.ts";
import { active, Failure } from "./interrupt.ts";
import { ms, table } from "./live-view.ts";
import { dim, okLine, rel, say, step } from "./output.ts";
import { controllerExit, deleteDemoObjects, logFile, logTail, startSinker } from "./supervision.ts";
import { b64, check, coll, timed, timings } from "./timing.ts";

/**
 * Applies examples/ with kubectl (cluster b's part first) and waits until every ResourceSync is Ready; a watch
 * on the ResourceSyncs records, for each, the time from its creation (ADDED event) to Ready=True.
 */
export async function applyExamples(readyAfter: Map<string, number>): Promise<void> {
  await kubectl("b", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples", "cluster-b"))]);
  const firstSeen = new Map<string, number>();
  let allReady = () => {};
  const list = await env.request("a", "GET", coll.rs);
  const rv = (list.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const watch = await new Watch(env.kubeConfig("a")).watch(
    coll.rs,
    { resourceVersion: rv },
    (phase: string, rs: Obj) => {
      const now = performance.now();
      const name = rs?.metadata?.name ?? "";
      if (phase === "ADDED" && !firstSeen.has(name)) firstSeen.set(name, now);
      if (
        phase !== "DELETED" &&
        ready(rs)?.status === "True" &&
        !readyAfter.has(name) &&
        firstSeen.has(name)
      ) {
        readyAfter.set(name, now - (firstSeen.get(name) ?? now));
        allReady();
      }
    },
    () => {},
  );
  try {
    await kubectl("a", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples"))]);
    await new Promise<void>((resolve, reject) => {
      controllerExit?.then((code) => reject(new Failure(`the controller exited (code ${code})`)));
      const timer = setTimeout(
        () => reject(new Failure("not every ResourceSync became Ready within 60 s")),
        60_000,
      );
      const onAbort = () => {
        clearTimeout(timer);
        reject(active.reason);
      };
      active.addEventListener("abort", onAbort, { once: true });
      allReady = () => {
        if (EXPECTED_SYNCS.every((n) => readyAfter.has(n))) {
          clearTimeout(timer);
          active.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      allReady();
    });
  } catch (err) {
    if (active.aborted) throw err;
    for (const line of table(await listSyncs(), readyAfter)) say(line);
    throw new Failure(`${(err as Error).message}; last lines of ${rel(logFile())}:\n${logTail(15)}`);
  } finally {
    watch.abort();
  }
}

export async function scenario(): Promise<void> {
  step("Installing the CRDs in clusters a and b");
  const crds = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, "src", "cli", "main.ts"), "manifests"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Failure(`sinker manifests: exit ${code}`)),
    );
  });
  for (const c of ["a", "b"] as const) {
    say(
      dim(
        `$ node src/cli/main.ts manifests | kubectl --kubeconfig ${rel(env.kubeconfigPath(c))} apply --server-side -f -`,
      ),
    );
    await kubectl(c, ["apply", "--server-side", "--force-conflicts", "-f", "-"], {
      input: crds,
      quiet: true,
    });
    await kubectl(
      c,
      [
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        ...crdObjects().map((crd) => `crd/${crd.metadata?.name}`),
      ],
      { quiet: true },
    );
  }
  okLine(
    "CRDs resourcesyncs, sinkercontainers, resourcesyncsets, clusterresourcesyncsets established in a and b",
  );

  step(`Namespaces, and a kubeconfig Secret for cluster b in cluster a`);
  if (
    (await get("a", path.ns(NS))) ||
    (await get("b", path.ns(NS))) ||
    (await get("a", path.ns(REMOTES_NS)))
  ) {
    say(`cleaning up what an earlier demo left behind`);
    await deleteDemoObjects({ quiet: true });
  }
  await kubectl("a", ["create", "namespace", NS]);
  await kubectl("b", ["create", "namespace", NS]);
  await kubectl("a", ["create", "namespace", REMOTES_NS]);
  await kubectl("a", [
    "-n",
    REMOTES_NS,
    "create",
    "secret",
    "generic",
    "cluster-b",
    `--from-file=value=${rel(env.kubeconfigPath("b"))}`,
  ]);
  // A Secret in another namespace than the ResourceSyncs: it must name the namespaces allowed to use it.
  await kubectl("a", [
    "-n",
    REMOTES_NS,
    "annotate",
    "secret",
    "cluster-b",
    `sinker.influxdata.io/allowed-namespaces=${NS}`,
  ]);

  step("Starting the controller against cluster a");
  await startSinker();

  step("Applying examples/ (namespace demo)");
  const readyAfter = new Map<string, number>();
  await applyExamples(readyAfter);
  const syncs = await listSyncs();
  for (const line of table(syncs, readyAfter)) say(line);
  say(dim("(READY AFTER: from the ResourceSync's creation to Ready=True, as seen by a watch)"));
  for (const name of EXPECTED_SYNCS) {
    const c = ready(syncs.find((s) => s.metadata?.name === name));
    check(
      `${name} Ready`,
      c?.status === "True" && c.reason === "Synced",
      `Ready condition ${JSON.stringify(c)}`,
    );
  }

  step("What the examples produced");
  const copy = await get("a", path.cm("app-settings-copy"));
  check(
    "clone-in-cluster: ConfigMap app-settings-copy in a = app-settings (data and labels, not Argo CD's tracking label, one added)",
    copy?.data?.greeting === "hello" &&
      copy.data["log-level"] === "info" &&
      JSON.stringify(copy.metadata?.labels) === JSON.stringify({ app: "demo", "copied-by": "sinker" }),
    JSON.stringify({ data: copy?.data, labels: copy?.metadata?.labels }),
  );
  const secretB = await get("b", path.secret("db-credentials"));
  check(
    "copy-secret-to-cluster-b: Secret db-credentials in b has the source's username and password",
    secretB?.data?.username === b64("app") && secretB.data.password === b64("not-a-real-password"),
    secretB ? `keys ${Object.keys(secretB.data ?? {}).join(",")}` : "missing",
  );
  const mapped = await get("a", path.cm("demo-mapped"));
  check(
    "mappings-from-cluster-b: ConfigMap demo-mapped in a = {remote, bar} from b's remote-demo, label tier=gold",
    JSON.stringify(mapped?.data) ===
      JSON.stringify({ bar: "renamed on the way", remote: "from cluster b" }) &&
      mapped?.metadata?.labels?.tier === "gold",
    JSON.stringify({ data: mapped?.data, labels: mapped?.metadata?.labels }),
  );
  const unpacked = await get("b", path.cm("unpacked-config"));
  check(
    "sinkercontainer-to-cluster-b: ConfigMap unpacked-config in b unpacked from SinkerContainer packed-config",
    unpacked?.data?.["feature-flags"] === "search=on,beta=off" && unpacked.metadata?.labels?.packed === "yes",
    JSON.stringify(unpacked?.data),
  );
  const handed = await get("a", path.cm("handed-over"));
  check(
    "keep-target-on-deletion: ConfigMap handed-over in a",
    handed?.data?.owner === "team-a",
    JSON.stringify(handed?.data),
  );

  step("A source edit propagating");
  await timed(
    "source edited in a → clone in a updated (clone-in-cluster)",
    () => must("a", "PATCH", path.cm("app-settings"), { data: { greeting: "hello again" } }),
    [
      {
        cluster: "a",
        collection: coll.cm,
        name: "app-settings-copy",
        test: (o) => o?.data?.greeting === "hello again",
      },
    ],
  );
  await timed(
    "source edited in b → mapped copy in a updated (mappings-from-cluster-b)",
    () => must("b", "PATCH", path.cm("remote-demo"), { data: { foo: "edited in b" } }),
    [{ cluster: "a", collection: coll.cm, name: "demo-mapped", test: (o) => o?.data?.bar === "edited in b" }],
  );
  await timed(
    "Secret rotated in a → copy in b updated (copy-secret-to-cluster-b)",
    () => must("a", "PATCH", path.secret("db-credentials"), { stringData: { password: "rotated" } }),
    [
      {
        cluster: "b",
        collection: coll.secret,
        name: "db-credentials",
        test: (o) => o?.data?.password === b64("rotated"),
      },
    ],
  );

  await fanOut();

  step("Drift on a target being undone");
  await timed(
    "target edited by hand in b → change undone (copy-secret-to-cluster-b)",
    () => must("b", "PATCH", path.secret("db-credentials"), { data: { password: b64("tampered") } }),
    [
      {
        cluster: "b",
        collection: coll.secret,
        name: "db-credentials",
        test: (o) => o?.data?.password === b64("rotated"),
      },
    ],
  );
  const oldUid = (await get("b", path.cm("unpacked-config")))?.metadata?.uid;
  await timed(
    "target deleted by hand in b → re-created (sinkercontainer-to-cluster-b)",
    () => must("b", "DELETE", path.cm("unpacked-config")),
    [
      {
        cluster: "b",
        collection: coll.cm,
        name: "unpacked-config",
        test: (o) =>
          o !== undefined && o.metadata?.uid !== oldUid && o.data?.["feature-flags"] === "search=on,beta=off",
      },
    ],
  );

  step("A deletion cleaning up");
  await timed(
    "ResourceSync deleted → its target in b deleted, then the ResourceSync gone (copy-secret-to-cluster-b)",
    () => must("a", "DELETE", path.rs("copy-secret-to-cluster-b")),
    [
      { cluster: "b", collection: coll.secret, name: "db-credentials", test: (o) => o === undefined },
      { cluster: "a", collection: coll.rs, name: "copy-secret-to-cluster-b", test: (o) => o === undefined },
    ],
  );
  const keepUid = (await get("a", path.rs("keep-target-on-deletion")))?.metadata?.uid;
  await timed(
    "ResourceSync with disable-target-deletion deleted → gone, target kept (keep-target-on-deletion)",
    () => must("a", "DELETE", path.rs("keep-target-on-deletion")),
    [{ cluster: "a", collection: coll.rs, name: "keep-target-on-deletion", test: (o) => o === undefined }],
  );
  const kept = await get("a", path.cm("handed-over"));
  check(
    "keep-target-on-deletion: ConfigMap handed-over still there, without an owner reference to the ResourceSync",
    kept?.data?.owner === "team-a" && !kept.metadata?.ownerReferences?.some((o) => o.uid === keepUid),
    JSON.stringify(kept?.metadata?.ownerReferences ?? kept ?? "missing"),
  );

  step("Timings");
  const width = Math.max(...timings.map(([w]) => w.length));
  for (const [what, took] of timings) say(`  ${what.padEnd(width)}  ${ms(took).padStart(7)}`);
  for (const [name, took] of readyAfter)
    say(`  ${`${name} Ready after creation`.padEnd(width)}  ${ms(took).padStart(7)}`);
}
