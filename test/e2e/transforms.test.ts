/**
 * Mapping expressions (CEL transforms) on the real control plane: constants, base64 in and out, string building
 * and regular expressions into a local target and into cluster b; a bad expression reported as a condition; and
 * hostile expressions (nested comprehensions, string repetition, a backtracking-shaped regex) refused or stopped
 * within their budget while a canary ResourceSync keeps converging and the controller stays healthy.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  clusterRef,
  cmRef,
  configMap,
  kubeconfigSecret,
  RS_API,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite({ controller: true });
const { a, b } = suite;
const BOUND = 60_000;

const SECRET_VALUE = "s3cr3t-Value-that-must-not-leak";
const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: string | undefined) => Buffer.from(s ?? "", "base64").toString();
const secretRef = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: "Secret", name } });

/** The source Secret of the transform tests. */
function dbSecret(namespace: string, password: string) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "db", namespace, labels: { team: "payments", tier: "backend" } },
    type: "Opaque",
    data: { password: b64(password), url: b64("postgres://db-1.example.com:5432/shop") },
  };
}

/** Constant, base64 in, base64 out, string building, regex pick. */
const TRANSFORMS = [
  { expression: "'fixed'", toFieldPath: "data.constant" },
  { expression: "string(base64.decode(object.data.password))", toFieldPath: "data.password" },
  { expression: "base64.encode(bytes(object.metadata.labels.team))", toFieldPath: "data.encoded" },
  {
    expression:
      "object.metadata.labels.team + '-' + object.metadata.labels.tier + '.' + resourceSync.metadata.namespace",
    toFieldPath: "data.service",
  },
  {
    expression: "string(base64.decode(object.data.url)).find('[a-z0-9-]+\\\\.example\\\\.com')",
    toFieldPath: "data.host",
  },
  { expression: "object.metadata.labels.team", toFieldPath: "metadata.labels.owner" },
];

