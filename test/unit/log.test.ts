import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  batchedOutput,
  createLogger,
  formatPlain,
  LOG_BATCH_MS,
  type LogFormat,
  lazyChild,
  levelForModule,
  moduleLogger,
  parseLogDirectives,
} from "../../src/log.ts";

function capture(level: string, format: LogFormat = "json") {
  const lines: string[] = [];
  const logger = createLogger({ level, format }, { write: (line: string) => lines.push(line) });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("log directives", () => {
  const table: Array<[string, string, string]> = [
    ["sinker=info,warn", "sinker", "info"],
    ["sinker=info,warn", "sinker::controller", "info"],
    ["sinker=info,warn", "other", "warn"],
    ["sinker=info,warn", "sinkerx", "warn"],
    ["sinker::controller=trace,warn", "sinker::controller", "trace"],
    ["sinker::controller=trace,warn", "sinker::controller::queue", "trace"],
    ["sinker::controller=trace,warn", "sinker::reconciler", "warn"],
    ["sinker::controller=trace,warn", "sinker", "warn"],
    ["sinker=debug", "sinker::watches", "debug"],
    ["sinker=debug", "other", "error"],
    ["info", "sinker::admin", "info"],
    ["DEBUG", "sinker", "debug"],
    ["sinker=warn,sinker::leader=debug,error", "sinker::leader", "debug"],
    ["sinker::leader=debug,sinker=warn", "sinker::leader", "debug"],
    ["sinker=warn,sinker::leader=debug", "sinker::admin", "warn"],
    ["sinker=off,info", "sinker::admin", "off"],
    ["sinker::admin", "sinker::admin", "trace"],
    ["", "sinker", "error"],
  ];
  for (const [text, module, level] of table) {
    it(`${JSON.stringify(text)}: ${module} → ${level}`, () =>
      assert.equal(levelForModule(parseLogDirectives(text), module), level));
  }
  for (const bad of ["sinker=loud", "sinker=", "=info", "a b", "sinker:=info"]) {
    it(`refuses ${JSON.stringify(bad)}`, () =>
      assert.throws(() => parseLogDirectives(bad), /invalid log directive/));
  }
});

describe("createLogger", () => {
  it("json: one JSON object per line with time, level, module, msg and the bindings", () => {
    const { logger, lines, records } = capture("sinker=debug,warn");
    const rec = logger.child({
      module: "sinker::reconciler",
      namespace: "default",
      name: "demo",
      reconcileId: "7",
    });
    rec.info({ generation: 3 }, "synced");
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith("\n") && lines[0].indexOf("\n") === lines[0].length - 1);
    const [r] = records();
    assert.ok(r);
    assert.equal(r.level, "info");
    assert.equal(r.msg, "synced");
    assert.equal(r.module, "sinker::reconciler");
    assert.equal(r.namespace, "default");
    assert.equal(r.name, "demo");
    assert.equal(r.reconcileId, "7");
    assert.equal(r.generation, 3);
    assert.match(String(r.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("module levels apply to children created anywhere, also grandchildren", () => {
    const { logger, records } = capture("sinker::controller=trace,sinker=info,warn");
    logger.debug("root debug: hidden (sinker=info)");
    logger.info("root info");
    const controller = moduleLogger(logger, "sinker::controller");
    controller.trace("controller trace");
    controller.child({ key: "a/b" }).trace("grandchild trace");
    const admin = logger.child({ module: "sinker::admin" });
    admin.debug("admin debug: hidden");
    admin.info("admin info");
    const other = logger.child({ module: "library" });
    other.info("library info: hidden");
    other.warn("library warn");
    assert.deepEqual(
      records().map((r) => r.msg),
      ["root info", "controller trace", "grandchild trace", "admin info", "library warn"],
    );
  });

  it("off silences a module", () => {
    const { logger, records } = capture("sinker=off");
    moduleLogger(logger, "sinker::admin").fatal("nothing");
    logger.error("nothing");
    assert.equal(records().length, 0);
  });

  it("redacts Secret data and tokens", () => {
    const { logger, lines } = capture("info");
    logger.info(
      {
        data: { password: "hunter2" },
        secret: { stringData: { token: "s3cr3t-token" }, data: { key: "c2VjcmV0" } },
        object: { spec: { token: "abc-token" } },
        kubeconfig: "apiVersion: v1\nusers: [{user: {token: zzz}}]",
      },
      "with secrets",
    );
    const text = lines.join("");
    for (const leaked of ["hunter2", "s3cr3t-token", "c2VjcmV0", "abc-token", "zzz"]) {
      assert.ok(!text.includes(leaked), `${leaked} must not be logged`);
    }
    assert.ok(text.includes("[REDACTED]"));
  });

  it("serializes errors", () => {
    const { logger, records } = capture("info");
    logger.error({ err: new Error("boom") }, "failed");
    const err = records()[0]?.err as { type: string; message: string; stack: string };
    assert.equal(err.type, "Error");
    assert.equal(err.message, "boom");
    assert.match(err.stack, /boom/);
  });

  it("plain: one readable line per record", () => {
    const { logger, lines } = capture("info", "plain");
    logger
      .child({ module: "sinker::reconciler", namespace: "default", name: "demo" })
      .warn({ retryInMs: 500 }, "apply failed");
    assert.equal(lines.length, 1);
    assert.match(
      lines[0] ?? "",
      /^\d{4}-\d\d-\d\dT\S+Z {2}WARN sinker::reconciler: apply failed namespace=default name=demo retryInMs=500\n$/,
    );
  });

  it("formatPlain quotes values with spaces and keeps errors on one line", () => {
    const line = formatPlain(
      JSON.stringify({
        level: "error",
        time: "t",
        msg: "m",
        reason: "a b",
        err: { type: "Error", message: "x", stack: "Error: x\n    at y" },
      }),
    );
    assert.equal(line, 't ERROR sinker: m reason="a b" err="Error: x\\n    at y"\n');
  });
});

describe("lazyChild (a logger per reconcile)", () => {
  it("makes the child only when something is logged at an enabled level, with its bindings and module level", () => {
    const { logger, records } = capture("sinker::reconciler=info,warn");
    const parent = moduleLogger(logger, "sinker::reconciler");
    let made = 0;
    const log = lazyChild(parent, () => {
      made++;
      return { namespace: "ns", name: "rs" };
    });
    log.debug("not enabled");
    log.trace({ x: 1 }, "not enabled");
    assert.equal(made, 0, "nothing logged: no child made");
    log.info({ k: "v" }, "hello");
    log.warn("again");
    assert.equal(made, 1, "made once");
    assert.deepEqual(
      records().map((r) => [r.module, r.namespace, r.name, r.msg, r.level]),
      [
        ["sinker::reconciler", "ns", "rs", "hello", "info"],
        ["sinker::reconciler", "ns", "rs", "again", "warn"],
      ],
    );
    assert.equal(log.isLevelEnabled("debug"), false);
  });
});

describe("batchedOutput (records to stdout in batches)", () => {
  it("writes nothing at once, then every record of a burst in one write within LOG_BATCH_MS", async () => {
    const writes: string[] = [];
    const out = batchedOutput({ write: (s: string) => writes.push(s) });
    out.write("a\n");
    out.write("b\n");
    assert.deepEqual(writes, []);
    const deadline = Date.now() + 5_000 + LOG_BATCH_MS;
    while (writes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(writes, ["a\nb\n"]);
  });

  it("writes at once past 64 KiB pending, and what is pending on flush (as on exit)", () => {
    const writes: string[] = [];
    const out = batchedOutput({ write: (s: string) => writes.push(s) });
    const big = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 64; i++) out.write(big);
    assert.equal(writes.length, 1);
    assert.equal(writes[0]?.length, 64 * 1024);
    out.write("tail\n");
    out.flush();
    assert.deepEqual(writes.slice(1), ["tail\n"]);
    out.flush();
    assert.equal(writes.length, 2, "nothing pending: no empty write");
  });
});
