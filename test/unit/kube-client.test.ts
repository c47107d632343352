import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SinkerError } from "../../src/errors.ts";
import {
  apiError,
  ClusterClient,
  parseApiVersion,
  parseWatchLine,
  reasonForStatus,
  transportError,
  type WatchEvent,
  WatchLineDecoder,
} from "../../src/kube/client.ts";
import { FakeApiServer } from "./support/fake-apiserver.ts";

describe("error mapping", () => {
  it("maps HTTP statuses to stable reasons", () => {
    const table: Array<[number, string]> = [
      [400, "BadRequest"],
      [401, "Unauthorized"],
      [403, "Forbidden"],
      [404, "NotFound"],
      [405, "BadRequest"],
      [409, "Conflict"],
      [410, "Gone"],
      [415, "BadRequest"],
      [422, "Invalid"],
      [429, "Throttled"],
      [500, "ClusterUnreachable"],
      [503, "ClusterUnreachable"],
      [504, "ClusterUnreachable"],
    ];
    for (const [status, reason] of table) assert.equal(reasonForStatus(status), reason, `HTTP ${status}`);
  });

  it("carries the API server's Status message and the HTTP status", () => {
    const body = JSON.stringify({
      kind: "Status",
      message: 'configmaps "x" is forbidden: User "bob" cannot get resource "configmaps"',
      code: 403,
    });
    const err = apiError("secret/ns/kc", 403, body, "get configmaps");
    assert.ok(err instanceof SinkerError);
    assert.equal(err.reason, "Forbidden");
    assert.equal(err.status, 403);
    assert.match(err.message, /is forbidden: User "bob" cannot get/);
    assert.match(err.message, /secret\/ns\/kc/);
  });

  it("copes with a body that is not a Status (proxy, load balancer) and keeps it short", () => {
    const err = apiError("local", 502, `<html>${"x".repeat(5000)}</html>`, "list configmaps");
    assert.equal(err.reason, "ClusterUnreachable");
    assert.equal(err.status, 502);
    assert.ok(err.message.length < 400, err.message);
    assert.match(apiError("local", 500, "", "get").message, /HTTP 500/);
  });

  it("turns transport errors into ClusterUnreachable", () => {
    const refused = Object.assign(new Error("fetch failed"), {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
    });
    const e1 = transportError("local", refused, "get configmaps");
    assert.equal(e1.reason, "ClusterUnreachable");
    assert.match(e1.message, /ECONNREFUSED/);
    const e2 = transportError(
      "local",
      Object.assign(new Error("x"), { code: "UND_ERR_HEADERS_TIMEOUT" }),
      "get",
    );
    assert.match(e2.message, /no response headers within the timeout/);
    const original = new SinkerError("Forbidden", "no");
    assert.equal(transportError("local", original, "get"), original);
  });
});

describe("watch line parsing", () => {
  it("parses events, including ERROR Status and BOOKMARK", () => {
    const e = parseWatchLine('{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"a"}}}');
    assert.equal(e.type, "ADDED");
    assert.equal(e.object.metadata?.name, "a");
    const err = parseWatchLine('{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}}');
    assert.equal(err.type, "ERROR");
    assert.equal(err.object.code, 410);
    const bm = parseWatchLine('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}');
    assert.equal(bm.object.metadata?.resourceVersion, "12");
  });

  it("refuses lines that are not events, without echoing them", () => {
    for (const line of [
      '{"type":"ADDED"',
      '{"type":"NOPE","object":{}}',
      '{"object":{}}',
      "[1]",
      '{"type":"ADDED","object":1}',
    ]) {
      assert.throws(
        () => parseWatchLine(line),
        (e: unknown) => e instanceof SinkerError && !e.message.includes(line),
        line,
      );
    }
  });

  it("reassembles lines split across chunks, including inside a multi-byte character", () => {
    const events: WatchEvent[] = [];
    const d = new WatchLineDecoder((e) => events.push(e));
    const text =
      '{"type":"ADDED","object":{"metadata":{"name":"a"},"data":{"k":"ünïcödé €"}}}\n\n' +
      '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\n' +
      '{"type":"DELETED","object":{"metadata":{"name":"b"}}}';
    const bytes = new TextEncoder().encode(text);
    for (let i = 0; i < bytes.length; i += 3) d.write(bytes.subarray(i, i + 3));
    assert.equal(events.length, 2, "the last line has no newline yet");
    d.end();
    assert.deepEqual(
      events.map((e) => e.type),
      ["ADDED", "BOOKMARK", "DELETED"],
    );
    assert.deepEqual(events[0]?.object.data, { k: "ünïcödé €" });
  });
});

