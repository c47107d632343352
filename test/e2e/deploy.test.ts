/**
 * The shipped manifests against a real API server (cluster a): the kustomization is accepted in a server-side
 * dry run, and the ClusterRole/Role really are enough for the controller (run as the ServiceAccount, by
 * impersonation) to lead, reconcile, write status, events and owner references, and release its Lease.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";
import { Sinker } from "../support/sinker-process.ts";
import { condition, configMap, deleteResourceSyncs, RS_API, resourceSync } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

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
const suite = useSuite();
const { a } = suite;

async function kubectl(args: string[]) {
  const r = await suite.env.kubectl("a", args);
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  // A server-side dry run cannot create the namespace that the namespaced objects go to.
  await kubectl(["apply", "--server-side", "-f", join(manifests, "namespace.yaml")]);
});

describe("manifests", () => {
  it("kubectl apply -k manifests --server-side --dry-run=server is accepted", async () => {
    const out = await kubectl(["apply", "-k", manifests, "--server-side", "--dry-run=server"]);
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
      "poddisruptionbudget.policy/sinker",
      "clusterrole.rbac.authorization.k8s.io/sinker-tenant-edit",
      "clusterrole.rbac.authorization.k8s.io/sinker-tenant-view",
    ]) {
      assert.ok(out.includes(`${want} serverside-applied (server dry run)`), `${want} in:\n${out}`);
    }
  });

  it("the Deployment is hardened and probes the admin port", async () => {
    const out = await kubectl(["kustomize", manifests]);
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
    const namespace = await suite.ns("a", "rbac-manifests");
    await a.apply(configMap(namespace, "source", { k: "v" }));

    const sinker = new Sinker(
      [
        "--kubeconfig",
        suite.env.kubeconfigPath("a"),
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
      { SINKER_LOG: "sinker=info,warn" },
    );
    try {
      await sinker.waitLog(
        "the controller to lead and list ResourceSyncs",
        (r) => r.msg === "initial ResourceSync list received",
        30_000,
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
      // Deleting it exercises the delete rights and records an Event (a first success records none).
      await deleteResourceSyncs(a, [namespace]);
      await waitFor("a TargetDeleted Event on the ResourceSync", async () =>
        (await a.list("v1", "Event", namespace)).some(
          (e) =>
            e.reason === "TargetDeleted" &&
            (e as { involvedObject?: { name?: string } }).involvedObject?.name === "demo",
        ),
      );
      const forbidden = sinker.records.filter((r) => /forbidden/i.test(JSON.stringify(r)));
      assert.deepEqual(forbidden, [], "no forbidden requests");
    } finally {
      const exit = await sinker.terminate();
      assert.equal(exit.code, 0, sinker.stderr);
    }
    assert.ok(
      sinker.hasLog((r) => String(r.msg).includes("released the Lease")),
      "the Lease is released with the Role's rights",
    );
  });
});
