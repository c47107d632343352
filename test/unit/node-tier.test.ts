// The node tier's pure helpers: which granted rights an audit log never shows used, and reading a metric.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { metric, unusedGrants } from "../node/support.ts";

const event = (apiGroup: string, resource: string, verb: string, subresource?: string) => ({
  verb,
  objectRef: { apiGroup, resource, ...(subresource ? { subresource } : {}) },
});

describe("unusedGrants", () => {
  const rules = [
    { apiGroups: [""], resources: ["configmaps", "secrets"], verbs: ["get", "list"] },
    { apiGroups: ["sinker.influxdata.io"], resources: ["resourcesyncs/status"], verbs: ["patch"] },
  ];
  const cases: Array<{ name: string; events: object[]; want: string[] }> = [
    {
      name: "nothing used: every grant",
      events: [],
      want: [
        "/configmaps get",
        "/configmaps list",
        "/secrets get",
        "/secrets list",
        "sinker.influxdata.io/resourcesyncs/status patch",
      ],
    },
    {
      name: "a subresource counts for itself only",
      events: [
        event("sinker.influxdata.io", "resourcesyncs", "patch", "status"),
        event("", "secrets", "list"),
      ],
      want: ["/configmaps get", "/configmaps list", "/secrets get"],
    },
    {
      name: "the same resource in another group is not a use",
      events: [event("apps", "configmaps", "get")],
      want: [
        "/configmaps get",
        "/configmaps list",
        "/secrets get",
        "/secrets list",
        "sinker.influxdata.io/resourcesyncs/status patch",
      ],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(unusedGrants(rules, c.events), c.want));
});

describe("metric", () => {
  const text = '# HELP sinker_leader x\nsinker_leader 1\nsinker_leader_changes_total{a="b"} 3\n';
  it("reads a sample with or without labels, and only the exact name", () => {
    assert.equal(metric(text, "sinker_leader"), 1);
    assert.equal(metric(text, "sinker_leader_changes_total"), 3);
    assert.equal(metric(text, "sinker_lead"), undefined);
  });
});
