/**
 * manifests/finalizer-policy.yaml on the real API server: the finalizer is added as a ResourceSync is created
 * (once, beside the finalizers it already has, never on update), and Sinker then converges a new ResourceSync
 * without writing its metadata (target apply and status only) and still finalizes it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FINALIZER } from "../../src/api/types.ts";
import { installFinalizerPolicy, removeFinalizerPolicy } from "../controlplane/finalizer-policy.ts";
import { cmRef, configMap, RS_API, resourceSync, waitReady } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

const suite = useSuite();
const { a } = suite;

before(async () => {
  await installFinalizerPolicy(suite.env, "a");
});

after(async () => {
  await removeFinalizerPolicy(suite.env, "a");
});

const finalizersOf = async (n: string, name: string) =>
  (await a.get(RS_API, "ResourceSync", n, name))?.metadata?.finalizers;

describe("the finalizer policy (manifests/finalizer-policy.yaml)", () => {
  it("adds Sinker's finalizer on create, once, after those already there, and not on update", async () => {
    const n = await suite.ns("a", "policy");
    const spec = { source: cmRef("src"), target: cmRef("dst") };
    const created = async (name: string, finalizers?: string[]) => {
      const rs = resourceSync(n, name, spec);
      if (finalizers) rs.metadata = { ...rs.metadata, finalizers };
      return (await a.apply(rs)).metadata?.finalizers;
    };
    assert.deepEqual(await created("plain"), [FINALIZER]);
    assert.deepEqual(await created("others", ["example.com/keep"]), ["example.com/keep", FINALIZER]);
    assert.deepEqual(await created("already", [FINALIZER]), [FINALIZER]);
    // an update may remove it (as Sinker does when it finalizes): the policy does not put it back
    await a.mergePatch(RS_API, "ResourceSync", n, "plain", { metadata: { finalizers: null } });
    assert.equal(await finalizersOf(n, "plain"), undefined);
    await a.mergePatch(RS_API, "ResourceSync", n, "others", { metadata: { finalizers: null } });
    await a.mergePatch(RS_API, "ResourceSync", n, "already", { metadata: { finalizers: null } });
  });

  it("Sinker syncs a new ResourceSync without writing its metadata, and finalizes it", async () => {
    const ctrl = await suite.startController();
    try {
      const n = await suite.ns("a", "policy-sync");
      await a.apply(configMap(n, "src", { k: "v" }));
      await a.apply(resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst") }));
      await waitReady(a, n, "rs", "True");
      assert.deepEqual((await a.get("v1", "ConfigMap", n, "dst"))?.data, { k: "v" });
      const managed = (await a.get(RS_API, "ResourceSync", n, "rs"))?.metadata?.managedFields ?? [];
      // the test applied the ResourceSync; every other write of it was the controller's status patch
      const writes = managed
        .filter((m) => m.manager !== "e2e-test")
        .map((m) => `${m.operation} ${m.subresource ?? ""}`);
      assert.deepEqual(
        writes,
        ["Update status"],
        "Sinker wrote the status only, never the ResourceSync itself",
      );

      await a.delete(RS_API, "ResourceSync", n, "rs");
      await a.waitGone(RS_API, "ResourceSync", n, "rs");
      await a.waitGone("v1", "ConfigMap", n, "dst");
    } finally {
      await ctrl.stop();
    }
  });
});
