/**
 * The shipped manifests against a real API server (cluster a): the kustomization is accepted in a server-side
 * dry run, and the ClusterRole/Role really are enough for the controller (run as the ServiceAccount, by
 * impersonation) to lead, reconcile, write status, events and owner references, and release its Lease.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { load, repoRoot, type TestEnv, waitFor } from "../controlplane/testenv.ts";
import {
  Cluster,
  condition,
  configMap,
  deleteResourceSyncs,
  installCrds,
  RS_API,
  resourceSync,
} from "./support/cluster.ts";

const manifests = join(repoRoot, "manifests");

interface Probe {
  httpGet: { path: string; port: string };
}
interface Container {
  args: string[];
  ports: Array<Record<string, unknown>>;
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: {
    readOnlyRootFilesystem: boolean;
    allowPrivilegeEscalation: boolean;
    capabilities: { drop: string[] };
  };
}
let env: TestEnv;
let a: Cluster;
let scratch: string | undefined;
const namespaces: string[] = [];

/** Output of `sinker manifests` (the CRDs). */
function generatedCrds(): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [join(repoRoot, "bin", "sinker.js"), "manifests"], { cwd: repoRoot });
    let out = "";
    let err = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => {
      out += c;
    });
    p.stderr.setEncoding("utf8").on("data", (c: string) => {
      err += c;
    });
    p.on("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`sinker manifests: ${code} ${err}`)),
    );
  });
}

/** The kustomization directory; while manifests/crds.yaml is not generated yet, a copy with the CRDs added. */
async function kustomizationDir(): Promise<string> {
  if (existsSync(join(manifests, "crds.yaml"))) return manifests;
  scratch = mkdtempSync(join(tmpdir(), "sinker-manifests-"));
  cpSync(manifests, scratch, { recursive: true });
  writeFileSync(join(scratch, "crds.yaml"), await generatedCrds());
  return scratch;
}

async function kubectl(args: string[]) {
  const r = await env.kubectl("a", args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  env = load();
  a = new Cluster(env, "a");
  await installCrds(env, "a");
  // A server-side dry run cannot create the namespace that the namespaced objects go to.
  await kubectl(["apply", "--server-side", "-f", join(manifests, "namespace.yaml")]);
});

after(async () => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  await Promise.all(namespaces.map((n) => env.deleteNamespace("a", n)));
});

describe("manifests", () => {
  it("kubectl apply -k manifests --server-side --dry-run=server is accepted", async () => {
    const out = await kubectl(["apply", "-k", await kustomizationDir(), "--server-side", "--dry-run=server"]);
    for (const want of [
      "namespace/sinker",
      "customresourcedefinition.apiextensions.k8s.io/resourcesyncs.sinker.influxdata.io",
      "customresourcedefinition.apiextensions.k8s.io/sinkercontainers.sinker.influxdata.io",
      "serviceaccount/sinker",
      "clusterrole.rbac.authorization.k8s.io/sinker",
      "clusterrolebinding.rbac.authorization.k8s.io/sinker",
      "role.rbac.authorization.k8s.io/sinker-leader-election",
      "rolebinding.rbac.authorization.k8s.io/sinker-leader-election",
      "deployment.apps/sinker",
      "service/sinker-admin",
    ]) {
      assert.ok(out.includes(`${want} serverside-applied (server dry run)`), `${want} in:\n${out}`);
    }
  });

  it("the Deployment is hardened and probes the admin port", async () => {
    const out = await kubectl(["kustomize", await kustomizationDir()]);
    const { parseAllDocuments } = await import("yaml");
    const docs = parseAllDocuments(out).map((d) => d.toJS() as Record<string, unknown>);
    const dep = docs.find((d) => d.kind === "Deployment") as unknown as {
      spec: { template: { spec: { securityContext: Record<string, unknown>; containers: Container[] } } };
    };
    const pod = dep.spec.template.spec;
    const c = pod.containers[0];
    assert.ok(c);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext.seccompProfile, { type: "RuntimeDefault" });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    assert.deepEqual(c.ports[0], { name: "admin", containerPort: 8080, protocol: "TCP" });
    assert.deepEqual(c.livenessProbe.httpGet, { path: "/live", port: "admin" });
    assert.deepEqual(c.readinessProbe.httpGet, { path: "/ready", port: "admin" });
    assert.ok(c.resources.requests && c.resources.limits);
    assert.ok(c.args.includes("--leader-elect"));
  });

  it("the RBAC rules are enough for the controller running as its ServiceAccount", async () => {
    for (const f of ["serviceaccount.yaml", "rbac.yaml"]) {
      await kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(manifests, f)]);
    }
    const namespace = await env.createNamespace("a", "rbac-manifests");
    namespaces.push(namespace);
    await a.apply(configMap(namespace, "source", { k: "v" }));

    const p = spawn(
      process.execPath,
      [
        join(repoRoot, "bin", "sinker.js"),
        "--kubeconfig",
        env.kubeconfigPath("a"),
        "--as",
        "system:serviceaccount:sinker:sinker",
        "--as-group",
        "system:serviceaccounts",
        "--as-group",
        "system:serviceaccounts:sinker",
        "--as-group",
        "system:authenticated",
        "--admin-addr",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--leader-elect",
        "--leader-election-namespace",
        "sinker",
        "--leader-election-id",
        "sinker-rbac-e2e",
      ],
      {
        cwd: repoRoot,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, SINKER_LOG: "sinker=info,warn" },
      },
    );
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8").on("data", (c: string) => {
      stdout += c;
    });
    p.stderr.setEncoding("utf8").on("data", (c: string) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
    try {
      await waitFor(
        "the controller to lead and list ResourceSyncs",
        async () => {
          if (p.exitCode !== null) throw new Error(`sinker exited ${p.exitCode}: ${stderr}`);
          return stdout.includes("initial ResourceSync list received");
        },
        { timeoutMs: 30_000 },
      );
      await a.apply(
        resourceSync(namespace, "demo", {
          source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "source" } },
          target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "target" } },
        }),
      );
      const target = await a.waitFor(
        "target created",
        "v1",
        "ConfigMap",
        namespace,
        "target",
        (o) => o,
        20_000,
      );
      assert.equal(target.data?.k, "v");
      assert.equal(target.metadata?.ownerReferences?.[0]?.blockOwnerDeletion, true);
      await a.waitFor("Ready=True", RS_API, "ResourceSync", namespace, "demo", (o) =>
        condition(o, "Ready")?.status === "True" ? true : undefined,
      );
      const events = await a.list("v1", "Event", namespace);
      assert.ok(
        events.some((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === "demo"),
        "an Event on the ResourceSync",
      );
      assert.ok(!/forbidden/i.test(stdout), `no forbidden requests:\n${stdout}`);
      await deleteResourceSyncs(a, [namespace]);
    } finally {
      p.kill("SIGTERM");
    }
    assert.equal(await exited, 0, stderr);
    assert.ok(stdout.includes("released the Lease"), "the Lease is released with the Role's rights");
  });
});
