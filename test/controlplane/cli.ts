// npm run testenv -- up | down | status | stop b | start b
import { type ClusterName, clusterNames, down, startCluster, status, stopCluster, up } from "./testenv.ts";

const usage = `usage: npm run testenv -- <command>
  up          build the binaries if needed, start etcd + clusters a and b (no-op when already up)
  up --node   also the node tier: two kubelet nodes (containerd, runc) joined to cluster a, a scheduler,
              and the workload controllers (test/node/nodes.ts; needs root, podman and containerd)
  down        stop every process started by up and remove .testenv/
  status      show processes, ports, memory, readiness (exit 1 when not healthy)
  stop <a|b>  stop one cluster's kube-apiserver and kube-controller-manager
  start <a|b> start it again (same port and certificates, so the kubeconfigs stay valid)`;

function clusterArg(arg: string | undefined): ClusterName {
  if (arg === "a" || arg === "b") return arg;
  throw new Error(
    `expected a cluster name (${clusterNames.join(" or ")}), got ${arg ?? "nothing"}\n${usage}`,
  );
}

async function printStatus(): Promise<boolean> {
  const st = await status();
  if (!st.state) {
    process.stdout.write(`not up (no ${st.dir}/state.json)\n`);
    return false;
  }
  const rows = st.processes.map((p) => [
    p.name,
    p.pid === null ? "-" : String(p.pid),
    p.alive ? "running" : p.pid === null ? "stopped" : "DEAD",
    p.port === null ? "" : String(p.port),
    p.rssMiB === null ? "" : `${p.rssMiB} MiB`,
  ]);
  const head = ["PROCESS", "PID", "STATE", "PORT", "RSS"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  for (const r of [head, ...rows]) {
    process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")}\n`);
  }
  const total = st.processes.reduce((sum, p) => sum + (p.rssMiB ?? 0), 0);
  process.stdout.write(`total RSS ${total.toFixed(1)} MiB\n`);
  for (const n of clusterNames) process.stdout.write(`cluster ${n}: ${st.clusters[n]}\n`);
  for (const [name, path] of Object.entries(st.state.kubeconfigs)) {
    process.stdout.write(`kubeconfig ${name}: ${path}\n`);
  }
  process.stdout.write(`kubectl: ${st.state.binDir}/kubectl\nlogs: ${st.dir}/logs/\n`);
  return st.healthy;
}

process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
});

async function main(argv: string[]): Promise<number> {
  const [cmd, arg] = argv;
  switch (cmd) {
    case "up": {
      const r = await up({ node: arg === "--node" });
      process.stdout.write(
        `${r.started ? "started" : "already up"}; try:\n  ${r.env.kubectlPath} --kubeconfig ${r.env.kubeconfigPath("a")} get ns\n`,
      );
      return 0;
    }
    case "down":
      await down();
      return 0;
    case "status":
      return (await printStatus()) ? 0 : 1;
    case "stop":
      await stopCluster(clusterArg(arg));
      return 0;
    case "start":
      await startCluster(clusterArg(arg));
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`);
      return cmd === undefined ? 1 : 0;
    default:
      process.stderr.write(`unknown command ${cmd}\n${usage}\n`);
      return 1;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`testenv: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
