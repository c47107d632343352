import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { run } from "@bufbuild/cel";
import { parseAllDocuments } from "yaml";
import { crdObjects, crdYaml } from "../../src/api/crds.ts";
import { mappingSchema, resourceSyncSpecSchema, type Schema } from "../../src/api/schema.ts";
import { validateValue } from "../../src/api/validate.ts";

// biome-ignore lint/suspicious/noExplicitAny: the tests walk untyped CRD JSON
type J = any;

test("manifests/crds.yaml is the output of sinker manifests (run npm run manifests to refresh it)", () => {
  const file = readFileSync(new URL("../../manifests/crds.yaml", import.meta.url), "utf8");
  assert.equal(file, crdYaml(), "manifests/crds.yaml is stale: run `npm run manifests`");
});

test("crdYaml: ResourceSync, SinkerContainer, then the fan-out kinds; v1alpha1 served+storage", () => {
  const docs = parseAllDocuments(crdYaml()).map((d) => d.toJS() as J);
  assert.deepEqual(docs, crdObjects() as J[]);
  assert.deepEqual(
    docs.map((d) => [d.metadata.name, d.spec.scope]),
    [
      ["resourcesyncs.sinker.influxdata.io", "Namespaced"],
      ["sinkercontainers.sinker.influxdata.io", "Namespaced"],
      ["resourcesyncsets.sinker.influxdata.io", "Namespaced"],
      ["clusterresourcesyncsets.sinker.influxdata.io", "Cluster"],
    ],
  );
  for (const d of docs) {
    assert.equal(d.apiVersion, "apiextensions.k8s.io/v1");
    assert.equal(d.spec.group, "sinker.influxdata.io");
    assert.equal(d.spec.versions.length, 1);
    const [v] = d.spec.versions;
    assert.deepEqual([v.name, v.served, v.storage], ["v1alpha1", true, true]);
    assert.deepEqual(v.schema.openAPIV3Schema.required, ["spec"]);
  }
});

test("set CRDs: short names, status subresource, Desired/Synced/Failing printer columns", () => {
  const [, , set, clusterSet] = crdObjects() as J[];
  assert.deepEqual(set.spec.names.shortNames, ["rsyncset"]);
  assert.deepEqual(clusterSet.spec.names.shortNames, ["crsyncset"]);
  for (const crd of [set, clusterSet]) {
    const [v] = crd.spec.versions;
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(
      v.additionalPrinterColumns.map((c: { name: string }) => c.name),
      ["Source", "Desired", "Synced", "Failing", "Ready", "Age"],
    );
  }
});

test("ResourceSync CRD: short name, status subresource, printer columns, CEL rule", () => {
  const [rs] = crdObjects() as J[];
  assert.deepEqual(rs.spec.names.shortNames, ["rsync"]);
  const [v] = rs.spec.versions;
  assert.deepEqual(v.subresources, { status: {} });
  assert.deepEqual(
    v.additionalPrinterColumns.map((c: { name: string }) => c.name),
    ["Source Kind", "Source Name", "Target Kind", "Target Name", "Ready", "Age"],
  );
  const spec = v.schema.openAPIV3Schema.properties.spec;
  assert.deepEqual(spec.properties.mappings.items["x-kubernetes-validations"], [
    {
      rule: "has(self.fromFieldPath) || has(self.toFieldPath)",
      message: "a mapping must set fromFieldPath, toFieldPath or both",
    },
    {
      rule: "!has(self.expression) || !has(self.fromFieldPath)",
      message: "a mapping sets fromFieldPath or expression, not both",
    },
    {
      rule: "!has(self.expression) || has(self.toFieldPath)",
      message: "a mapping with an expression must set toFieldPath",
    },
  ]);
  assert.equal(spec.properties.source.properties.resourceRef.properties.name.minLength, 1);
});

test("SinkerContainer CRD: spec required, preserving unknown fields", () => {
  const [, sc] = crdObjects() as J[];
  const schema = sc.spec.versions[0].schema.openAPIV3Schema;
  assert.deepEqual(schema.required, ["spec"]);
  assert.equal(schema.properties.spec.type, "object");
  assert.equal(schema.properties.spec["x-kubernetes-preserve-unknown-fields"], true);
});

test("every schema node has a description (kubectl explain)", () => {
  const missing: string[] = [];
  const walk = (node: J, path: string): void => {
    if (typeof node.description !== "string" || node.description.length < 10) missing.push(path);
    for (const [name, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${name}`);
    if (node.items) walk(node.items, `${path}[]`);
  };
  for (const crd of crdObjects() as J[]) {
    const root = crd.spec.versions[0].schema.openAPIV3Schema;
    for (const name of ["spec", "status"])
      if (root.properties[name]) walk(root.properties[name], `${crd.spec.names.kind}.${name}`);
  }
  assert.deepEqual(missing, []);
});

test("each CEL rule's TypeScript twin agrees with the rule on representative values", () => {
  // The rules test presence (has), whatever the value; each is run through a CEL engine and its twin.
  const rules = mappingSchema.validations ?? [];
  assert.equal(rules.length, 3);
  const values: Record<string, unknown>[] = [
    {},
    { fromFieldPath: "" },
    { toFieldPath: "a" },
    { fromFieldPath: "a", toFieldPath: "b" },
    { expression: "1", toFieldPath: "a" },
    { expression: "1" },
    { expression: "1", fromFieldPath: "a", toFieldPath: "b" },
  ];
  const want = [
    [false, true, true, true, true, false, true],
    [true, true, true, true, true, true, false],
    [true, true, true, true, true, false, true],
  ];
  rules.forEach((rule, i) => {
    values.forEach((value, j) => {
      const cel = run(rule.rule, { self: new Map(Object.entries(value) as [string, string][]) });
      assert.equal(cel, want[i]?.[j], `${rule.rule} on ${JSON.stringify(value)}`);
      assert.equal(rule.holds(value), cel, `twin of ${rule.rule} on ${JSON.stringify(value)}`);
    });
  });
});

test("the validator interprets the same schema the CRD is generated from", () => {
  const errors: { path: string; message: string }[] = [];
  validateValue(
    { source: {}, target: { resourceRef: { apiVersion: "", kind: "K", name: "n" } } },
    resourceSyncSpecSchema,
    "spec",
    errors,
  );
  assert.deepEqual(errors, [
    { path: "spec.source.resourceRef", message: "required" },
    { path: "spec.target.resourceRef.apiVersion", message: "must not be empty" },
  ]);
  const toFieldPath = mappingSchema.properties?.toFieldPath as Schema;
  assert.ok(toFieldPath.pattern);
  const pattern = new RegExp(toFieldPath.pattern, "u");
  for (const ok of ["data", "data.foo", "metadata.annotations.team", "data.app\\.properties", "a\\\\.b"])
    assert.ok(pattern.test(ok), ok);
  for (const bad of ["", ".a", "a.", "a..b", "a\\b", "a\\"]) assert.ok(!pattern.test(bad), bad);
});
