/** Runs `sinker render` as a user would: a separate process, files on disk or standard input. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { runCommand } from "../support/run-command.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const node = join(repo, "node_modules", ".bin", "node");
const dir = mkdtempSync(join(tmpdir(), "sinker-render-"));
const RS = join(repo, "examples", "render", "resourcesync.yaml");
const SOURCE = join(repo, "examples", "render", "source.yaml");

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `sinker render` with `args`, feeding `input` on standard input. */
function render(args: string[], input = ""): Promise<Run> {
  return runCommand(node, ["src/cli/main.ts", "render", ...args], { cwd: repo, input });
}

const rsDoc = (mappings: string, extra = ""): string => `apiVersion: sinker.influxdata.io/v1alpha1
kind: ResourceSync
metadata: {name: demo, namespace: team-a${extra}}
spec:
  source: {resourceRef: {apiVersion: v1, kind: ConfigMap, name: app-config}}
  target: {resourceRef: {apiVersion: v1, kind: ConfigMap, name: copy}}
${mappings}`;

test("render: the docs/cli.md example prints the projected ConfigMap as YAML", async () => {
  const r = await render(["--resource-sync", RS, "--source", SOURCE]);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  assert.deepEqual(parse(r.stdout), {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "app-config-copy",
      namespace: "default",
      annotations: { team: "payments" },
      ownerReferences: [
        {
          apiVersion: "sinker.influxdata.io/v1alpha1",
          kind: "ResourceSync",
          name: "demo",
          uid: "0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
          controller: false,
          blockOwnerDeletion: true,
        },
      ],
    },
    data: { endpoint: "https://payments.example.com", logLevel: "debug" },
  });
});

test("render: -o json, --target-namespace, source from stdin", async () => {
  const r = await render(
    ["--resource-sync", RS, "--source", "-", "-o", "json", "--target-namespace", "other"],
    `
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {endpoint: e}
`,
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.metadata.namespace, "other");
  assert.deepEqual(out.data, { endpoint: "e" });
});

