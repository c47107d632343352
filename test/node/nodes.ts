// The node tier: real nodes joined to cluster a of the test control plane. Each node is a network namespace made
// here (loopback only, plus one documentation-range address on it as the node's IP), a containerd with runc and a
// kubelet, both started inside it. Pods run on the node's host network, so two Sinker pods on two nodes can both
// listen on the admin port; bridge.ts carries the API servers' ports into each namespace. A kube-scheduler binds
// the pods. State in .testenv/node/state.json; `npm run testenv -- up --node` starts it, `down` stops it.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  ensureRunning,
  isAlive,
  type ProcState,
  repoRoot,
  runCmd,
  type State,
  startProcess,
  stopProcess,
  tail,
  waitFor,
} from "../controlplane/testenv.ts";
import { ensureNodeBinaries } from "./build.ts";
import { ensurePauseArchive } from "./image.ts";

type Log = (msg: string) => void;

export const NODE_COUNT = 2;
/** The image every pod sandbox runs (test/node/pause, imported into each node's containerd). */
export const PAUSE_IMAGE = "localhost/sinker-pause:1";

export type NodeState = {
  name: string;
  netns: string;
  ip: string;
  dir: string;
  runDir: string;
  socket: string;
  containerd: ProcState | null;
  kubelet: ProcState | null;
};

export type NodeTierState = {
  version: 1;
  dir: string;
  binDir: string;
  nodes: NodeState[];
  bridge: ProcState | null;
  scheduler: ProcState | null;
  complete: boolean;
};

function tierDir(envDir: string): string {
  return join(envDir, "node");
}

function statePath(envDir: string): string {
  return join(tierDir(envDir), "state.json");
}

export function readNodeState(envDir: string): NodeTierState | null {
  const p = statePath(envDir);
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, "utf8")) as NodeTierState;
  } catch {
    return null;
  }
}

function writeNodeState(envDir: string, s: NodeTierState): void {
  const p = statePath(envDir);
  writeFileSync(`${p}.tmp`, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(`${p}.tmp`, p);
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await runCmd(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function containerdConfig(n: NodeState): string {
  const cri = {
    sandbox_image: PAUSE_IMAGE,
    // Without it every sandbox fails with runc's "can't get final child's PID from pipe: EOF" on this kind of
    // machine (the kernel refuses the OOM score adjustment containerd asks for).
    restrict_oom_score_adj: true,
    stream_server_address: "127.0.0.1",
    stream_server_port: "0",
    enable_selinux: false,
    containerd: {
      snapshotter: "overlayfs",
      default_runtime_name: "runc",
      runtimes: {
        runc: { runtime_type: "io.containerd.runc.v2", options: { SystemdCgroup: false } },
      },
    },
    cni: { bin_dir: "/usr/lib/cni", conf_dir: join(n.dir, "cni") },
  };
  const lines = [
    "version = 2",
    `root = ${JSON.stringify(join(n.dir, "containerd"))}`,
    `state = ${JSON.stringify(join(n.runDir, "state"))}`,
    "[grpc]",
    `  address = ${JSON.stringify(n.socket)}`,
    "[ttrpc]",
    `  address = ${JSON.stringify(join(n.runDir, "ttrpc.sock"))}`,
    "[debug]",
    '  address = ""',
    "[metrics]",
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(n.dir, "opt"))}`,
    '[plugins."io.containerd.grpc.v1.cri"]',
    ...tomlTable(cri, 'plugins."io.containerd.grpc.v1.cri"'),
  ];
  return `${lines.join("\n")}\n`;
}

/** Just enough TOML for containerdConfig: scalars first, then nested tables. */
function tomlTable(obj: Record<string, unknown>, path: string): string[] {
  const out: string[] = [];
  const nested: Array<[string, Record<string, unknown>]> = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v !== null && typeof v === "object") nested.push([k, v as Record<string, unknown>]);
    else out.push(`  ${k} = ${JSON.stringify(v)}`);
  }
  for (const [k, v] of nested) {
    const p = `${path}.${k}`;
    out.push(`[${p}]`, ...tomlTable(v, p));
  }
  return out;
}

function kubeletConfig(n: NodeState): string {
  return stringify({
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${n.socket}`,
    address: "127.0.0.1",
    healthzBindAddress: "127.0.0.1",
    readOnlyPort: 0,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false } },
    authorization: { mode: "AlwaysAllow" },
    resolvConf: "",
    evictionHard: {},
    localStorageCapacityIsolation: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    podLogsDir: join(n.dir, "pod-logs"),
    // Pods are synced (and their projected token volumes refreshed) every 10 s instead of every minute.
    syncFrequency: "10s",
    nodeStatusUpdateFrequency: "5s",
    serializeImagePulls: false,
  });
}

