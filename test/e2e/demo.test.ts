/**
 * `npm run demo -- --once` end to end: the real controller process, examples/ applied for real, every timed
 * scenario checked by the demo itself. The control plane is already up (this test run's), so the demo must reuse
 * it and leave it running, and clean up its own namespaces and controller. Also: every file in examples/ applies
 * cleanly (server-side dry run) to a namespace that is not the demo's.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { EXPECTED_SYNCS } from "../../scripts/demo/constants.ts";
import { isAlive, repoRoot } from "../controlplane/testenv.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, "scripts", "demo.ts"), ...args], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGINT");
      reject(new Error(`demo did not finish within ${timeoutMs / 1000} s; output so far:\n${output}`));
    }, timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("examples/", () => {
  it("every manifest applies cleanly to a real API server (server-side dry run)", async () => {
    const na = await suite.ns("a", "examples");
    const nb = await suite.ns("b", "examples");
    const files = readdirSync(join(repoRoot, "examples")).filter((f) => f.endsWith(".yaml"));
    assert.ok(files.length >= 5, `examples: ${files.join(", ")}`);
    const ra = await suite.env.kubectl("a", [
      "apply",
      "--dry-run=server",
      "-n",
      na,
      "-f",
      join(repoRoot, "examples"),
    ]);
    assert.equal(ra.code, 0, ra.stderr);
    for (const kind of ["configmap", "secret", "sinkercontainer.sinker.influxdata.io"]) {
      assert.match(ra.stdout, new RegExp(`^${kind}/\\S+ created \\(server dry run\\)$`, "m"));
    }
    const syncs = ra.stdout.match(/^resourcesync\.sinker\.influxdata\.io\/\S+ created/gm) ?? [];
    assert.equal(syncs.length, EXPECTED_SYNCS.length, ra.stdout); // the demo waits for each of them
    const rb = await suite.env.kubectl("b", [
      "apply",
      "--dry-run=server",
      "-n",
      nb,
      "-f",
      join(repoRoot, "examples", "cluster-b"),
    ]);
    assert.equal(rb.code, 0, rb.stderr);
    assert.match(rb.stdout, /configmap\/remote-demo created \(server dry run\)/);
    const rf = await suite.env.kubectl("a", [
      "apply",
      "--dry-run=server",
      "-n",
      na,
      "-f",
      join(repoRoot, "examples", "fanout"),
    ]);
    assert.equal(rf.code, 0, rf.stderr);
    assert.match(rf.stdout, /^clusterresourcesyncset\.sinker\.influxdata\.io\/ca-bundle created/m);
    assert.match(rf.stdout, /^resourcesyncset\.sinker\.influxdata\.io\/app-config created/m);
  });
});

describe("npm run demo -- --once", () => {
  it("runs the scenario against the real controller, reuses the running control plane and cleans up", async () => {
    const { code, output } = await run(["--once"], 480_000);
    assert.equal(code, 0, output);
    const expected = [
      /clusters a and b already up: reusing them/,
      /CRDs resourcesyncs, sinkercontainers, resourcesyncsets, clusterresourcesyncsets established/,
      /controller ready in \d+ ms/,
      ...[
        "clone-in-cluster",
        "copy-secret-to-cluster-b",
        "mappings-from-cluster-b",
        "sinkercontainer-to-cluster-b",
        "keep-target-on-deletion",
        "create-only",
        "replace-on-immutable-change",
      ].map((n) => new RegExp(`^${n} +.* True +Synced +\\d+ ms$`, "m")),
      /✓ source edited in a → clone in a updated \(clone-in-cluster\): \d+ ms/,
      /✓ source edited in b → mapped copy in a updated \(mappings-from-cluster-b\): \d+ ms/,
      /✓ Secret rotated in a → copy in b updated \(copy-secret-to-cluster-b\): \d+ ms/,
      /✓ ClusterResourceSyncSet demo-fanout created → copies in demo-team-1, demo-team-2 and in b: \d+ ms/,
      /✓ namespace demo-team-3 labelled → its copy: \d+ ms/,
      /✓ namespace demo-team-1 unlabelled → its copy deleted: \d+ ms/,
      /✓ source edited → every copy updated: \d+ ms/,
      /✓ kubectl get crsyncset demo-fanout: DESIRED 3, SYNCED 3, FAILING 0/,
      /✓ target edited by hand in b → change undone \(copy-secret-to-cluster-b\): \d+ ms/,
      /✓ target deleted by hand in b → re-created \(sinkercontainer-to-cluster-b\): \d+ ms/,
      /✓ ResourceSync deleted → its target in b deleted, then the ResourceSync gone .*: \d+ ms/,
      /✓ ResourceSync with disable-target-deletion deleted → gone, target kept .*: \d+ ms/,
      /✓ keep-target-on-deletion: ConfigMap handed-over still there, without an owner reference/,
      /controller stopped \(exit code 0\)/,
      /control plane left running/,
      /demo passed: 11 timed scenarios, every check held/,
    ];
    for (const re of expected) assert.match(output, re);
    assert.doesNotMatch(output, /✗|FAILED/);

    // Its controller process is gone; the control plane it did not start is still up; its namespaces are gone.
    const pid = Number(/controller pid (\d+)/.exec(output)?.[1]);
    assert.ok(pid > 0, "controller pid printed");
    assert.equal(isAlive(pid), false, `controller ${pid} still running`);
    for (const c of ["a", "b"] as const) {
      assert.equal((await suite.env.request(c, "GET", "/readyz")).status, 200, `cluster ${c} still up`);
      assert.equal((await suite.env.request(c, "GET", "/api/v1/namespaces/demo")).status, 404);
    }
    assert.equal((await suite.env.request("a", "GET", "/api/v1/namespaces/sinker-remotes")).status, 404);
    for (const n of ["demo-team-1", "demo-team-2", "demo-team-3"])
      assert.equal((await suite.env.request("a", "GET", `/api/v1/namespaces/${n}`)).status, 404, n);
    assert.equal(
      (
        await suite.env.request(
          "a",
          "GET",
          "/apis/sinker.influxdata.io/v1alpha1/clusterresourcesyncsets/demo-fanout",
        )
      ).status,
      404,
    );
  });
});
