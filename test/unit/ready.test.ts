/**
 * /ready of the real `sinker` process (bin/sinker.js) against a fake API server whose ResourceSync list the test
 * holds back: 503 before the initial list, 200 after, and a clean exit on SIGTERM.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { stringify } from "yaml";
import { Sinker } from "../support/sinker-process.ts";

const GROUP_PATH = "/apis/sinker.influxdata.io/v1alpha1";

let server: Server;
let dir: string;
let kubeconfig: string;
let releaseList: () => void = () => {};
const listReleased = new Promise<void>((r) => {
  releaseList = r;
});
const openWatches = new Set<ServerResponse>();

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? "/", "http://x");
  if (url.pathname === GROUP_PATH) {
    return json(res, 200, {
      kind: "APIResourceList",
      groupVersion: "sinker.influxdata.io/v1alpha1",
      resources: [
        { name: "resourcesyncs", kind: "ResourceSync", namespaced: true, verbs: ["list", "watch"] },
      ],
    });
  }
  if (url.pathname === `${GROUP_PATH}/resourcesyncs`) {
    if (url.searchParams.get("watch") === "true") {
      res.writeHead(200, { "content-type": "application/json" });
      res.flushHeaders();
      openWatches.add(res);
      res.on("close", () => openWatches.delete(res));
      return;
    }
    // The start-up check lists one item at once; the informer's initial list waits for the test.
    if (url.searchParams.get("limit") !== "1") await listReleased;
    return json(res, 200, {
      kind: "ResourceSyncList",
      apiVersion: "v1",
      metadata: { resourceVersion: "7" },
      items: [],
    });
  }
  return json(res, 404, { kind: "Status", status: "Failure", message: "not found", code: 404 });
}

before(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  dir = mkdtempSync(join(tmpdir(), "sinker-ready-"));
  kubeconfig = join(dir, "kubeconfig");
  writeFileSync(
    kubeconfig,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [
        { name: "fake", cluster: { server: `http://127.0.0.1:${port}`, "insecure-skip-tls-verify": true } },
      ],
      users: [{ name: "fake", user: { token: "t" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "fake" } }],
      "current-context": "fake",
    }),
  );
});

after(async () => {
  releaseList();
  for (const w of openWatches) w.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

it("/ready is 503 until the initial ResourceSync list is in, then 200; SIGTERM exits 0", async () => {
  const sinker = new Sinker([
    "--kubeconfig",
    kubeconfig,
    "--admin-addr",
    "127.0.0.1:0",
    "--log-format",
    "json",
  ]);
  try {
    const base = await sinker.adminUrl();
    const deadline = Date.now() + 60_000; // generous: a loaded machine
    // Still waiting for the list: live, not ready, and it stays so.
    for (let i = 0; i < 5; i++) {
      assert.equal((await fetch(`${base}/ready`)).status, 503);
      assert.equal((await fetch(`${base}/live`)).status, 200);
      await new Promise((r) => setTimeout(r, 100));
    }
    releaseList();
    let status = 0;
    while (status !== 200) {
      assert.ok(Date.now() < deadline, "ready after the list");
      status = (await fetch(`${base}/ready`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    const exit = await sinker.terminate();
    assert.equal(exit.code, 0, sinker.stderr);
  }
  assert.ok(sinker.hasLog((r) => r.msg === "controller stopped"));
  assert.equal(openWatches.size, 0, "the ResourceSync watch is closed");
});