test("render: namespace defaults and owner reference rules", async () => {
  const source = file(
    "cm.yaml",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config}\ndata: {a: b}\n",
  );
  const cases: {
    name: string;
    rs: string;
    args?: string[];
    namespace: string | undefined;
    owner: boolean;
  }[] = [
    { name: "RS namespace, no uid → no owner reference", rs: rsDoc(""), namespace: "team-a", owner: false },
    { name: "uid → owner reference", rs: rsDoc("", ", uid: u-1"), namespace: "team-a", owner: true },
    {
      name: "remote target: cluster.namespace, no owner reference",
      rs: rsDoc("", ", uid: u-1").replace(
        "name: copy}}",
        "name: copy}, cluster: {namespace: far, kubeConfig: {secretRef: {name: kc, key: value}}}}",
      ),
      namespace: "far",
      owner: false,
    },
    {
      name: "--cluster-scoped",
      rs: rsDoc("", ", uid: u-1"),
      args: ["--cluster-scoped"],
      namespace: undefined,
      owner: false,
    },
    {
      name: "well-known cluster-scoped kind",
      rs: rsDoc("", ", uid: u-1").replaceAll("ConfigMap", "Namespace"),
      namespace: undefined,
      owner: false,
    },
    {
      name: "no namespace anywhere → default",
      rs: rsDoc("", ", uid: u-1").replace("namespace: team-a", "labels: {}"),
      namespace: "default",
      owner: true,
    },
  ];
  const runs = await Promise.all(
    cases.map((c, i) => {
      const src = c.name.startsWith("well-known")
        ? file("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
        : source;
      return render([
        "--resource-sync",
        file(`rs-${i}.yaml`, c.rs),
        "--source",
        src,
        "-o",
        "json",
        ...(c.args ?? []),
      ]);
    }),
  );
  for (const [i, c] of cases.entries()) {
    const r = runs[i] as Run;
    assert.equal(r.code, 0, `${c.name}: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.metadata.namespace, c.namespace, c.name);
    assert.equal(out.metadata.ownerReferences !== undefined, c.owner, c.name);
  }
});

test("render: CEL expression mappings show transformed output; a bad one fails as the controller would", async () => {
  const source = file(
    "cm-cel.yaml",
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app-config, labels: {team: pay}}\ndata: {url: 'https://db.example.com:5432'}\n",
  );
  const mappings = `  mappings:
    - {expression: "'fixed'", toFieldPath: data.constant}
    - {expression: "base64.encode(bytes(object.data.url))", toFieldPath: data.encoded}
    - {expression: "object.data.url.find('[a-z.]+[.]com')", toFieldPath: data.host}
    - {expression: "object.metadata.labels.team + '-' + resourceSync.metadata.namespace", toFieldPath: data.owner}
`;
  const r = await render(["--resource-sync", file("rs-cel.yaml", rsDoc(mappings)), "--source", source]);
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  assert.deepEqual(parse(r.stdout).data, {
    constant: "fixed",
    encoded: Buffer.from("https://db.example.com:5432").toString("base64"),
    host: "db.example.com",
    owner: "pay-team-a",
  });
  const bad = `  mappings:\n    - {expression: "object.data.missing", toFieldPath: data.x}\n`;
  const failed = await render(["--resource-sync", file("rs-cel-bad.yaml", rsDoc(bad)), "--source", source]);
  assert.equal(failed.code, 1);
  assert.equal(
    failed.stderr,
    "sinker render: spec.mappings[0]: the expression failed: no such key or field\n",
  );
});

test("render --help", async () => {
  const r = await render(["--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: sinker render --resource-sync RS\.yaml --source SOURCE\.yaml/);
  assert.match(r.stdout, /owner reference is left out/);
});

test("render: bad input → one line on stderr, exit code 1, no stack trace", async () => {
  const cases: { name: string; args: string[]; input?: string; message: RegExp }[] = [
    {
      name: "missing flags",
      args: ["--source", SOURCE],
      message: /--resource-sync and --source are required/,
    },
    { name: "unknown flag", args: ["--nope"], message: /Unknown option '--nope'/ },
    {
      name: "bad output",
      args: ["--resource-sync", RS, "--source", SOURCE, "-o", "xml"],
      message: /--output must be yaml or json/,
    },
    {
      name: "unreadable file",
      args: ["--resource-sync", join(dir, "absent.yaml"), "--source", SOURCE],
      message: /cannot read the ResourceSync from .*absent\.yaml: no such file/,
    },
    {
      name: "invalid YAML",
      args: ["--resource-sync", file("bad.yaml", "a: [1, 2\nb: }"), "--source", SOURCE],
      message: /bad\.yaml is not valid YAML\/JSON: /,
    },
    {
      name: "invalid ResourceSync, every error listed",
      args: [
        "--resource-sync",
        file(
          "invalid.yaml",
          rsDoc("  mappings: [{}, {toFieldPath: 'a..b'}]").replace("name: copy", "name: ''"),
        ),
        "--source",
        SOURCE,
      ],
      message:
        /invalid\.yaml is not a valid ResourceSync: spec\.target\.resourceRef\.name: must not be empty; spec\.mappings\[0\]: a mapping must set fromFieldPath, toFieldPath or both; spec\.mappings\[1\]\.toFieldPath: must be a dotted path/,
    },
    {
      name: "invalid JSONPath",
      args: [
        "--resource-sync",
        file("jp.yaml", rsDoc("  mappings: [{fromFieldPath: 'data[', toFieldPath: data.x}]")),
        "--source",
        SOURCE,
      ],
      message: /^sinker render: spec\.mappings\[0\]: invalid JSONPath "data\[": /,
    },
    {
      name: "several nodes selected",
      args: [
        "--resource-sync",
        file("many.yaml", rsDoc("  mappings: [{fromFieldPath: 'data.*', toFieldPath: data.x}]")),
        "--source",
        SOURCE,
      ],
      message: /JSONPath "data\.\*" selects more than one node/,
    },
    {
      name: "source of another kind",
      args: [
        "--resource-sync",
        RS,
        "--source",
        file("secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"),
      ],
      message: /secret\.yaml is a v1 Secret, but the ResourceSync's source is a v1 ConfigMap/,
    },
    {
      name: "source not an object",
      args: ["--resource-sync", RS, "--source", "-"],
      input: "- a\n- b\n",
      message: /the source must be a Kubernetes object/,
    },
    {
      name: "both from stdin",
      args: ["--resource-sync", "-", "--source", "-"],
      message: /only one of --resource-sync and --source/,
    },
  ];
  const runs = await Promise.all(cases.map((c) => render(c.args, c.input)));
  for (const [i, c] of cases.entries()) {
    const r = runs[i] as Run;
    assert.equal(r.code, 1, `${c.name}: exit code`);
    assert.equal(r.stdout, "", c.name);
    assert.match(r.stderr, /^sinker render: [^\n]+\n$/, `${c.name}: one line: ${r.stderr}`);
    assert.match(r.stderr, c.message, c.name);
    assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/, `${c.name}: stack trace`);
  }
});

test("sinker manifests prints the CRDs", () => {
  const r = spawnSync(node, ["src/cli/main.ts", "manifests"], { cwd: repo, encoding: "utf8" });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^---\napiVersion: apiextensions\.k8s\.io\/v1\nkind: CustomResourceDefinition\n/);
});
