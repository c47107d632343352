/**
 * Metadata hygiene and policy (docs/spec/resourcesync.md#labels-and-annotations-of-the-target) against the real
 * control plane: a clone does not carry the tracking metadata of Argo CD, Flux or Helm into its copy (same cluster
 * and remote), the policy fields of spec.target (and of a set's target) include, exclude and add keys, keys Sinker
 * stops applying are removed from the target by server-side apply (and keys of other managers stay), and `sinker
 * render` / `sinker diff` show the same projection.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FIELD_MANAGER } from "../../src/api/types.ts";
import { repoRoot, waitFor } from "../controlplane/testenv.ts";
import {
  clusterRef,
  cmRef,
  configMap,
  kubeconfigSecret,
  type Obj,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";
import { runCommand } from "./support/tools.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;
const cm = cmRef;

/** What Argo CD, Flux and Helm put on the objects they deploy. */
const TOOL_LABELS = {
  "argocd.argoproj.io/instance": "shop",
  "kustomize.toolkit.fluxcd.io/name": "apps",
  "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
  "helm.toolkit.fluxcd.io/name": "shop",
  "helm.toolkit.fluxcd.io/namespace": "flux-system",
  "app.kubernetes.io/managed-by": "Helm",
};
const TOOL_ANNOTATIONS = {
  "argocd.argoproj.io/tracking-id": "shop:/ConfigMap:ns/settings",
  "meta.helm.sh/release-name": "shop",
  "meta.helm.sh/release-namespace": "shop",
  "kubectl.kubernetes.io/last-applied-configuration": "{}",
};
const OWN_LABELS = { app: "shop", "example.com/team": "payments", "example.com/tier": "gold" };
const OWN_ANNOTATIONS = { note: "hello", "argocd.argoproj.io/sync-options": "Prune=false" };

function source(n: string, name = "settings") {
  return configMap(
    n,
    name,
    { k: "v" },
    { labels: { ...OWN_LABELS, ...TOOL_LABELS }, annotations: { ...OWN_ANNOTATIONS, ...TOOL_ANNOTATIONS } },
  );
}

const labelsOf = (o: Obj | undefined) => o?.metadata?.labels ?? {};
const annotationsOf = (o: Obj | undefined) => o?.metadata?.annotations ?? {};

describe("tool-tracking metadata", () => {
  it("is not copied by a clone, in the same cluster and into cluster b; other labels and annotations are", async () => {
    const n = await suite.ns("a", "meta-clone");
    const nb = await suite.ns("b", "meta-clone");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(source(n));
    await a.apply(resourceSync(n, "local", { source: cm("settings"), target: cm("copy") }));
    await a.apply(
      resourceSync(n, "remote", {
        source: cm("settings"),
        target: { ...cm("copy"), cluster: clusterRef(nb) },
      }),
    );
    await waitReady(a, n, "local", "True");
    await waitReady(a, n, "remote", "True");
    for (const copy of [
      await a.get("v1", "ConfigMap", n, "copy"),
      await b.get("v1", "ConfigMap", nb, "copy"),
    ]) {
      assert.deepEqual(labelsOf(copy), OWN_LABELS);
      assert.deepEqual(annotationsOf(copy), OWN_ANNOTATIONS);
      assert.deepEqual(copy?.data, { k: "v" });
    }
  });

  it("a label Sinker applied before (an older version) is removed from the target; another manager's stays", async () => {
    const n = await suite.ns("a", "meta-upgrade");
    await a.apply(source(n));
    // the target as an older Sinker (or the Rust controller) left it: the tracking label applied by Sinker's
    // field manager; a label of another field manager beside it
    await a.apply(
      configMap(n, "copy", { k: "v" }, { labels: { ...OWN_LABELS, ...TOOL_LABELS } }),
      FIELD_MANAGER,
    );
    await a.mergePatch("v1", "ConfigMap", n, "copy", { metadata: { labels: { "someone-else": "x" } } });
    await a.apply(resourceSync(n, "rs", { source: cm("settings"), target: cm("copy") }));
    await waitReady(a, n, "rs", "True");
    const copy = await a.waitFor("tracking labels removed", "v1", "ConfigMap", n, "copy", (o) =>
      Object.keys(labelsOf(o)).some((k) => k in TOOL_LABELS) ? undefined : o,
    );
    assert.deepEqual(labelsOf(copy), { ...OWN_LABELS, "someone-else": "x" });
  });
});

