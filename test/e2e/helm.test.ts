/**
 * The Helm chart (charts/sinker), with helm built from test/tools: lint, the same objects as manifests/, every
 * value rendered where it belongs, the rendering accepted by a server-side dry run, and a real install, upgrade
 * and uninstall on cluster a. The controller's pods never run there (no nodes): the objects are checked.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments, stringify } from "yaml";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";
import { useSuite } from "./support/suite.ts";
import { cleanUpTools, tool } from "./support/tools.ts";

const chart = join(repoRoot, "charts", "sinker");
const manifests = join(repoRoot, "manifests");
/** The version helm assumes for `helm template` (it asks no cluster): the testenv's minor. */
const KUBE_VERSION = "1.36.0";

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are walked untyped
type J = any;

const suite = useSuite();
let scratch: string;

function docs(yamlText: string): J[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as J)
    .filter((d) => d !== null && d !== undefined);
}

async function helm(args: string[], input?: string): Promise<string> {
  const r = await tool("helm", args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `helm ${args.join(" ")}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function template(release: string, namespace: string, extra: string[] = []): Promise<J[]> {
  return docs(
    await helm(["template", release, chart, "-n", namespace, "--kube-version", KUBE_VERSION, ...extra]),
  );
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await suite.env.kubectl("a", args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `kubectl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function valuesFile(values: unknown): string {
  const file = join(scratch, `values-${randomBytes(4).toString("hex")}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

const find = (objs: J[], kind: string, name?: string): J =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

/** Labels only Helm adds (release identity and bookkeeping); everything else must be equal. */
const HELM_LABELS = [
  "app.kubernetes.io/instance",
  "app.kubernetes.io/version",
  "app.kubernetes.io/managed-by",
  "helm.sh/chart",
];

function withoutHelmLabels(value: J): J {
  if (Array.isArray(value)) return value.map(withoutHelmLabels);
  if (value === null || typeof value !== "object") return value;
  const out: J = {};
  for (const [k, v] of Object.entries(value)) if (!HELM_LABELS.includes(k)) out[k] = withoutHelmLabels(v);
  return out;
}

const key = (o: J) => `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), "sinker-helm-test-"));
});

after(async () => {
  // a failed install test must not leave its cluster-wide finalizer policy to the test files that follow
  await suite.env.kubectl("a", [
    "delete",
    "mutatingadmissionpolicies,mutatingadmissionpolicybindings",
    "-l",
    "app.kubernetes.io/name=sinker",
    "--ignore-not-found",
  ]);
  rmSync(scratch, { recursive: true, force: true });
  cleanUpTools();
});

