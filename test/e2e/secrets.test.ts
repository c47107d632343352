/**
 * Secret data never reaches logs (at trace level), Events or status. A file of its own, so that this
 * controller, logging everything into memory, is the only one running.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterRef, kubeconfigSecret, RS_API, resourceSync, waitReady } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const lines: string[] = [];
const suite = useSuite({ controller: { logLines: lines } });
const { a, b } = suite;
const ns = suite.ns;

const bRef = clusterRef;

describe("secret data", () => {
  it("copies a Secret to cluster b without its data reaching logs, Events or status", async () => {
    const n = await ns("a", "secret");
    const nb = await ns("b", "secret");
    const value = "s3cr3t-Value-that-must-not-leak";
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "creds", namespace: n },
      type: "Opaque",
      data: { password: Buffer.from(value).toString("base64") },
    });
    await a.apply(
      resourceSync(n, "rs", {
        source: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "creds" } },
        target: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "creds" }, cluster: bRef(nb) },
      }),
    );
    // And a failing one whose error touches the Secret (a mapping into a non-object).
    await a.apply(
      resourceSync(n, "bad", {
        source: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "creds" } },
        target: { resourceRef: { apiVersion: "v1", kind: "Secret", name: "other" }, cluster: bRef(nb) },
        mappings: [
          { fromFieldPath: "data", toFieldPath: "data" },
          { fromFieldPath: "data.password", toFieldPath: "data.password.inner" },
        ],
      }),
    );
    await waitReady(a, n, "rs", "True");
    await waitReady(a, n, "bad", "False");
    const copied = await b.get("v1", "Secret", nb, "creds");
    assert.equal(Buffer.from(copied?.data?.password ?? "", "base64").toString(), value);
    assert.ok(
      lines.some((l) => l.includes('"name":"rs"')),
      "trace logs of the reconcile were captured",
    );
    const kubeconfigKey = suite.env.kubeconfigText("b").match(/client-key-data: (\S+)/)?.[1] ?? "no-key";
    const forbidden = [value, Buffer.from(value).toString("base64"), kubeconfigKey];
    const events = JSON.stringify(await a.list("v1", "Event", n));
    const statuses = JSON.stringify((await a.list(RS_API, "ResourceSync", n)).map((rs) => rs.status));
    for (const needle of forbidden) {
      assert.ok(!lines.some((l) => l.includes(needle)), "secret data in the logs");
      assert.ok(!events.includes(needle), "secret data in Events");
      assert.ok(!statuses.includes(needle), "secret data in status");
    }
  });
});