describe("the policy in spec.target", () => {
  it("includes, excludes and adds keys; a key no longer applied is removed from the target", async () => {
    const n = await suite.ns("a", "meta-policy");
    await a.apply(source(n));
    const target = {
      ...cm("copy"),
      labels: {
        include: ["app", "example.com/*"],
        exclude: ["example.com/tier"],
        add: { copied: "by-sinker" },
      },
      annotations: {
        include: ["argocd.argoproj.io/tracking-id"],
        add: { "argocd.argoproj.io/compare-options": "IgnoreExtraneous" },
      },
    };
    await a.apply(resourceSync(n, "rs", { source: cm("settings"), target }));
    await waitReady(a, n, "rs", "True");
    const copy = await a.get("v1", "ConfigMap", n, "copy");
    assert.deepEqual(labelsOf(copy), { app: "shop", "example.com/team": "payments", copied: "by-sinker" });
    assert.deepEqual(annotationsOf(copy), {
      "argocd.argoproj.io/tracking-id": TOOL_ANNOTATIONS["argocd.argoproj.io/tracking-id"],
      "argocd.argoproj.io/compare-options": "IgnoreExtraneous",
    });
    // narrowed: what Sinker no longer applies goes (server-side apply removes fields its manager stopped applying)
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("settings"),
        target: { ...cm("copy"), labels: { exclude: ["*"] } },
      }),
    );
    const narrowed = await a.waitFor("labels removed", "v1", "ConfigMap", n, "copy", (o) =>
      Object.keys(labelsOf(o)).length === 0 ? o : undefined,
    );
    assert.deepEqual(annotationsOf(narrowed), OWN_ANNOTATIONS);
  });

  it("applies to mappings too: a mapping of metadata.labels copies what the policy lets through", async () => {
    const n = await suite.ns("a", "meta-mapping");
    await a.apply(source(n));
    await a.apply(
      resourceSync(n, "rs", {
        source: cm("settings"),
        target: { ...cm("copy"), labels: { exclude: ["example.com/*"] } },
        mappings: [{ fromFieldPath: "metadata.labels", toFieldPath: "metadata.labels" }],
      }),
    );
    await waitReady(a, n, "rs", "True");
    const copy = await a.get("v1", "ConfigMap", n, "copy");
    assert.deepEqual(labelsOf(copy), { app: "shop" });
    assert.deepEqual(annotationsOf(copy), {});
    assert.equal(copy?.data, undefined);
  });

  it("is refused at apply time when a key is not a valid label key", async () => {
    const n = await suite.ns("a", "meta-invalid");
    const bad = resourceSync(n, "rs", {
      source: cm("settings"),
      target: { ...cm("copy"), labels: { add: { "not a key": "v" }, include: ["a/b/c"] } },
    });
    await assert.rejects(a.apply(bad), /valid label\/annotation key|spec\.target\.labels/);
  });

  it("a ClusterResourceSyncSet's target policy reaches every copy", async () => {
    const src = await suite.ns("a", "meta-set-src");
    const dst = await suite.ns("a", "meta-set-dst");
    await a.apply(source(src));
    const name = `${src}-set`;
    suite.trackClusterSet(name);
    await a.apply({
      apiVersion: RS_API,
      kind: "ClusterResourceSyncSet",
      metadata: { name },
      spec: {
        source: { ...cm("settings"), namespace: src },
        target: { ...cm("copy"), labels: { exclude: ["example.com/*"], add: { fanned: "out" } } },
        namespaceSelector: { include: [dst] },
      },
    });
    const copy = await a.waitFor("the set's copy", "v1", "ConfigMap", dst, "copy", (o) => o, 60_000);
    assert.deepEqual(labelsOf(copy), { app: "shop", fanned: "out" });
    assert.deepEqual(annotationsOf(copy), OWN_ANNOTATIONS);
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, name);
    await a.waitGone("v1", "ConfigMap", dst, "copy", 60_000);
  });
});

describe("render and diff", () => {
  const sinker = (args: string[]) =>
    runCommand(process.execPath, [join(repoRoot, "bin", "sinker.js"), ...args], {
      env: { PATH: process.env.PATH, HOME: repoRoot },
    });

  it("sinker render shows the policy's result", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sinker-meta-"));
    const rsFile = join(dir, "rs.json");
    const srcFile = join(dir, "src.json");
    writeFileSync(
      rsFile,
      JSON.stringify(
        resourceSync("default", "rs", {
          source: cm("settings"),
          target: { ...cm("copy"), labels: { exclude: ["example.com/tier"], add: { copied: "yes" } } },
        }),
      ),
    );
    writeFileSync(srcFile, JSON.stringify(source("default")));
    const r = await sinker(["render", "--resource-sync", rsFile, "--source", srcFile, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Obj;
    assert.deepEqual(labelsOf(out), { app: "shop", "example.com/team": "payments", copied: "yes" });
    assert.deepEqual(annotationsOf(out), OWN_ANNOTATIONS);
  });

  it("sinker diff shows the tracking labels an older version applied being removed", async () => {
    const n = await suite.ns("a", "meta-diff");
    await a.apply(source(n));
    await a.apply(
      configMap(n, "copy", { k: "v" }, { labels: { ...OWN_LABELS, ...TOOL_LABELS } }),
      FIELD_MANAGER,
    );
    // the controller must not sync it before the diff: a ResourceSync of another name would; stop it first
    await suite.controller.stop();
    await a.apply(resourceSync(n, "rs", { source: cm("settings"), target: cm("copy") }));
    const r = await sinker(["diff", "--kubeconfig", suite.env.kubeconfigPath("a"), "-n", n, "rs"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^- {4}argocd\.argoproj\.io\/instance: shop$/m);
    assert.match(r.stdout, /^- {4}app\.kubernetes\.io\/managed-by: Helm$/m);
    assert.doesNotMatch(r.stdout, /^[-+] {4}app: shop$/m, "a label kept is no change");
    await suite.startController();
    await waitReady(a, n, "rs", "True");
    await waitFor("diff empty after the sync", async () => {
      const again = await sinker(["diff", "--kubeconfig", suite.env.kubeconfigPath("a"), "-n", n, "rs"]);
      return again.code === 0;
    });
  });
});
