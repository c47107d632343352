/** The table of ResourceSyncs, printed after each step and refreshed live until Ctrl-C. */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { repoRoot } from "../../test/controlplane/testenv.ts";
import { env, get, kubectl, listSyncs, type Obj, type Ref, ready } from "./cluster.ts";
import { NS, RS_API } from "./constants.ts";
import { active, Failure } from "./interrupt.ts";
import { bold, dim, green, red, rel, say, step, tty } from "./output.ts";
import { adminPort, controller, logFile, logTail } from "./supervision.ts";

// The table of ResourceSyncs

export function describeRef(ref: Ref | undefined): string {
  const r = ref?.resourceRef;
  const where = ref?.cluster ? ` @${ref.cluster.kubeConfig?.secretRef?.name ?? "remote"}` : "";
  return `${r?.kind ?? "?"}/${r?.name ?? "?"}${where}`;
}

export function table(
  syncs: Obj[],
  readyAfter: Map<string, number>,
  written?: Map<string, string>,
): string[] {
  const head = [
    "RESOURCESYNC",
    "SOURCE",
    "TARGET",
    "READY",
    "REASON",
    ...(readyAfter.size > 0 ? ["READY AFTER"] : []),
    ...(written ? ["TARGET WRITTEN"] : []),
  ];
  const rows = syncs.map((rs) => {
    const c = ready(rs);
    const name = rs.metadata?.name ?? "";
    const after = readyAfter.get(name);
    return [
      name,
      describeRef(rs.spec?.source),
      describeRef(rs.spec?.target),
      rs.metadata?.deletionTimestamp ? "Deleting" : (c?.status ?? "-"),
      c?.reason ?? "",
      ...(readyAfter.size > 0 ? [after === undefined ? "" : ms(after)] : []),
      ...(written ? [written.get(name) ?? ""] : []),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const lines = [head, ...rows].map((r) =>
    r
      .map((cell, i) => {
        const padded = cell.padEnd(widths[i] ?? 0);
        if (i !== 3) return padded;
        return cell === "True" ? green(padded) : cell === "False" ? red(padded) : padded;
      })
      .join("  ")
      .trimEnd(),
  );
  for (const rs of syncs) {
    const c = ready(rs);
    if (c && c.status !== "True") lines.push(red(`  ${rs.metadata?.name}: ${c.message}`.slice(0, 160)));
  }
  return lines;
}

export const PLURALS: Record<string, string> = {
  ConfigMap: "configmaps",
  Secret: "secrets",
  SinkerContainer: "sinkercontainers",
};

/** When Sinker last changed each ResourceSync's target (its managedFields entry, 1 s resolution), or "absent". */
export async function targetsWritten(syncs: Obj[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    syncs.map(async (rs) => {
      const t = rs.spec?.target;
      const kind = t?.resourceRef?.kind ?? "";
      const plural = PLURALS[kind];
      if (!plural || !t?.resourceRef?.name) return;
      if (t.cluster && t.cluster.kubeConfig?.secretRef?.name !== "cluster-b") return; // not one of the demo's clusters
      const group = kind === "SinkerContainer" ? RS_API : "/api/v1";
      const cluster = t.cluster ? "b" : "a"; // in this demo, every remote reference is cluster b
      const ns = t.cluster ? (t.cluster.namespace ?? "default") : NS;
      const o = await get(cluster, `${group}/namespaces/${ns}/${plural}/${t.resourceRef.name}`).catch(
        () => null,
      );
      if (o === null) return;
      if (o === undefined) {
        out.set(rs.metadata?.name ?? "", "absent");
        return;
      }
      const entry = o.metadata?.managedFields?.find((f) => f.manager === "sinker.influxdata.io");
      const at = entry?.time ? Date.parse(entry.time) : Number.NaN;
      out.set(
        rs.metadata?.name ?? "",
        Number.isNaN(at) ? "never" : `${Math.max(0, Math.round((Date.now() - at) / 1000))} s ago`,
      );
    }),
  );
  return out;
}

export function ms(v: number): string {
  return `${Math.round(v)} ms`;
}

// The live view

export async function live(): Promise<void> {
  step("Re-applying examples/ so that every ResourceSync is there to play with");
  await kubectl("a", ["-n", NS, "apply", "-f", rel(join(repoRoot, "examples"))]);

  const kc = env.kubectlPath;
  const ka = env.kubeconfigPath("a");
  const kb = env.kubeconfigPath("b");
  step("Poke at it (in another terminal)");
  say(`kubeconfigs: cluster a ${ka}`);
  say(`             cluster b ${kb}`);
  say(`kubectl:     ${kc}`);
  say(`controller:  pid ${controller?.pid}, log ${logFile()}, metrics http://127.0.0.1:${adminPort}/metrics`);
  say();
  say(`  alias ka='${kc} --kubeconfig ${ka}' kb='${kc} --kubeconfig ${kb}'`);
  say(`  ka -n ${NS} get rsync                                  # the ResourceSyncs (short name rsync)`);
  say(`  ka -n ${NS} patch configmap app-settings --type merge -p '{"data":{"greeting":"hi"}}'`);
  say(`  ka -n ${NS} get configmap app-settings-copy -o yaml    # follows the source`);
  say(`  kb -n ${NS} delete configmap unpacked-config           # comes back at once`);
  say(`  kb -n ${NS} edit configmap remote-demo                 # change data.foo: demo-mapped in a follows`);
  say(`  ka -n ${NS} describe rsync mappings-from-cluster-b     # conditions and Events`);
  say(`  ka -n ${NS} delete rsync clone-in-cluster              # deletes app-settings-copy too`);
  say();
  say(bold("Live ResourceSyncs in namespace demo of cluster a (Ctrl-C to stop and clean up):"));
  say(dim("(TARGET WRITTEN: when Sinker last changed the target, from its managedFields entry)"));

  let drawn = 0;
  let last = "";
  while (!active.aborted) {
    if (controller && (controller.exitCode !== null || controller.signalCode !== null)) {
      say(
        red(
          `the controller exited (${controller.exitCode ?? controller.signalCode}); last lines of its log:`,
        ),
      );
      say(logTail());
      throw new Failure("the controller exited");
    }
    let lines: string[];
    try {
      const syncs = await listSyncs();
      lines = table(syncs, new Map(), await targetsWritten(syncs));
    } catch (err) {
      lines = [red(`cannot list ResourceSyncs: ${(err as Error).message}`)];
    }
    if (lines.length === 1) lines.push(dim("(none: `ka -n demo apply -f examples/` brings them back)"));
    const text = lines.join("\n");
    if (tty) {
      if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[0J`);
      const stamp = dim(`updated ${new Date().toISOString().slice(11, 19)} UTC`);
      process.stdout.write(`${text}\n${stamp}\n`);
      drawn = lines.length + 1;
    } else if (text !== last) {
      say(text);
      say();
    }
    last = text;
    await sleep(1000, undefined, { signal: active }).catch(() => {});
  }
}
