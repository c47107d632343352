/** The Helm chart's static parts that must follow the rest of the repository (rendering is tested in e2e). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { crdYaml } from "../../src/api/crds.ts";
import { API_GROUP, FINALIZER } from "../../src/api/types.ts";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

test("charts/sinker/crds/crds.yaml is the output of sinker manifests (run npm run manifests to refresh it)", () => {
  assert.equal(read("charts/sinker/crds/crds.yaml"), crdYaml(), "stale: run `npm run manifests`");
});

test("the chart's appVersion is the controller's version, and its default image tag follows it", () => {
  const chart = parse(read("charts/sinker/Chart.yaml")) as { appVersion: string };
  const pkg = JSON.parse(read("package.json")) as { version: string };
  assert.equal(chart.appVersion, pkg.version);
  const values = parse(read("charts/sinker/values.yaml")) as { image: { tag: string } };
  assert.equal(values.image.tag, "", "an empty tag means appVersion");
  const kustomization = parse(read("manifests/kustomization.yaml")) as { images: Array<{ newTag: string }> };
  assert.equal(kustomization.images[0]?.newTag, pkg.version);
});

test("manifests/finalizer-policy.yaml adds Sinker's own finalizer to ResourceSyncs on create only, never blocking", () => {
  const [policy, binding] = parseAllDocuments(read("manifests/finalizer-policy.yaml")).map((d) => d.toJS());
  assert.equal(policy.kind, "MutatingAdmissionPolicy");
  assert.equal(binding.kind, "MutatingAdmissionPolicyBinding");
  assert.equal(binding.spec.policyName, policy.metadata.name);
  assert.deepEqual(policy.spec.matchConstraints.resourceRules, [
    { apiGroups: [API_GROUP], apiVersions: ["*"], operations: ["CREATE"], resources: ["resourcesyncs"] },
  ]);
  assert.equal(policy.spec.failurePolicy, "Ignore");
  const expression: string = policy.spec.mutations[0].jsonPatch.expression;
  const named = expression.match(/"[a-z0-9.-]+\/[a-z0-9.-]+"/g) ?? [];
  assert.ok(named.length > 0 && named.every((f) => f === JSON.stringify(FINALIZER)), expression);
});