function newState(s: State, binDir: string): NodeTierState {
  const h = createHash("sha256").update(s.dir).digest("hex").slice(0, 8);
  const dir = tierDir(s.dir);
  const nodes: NodeState[] = [];
  for (let i = 1; i <= NODE_COUNT; i++) {
    const runDir = join(tmpdir(), `sinker-node-${h}-${i}`);
    nodes.push({
      name: `sinker-node-${i}`,
      netns: `sinker-${h}-n${i}`,
      // TEST-NET-1 (RFC 5737): never routed, and only ever on the loopback interface of the node's namespace.
      ip: `192.0.2.${i}`,
      dir: join(dir, `n${i}`),
      runDir,
      socket: join(runDir, "containerd.sock"),
      containerd: null,
      kubelet: null,
    });
  }
  return { version: 1, dir, binDir, nodes, bridge: null, scheduler: null, complete: false };
}

async function makeNetns(n: NodeState): Promise<void> {
  await runCmd("ip", ["netns", "del", n.netns]);
  await must("ip", ["netns", "add", n.netns]);
  await must("ip", ["-n", n.netns, "link", "set", "lo", "up"]);
  await must("ip", ["-n", n.netns, "addr", "add", `${n.ip}/32`, "dev", "lo"]);
}

function inNetns(n: NodeState, bin: string, args: string[], log: string): ProcState {
  // nsenter execs the program: the recorded PID is the program's own.
  const p = startProcess("nsenter", [`--net=/run/netns/${n.netns}`, "--", bin, ...args], log);
  return { ...p, bin, args };
}

async function startNode(s: State, t: NodeTierState, n: NodeState, pauseTar: string): Promise<void> {
  for (const d of [n.dir, n.runDir, join(n.dir, "cni"), join(n.dir, "kubelet")])
    mkdirSync(d, { recursive: true });
  writeFileSync(
    join(n.dir, "cni", "10-loopback.conflist"),
    JSON.stringify({ cniVersion: "1.0.0", name: "sinker-loopback", plugins: [{ type: "loopback" }] }),
  );
  writeFileSync(join(n.dir, "containerd.toml"), containerdConfig(n));
  writeFileSync(join(n.dir, "kubelet.yaml"), kubeletConfig(n));
  const logs = join(s.dir, "logs");
  n.containerd = inNetns(
    n,
    "/usr/bin/containerd",
    ["--config", join(n.dir, "containerd.toml")],
    join(logs, `containerd-${n.name}.log`),
  );
  writeNodeState(s.dir, t);
  const proc = n.containerd;
  await waitFor(`containerd of ${n.name}`, async () => {
    ensureRunning(proc, `containerd of ${n.name}`);
    return (await runCmd("ctr", ["--address", n.socket, "version"])).code === 0;
  });
  await importImage(n, pauseTar);
  n.kubelet = inNetns(
    n,
    join(t.binDir, "kubelet"),
    [
      `--config=${join(n.dir, "kubelet.yaml")}`,
      `--kubeconfig=${s.kubeconfigs.a}`,
      `--hostname-override=${n.name}`,
      `--node-ip=${n.ip}`,
      `--root-dir=${join(n.dir, "kubelet")}`,
      "--v=1",
    ],
    join(logs, `kubelet-${n.name}.log`),
  );
  writeNodeState(s.dir, t);
}

/** Imports an image archive (docker-archive or OCI) into a node's containerd, where the kubelet finds it. */
export async function importImage(n: NodeState, archive: string): Promise<void> {
  await must("ctr", ["--address", n.socket, "-n", "k8s.io", "images", "import", "--no-unpack", archive]);
}

function schedulerArgs(s: State): string[] {
  return [`--kubeconfig=${s.kubeconfigs.a}`, "--leader-elect=false", "--secure-port=0", "--profiling=false"];
}

async function nodeReady(s: State, name: string): Promise<boolean> {
  const r = await runCmd(join(s.binDir, "kubectl"), [
    `--kubeconfig=${s.kubeconfigs.a}`,
    "get",
    "node",
    name,
    "-o",
    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
  ]);
  return r.code === 0 && r.stdout.trim() === "True";
}

