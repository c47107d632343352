/**
 * Tenant RBAC (manifests/tenant-rbac.yaml) on a real API server: with the ClusterRole aggregation controller
 * running, the built-in `edit` and `admin` roles may manage ResourceSyncs and SinkerContainers in their
 * namespace and `view` may read ResourceSyncs, nothing more. The testenv's controller managers run only the
 * garbage collector and the namespace controller, so this test runs the aggregation controller itself (the real
 * kube-controller-manager binary, that controller alone) for its duration.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";
import { RS_API } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
let aggregator: ChildProcess | undefined;
let aggregatorLog = "";
let namespace: string;

const EDITOR = "tenant-editor";
const ADMIN = "tenant-admin";
const VIEWER = "tenant-viewer";

async function kubectl(args: string[], input?: string) {
  return suite.env.kubectl("a", args, input === undefined ? {} : { input });
}

async function canI(user: string, verb: string, resource: string, subresource?: string): Promise<boolean> {
  const sub = subresource ? [`--subresource=${subresource}`] : [];
  const r = await kubectl(["auth", "can-i", verb, resource, ...sub, "-n", namespace, "--as", user]);
  assert.ok(r.code === 0 || r.code === 1, `kubectl auth can-i: ${r.stderr}`);
  return r.stdout.trim() === "yes";
}

async function aggregatedRules(role: string): Promise<string[]> {
  const r = await kubectl(["get", "clusterrole", role, "-o", "json"]);
  const rules =
    (JSON.parse(r.stdout) as { rules?: Array<{ apiGroups?: string[]; resources?: string[] }> }).rules ?? [];
  return rules.filter((x) => x.apiGroups?.includes("sinker.influxdata.io")).flatMap((x) => x.resources ?? []);
}

before(async () => {
  const applied = await kubectl([
    "apply",
    "--server-side",
    "-f",
    join(repoRoot, "manifests", "tenant-rbac.yaml"),
  ]);
  assert.equal(applied.code, 0, applied.stderr);
  aggregator = spawn(
    join(suite.env.binDir, "kube-controller-manager"),
    [
      `--kubeconfig=${suite.env.kubeconfigPath("a")}`,
      "--leader-elect=false",
      "--controllers=clusterrole-aggregation-controller",
      "--secure-port=0",
      "--use-service-account-credentials=false",
      "--profiling=false",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  aggregator.stderr?.on("data", (c: Buffer) => {
    aggregatorLog = (aggregatorLog + c.toString()).slice(-4000);
  });
  await waitFor(
    "the built-in roles to aggregate Sinker's tenant roles",
    async () => {
      if (aggregator?.exitCode !== null) throw new Error(`aggregation controller exited: ${aggregatorLog}`);
      const [edit, admin, view] = await Promise.all(["edit", "admin", "view"].map(aggregatedRules));
      return [edit, admin, view].every((rules) => rules?.includes("resourcesyncs"));
    },
    { timeoutMs: 60_000 },
  );
  namespace = await suite.ns("a", "tenant-rbac");
  for (const [user, role] of [
    [EDITOR, "edit"],
    [ADMIN, "admin"],
    [VIEWER, "view"],
  ] as const) {
    const r = await kubectl([
      "create",
      "rolebinding",
      `${role}-${user}`,
      `--clusterrole=${role}`,
      `--user=${user}`,
      "-n",
      namespace,
    ]);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  if (aggregator && aggregator.exitCode === null) {
    const exited = new Promise((r) => aggregator?.once("exit", r));
    aggregator.kill("SIGTERM");
    await exited;
  }
});

describe("tenant RBAC through the built-in roles", () => {
  it("edit and admin manage ResourceSyncs and SinkerContainers, but not their status", async () => {
    for (const user of [EDITOR, ADMIN]) {
      for (const verb of [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
      ]) {
        assert.ok(
          await canI(user, verb, "resourcesyncs.sinker.influxdata.io"),
          `${user} ${verb} resourcesyncs`,
        );
        assert.ok(
          await canI(user, verb, "sinkercontainers.sinker.influxdata.io"),
          `${user} ${verb} sinkercontainers`,
        );
        assert.ok(
          await canI(user, verb, "resourcesyncsets.sinker.influxdata.io"),
          `${user} ${verb} resourcesyncsets`,
        );
      }
      // fanning out across namespaces is for whoever may create cluster-scoped objects
      assert.equal(await canI(user, "create", "clusterresourcesyncsets.sinker.influxdata.io"), false);
      assert.ok(await canI(user, "get", "resourcesyncs.sinker.influxdata.io", "status"));
      assert.equal(
        await canI(user, "patch", "resourcesyncs.sinker.influxdata.io", "status"),
        false,
        "status is the controller's",
      );
    }
  });

  it("view reads ResourceSyncs, writes nothing and does not read SinkerContainers (they may carry Secrets)", async () => {
    for (const verb of ["get", "list", "watch"]) {
      assert.ok(await canI(VIEWER, verb, "resourcesyncs.sinker.influxdata.io"), `view ${verb}`);
    }
    for (const verb of ["create", "update", "patch", "delete"]) {
      assert.equal(await canI(VIEWER, verb, "resourcesyncs.sinker.influxdata.io"), false, `view ${verb}`);
    }
    assert.equal(await canI(VIEWER, "get", "sinkercontainers.sinker.influxdata.io"), false);
  });

  it("grants nothing outside the namespace of the RoleBinding", async () => {
    const r = await kubectl([
      "auth",
      "can-i",
      "create",
      "resourcesyncs.sinker.influxdata.io",
      "-n",
      "default",
      "--as",
      EDITOR,
    ]);
    assert.equal(r.stdout.trim(), "no");
  });

  it("a real create as the editor is allowed, as the viewer refused", async () => {
    const rs = JSON.stringify({
      apiVersion: RS_API,
      kind: "ResourceSync",
      metadata: { name: "by-tenant", namespace },
      spec: {
        source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "a" } },
        target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "b" } },
      },
    });
    const denied = await kubectl(["create", "-f", "-", "--as", VIEWER], rs);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/);
    const created = await kubectl(["create", "-f", "-", "--as", EDITOR], rs);
    assert.equal(created.code, 0, created.stderr);
    const read = await kubectl(["get", "rsync", "by-tenant", "-n", namespace, "--as", VIEWER]);
    assert.equal(read.code, 0, read.stderr);
  });
});
