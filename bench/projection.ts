/**
 * Micro-benchmark of the projection: prints projections per second for a realistic ConfigMap with 5 mappings, the
 * same 5 as CEL expressions, CEL transforms (string building, base64, regex) beside a JSONPath mapping, with
 * match()/search() mappings, for a clone of a 1 MiB object, and the cost of the source bounds check.
 * `npm run bench:projection`. Figures only, no assertions.
 */
import type { ResourceSync } from "../src/api/types.ts";
import type { KubeObject } from "../src/kube/object.ts";
import { toCelInput } from "../src/projection/cel.ts";
import { project } from "../src/projection/index.ts";
import { checkSourceBounds } from "../src/projection/source-bounds.ts";

function resourceSync(mappings?: ResourceSync["spec"]["mappings"]): ResourceSync {
  return {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ResourceSync",
    metadata: { name: "bench", namespace: "default", uid: "00000000-0000-4000-8000-000000000000" },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "source" } },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "target" } },
      ...(mappings === undefined ? {} : { mappings }),
    },
  };
}

/** A ConfigMap as the API server returns it: managed fields, labels, annotations, a few KiB of data. */
function realisticConfigMap(): KubeObject {
  const data: Record<string, string> = {};
  for (let i = 0; i < 20; i++) data[`key-${i}`] = `value-${i}-${"x".repeat(100)}`;
  data["app.properties"] = Array.from({ length: 40 }, (_, i) => `setting.${i}=${i * 7}`).join("\n");
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "source",
      namespace: "default",
      uid: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
      resourceVersion: "123456",
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels: { "app.kubernetes.io/name": "shop", team: "payments", tier: "backend" },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ data }) },
      managedFields: [
        {
          manager: "kubectl",
          operation: "Apply",
          apiVersion: "v1",
          time: "2026-01-01T00:00:00Z",
          fieldsType: "FieldsV1",
          fieldsV1: { "f:data": {} },
        },
      ],
    },
    data,
  };
}

/** About 1 MiB of JSON: a SinkerContainer-like object with many nested entries. */
function oneMiBObject(): KubeObject {
  const spec: Record<string, unknown> = {};
  let i = 0;
  while (JSON.stringify(spec).length < 1024 * 1024) {
    spec[`item-${i}`] = {
      name: `item-${i}`,
      enabled: i % 2 === 0,
      weight: i,
      tags: ["a", "b", "c"],
      note: "n".repeat(64),
    };
    i++;
  }
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "big", labels: { size: "1MiB" } }, spec };
}

function bench(label: string, run: () => unknown, minMs = 2000): void {
  for (let i = 0; i < 20; i++) run(); // warm-up (JIT, JSONPath cache)
  let n = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    run();
    n++;
    elapsed = performance.now() - started;
  }
  const perSecond = (n * 1000) / elapsed;
  process.stdout.write(
    `${label.padEnd(52)} ${perSecond.toFixed(0).padStart(9)} projections/s  (${((elapsed * 1000) / n).toFixed(1)} µs each, ${n} runs)\n`,
  );
}

const cm = realisticConfigMap();
const fiveMappings = resourceSync([
  { fromFieldPath: "data.key-1", toFieldPath: "data.first" },
  { fromFieldPath: "$.data['app.properties']", toFieldPath: "data.app\\.properties" },
  { fromFieldPath: "metadata.labels", toFieldPath: "metadata.labels" },
  { fromFieldPath: "metadata.labels.team", toFieldPath: "metadata.annotations.team" },
  { fromFieldPath: "data.missing", toFieldPath: "data.optional" },
]);
const target = { namespace: "default", ownerReference: true };

const big = oneMiBObject();
/** A new top-level object (so the check's identity cache misses) sharing the 1 MiB object's contents. */
function shallowCopyOfBig(): unknown {
  return { ...big };
}
process.stdout.write(`node ${process.version}; 1 MiB object: ${JSON.stringify(big).length} bytes of JSON\n`);
bench("ConfigMap, 5 mappings", () => project({ resourceSync: fiveMappings, source: cm, target }));
bench("ConfigMap, clone", () => project({ resourceSync: resourceSync(), source: cm, target }));
bench("1 MiB object, clone", () => project({ resourceSync: resourceSync(), source: big, target }));
const withRegex = resourceSync([
  { fromFieldPath: "$.metadata.labels[?match(@, 'pay[a-z]+')]", toFieldPath: "data.team" },
  { fromFieldPath: "$.data[?search(@, 'setting[.]3[0-9]=')]", toFieldPath: "data.setting" },
]);
bench("ConfigMap, match() + search() mappings", () =>
  project({ resourceSync: withRegex, source: cm, target }),
);
const fiveExpressions = resourceSync([
  { expression: "object.data['key-1']", toFieldPath: "data.first" },
  { expression: "object.data['app.properties']", toFieldPath: "data.app\\.properties" },
  { expression: "object.metadata.labels", toFieldPath: "metadata.labels" },
  { expression: "object.metadata.labels.team", toFieldPath: "metadata.annotations.team" },
  { expression: "has(object.data.missing) ? object.data.missing : null", toFieldPath: "data.optional" },
]);
bench("ConfigMap, the same 5 mappings as CEL expressions", () =>
  project({ resourceSync: fiveExpressions, source: cm, target }),
);
const oneJsonPath = resourceSync([{ fromFieldPath: "metadata.labels.team", toFieldPath: "data.team" }]);
bench("ConfigMap, 1 JSONPath mapping", () => project({ resourceSync: oneJsonPath, source: cm, target }));
const transforms: [string, string][] = [
  ["constant", "'kubernetes.io/tls'"],
  [
    "string building",
    "object.metadata.labels.team + '-' + object.metadata.name + '.' + resourceSync.metadata.namespace",
  ],
  ["base64 out", "base64.encode(bytes(object.data['key-1']))"],
  ["regex pick", "object.data['app.properties'].find('setting[.]3[0-9]=[0-9]+')"],
  ["format", "'%s/%s:%d'.format([object.metadata.namespace, object.metadata.name, size(object.data)])"],
];
for (const [name, expression] of transforms) {
  const rs = resourceSync([{ expression, toFieldPath: "data.out" }]);
  bench(`ConfigMap, 1 CEL transform: ${name}`, () => project({ resourceSync: rs, source: cm, target }));
}
// CEL reads the source converted once per source object version (cached by identity); this is that once.
bench("CEL input conversion of the ConfigMap (once per version)", () => toCelInput({ ...cm }));
// The bounds check runs once per source object version (cached by identity); this is that once, on 1 MiB.
bench("source bounds check of a 1 MiB object (once per version)", () =>
  checkSourceBounds(shallowCopyOfBig()),
);