describe("watch line bounds (16 MiB per line, linear-time splitting)", () => {
  it("refuses a line longer than the bound, without keeping it", () => {
    const events: WatchEvent[] = [];
    const d = new WatchLineDecoder((e) => events.push(e), 1024);
    d.write('{"type":"ADDED","object":{"metadata":{"name":"ok"}}}\n');
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) d.write("a".repeat(100));
      },
      (e: unknown) =>
        e instanceof SinkerError && e.reason === "ResponseTooLarge" && /longer than 1024/.test(e.message),
    );
    assert.equal(events.length, 1);
  });

  it("splits a long line arriving in many small chunks in linear time", () => {
    const events: WatchEvent[] = [];
    const d = new WatchLineDecoder((e) => events.push(e));
    const value = "x".repeat(8 * 1024 * 1024);
    const line = `{"type":"ADDED","object":{"data":{"v":"${value}"}}}\n`;
    const started = performance.now();
    for (let i = 0; i < line.length; i += 1024) d.write(line.slice(i, i + 1024));
    // quadratic concatenation and re-scanning take many minutes here; linear splitting well under a second (the
    // bound is generous for a loaded machine)
    assert.ok(performance.now() - started < 60_000, `took ${Math.round(performance.now() - started)} ms`);
    assert.equal(events.length, 1);
    const data = events[0]?.object.data as { v: string } | undefined;
    assert.equal(data?.v.length, value.length);
  });
});

describe("parseApiVersion", () => {
  it("splits group and version", () => {
    assert.deepEqual(parseApiVersion("v1"), { group: "", version: "v1" });
    assert.deepEqual(parseApiVersion("apps/v1"), { group: "apps", version: "v1" });
    for (const bad of ["", "/v1", "a/b/c", "apps/"]) {
      assert.throws(
        () => parseApiVersion(bad),
        (e: unknown) => e instanceof SinkerError && e.reason === "UnknownKind",
      );
    }
  });
});

