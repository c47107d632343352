/**
 * `sinker diff` (the real CLI process) against clusters a and b: a dry-run apply as Sinker's field manager shows
 * what a sync would change, writes nothing, masks Secret values, exits 0/1/2 as kubectl diff; the example in
 * docs/cli.md has the shape the command prints.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { repoRoot } from "../controlplane/testenv.ts";
import { configMap, kubeconfigSecret, resourceSync, waitReady } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";
import { runCommand } from "./support/tools.ts";

const suite = useSuite();
const { a, b } = suite;
let ns: string;
let remoteNs: string;

const ref = (kind: string, name: string) => ({ resourceRef: { apiVersion: "v1", kind, name } });
const PASSWORD = Buffer.from("hunter2").toString("base64");
const NEW_PASSWORD = Buffer.from("hunter3").toString("base64");

function diff(args: string[]) {
  return runCommand(
    process.execPath,
    [join(repoRoot, "bin", "sinker.js"), "diff", "--kubeconfig", suite.env.kubeconfigPath("a"), ...args],
    { env: { PATH: process.env.PATH, HOME: repoRoot } },
  );
}

async function synced(names: string[]): Promise<void> {
  const controller = await suite.startController();
  for (const n of names) await waitReady(a, ns, n, "True");
  await controller.stop();
}

before(async () => {
  ns = await suite.ns("a", "diff");
  remoteNs = await suite.ns("b", "diff");
  await a.apply(kubeconfigSecret(ns, "cluster-b", suite.env.kubeconfigText("b")));
  await a.apply(configMap(ns, "app-config", { logLevel: "info" }));
  await a.apply({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "db", namespace: ns },
    data: { password: PASSWORD },
  });
  await a.apply(
    resourceSync(ns, "clone", { source: ref("ConfigMap", "app-config"), target: ref("ConfigMap", "clone") }),
  );
  await a.apply(
    resourceSync(ns, "secret", { source: ref("Secret", "db"), target: ref("Secret", "db-copy") }),
  );
  await a.apply(
    resourceSync(ns, "remote", {
      source: ref("ConfigMap", "app-config"),
      target: {
        ...ref("ConfigMap", "app-config-copy"),
        cluster: { namespace: remoteNs, kubeConfig: { secretRef: { name: "cluster-b", key: "value" } } },
      },
    }),
  );
});

describe("sinker diff", () => {
  it("before the first sync: every target is new (exit 1), Secret values masked, nothing written", async () => {
    const r = await diff(["-n", ns]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, new RegExp(`--- /dev/null\\n\\+\\+\\+ merged/local/v1/ConfigMap/${ns}/clone\\n`));
    assert.match(r.stdout, /\+ {2}logLevel: info\n/);
    assert.match(
      r.stdout,
      new RegExp(`\\+\\+\\+ merged/secret:${ns}/cluster-b/v1/ConfigMap/${remoteNs}/app-config-copy\\n`),
    );
    assert.match(r.stdout, /\+ {2}password: "\*\*\*"\n/);
    assert.ok(!r.stdout.includes(PASSWORD), "the Secret value is masked");
    assert.match(r.stdout, /\+ {6}kind: ResourceSync\n/, "the owner reference the controller adds");
    assert.doesNotMatch(r.stdout, /managedFields|resourceVersion|creationTimestamp/);
    assert.equal(await a.get("v1", "ConfigMap", ns, "clone"), undefined, "a dry run writes nothing");
    assert.equal(await b.get("v1", "ConfigMap", remoteNs, "app-config-copy"), undefined);
  });

  it("after a sync nothing would change (exit 0, no output)", async () => {
    await synced(["clone", "secret", "remote"]);
    for (const name of ["clone", "secret", "remote"]) {
      const r = await diff(["-n", ns, name]);
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""], name);
    }
    const all = await diff(["-n", ns]);
    assert.deepEqual([all.code, all.stdout], [0, ""]);
  });

  it("a source change shows as docs/cli.md shows it", async () => {
    await a.apply(configMap(ns, "app-config", { logLevel: "debug" }));
    const r = await diff(["-n", ns, "remote"]);
    assert.equal(r.code, 1, r.stderr);
    const page = readFileSync(join(repoRoot, "docs", "cli.md"), "utf8");
    const shown = /```diff\n([\s\S]*?)```/.exec(page)?.[1] ?? "";
    assert.notEqual(shown, "", "docs/cli.md shows a diff");
    const expected = shown.replaceAll("team-a/cluster-b", `${ns}/cluster-b`).replaceAll("team-a", remoteNs);
    assert.equal(r.stdout, expected);
  });

  it("drift made by hand on a target shows as the change back", async () => {
    await a.apply(configMap(ns, "clone", { logLevel: "verbose" }), "someone");
    const r = await diff(["-n", ns, "clone"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /- {2}logLevel: verbose\n\+ {2}logLevel: debug\n/);
  });

  it("a changed Secret value reads *** (before) / *** (after), and its value with --show-secrets", async () => {
    await a.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "db", namespace: ns },
      data: { password: NEW_PASSWORD },
    });
    const masked = await diff(["-n", ns, "secret"]);
    assert.equal(masked.code, 1, masked.stderr);
    assert.match(masked.stdout, /- {2}password: "\*\*\* \(before\)"\n\+ {2}password: "\*\*\* \(after\)"\n/);
    assert.ok(!masked.stdout.includes(PASSWORD) && !masked.stdout.includes(NEW_PASSWORD));
    const shown = await diff(["-n", ns, "secret", "--show-secrets"]);
    assert.match(shown.stdout, new RegExp(`-  password: ${PASSWORD}\\n\\+  password: ${NEW_PASSWORD}\\n`));
  });

  it("a target Sinker did not write: refused as the controller refuses it (TargetNotOwned), unless adopted", async () => {
    await a.apply(configMap(ns, "hand-made", { owner: "someone else" }));
    await a.apply(
      resourceSync(ns, "foreign", {
        source: ref("ConfigMap", "app-config"),
        target: ref("ConfigMap", "hand-made"),
      }),
    );
    const refused = await diff(["-n", ns, "foreign"]);
    assert.equal(refused.code, 2);
    assert.equal(
      refused.stderr,
      `sinker diff: ResourceSync ${ns}/foreign: target ConfigMap ${ns}/hand-made exists and was not written by ` +
        `Sinker; set the annotation sinker.influxdata.io/adopt-target: "true" on the ResourceSync to take it over\n`,
    );
    assert.equal(refused.stdout, "");
    await a.apply(
      resourceSync(
        ns,
        "foreign",
        { source: ref("ConfigMap", "app-config"), target: ref("ConfigMap", "hand-made") },
        { "sinker.influxdata.io/adopt-target": "true" },
      ),
    );
    const adopted = await diff(["-n", ns, "foreign"]);
    assert.equal(adopted.code, 1, adopted.stderr);
    assert.match(adopted.stdout, /\+ {2}logLevel: /);
    assert.deepEqual((await a.get("v1", "ConfigMap", ns, "hand-made"))?.data, { owner: "someone else" });
    await a.delete("sinker.influxdata.io/v1alpha1", "ResourceSync", ns, "foreign");
  });

  it("errors exit 2 with one line each; the other ResourceSyncs are still compared", async () => {
    await a.apply(
      resourceSync(ns, "no-source", { source: ref("ConfigMap", "missing"), target: ref("ConfigMap", "x") }),
    );
    const all = await diff(["-n", ns]);
    assert.equal(all.code, 2);
    assert.equal(
      all.stderr,
      `sinker diff: ResourceSync ${ns}/no-source: source ConfigMap ${ns}/missing not found\n`,
    );
    assert.match(all.stdout, /logLevel: debug/, "the others' diffs are printed");
    await a.delete("sinker.influxdata.io/v1alpha1", "ResourceSync", ns, "no-source");

    const missing = await diff(["-n", ns, "nope"]);
    assert.deepEqual([missing.code, missing.stderr], [2, `sinker diff: ResourceSync ${ns}/nope not found\n`]);
    const bad = await diff(["--bogus"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^sinker diff: .*bogus/);
  });
});
