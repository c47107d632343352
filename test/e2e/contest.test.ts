/**
 * Contests and rings (docs/spec/resourcesync.md#contests-and-rings) against the real control plane: a second field
 * manager that keeps flipping a key of the target is detected (TargetContested, an Event naming it, a metric),
 * Sinker's writes are bounded while it lasts, and drift is repaired at once again after it stops; a ring of two
 * ResourceSyncs (clone, and mapping) settles after one user edit with a handful of writes and keeps the user's
 * value.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  createRing,
  editRing,
  FLIPPER,
  readyOf,
  settled,
  sinkerWrites,
  startFlipper,
} from "../../bench/support/contest-scenario.ts";
import { waitFor } from "../controlplane/testenv.ts";
import {
  cmRef,
  configMap,
  deleteResourceSyncs,
  resourceSync,
  type TestController,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";

/** The file's own suite: cluster a and the namespaces of the tests outside a `describe` with a controller. */
const top = useSuite();
const { a } = top;

async function metric(ctrl: TestController, name: string): Promise<number> {
  const m = await ctrl.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.reduce((sum, v) => sum + v.value, 0) ?? Number.NaN;
}

async function events(
  n: string,
  name: string,
): Promise<Array<{ reason?: string; type?: string; message?: string }>> {
  return (await a.list("v1", "Event", n)).filter(
    (e) => (e.involvedObject as { name?: string }).name === name,
  ) as Array<{ reason?: string; type?: string; message?: string }>;
}