describe("ClusterClient under transport faults (injected by a stub HTTP server)", () => {
  let server: FakeApiServer;
  let client: ClusterClient;
  before(async () => {
    server = await new FakeApiServer().start();
    client = ClusterClient.fromKubeConfig(server.kubeConfig(), {
      name: "fake",
      impersonate: { user: "alice", groups: ["team-a", "team-b"] },
      userAgent: "sinker-test",
      responseHeadersTimeoutMs: 500,
    });
  });
  after(async () => {
    await client.close();
    await server.stop();
  });

  it("never puts the request body into an error", async () => {
    const cm = await client.resolve("v1", "ConfigMap");
    await assert.rejects(
      client.create(cm, "ns", {
        metadata: { name: "invalid-one" },
        data: { password: "hunter2-very-secret" },
      }),
      (e: unknown) => {
        assert.ok(e instanceof SinkerError);
        assert.equal(e.reason, "Invalid");
        assert.equal(e.status, 422);
        assert.match(e.message, /is invalid/);
        assert.ok(!e.message.includes("hunter2"));
        return true;
      },
    );
  });

  it("maps server errors and refused connections to ClusterUnreachable / Forbidden", async () => {
    const cm = await client.resolve("v1", "ConfigMap");
    server.failWith = { status: 403, message: 'configmaps is forbidden: User "alice" cannot list' };
    await assert.rejects(
      client.list(cm, "ns"),
      (e: unknown) => e instanceof SinkerError && e.reason === "Forbidden",
    );
    server.failWith = { status: 503, message: "etcd is down" };
    await assert.rejects(client.list(cm, "ns"), (e: unknown) => {
      assert.ok(e instanceof SinkerError);
      assert.equal(e.reason, "ClusterUnreachable");
      assert.match(e.message, /etcd is down/);
      return true;
    });
    server.failWith = undefined;
    const dead = new FakeApiServer();
    await dead.start();
    const kc = dead.kubeConfig();
    await dead.stop();
    const c = ClusterClient.fromKubeConfig(kc, { name: "dead" });
    await assert.rejects(
      c.list(cm, "ns"),
      (e: unknown) => e instanceof SinkerError && e.reason === "ClusterUnreachable",
    );
    await c.close();
  });

  it("sends a GET once more when the connection was reset, but never a POST", async () => {
    const cm = await client.resolve("v1", "ConfigMap");
    server.put("reset", "r", { k: "v" });
    server.resetNext = 1;
    assert.deepEqual((await client.get(cm, "reset", "r"))?.data, { k: "v" });
    server.resetNext = 2;
    await assert.rejects(
      client.get(cm, "reset", "r"),
      (e: unknown) => e instanceof SinkerError && e.reason === "ClusterUnreachable",
    );
    server.resetNext = 1;
    const before = server.objects.size;
    await assert.rejects(
      client.create(cm, "reset", { metadata: { name: "once" } }),
      (e: unknown) => e instanceof SinkerError && e.reason === "ClusterUnreachable",
    );
    assert.equal(server.objects.size, before);
    assert.equal(server.resetNext, 0);
  });

  it("reuses the credentials, and after a 401 sends once more with credentials computed anew", async () => {
    const kc = server.kubeConfig();
    const user = kc.getCurrentUser() as { token?: string };
    const c = ClusterClient.fromKubeConfig(kc, { name: "rotating" });
    const cm = await c.resolve("v1", "ConfigMap");
    server.put("rot", "r", { k: "v" });
    const auth = () => server.requests.slice(-2).map((r) => r.headers.authorization);
    try {
      server.acceptToken = "t0ken";
      assert.deepEqual((await c.get(cm, "rot", "r"))?.data, { k: "v" });
      // the token rotates: the cached one is refused once, the new one is read and the request sent again
      user.token = "t1";
      server.acceptToken = "t1";
      assert.deepEqual((await c.get(cm, "rot", "r"))?.data, { k: "v" });
      assert.deepEqual(auth(), ["Bearer t0ken", "Bearer t1"]);
      // a write too (a 401 is refused before anything is done)
      user.token = "t2";
      server.acceptToken = "t2";
      await c.create(cm, "rot", { metadata: { name: "after-401" } });
      assert.deepEqual(auth(), ["Bearer t1", "Bearer t2"]);
      assert.ok(server.objects.has("rot/after-401"));
      // refused although the credentials did not change (a server refusing them): not sent again
      server.acceptToken = "nobody";
      const before = server.requests.length;
      await assert.rejects(
        c.get(cm, "rot", "r"),
        (e: unknown) => e instanceof SinkerError && e.reason === "Unauthorized",
      );
      assert.equal(server.requests.length - before, 1, "the same credentials are not sent twice");
      // a token rotated and still refused: the fresh one is tried once, no third request
      user.token = "t3";
      const before2 = server.requests.length;
      await assert.rejects(
        c.get(cm, "rot", "r"),
        (e: unknown) => e instanceof SinkerError && e.reason === "Unauthorized",
      );
      assert.deepEqual(
        server.requests.slice(before2).map((r) => r.headers.authorization),
        ["Bearer t2", "Bearer t3"],
      );
    } finally {
      server.acceptToken = undefined;
      await c.close();
    }
  });

  it("gives up waiting for response headers after the timeout", async () => {
    const cm = await client.resolve("v1", "ConfigMap");
    // The server would answer after 6 s; failing well before that (with the headers-timeout message) proves the
    // 500 ms timeout applied, with seconds of slack for a loaded machine.
    server.delayMs = 6000;
    try {
      const t0 = Date.now();
      await assert.rejects(client.get(cm, "ns", "slow"), (e: unknown) => {
        assert.ok(e instanceof SinkerError);
        assert.equal(e.reason, "ClusterUnreachable");
        assert.match(e.message, /no response headers/);
        return true;
      });
      assert.ok(Date.now() - t0 < 5000, "the 500 ms headers timeout applied");
    } finally {
      server.delayMs = 0;
    }
  });

  it("watches: streams events, ends when the server ends, resolves on abort, rejects when idle", async () => {
    const cm = await client.resolve("v1", "ConfigMap");
    const rv = String(server.rv);
    const seen: string[] = [];
    const ac = new AbortController();
    const watching = client.watch(
      cm,
      "w",
      { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: 1, signal: ac.signal },
      (e) => seen.push(`${e.type}:${e.object.metadata?.name ?? e.object.metadata?.resourceVersion}`),
    );
    await new Promise((r) => setTimeout(r, 100));
    server.put("w", "a", { k: "1" });
    server.remove("w", "a");
    await watching; // the server ends it after timeoutSeconds
    assert.deepEqual(seen, ["ADDED:a", "DELETED:a", `BOOKMARK:${server.rv}`]);
    const watchUrl = server.watchRequests().at(-1)?.url ?? "";
    assert.match(watchUrl, /allowWatchBookmarks=true/);
    assert.match(watchUrl, /timeoutSeconds=1/);

    // abort: resolves
    const ac2 = new AbortController();
    const p2 = client.watch(cm, "w", { resourceVersion: String(server.rv), signal: ac2.signal }, () => {});
    setTimeout(() => ac2.abort(), 100);
    await p2;

    // idle: no bytes for idleTimeoutSeconds → rejects
    const t0 = Date.now();
    await assert.rejects(
      client.watch(
        cm,
        "w",
        { resourceVersion: String(server.rv), idleTimeoutSeconds: 1, signal: ac.signal },
        () => {},
      ),
      (e: unknown) =>
        e instanceof SinkerError && e.reason === "ClusterUnreachable" && /received nothing/.test(e.message),
    );
    assert.ok(Date.now() - t0 >= 900);
  });

  it("rejects requests after close", async () => {
    const c = ClusterClient.fromKubeConfig(server.kubeConfig(), { name: "closing" });
    await c.close();
    await assert.rejects(c.resolve("v1", "ConfigMap"), /client is closed/);
  });
});
