import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { forDisplay, maskSecrets, targetDiff, unifiedDiff } from "../../src/cli/diff-text.ts";
import type { KubeObject } from "../../src/kube/object.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

const secret = (data: Record<string, string>, annotations?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s", namespace: "ns", ...(annotations ? { annotations } : {}) },
  data,
});

describe("forDisplay", () => {
  it("drops status and server-maintained metadata, keeps the rest, leaves the input alone", () => {
    const live: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "c",
        namespace: "ns",
        uid: "u",
        resourceVersion: "7",
        generation: 1,
        creationTimestamp: "2026-01-01T00:00:00Z",
        managedFields: [{ manager: "m" }],
        labels: { a: "b" },
      },
      data: { k: "v" },
      status: { x: 1 },
    };
    assert.deepEqual(forDisplay(live), {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "ns", labels: { a: "b" } },
      data: { k: "v" },
    });
    assert.equal(live.metadata?.uid, "u");
  });
});

describe("maskSecrets", () => {
  const table: Array<{
    name: string;
    live: KubeObject | undefined;
    merged: KubeObject;
    want: { live: unknown; merged: unknown };
  }> = [
    {
      name: "same value: *** on both sides; changed: before/after; only one side: ***",
      live: secret({ same: "YQ==", changed: "Yg==", gone: "Yw==" }),
      merged: secret({ same: "YQ==", changed: "ZA==", added: "ZQ==" }),
      want: {
        live: { same: "***", changed: "*** (before)", gone: "***" },
        merged: { same: "***", changed: "*** (after)", added: "***" },
      },
    },
    {
      name: "a new Secret",
      live: undefined,
      merged: secret({ k: "YQ==" }),
      want: { live: undefined, merged: { k: "***" } },
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const out = maskSecrets(t.live, t.merged);
      assert.deepEqual(out.live?.data, t.want.live);
      assert.deepEqual(out.merged.data, t.want.merged);
    });
  }

  it("masks the last-applied annotation of a Secret (it holds the data too), not other annotations", () => {
    const last = "kubectl.kubernetes.io/last-applied-configuration";
    const out = maskSecrets(
      secret({}, { [last]: '{"data":{"k":"YQ=="}}', team: "a" }),
      secret({}, { team: "a" }),
    );
    assert.deepEqual(out.live?.metadata?.annotations, { [last]: "***", team: "a" });
  });

  it("leaves other kinds alone", () => {
    const cm: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { k: "v" } };
    assert.equal(maskSecrets(cm, cm).merged, cm);
  });
});

describe("unifiedDiff / targetDiff", () => {
  it("is empty when nothing changes", () => {
    assert.equal(unifiedDiff("x", { a: 1 } as KubeObject, { a: 1 } as KubeObject), "");
  });

  it("compares with /dev/null when the target does not exist", () => {
    const text = unifiedDiff("local/v1/ConfigMap/ns/c", undefined, { data: { k: "v" } } as KubeObject);
    assert.match(
      text,
      /^--- \/dev\/null\n\+\+\+ merged\/local\/v1\/ConfigMap\/ns\/c\n@@ -0,0 \+1,2 @@\n\+data:\n\+ {2}k: v\n$/,
    );
  });

  it("shows a changed line with its context, ignoring resourceVersion changes", () => {
    const live: KubeObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", resourceVersion: "1" },
      data: { k: "old" },
    };
    const merged: KubeObject = { ...live, metadata: { name: "c", resourceVersion: "2" }, data: { k: "new" } };
    const text = targetDiff("c", live, merged, false);
    assert.match(text, /^--- live\/c\n\+\+\+ merged\/c\n/);
    assert.match(text, /\n- {2}k: old\n\+ {2}k: new\n/);
    assert.equal(
      targetDiff("c", live, { ...live, metadata: { name: "c", resourceVersion: "9" } }, false),
      "",
    );
  });

  it("never prints Secret values unless asked to", () => {
    const before = secret({ password: b64("hunter2") });
    const after = secret({ password: b64("hunter3") });
    const masked = targetDiff("s", before, after, false);
    assert.ok(!masked.includes(b64("hunter2")) && !masked.includes(b64("hunter3")));
    assert.match(masked, /- {2}password: "\*\*\* \(before\)"\n\+ {2}password: "\*\*\* \(after\)"/);
    const shown = targetDiff("s", before, after, true);
    assert.ok(shown.includes(b64("hunter3")));
  });
});
