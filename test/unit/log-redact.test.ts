import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../src/log.ts";
import { CENSOR, redactRecord } from "../../src/log-redact.ts";

const R = CENSOR;

describe("redactRecord", () => {
  const table: Array<[string, Record<string, unknown>, unknown]> = [
    ["nothing secret: unchanged", { a: 1, b: { c: "x" } }, { a: 1, b: { c: "x" } }],
    ["top level", { token: "t", why: "w" }, { token: R, why: "w" }],
    ["one object down", { secret: { data: { k: "v" } } }, { secret: { data: R } }],
    [
      "two objects down",
      { object: { spec: { token: "t", keep: 1 } } },
      { object: { spec: { token: R, keep: 1 } } },
    ],
    [
      "three objects down is not walked",
      { a: { b: { c: { token: "t" } } } },
      { a: { b: { c: { token: "t" } } } },
    ],
    ["keys with dashes", { user: { "client-key-data": "k" } }, { user: { "client-key-data": R } }],
    [
      "arrays are walked like objects",
      { items: [{ password: "p" }, { name: "n" }] },
      { items: [{ password: R }, { name: "n" }] },
    ],
    ["an undefined value stays undefined", { token: undefined, a: 1 }, { token: undefined, a: 1 }],
    ["a null value is censored", { authorization: null }, { authorization: R }],
    [
      "every key on every level",
      { data: 1, x: { stringData: 2, y: { binaryData: 3 } } },
      { data: R, x: { stringData: R, y: { binaryData: R } } },
    ],
  ];
  for (const [name, input, want] of table) {
    it(name, () => {
      const before = structuredClone(input);
      assert.deepEqual(redactRecord(input), want);
      assert.deepEqual(input, before, "the caller's object is not changed");
    });
  }

  it("returns the record itself when nothing is censored (no copy)", () => {
    const record = { a: { b: { c: 1 } }, list: [1, 2] };
    assert.equal(redactRecord(record), record);
  });

  it("serializes errors under err and error, and censors their secret properties", () => {
    const err = Object.assign(new Error("boom"), { token: "t0k3n" });
    const out = redactRecord({ err, error: new TypeError("bad") }) as {
      err: Record<string, unknown>;
      error: Record<string, unknown>;
    };
    assert.equal(out.err.type, "Error");
    assert.equal(out.err.message, "boom");
    assert.match(String(out.err.stack), /boom/);
    assert.equal(out.err.token, R);
    assert.equal(out.error.type, "TypeError");
  });

  it("an error one object down keeps its message when a secret property is censored", () => {
    const out = redactRecord({ detail: { cause: Object.assign(new Error("inner"), { password: "p" }) } }) as {
      detail: { cause: Record<string, unknown> };
    };
    assert.equal(out.detail.cause.message, "inner");
    assert.equal(out.detail.cause.password, R);
  });
});

describe("the logger redacts through redactRecord", () => {
  it("in child bindings as in records, and serializes errors once", () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "info", format: "json" }, { write: (l: string) => lines.push(l) });
    const child = logger.child({ kubeconfig: "apiVersion: v1 token: zzz", module: "sinker::kube" });
    child.info({ secret: { data: { k: "c2VjcmV0" } }, err: new RangeError("out") }, "hello");
    const text = lines.join("");
    assert.ok(!text.includes("zzz") && !text.includes("c2VjcmV0"), text);
    const record = JSON.parse(lines[0] ?? "{}") as {
      kubeconfig: string;
      err: { type: string; message: string };
    };
    assert.equal(record.kubeconfig, R);
    assert.equal(record.err.type, "RangeError");
    assert.equal(record.err.message, "out");
  });
});
