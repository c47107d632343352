// The node tier's install helpers: the test overlay of manifests/ and finding the leader among the pods.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { repoRoot, type TestEnv, waitFor } from "../controlplane/testenv.ts";
import { getInNode, isReady, type Json, leaseHolder, metric, pods } from "./support.ts";

function deploymentImageName(): string {
  const docs = parseAllDocuments(readFileSync(join(repoRoot, "manifests", "deployment.yaml"), "utf8"));
  const image = String(docs[0]?.toJS().spec.template.spec.containers[0].image);
  return image.replace(/:[^:/]+$/, "");
}

/** The test overlay: the locally built image, host network, the API server's loopback address, and a token that
 * lives the shortest time the API allows (10 minutes) so the kubelet rotates it while the test watches. */
export function writeOverlay(env: TestEnv, dir: string, tag: string): void {
  mkdirSync(dir, { recursive: true });
  const port = String(env.state.clusters.a.port);
  const deployment = [
    { op: "add", path: "/spec/template/spec/hostNetwork", value: true },
    { op: "add", path: "/spec/template/spec/automountServiceAccountToken", value: false },
    {
      op: "add",
      path: "/spec/template/spec/volumes/-",
      value: {
        name: "service-account",
        projected: {
          defaultMode: 420,
          sources: [
            { serviceAccountToken: { path: "token", expirationSeconds: 600 } },
            { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
            {
              downwardAPI: { items: [{ path: "namespace", fieldRef: { fieldPath: "metadata.namespace" } }] },
            },
          ],
        },
      },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/volumeMounts/-",
      value: {
        name: "service-account",
        mountPath: "/var/run/secrets/kubernetes.io/serviceaccount",
        readOnly: true,
      },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/env/-",
      value: { name: "KUBERNETES_SERVICE_HOST", value: "127.0.0.1" },
    },
    {
      op: "add",
      path: "/spec/template/spec/containers/0/env/-",
      value: { name: "KUBERNETES_SERVICE_PORT", value: port },
    },
  ];
  const [name, newTag] = tag.split(":");
  const kustomization = {
    apiVersion: "kustomize.config.k8s.io/v1beta1",
    kind: "Kustomization",
    resources: [relative(dir, join(repoRoot, "manifests"))],
    images: [{ name: deploymentImageName(), newName: name, newTag }],
    patches: [
      // Host-network pods are not "restricted"; a separate test shows the shipped pod template is.
      {
        target: { kind: "Namespace", name: "sinker" },
        patch: JSON.stringify([
          {
            op: "replace",
            path: "/metadata/labels/pod-security.kubernetes.io~1enforce",
            value: "privileged",
          },
        ]),
      },
      { target: { kind: "Deployment", name: "sinker" }, patch: JSON.stringify(deployment) },
    ],
  };
  writeFileSync(join(dir, "kustomization.yaml"), JSON.stringify(kustomization, null, 2));
}

/** The pod a Lease holder identity names: "<pod name>_<random suffix>". */
export function podOfHolder(candidates: Json[], holder: string): Json | undefined {
  return candidates.find((p) => holder.startsWith(`${p.metadata.name}_`));
}

export async function leaderPod(
  env: TestEnv,
  namespace: string,
): Promise<{ leader: Json; standby: Json; holder: string }> {
  return waitFor(
    `one leader among the pods of ${namespace}`,
    async () => {
      const holder = await leaseHolder(env, namespace);
      if (!holder) return undefined;
      const ready = (await pods(env, namespace)).filter(isReady);
      if (ready.length !== 2) return undefined;
      const flags = await Promise.all(
        ready.map(async (p) => metric((await getInNode(env, p, "/metrics")).body, "sinker_leader")),
      );
      if (flags.filter((f) => f === 1).length !== 1 || flags.filter((f) => f === 0).length !== 1)
        return undefined;
      const i = flags.indexOf(1);
      // The identity starts with the pod's name (POD_NAME from the downward API): the Lease names the leader.
      if (podOfHolder(ready, holder) !== ready[i]) return undefined;
      return { leader: ready[i], standby: ready[1 - i], holder };
    },
    { timeoutMs: 90_000, intervalMs: 500 },
  );
}