/** Starts the scheduler, the bridge and the nodes (no-op for the parts already running); waits for Ready nodes. */
export async function startNodeTier(s: State, log: Log): Promise<NodeTierState> {
  const existing = readNodeState(s.dir);
  if (existing?.complete && nodeTierHealthy(existing)) {
    if (await allReady(s, existing)) return existing;
  }
  if (existing) await stopNodeTier(s.dir, log);
  const t0 = Date.now();
  const { binDir } = await ensureNodeBinaries({ quiet: true });
  const pauseTar = await ensurePauseArchive(join(binDir, "pause"), PAUSE_IMAGE);
  const t = newState(s, binDir);
  mkdirSync(t.dir, { recursive: true });
  writeNodeState(s.dir, t);
  try {
    const logs = join(s.dir, "logs");
    t.scheduler = startProcess(
      join(binDir, "kube-scheduler"),
      schedulerArgs(s),
      join(logs, "kube-scheduler.log"),
    );
    writeNodeState(s.dir, t);
    for (const n of t.nodes) await makeNetns(n);
    const ports = [s.clusters.a.port, s.clusters.b.port].join(",");
    const nsPaths = t.nodes.map((n) => `/run/netns/${n.netns}`).join(",");
    t.bridge = startProcess(
      process.execPath,
      [join(repoRoot, "test", "node", "bridge.ts"), nsPaths, ports],
      join(logs, "node-bridge.log"),
    );
    writeNodeState(s.dir, t);
    const bridge = t.bridge;
    await waitFor("the bridge into the node namespaces", () => {
      ensureRunning(bridge, "node bridge");
      return readFileSync(bridge.log, "utf8").includes("bridging");
    });
    for (const n of t.nodes) await startNode(s, t, n, pauseTar);
    for (const n of t.nodes) {
      const kubelet = n.kubelet as ProcState;
      await waitFor(
        `node ${n.name} Ready`,
        async () => {
          ensureRunning(kubelet, `kubelet of ${n.name}`);
          return nodeReady(s, n.name);
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nlast lines of ${kubelet.log}:\n${tail(kubelet.log)}`);
      });
    }
  } catch (err) {
    log(`node tier start-up failed; stopping what was started (logs kept in ${join(s.dir, "logs")})`);
    await stopNodeTier(s.dir, log);
    throw err;
  }
  t.complete = true;
  writeNodeState(s.dir, t);
  log(
    `node tier up: ${t.nodes.map((n) => n.name).join(", ")} Ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return t;
}

async function allReady(s: State, t: NodeTierState): Promise<boolean> {
  for (const n of t.nodes) if (!(await nodeReady(s, n.name))) return false;
  return true;
}

export function nodeTierHealthy(t: NodeTierState): boolean {
  const procs = [t.bridge, t.scheduler, ...t.nodes.flatMap((n) => [n.containerd, n.kubelet])];
  return procs.every((p) => p !== null && isAlive(p.pid, p.bin));
}

/** Every process recorded for the node tier, for `testenv status`. */
export function nodeTierProcesses(t: NodeTierState): Array<{ name: string; proc: ProcState | null }> {
  return [
    { name: "kube-scheduler", proc: t.scheduler },
    { name: "node-bridge", proc: t.bridge },
    ...t.nodes.flatMap((n) => [
      { name: `containerd-${n.name}`, proc: n.containerd },
      { name: `kubelet-${n.name}`, proc: n.kubelet },
    ]),
  ];
}

async function netnsPids(netns: string): Promise<number[]> {
  const r = await runCmd("ip", ["netns", "pids", netns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((p) => p > 0);
}

/** Mount points under `dir` (deepest first), from this process's mount table. */
function mountsUnder(dirs: string[]): string[] {
  const text = readFileSync("/proc/self/mountinfo", "utf8");
  const points = text
    .split("\n")
    .map((l) => (l.split(" ")[4] ?? "").replace(/\\040/g, " "))
    .filter((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`)));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

async function stopNode(n: NodeState, log: Log): Promise<void> {
  // The kubelet first (it would restart what is killed), then every task containerd runs, then containerd.
  await stopProcess(n.kubelet);
  if (n.containerd && isAlive(n.containerd.pid, n.containerd.bin)) {
    const r = await runCmd("ctr", ["--address", n.socket, "-n", "k8s.io", "tasks", "ls", "-q"]);
    for (const id of r.stdout.split("\n").filter((l) => l.trim() !== "")) {
      await runCmd("ctr", [
        "--address",
        n.socket,
        "-n",
        "k8s.io",
        "tasks",
        "kill",
        "-s",
        "SIGKILL",
        id.trim(),
      ]);
    }
  }
  await stopProcess(n.containerd);
  // Whatever is still in the node's namespace (shims, pause and Sinker processes) was started for this node.
  for (const pid of await netnsPids(n.netns)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await waitFor(`the processes of ${n.name} to exit`, async () => (await netnsPids(n.netns)).length === 0, {
    timeoutMs: 30_000,
  }).catch((err: Error) => log(err.message));
  for (const m of mountsUnder([n.dir, n.runDir])) await runCmd("umount", ["-l", m]);
  await runCmd("ip", ["netns", "del", n.netns]);
  rmSync(n.runDir, { recursive: true, force: true });
}

/** Stops every process of the node tier (by PID) and removes its namespaces, mounts and files. */
export async function stopNodeTier(envDir: string, log: Log): Promise<void> {
  const t = readNodeState(envDir);
  if (!t) return;
  for (const n of t.nodes) await stopNode(n, log);
  await stopProcess(t.bridge);
  await stopProcess(t.scheduler);
  rmSync(t.dir, { recursive: true, force: true });
  log("stopped the node tier (kubelets, containerd, pods, scheduler, bridge)");
}
