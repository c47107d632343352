// The node tier's way to the API servers: each test node lives in a network namespace of its own (so two
// host-network Sinker pods can both listen on the admin port), where 127.0.0.1 is not the host's. This process,
// started in the host's namespace, has a helper listen on 127.0.0.1:<port> inside each node namespace (the same
// ports as the API servers, so kubeconfigs and certificates stay valid) and hand the listening sockets back; it
// then forwards every connection to 127.0.0.1:<port> of the host. Traffic stays on loopback interfaces.
//
//   node test/node/bridge.ts <netns path>[,<netns path>...] <port>[,<port>...]
import { spawn } from "node:child_process";
import net from "node:net";

function listenHelper(port: number): void {
  const server = net.createServer();
  server.listen(port, "127.0.0.1", () => {
    process.send?.({ port }, server, () => process.exit(0));
  });
}

function forward(server: net.Server, port: number): void {
  server.on("connection", (inbound) => {
    const outbound = net.connect(port, "127.0.0.1");
    inbound.pipe(outbound).pipe(inbound);
    inbound.on("error", () => outbound.destroy());
    outbound.on("error", () => inbound.destroy());
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
}

function bridge(netns: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "nsenter",
      [`--net=${netns}`, "--", process.execPath, import.meta.filename, "--listen", String(port)],
      { stdio: ["ignore", "inherit", "inherit", "ipc"] },
    );
    child.on("error", reject);
    child.on("message", (_m, handle) => {
      forward(handle as net.Server, port);
      resolve();
    });
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`listening on 127.0.0.1:${port} in ${netns} failed (exit ${code})`));
    });
  });
}

if (process.argv[2] === "--listen") {
  listenHelper(Number(process.argv[3]));
} else {
  const namespaces = (process.argv[2] ?? "").split(",").filter((s) => s !== "");
  const ports = (process.argv[3] ?? "").split(",").map(Number);
  try {
    for (const ns of namespaces) for (const p of ports) await bridge(ns, p);
    process.stdout.write(`bridging ${ports.join(", ")} into ${namespaces.join(", ")}\n`);
  } catch (err) {
    process.stderr.write(`bridge: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