describe("helm chart", () => {
  it("passes helm lint --strict, with the defaults and with every optional part on", async () => {
    await helm(["lint", "--strict", chart]);
    const all = valuesFile({
      serviceMonitor: { enabled: true, labels: { release: "prometheus" } },
      extraKinds: [{ apiGroups: ["apps"], resources: ["deployments"] }],
      allowClusterScoped: true,
      allowUnsafeKubeconfigs: true,
    });
    await helm(["lint", "--strict", chart, "-f", all]);
  });

  it("renders the same objects as manifests/ (but the Namespace, which `helm install --create-namespace` makes)", async () => {
    const fromChart = (await template("sinker", "sinker", ["--include-crds"])).map(withoutHelmLabels);
    const fromKustomize = docs(await kubectl(["kustomize", manifests])).filter((o) => o.kind !== "Namespace");
    assert.deepEqual(fromChart.map(key).sort(), fromKustomize.map(key).sort());
    const byKey = new Map(fromKustomize.map((o) => [key(o), o]));
    for (const o of fromChart) assert.deepEqual(o, byKey.get(key(o)), `${key(o)} differs`);
  });

  it("renders the finalizer policy of manifests/finalizer-policy.yaml only where the cluster serves the API", async () => {
    const api = ["--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"];
    const policyKinds = (objs: J[]) =>
      objs.filter((o) => String(o.kind).startsWith("MutatingAdmissionPolicy"));
    assert.deepEqual(policyKinds(await template("sinker", "sinker")), [], "not on a cluster without the API");
    const fromChart = policyKinds(await template("sinker", "sinker", api)).map(withoutHelmLabels);
    const fromFile = docs(readFileSync(join(manifests, "finalizer-policy.yaml"), "utf8"));
    assert.deepEqual(fromChart, fromFile);
    const off = valuesFile({ finalizerPolicy: { enabled: false } });
    assert.deepEqual(policyKinds(await template("sinker", "sinker", [...api, "-f", off])), []);
  });

  it("puts every value where it belongs", async () => {
    const values = valuesFile({
      image: { repository: "registry.example/sinker", tag: "1.2.3", pullPolicy: "Always" },
      imagePullSecrets: [{ name: "pull" }],
      replicaCount: 3,
      leaderElection: { enabled: false },
      logLevel: "sinker=debug,info",
      logFormat: "plain",
      allowClusterScoped: true,
      allowUnsafeKubeconfigs: true,
      extraArgs: ["--concurrency=16"],
      extraKinds: [{ apiGroups: ["apps"], resources: ["deployments", "statefulsets"] }],
      tenantRoles: { enabled: false },
      resources: { requests: { cpu: "1" } },
      podAnnotations: { a: "b" },
      podLabels: { team: "platform" },
      nodeSelector: { "kubernetes.io/os": "linux" },
      tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }],
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [] } },
      },
      podSecurityContext: { runAsNonRoot: true, runAsUser: 2000 },
      securityContext: { runAsUser: 3000 },
      podDisruptionBudget: { enabled: false },
      serviceMonitor: { enabled: true, interval: "15s", labels: { release: "prom" } },
      serviceAccount: { annotations: { "example.com/role": "sinker" } },
    });
    const objs = await template("my-sinker", "ops", ["-f", values]);
    const dep = find(objs, "Deployment");
    const pod = dep.spec.template;
    const c = pod.spec.containers[0];
    assert.equal(dep.metadata.name, "my-sinker");
    assert.equal(dep.spec.replicas, 3);
    assert.equal(c.image, "registry.example/sinker:1.2.3");
    assert.equal(c.imagePullPolicy, "Always");
    assert.deepEqual(pod.spec.imagePullSecrets, [{ name: "pull" }]);
    assert.deepEqual(c.args, [
      "--log-format=plain",
      "--admin-addr=0.0.0.0:8080",
      "--allow-cluster-scoped",
      "--allow-unsafe-kubeconfigs",
      "--concurrency=16",
    ]);
    assert.deepEqual(
      c.env.find((e: { name: string }) => e.name === "SINKER_LOG"),
      { name: "SINKER_LOG", value: "sinker=debug,info" },
    );
    assert.deepEqual(
      c.env.find((e: { name: string }) => e.name === "POD_NAME"),
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      "the pod's name for the leader-election identity",
    );
    assert.deepEqual(c.resources, { requests: { cpu: "1", memory: "128Mi" }, limits: { memory: "512Mi" } }); // merged
    assert.deepEqual(pod.metadata.annotations, { a: "b" });
    assert.equal(pod.metadata.labels.team, "platform");
    assert.deepEqual(pod.spec.nodeSelector, { "kubernetes.io/os": "linux" });
    assert.equal(pod.spec.tolerations[0].key, "dedicated");
    assert.ok(pod.spec.affinity.nodeAffinity);
    assert.equal(pod.spec.securityContext.runAsUser, 2000);
    assert.equal(c.securityContext.runAsUser, 3000);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, "defaults kept");
    const role = find(objs, "ClusterRole", "my-sinker");
    assert.deepEqual(role.rules.at(-1), {
      apiGroups: ["apps"],
      resources: ["deployments", "statefulsets"],
      verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
    });
    assert.equal(find(objs, "ClusterRoleBinding").subjects[0].namespace, "ops");
    assert.equal(find(objs, "Role"), undefined, "no leader-election Role without leader election");
    assert.equal(find(objs, "ClusterRole", "my-sinker-tenant-edit"), undefined);
    assert.equal(find(objs, "PodDisruptionBudget"), undefined);
    assert.deepEqual(find(objs, "ServiceAccount").metadata.annotations, { "example.com/role": "sinker" });
    const sm = find(objs, "ServiceMonitor");
    assert.equal(sm.metadata.labels.release, "prom");
    assert.deepEqual(sm.spec.endpoints[0], {
      port: "admin",
      path: "/metrics",
      interval: "15s",
      scrapeTimeout: "10s",
    });
    assert.deepEqual(sm.spec.selector.matchLabels, find(objs, "Service").spec.selector);
  });

  it("helm template is accepted by the API server in a server-side dry run", async () => {
    const namespace = await suite.ns("a", "helm-dry-run");
    const release = `sinker-${randomBytes(3).toString("hex")}`;
    const extra = valuesFile({
      extraKinds: [{ apiGroups: ["apps"], resources: ["deployments"] }],
      allowClusterScoped: true,
    });
    for (const args of [["--include-crds"], ["-f", extra]]) {
      const rendered = await helm([
        "template",
        release,
        chart,
        "-n",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        ...args,
      ]);
      const out = await kubectl(
        ["apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-"],
        rendered,
      );
      for (const o of docs(rendered)) {
        assert.match(
          out,
          new RegExp(`/${o.metadata.name} serverside-applied \\(server dry run\\)`),
          `${key(o)} in:\n${out}`,
        );
      }
    }
  });

  it("helm install, upgrade and uninstall on a real cluster", async () => {
    const namespace = await suite.ns("a", "helm-install");
    const release = `sinker-${randomBytes(3).toString("hex")}`;
    const kc = ["--kubeconfig", suite.env.kubeconfigPath("a"), "-n", namespace];
    const get = async (kind: string, name: string, ns?: string): Promise<J> => {
      const r = await suite.env.kubectl("a", ["get", kind, name, "-o", "json", ...(ns ? ["-n", ns] : [])]);
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    };

    await helm(["install", release, chart, ...kc]);
    const dep = await get("deployment", release, namespace);
    assert.equal(dep.spec.replicas, 2);
    assert.equal(dep.metadata.labels["app.kubernetes.io/managed-by"], "Helm");
    for (const [kind, name] of [
      ["serviceaccount", release],
      ["service", `${release}-admin`],
      ["poddisruptionbudget", release],
      ["role", `${release}-leader-election`],
      ["rolebinding", `${release}-leader-election`],
    ]) {
      assert.ok(await get(String(kind), String(name), namespace), `${kind} ${name} installed`);
    }
    for (const name of [release, `${release}-tenant-edit`, `${release}-tenant-view`]) {
      assert.ok(await get("clusterrole", name), `clusterrole ${name} installed`);
    }
    assert.ok(await get("clusterrolebinding", release));
    // the cluster serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (1.36): the policy is installed
    const policy = `${release}-resourcesync-finalizer`;
    assert.ok(await get("mutatingadmissionpolicy", policy), "finalizer policy installed");
    assert.ok(await get("mutatingadmissionpolicybinding", policy), "finalizer policy binding installed");
    assert.match(await helm(["status", release, ...kc]), /STATUS: deployed/);

    const upgrade = valuesFile({
      replicaCount: 3,
      extraKinds: [{ apiGroups: ["apps"], resources: ["deployments"] }],
    });
    await helm(["upgrade", release, chart, ...kc, "-f", upgrade]);
    assert.equal((await get("deployment", release, namespace)).spec.replicas, 3);
    const role = await get("clusterrole", release);
    assert.deepEqual(role.rules.at(-1).resources, ["deployments"]);
    assert.match(await helm(["history", release, ...kc]), /\n2\s.*deployed/);

    await helm(["uninstall", release, ...kc]);
    await waitFor("the release's objects to be gone", async () => {
      for (const [kind, name, ns] of [
        ["deployment", release, namespace],
        ["service", `${release}-admin`, namespace],
        ["clusterrole", release],
        ["clusterrole", `${release}-tenant-edit`],
        ["clusterrolebinding", release],
        ["mutatingadmissionpolicy", `${release}-resourcesync-finalizer`],
        ["mutatingadmissionpolicybinding", `${release}-resourcesync-finalizer`],
      ]) {
        if (await get(String(kind), String(name), ns)) return false;
      }
      return true;
    });
    assert.ok(await get("crd", "resourcesyncs.sinker.influxdata.io"), "Helm never deletes CRDs");
  });
});
