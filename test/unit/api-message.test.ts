/**
 * API server messages are reduced before they are stored or logged, so a value an API server
 * quotes (a label written from a Secret, a webhook's text) never reaches status, Events or logs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_API_MESSAGE_LENGTH, reduceApiMessage } from "../../src/kube/api-message.ts";
import { apiError } from "../../src/kube/client.ts";

const cases: Array<{ name: string; message: string; want: string }> = [
  {
    name: "a label quoting a Secret value (a 422 for a label written from a Secret)",
    message:
      'ConfigMap "demo" is invalid: metadata.labels: Invalid value: "c2VjcmV0": a valid label must be an empty ' +
      "string or consist of alphanumeric characters, '-', '_' or '.'",
    want:
      'ConfigMap "demo" is invalid: metadata.labels: Invalid value: <value omitted>: a valid label must be an ' +
      "empty string or consist of alphanumeric characters, '-', '_' or '.'",
  },
  {
    name: "several field errors, escaped quotes inside the value",
    message:
      'Secret "s" is invalid: [data[a b]: Invalid value: "x\\"y:z": a valid config key must consist of ..., ' +
      'metadata.name: Invalid value: "UPPER": a lowercase RFC 1123 subdomain]',
    want:
      'Secret "s" is invalid: [data[a b]: Invalid value: <value omitted>: a valid config key must consist of ..., ' +
      "metadata.name: Invalid value: <value omitted>: a lowercase RFC 1123 subdomain]",
  },
  {
    name: "unquoted and Go-formatted values",
    message:
      'spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.x: Invalid value: map[string]interface {}{"k":"v"}: bad',
    want: "spec.replicas: Invalid value: <value omitted>: must be greater than or equal to 0, spec.x: Invalid value: <value omitted>: bad",
  },
  {
    name: "unsupported value with its list of supported ones",
    message: 'spec.type: Unsupported value: "hunter2": supported values: "A", "B"',
    want: 'spec.type: Unsupported value: <value omitted>: supported values: "<value omitted>", "<value omitted>"',
  },
  {
    name: "names of objects, users and managers stay",
    message:
      'configmaps "demo" is forbidden: User "system:serviceaccount:sinker:sinker" cannot patch resource "configmaps"',
    want: 'configmaps "demo" is forbidden: User "system:serviceaccount:sinker:sinker" cannot patch resource "configmaps"',
  },
  {
    name: "an apply conflict",
    message: 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.k',
    want: 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: .data.k',
  },
  {
    name: "quoted text that is not a name, or not after a word, goes",
    message: 'the value "s3cr3t with spaces" is bad; also: "c2VjcmV0"',
    want: 'the value "<value omitted>" is bad; also: "<value omitted>"',
  },
  {
    name: "an admission webhook's own text goes",
    message: 'admission webhook "policy.example.com" denied the request: password s3cr3t is too weak',
    want: 'admission webhook "policy.example.com" denied the request (the webhook\'s message is omitted)',
  },
  {
    name: "plain messages are unchanged",
    message: 'configmaps "x" not found',
    want: 'configmaps "x" not found',
  },
  { name: "an unterminated quote", message: 'bad: "abc', want: 'bad: "<value omitted>"' },
];

for (const c of cases) {
  test(`reduceApiMessage: ${c.name}`, () => {
    assert.equal(reduceApiMessage(c.message), c.want);
  });
}

test("reduceApiMessage: long messages are capped; never throws on odd input", () => {
  assert.ok(reduceApiMessage("x".repeat(100_000)).length <= MAX_API_MESSAGE_LENGTH + 1);
  for (const odd of ["", '"', "Invalid value: ", "Invalid value: {{{{", '\\"\\"', "Not found: [", "\u0000"]) {
    assert.equal(typeof reduceApiMessage(odd), "string");
  }
});

test("apiError reduces Status messages of any cluster; non-Status bodies give status code and reason only", () => {
  const status = (message: string) =>
    JSON.stringify({ kind: "Status", status: "Failure", message, reason: "Invalid", code: 422 });
  const local = apiError("local", 422, status('metadata.labels: Invalid value: "c2VjcmV0": bad'), "apply");
  assert.equal(local.reason, "Invalid");
  assert.ok(!local.message.includes("c2VjcmV0"), local.message);
  const remote = apiError(
    "secret/ns/kc",
    422,
    status('x: Invalid value: "c2VjcmV0": bad\u0007'),
    "apply",
    true,
  );
  assert.match(
    remote.message,
    /^cluster "secret\/ns\/kc": HTTP 422 Unprocessable Entity \(Invalid\): x: Invalid value: <value omitted>: bad\?$/,
  );
  // a body that is not a Status (a metadata service, a proxy) is never reflected
  for (const body of [
    "ami-id\ninstance-id\nsecret-token",
    "<html>internal</html>",
    '{"message":"not a Status"}',
  ]) {
    for (const remoteCluster of [false, true]) {
      const err = apiError("c", 404, body, "get configmaps", remoteCluster);
      assert.equal(err.message, 'cluster "c": HTTP 404 Not Found');
    }
  }
  assert.equal(apiError("c", 502, "<html>", "list").message, 'cluster "c" failed list: HTTP 502 Bad Gateway');
});
