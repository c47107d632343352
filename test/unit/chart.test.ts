/** The Helm chart's static parts that must follow the rest of the repository (rendering is tested in e2e). */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";
import { crdYaml } from "../../src/api/crds.ts";

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