describe("transforms", () => {
  it("computes constants, base64, built strings and regex picks into a local ConfigMap, and follows the source", async () => {
    const n = await suite.ns("a", "cel-local");
    await a.apply(dbSecret(n, SECRET_VALUE));
    await a.apply(
      resourceSync(n, "rs", { source: secretRef("db"), target: cmRef("settings"), mappings: TRANSFORMS }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND);
    const cm = await a.get("v1", "ConfigMap", n, "settings");
    assert.deepEqual(cm?.data, {
      constant: "fixed",
      password: SECRET_VALUE,
      encoded: b64("payments"),
      service: `payments-backend.${n}`,
      host: "db-1.example.com",
    });
    assert.equal(cm?.metadata?.labels?.owner, "payments");

    await a.apply(dbSecret(n, "rotated"));
    await a.waitFor(
      "the transform to follow the source",
      "v1",
      "ConfigMap",
      n,
      "settings",
      (o) => (o?.data?.password === "rotated" ? true : undefined),
      BOUND,
    );
  });

  it("writes a transformed Secret into cluster b (type set by a constant, data base64-encoded again)", async () => {
    const n = await suite.ns("a", "cel-remote");
    const nb = await suite.ns("b", "cel-remote");
    await a.apply(kubeconfigSecret(n, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(dbSecret(n, SECRET_VALUE));
    await a.apply(
      resourceSync(n, "rs", {
        source: secretRef("db"),
        target: { ...secretRef("db-upper"), cluster: clusterRef(nb) },
        mappings: [
          { expression: "'sinker.example.com/transformed'", toFieldPath: "type" },
          {
            expression: "base64.encode(bytes(string(base64.decode(object.data.password)).upperAscii()))",
            toFieldPath: "data.PASSWORD",
          },
          {
            expression:
              "base64.encode(bytes('https://' + string(base64.decode(object.data.url)).find('[a-z0-9-]+\\\\.example\\\\.com')))",
            toFieldPath: "data.endpoint",
          },
        ],
      }),
    );
    await waitReady(a, n, "rs", "True", "Synced", BOUND);
    const copy = await b.get("v1", "Secret", nb, "db-upper");
    assert.equal(copy?.type, "sinker.example.com/transformed");
    assert.equal(unb64(copy?.data?.PASSWORD), SECRET_VALUE.toUpperCase());
    assert.equal(unb64(copy?.data?.endpoint), "https://db-1.example.com");
  });

  it("reports an expression that does not compile or fails, naming the mapping, without the Secret's data", async () => {
    const n = await suite.ns("a", "cel-bad");
    await a.apply(dbSecret(n, SECRET_VALUE));
    await a.apply(
      resourceSync(n, "syntax", {
        source: secretRef("db"),
        target: cmRef("t1"),
        mappings: [{ expression: "object.data.(", toFieldPath: "data.x" }],
      }),
    );
    await a.apply(
      resourceSync(n, "failing", {
        source: secretRef("db"),
        target: cmRef("t2"),
        mappings: [
          { expression: "'ok'", toFieldPath: "data.ok" },
          { expression: "int(string(base64.decode(object.data.password)))", toFieldPath: "data.x" },
        ],
      }),
    );
    const syntax = await waitReady(a, n, "syntax", "False", "InvalidExpression", BOUND);
    assert.match(syntax.message, /spec\.mappings\[0\]: the expression does not parse/);
    const failing = await waitReady(a, n, "failing", "False", "ExpressionFailed", BOUND);
    assert.match(failing.message, /spec\.mappings\[1\]: the expression failed: a conversion failed/);
    const statuses = JSON.stringify((await a.list(RS_API, "ResourceSync", n)).map((rs) => rs.status));
    const events = JSON.stringify(await a.list("v1", "Event", n));
    for (const text of [statuses, events])
      assert.ok(!text.includes(SECRET_VALUE) && !text.includes("s3cr3t"));
  });

  it("refuses or stops hostile expressions within their budget while a canary keeps converging", async () => {
    const n = await suite.ns("a", "cel-hostile");
    const keys: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) keys[`k${i}`] = "v";
    keys.subject = `${"a".repeat(10_000)}!`; // exponential for a backtracking engine
    await a.apply(configMap(n, "big", keys));
    await a.apply(configMap(n, "canary-src", { tick: "0" }));
    await a.apply(resourceSync(n, "canary", { source: cmRef("canary-src"), target: cmRef("canary-dst") }));
    await waitReady(a, n, "canary", "True", "Synced", BOUND);

    const hostile: Record<string, string> = {
      // 10^6 iterations: stopped by the step budget
      nested: "object.data.all(a, object.data.all(b, true))",
      // four levels: refused when compiled
      deeper: "object.data.all(a, object.data.all(b, object.data.all(c, object.data.all(d, true))))",
      // 1000 × 44^4 characters: refused before the string is built
      repeat: `'${"x".repeat(1000)}'.replace('x', '${"x".repeat(44)}').replace('x', '${"x".repeat(44)}')`,
      // a match is charged subject length × program size before it runs: 10 002 × 4 000 is over the regex budget
      regexCost: "object.data.subject.matches('a{1000}b{1000}c{1000}d{1000}')",
    };
    for (const [name, expression] of Object.entries(hostile)) {
      await a.apply(
        resourceSync(n, name.toLowerCase(), {
          source: cmRef("big"),
          target: cmRef(`out-${name.toLowerCase()}`),
          mappings: [{ expression, toFieldPath: "data.out" }],
        }),
      );
    }
    // Backtracking-shaped, but linear on RE2: it simply completes.
    await a.apply(
      resourceSync(n, "backtrack", {
        source: cmRef("big"),
        target: cmRef("out-backtrack"),
        mappings: [{ expression: "string(object.data.subject.matches('^(a+)+$'))", toFieldPath: "data.out" }],
      }),
    );

    await waitReady(a, n, "nested", "False", "ExpressionBudgetExceeded", BOUND);
    const deeper = await waitReady(a, n, "deeper", "False", "ExpressionBudgetExceeded", BOUND);
    assert.match(deeper.message, /nests comprehensions more than 3 deep/);
    const repeat = await waitReady(a, n, "repeat", "False", "ExpressionBudgetExceeded", BOUND);
    assert.match(repeat.message, /replace would build a value larger than 1048576/);
    await waitReady(a, n, "regexcost", "False", "ProjectionBudgetExceeded", BOUND);
    await waitReady(a, n, "backtrack", "True", "Synced", BOUND);
    assert.equal((await a.get("v1", "ConfigMap", n, "out-backtrack"))?.data?.out, "false");

    // The hostile ResourceSyncs keep being retried (with backoff); the canary converges meanwhile, twice.
    for (const tick of ["1", "2"]) {
      await a.apply(configMap(n, "canary-src", { tick }));
      await a.waitFor(
        `canary at ${tick}`,
        "v1",
        "ConfigMap",
        n,
        "canary-dst",
        (o) => (o?.data?.tick === tick ? true : undefined),
        BOUND,
      );
    }
    assert.ok(suite.controller.controller.healthy());
  });
});