describe("a writer contest", () => {
  const requests = new Map<string, number>();
  const suite = useSuite({ controller: { requests } });

  it("is detected, named, backed off, and ends when the other writer stops", {
    timeout: 300_000,
  }, async () => {
    const n = await suite.ns("a", "contest");
    await a.apply(configMap(n, "src", { k: "ours", other: "x" }));
    await a.apply(resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst") }));
    await waitReady(a, n, "rs", "True", undefined, 60_000);

    const flipper = startFlipper(a, n, "dst", "k", "theirs");
    let stopped = false;
    try {
      const ready = await waitReady(a, n, "rs", "False", "TargetContested", 60_000);
      assert.match(ready.message, /field manager "flipper"/);
      const warning = await waitFor(
        "a TargetContested Event",
        async () =>
          (await events(n, "rs")).find((e) => e.reason === "TargetContested" && e.type === "Warning"),
        { timeoutMs: 30_000 },
      );
      assert.match(warning.message ?? "", new RegExp(`"${FLIPPER}"`));
      assert.equal(await metric(suite.controller, "sinker_contested_resourcesyncs"), 1);

      // Once detected, each repair waits a growing delay: two more repairs take seconds, and the flipper, which
      // flips only after a write of Sinker's, flips about as often.
      const repairs = await metric(suite.controller, "sinker_drift_repairs_total");
      const flipsBefore = flipper.flips();
      const writesBefore = sinkerWrites(requests);
      await waitFor(
        "two more (delayed) repairs",
        async () => (await metric(suite.controller, "sinker_drift_repairs_total")) >= repairs + 2,
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      const writes = sinkerWrites(requests) - writesBefore;
      const flips = flipper.flips() - flipsBefore;
      assert.ok(writes <= 4, `Sinker's writes while contested: ${writes}`);
      assert.ok(flips <= 5, `flips while contested: ${flips}`);
      assert.equal((await readyOf(a, n, "rs")).reason, "TargetContested", "still reported while it lasts");

      await flipper.stop();
      stopped = true;
      await waitReady(a, n, "rs", "True", "Synced", 120_000);
      assert.equal((await a.get("v1", "ConfigMap", n, "dst"))?.data?.k, "ours");
      assert.equal(await metric(suite.controller, "sinker_contested_resourcesyncs"), 0);
      assert.ok((await events(n, "rs")).some((e) => e.reason === "Synced" && e.type === "Normal"));

      // Drift is repaired at once again: one edit, one repair, Ready stays True.
      const repairsAfter = await metric(suite.controller, "sinker_drift_repairs_total");
      await a.mergePatch("v1", "ConfigMap", n, "dst", { data: { k: "hand" } });
      await a.waitFor(
        "the drift repaired",
        "v1",
        "ConfigMap",
        n,
        "dst",
        (o) => o?.data?.k === "ours",
        30_000,
      );
      // (the count follows the apply's answer, which may come after the test's watch saw the repaired value)
      await waitFor(
        "the repair counted",
        async () => (await metric(suite.controller, "sinker_drift_repairs_total")) >= repairsAfter + 1,
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.equal(await metric(suite.controller, "sinker_drift_repairs_total"), repairsAfter + 1);
      assert.deepEqual(await readyOf(a, n, "rs").then((r) => [r.status, r.reason]), ["True", "Synced"]);
    } finally {
      if (!stopped) await flipper.stop();
    }
  });
});

describe("a ring of two ResourceSyncs", () => {
  const requests = new Map<string, number>();
  const suite = useSuite({ controller: { requests } });

  for (const kind of ["clone", "mapping"] as const) {
    it(`${kind}: one edit settles with a handful of writes and the user's value survives`, {
      timeout: 300_000,
    }, async () => {
      const n = await suite.ns("a", `ring-${kind}`);
      await createRing(a, n, kind);
      await settled(() => sinkerWrites(requests), 2_000);
      for (let edit = 0; edit < 3; edit++) {
        const r = await editRing(a, n, kind, () => sinkerWrites(requests), edit);
        assert.equal(r.cm1, `e${edit}`, `edit ${edit}: the user's value on cm1`);
        assert.equal(r.cm2, `e${edit}`, `edit ${edit}: carried to cm2`);
        assert.equal(r.reverted, false, `edit ${edit}: cm1 was never seen reverted`);
        assert.ok(r.writes <= 3, `edit ${edit}: Sinker's writes after one edit: ${r.writes}`);
      }
      assert.deepEqual(await readyOf(a, n, "a").then((r) => [r.status, r.reason]), ["True", "Synced"]);
      assert.deepEqual(await readyOf(a, n, "b").then((r) => [r.status, r.reason]), ["True", "Synced"]);
    });
  }
});

describe("a ring of three ResourceSyncs", () => {
  const requests = new Map<string, number>();
  const suite = useSuite({ controller: { requests } });

  it("cm1 → cm2 → cm3 → cm1: an edit of cm1 goes round once and stays", { timeout: 300_000 }, async () => {
    const n = await suite.ns("a", "ring-three");
    await a.apply(configMap(n, "cm1", { x: "1" }));
    await a.apply(resourceSync(n, "a", { source: cmRef("cm1"), target: cmRef("cm2") }));
    await a.apply(resourceSync(n, "c", { source: cmRef("cm2"), target: cmRef("cm3") }));
    await waitReady(a, n, "a", "True", undefined, 60_000);
    await waitReady(a, n, "c", "True", undefined, 60_000);
    await a.apply(
      resourceSync(
        n,
        "b",
        { source: cmRef("cm3"), target: cmRef("cm1") },
        { "sinker.influxdata.io/adopt-target": "true" },
      ),
    );
    await waitReady(a, n, "b", "True", undefined, 60_000);
    await settled(() => sinkerWrites(requests), 2_000);
    const before = sinkerWrites(requests);
    await a.mergePatch("v1", "ConfigMap", n, "cm1", { data: { x: "2" } });
    await a.waitFor("cm3 to hold the edit", "v1", "ConfigMap", n, "cm3", (o) => o?.data?.x === "2", 60_000);
    const writes = (await settled(() => sinkerWrites(requests), 3_000)) - before;
    assert.ok(writes <= 3, `Sinker's writes after one edit: ${writes}`);
    for (const cm of ["cm1", "cm2", "cm3"])
      assert.equal((await a.get("v1", "ConfigMap", n, cm))?.data?.x, "2", `${cm} holds the user's value`);
  });
});

describe("a writer contest across a restart", () => {
  it("stays reported and backed off: the status, not memory, says it is contested", {
    timeout: 300_000,
  }, async () => {
    const n = await top.ns("a", "contest-restart");
    await a.apply(configMap(n, "src", { k: "ours" }));
    await a.apply(resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst") }));
    let ctrl = await top.startController();
    await waitReady(a, n, "rs", "True", undefined, 60_000);
    const flipper = startFlipper(a, n, "dst", "k", "theirs");
    try {
      await waitReady(a, n, "rs", "False", "TargetContested", 60_000);
      await ctrl.stop();

      const requests = new Map<string, number>();
      ctrl = await top.startController({ requests });
      // The new process applies once, finds it undone, and goes on with back-off: two repairs take seconds.
      let sawSynced = false;
      await waitFor(
        "two repairs by the new process",
        async () => {
          if ((await readyOf(a, n, "rs")).reason !== "TargetContested") sawSynced = true;
          return (await metric(ctrl, "sinker_drift_repairs_total")) >= 2;
        },
        { timeoutMs: 90_000, intervalMs: 200 },
      );
      assert.equal(sawSynced, false, "the ResourceSync was reported contested throughout");
      // (a first success records no Synced Event: one now would be a recovery reported by the new process)
      assert.deepEqual(
        (await events(n, "rs")).filter((e) => e.reason === "Synced"),
        [],
        "no recovery was reported in between",
      );
      const writes = sinkerWrites(requests);
      assert.ok(writes <= 4, `the new process's writes: ${writes}`);
      assert.equal(await metric(ctrl, "sinker_contested_resourcesyncs"), 1);
    } finally {
      await flipper.stop();
      await deleteResourceSyncs(a, [n]).catch(() => undefined);
      await ctrl.stop();
    }
  });
});
