/**
 * The generated CRDs as a real kube-apiserver serves them: bad ResourceSyncs refused at apply time with the
 * schema's messages, the validator agreeing with the server, `kubectl explain`, printer columns, short name.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { validateResourceSync } from "../../src/api/validate.ts";
import { RS_API } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
let ns: string;

before(async () => {
  ns = await suite.ns("b", "crd");
});

const ref = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: "ConfigMap", name } });

function rs(name: string, spec: unknown) {
  return { apiVersion: RS_API, kind: "ResourceSync", metadata: { name, namespace: ns }, spec };
}

async function dryRunCreate(obj: unknown): Promise<{ status: number; message: string }> {
  const r = await suite.env.request(
    "b",
    "POST",
    `/apis/${RS_API}/namespaces/${ns}/resourcesyncs?dryRun=All`,
    obj,
  );
  return { status: r.status, message: String(r.body?.message ?? "") };
}

describe("ResourceSync CRD on a real API server", () => {
  const cases: Array<{ name: string; spec: unknown; message?: RegExp }> = [
    { name: "valid", spec: { source: ref("a"), target: ref("b"), mappings: [{ fromFieldPath: "data.x" }] } },
    {
      name: "mapping-without-fields",
      spec: { source: ref("a"), target: ref("b"), mappings: [{}] },
      message: /a mapping must set fromFieldPath, toFieldPath or both/,
    },
    {
      name: "empty-name",
      spec: { source: ref(""), target: ref("b") },
      message: /spec\.source\.resourceRef\.name/,
    },
    { name: "no-target", spec: { source: ref("a") }, message: /spec\.target/ },
    // names become URL path segments
    {
      name: "dot-target",
      spec: { source: ref("a"), target: ref(".") },
      message: /spec\.target\.resourceRef\.name/,
    },
    {
      name: "dotdot-source",
      spec: { source: ref(".."), target: ref("b") },
      message: /spec\.source\.resourceRef\.name/,
    },
    { name: "slash-name", spec: { source: ref("a/b"), target: ref("b") }, message: /resourceRef\.name/ },
    { name: "dots-in-names", spec: { source: ref("..."), target: ref("a.b") } },
    {
      name: "dotdot-namespace",
      spec: {
        source: ref("a"),
        target: {
          ...ref("b"),
          cluster: { namespace: "..", kubeConfig: { secretRef: { name: "s", key: "value" } } },
        },
      },
      message: /spec\.target\.cluster\.namespace/,
    },
    {
      name: "dotdot-secret",
      spec: {
        source: ref("a"),
        target: {
          ...ref("b"),
          cluster: { kubeConfig: { secretRef: { name: "..", key: "..", namespace: "." } } },
        },
      },
      message: /secretRef\.name.*|secretRef\.key|secretRef\.namespace/,
    },
    {
      name: "apiversion-traversal",
      spec: {
        source: { resourceRef: { apiVersion: "../v1", kind: "ConfigMap", name: "a" } },
        target: ref("b"),
      },
      message: /spec\.source\.resourceRef\.apiVersion/,
    },
    // at most 256 mappings
    {
      name: "256-mappings",
      spec: {
        source: ref("a"),
        target: ref("b"),
        mappings: Array.from({ length: 256 }, () => ({ toFieldPath: "data.x" })),
      },
    },
    {
      name: "257-mappings",
      spec: {
        source: ref("a"),
        target: ref("b"),
        mappings: Array.from({ length: 257 }, () => ({ toFieldPath: "data.x" })),
      },
      message: /spec\.mappings: Too many: 257: must have at most 256 items/,
    },
    // the write policy
    {
      name: "create-only",
      spec: { source: ref("a"), target: ref("b"), writePolicy: "CreateOnly", onImmutableChange: "Fail" },
    },
    { name: "replace", spec: { source: ref("a"), target: ref("b"), onImmutableChange: "Replace" } },
    {
      name: "unknown-write-policy",
      spec: { source: ref("a"), target: ref("b"), writePolicy: "IfNotExists" },
      message: /spec\.writePolicy: Unsupported value/,
    },
    {
      name: "create-only-with-replace",
      spec: { source: ref("a"), target: ref("b"), writePolicy: "CreateOnly", onImmutableChange: "Replace" },
      message: /onImmutableChange: Replace needs writePolicy Apply/,
    },
  ];

  for (const c of cases) {
    it(`${c.message ? "refuses" : "accepts"} ${c.name}, as the controller's validator does`, async () => {
      const r = await dryRunCreate(rs(c.name, c.spec));
      const local = validateResourceSync(rs(c.name, c.spec));
      if (c.message) {
        assert.equal(r.status, 422, `expected 422, got ${r.status}: ${r.message}`);
        assert.match(r.message, c.message);
        assert.equal(local.ok, false, "the controller's validator must refuse what the API server refuses");
      } else {
        assert.equal(r.status, 201, r.message);
        assert.equal(local.ok, true);
      }
    });
  }

  it("has the short name rsync, printer columns and kubectl explain descriptions", async () => {
    const create = await suite.env.request("b", "POST", `/apis/${RS_API}/namespaces/${ns}/resourcesyncs`, {
      ...rs("shown", { source: ref("from"), target: ref("to") }),
    });
    assert.equal(create.status, 201);
    const get = await suite.env.kubectl("b", ["get", "rsync", "-n", ns]);
    assert.equal(get.code, 0, get.stderr);
    const [header, row] = get.stdout.trim().split("\n");
    assert.match(header ?? "", /SOURCE KIND\s+SOURCE NAME\s+TARGET KIND\s+TARGET NAME\s+READY\s+AGE/);
    assert.match(row ?? "", /^shown\s+ConfigMap\s+from\s+ConfigMap\s+to\s/);
    const explain = await suite.env.kubectl("b", ["explain", "resourcesync.spec.mappings"]);
    assert.equal(explain.code, 0, explain.stderr);
    assert.match(explain.stdout, /fromFieldPath/);
    assert.match(explain.stdout, /toFieldPath/);
    const policy = await suite.env.kubectl("b", ["explain", "resourcesync.spec.writePolicy"]);
    assert.equal(policy.code, 0, policy.stderr);
    assert.match(
      policy.stdout.replace(/\s+/g, " "),
      /CreateOnly: created from the source whenever Sinker finds it absent/,
    );
    const replace = await suite.env.kubectl("b", ["explain", "resourcesync.status.replacement"]);
    assert.equal(replace.code, 0, replace.stderr);
    assert.match(replace.stdout, /attempts/);
  });
});
