/**
 * Contest benchmark against the test control plane (`npm run testenv -- up` first), Sinker in this process:
 *  - a second field manager flips a key of Sinker's target as fast as the API server answers: Sinker's writes
 *    per minute before and after the contest is detected, the time to detect it, the time from the flipper's
 *    stop to Ready=True again, and then how long one hand edit takes to be repaired;
 *  - rings of two ResourceSyncs (clone, and mapping data.x → data.y and back): Sinker's writes after each user
 *    edit until they settle, and whether the user's value survived.
 * Printed figures, not a test (test/e2e/bench-contest.test.ts checks that each is printed).
 *
 *   npm run bench:contest -- [--contested-seconds 60] [--edits 3]
 */
import { parseArgs } from "node:util";
import { load } from "../test/controlplane/testenv.ts";
import {
  Cluster,
  cmRef,
  configMap,
  deleteResourceSyncs,
  installCrds,
  resourceSync,
  startTestController,
  waitReady,
} from "../test/e2e/support/cluster.ts";
import {
  createRing,
  editRing,
  type RingKind,
  settled,
  sinkerWrites,
  startFlipper,
} from "./support/contest-scenario.ts";

const { values } = parseArgs({
  options: {
    "contested-seconds": { type: "string", default: "60" },
    edits: { type: "string", default: "3" },
  },
});
const contestedSeconds = Number(values["contested-seconds"]);
const edits = Number(values.edits);
if (!(contestedSeconds > 0) || !Number.isInteger(edits) || edits < 1) {
  process.stderr.write("--contested-seconds must be > 0 and --edits an integer ≥ 1\n");
  process.exit(2);
}

const env = load();
const a = new Cluster(env, "a");
await installCrds(env, "a");
const requests = new Map<string, number>();
const writes = () => sinkerWrites(requests);
const ctrl = await startTestController(env, { requests });
const namespaces: string[] = [];
const out = (line: string) => process.stdout.write(`${line}\n`);
const perMinute = (n: number, ms: number) => ((n / Math.max(ms, 1)) * 60_000).toFixed(0);

try {
  // --- a flipping writer ---
  const n = await env.createNamespace("a", "bench-contest");
  namespaces.push(n);
  await a.apply(configMap(n, "src", { k: "ours" }));
  await a.apply(resourceSync(n, "rs", { source: cmRef("src"), target: cmRef("dst") }));
  await waitReady(a, n, "rs", "True", undefined, 60_000);
  await settled(writes, 1_000);

  const w0 = writes();
  const t0 = Date.now();
  const flipper = startFlipper(a, n, "dst", "k", "theirs");
  await waitReady(a, n, "rs", "False", "TargetContested", 120_000);
  const detectMs = Date.now() - t0;
  const w1 = writes();
  const t1 = Date.now();
  await new Promise((r) => setTimeout(r, contestedSeconds * 1000));
  const w2 = writes();
  const t2 = Date.now();
  await flipper.stop();
  const stoppedAt = Date.now();
  await waitReady(a, n, "rs", "True", "Synced", 600_000);
  const backMs = Date.now() - stoppedAt;
  const t3 = Date.now();
  await a.mergePatch("v1", "ConfigMap", n, "dst", { data: { k: "hand" } });
  await a.waitFor("the drift repaired", "v1", "ConfigMap", n, "dst", (o) => o?.data?.k === "ours", 60_000);
  const repairMs = Date.now() - t3;

  out("a writer flipping one key as fast as it can (field manager flipper):");
  out(`  time to detect (Ready=False TargetContested):   ${detectMs} ms`);
  out(
    `  Sinker's writes before detection:                ${w1 - w0} in ${detectMs} ms (${perMinute(w1 - w0, detectMs)}/min)`,
  );
  out(
    `  Sinker's writes once detected:                   ${w2 - w1} in ${((t2 - t1) / 1000).toFixed(0)} s (${perMinute(w2 - w1, t2 - t1)}/min)`,
  );
  out(`  flips of the other writer in all:                ${flipper.flips()}`);
  out(`  writer stopped → Ready=True again:               ${backMs} ms`);
  out(`  then one hand edit repaired after:               ${repairMs} ms`);

  // --- rings of two ResourceSyncs ---
  for (const kind of ["clone", "mapping"] as RingKind[]) {
    const rn = await env.createNamespace("a", `bench-ring-${kind}`);
    namespaces.push(rn);
    await createRing(a, rn, kind);
    await settled(writes, 2_000);
    const results = [];
    for (let i = 0; i < edits; i++) results.push(await editRing(a, rn, kind, writes, i));
    const kept = results.filter((r, i) => r.cm1 === `e${i}` && r.cm2 === `e${i}` && !r.reverted).length;
    out(`ring of two ResourceSyncs (${kind}), ${edits} user edit(s) of cm1:`);
    out(`  Sinker's writes per edit:                        ${results.map((r) => r.writes).join(", ")}`);
    out(`  user's value kept (never seen reverted):         ${kept} of ${edits}`);
    out(`  edit → settled (3 s without writes included):    ${results.map((r) => r.ms).join(", ")} ms`);
  }
} finally {
  await deleteResourceSyncs(a, namespaces).catch(() => undefined);
  await ctrl.stop();
  for (const ns of namespaces) await env.deleteNamespace("a", ns).catch(() => undefined);
}
