/**
 * The image, checked without a Docker engine: the Dockerfile's runtime stage is reproduced in a temporary folder
 * (the files its COPY instructions take, resolved through the build stage; `npm ci --omit=dev --ignore-scripts`
 * from the npm cache; its ENV and ENTRYPOINT) and the controller is run from there against cluster a until it is
 * ready and has synced a ResourceSync. A dependency only dev installs provide, or a file the image leaves out,
 * fails here.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../controlplane/testenv.ts";
import { killAllSinkers, Sinker } from "../support/sinker-process.ts";
import { configMap, resourceSync, waitReady } from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";
import { runCommand } from "./support/tools.ts";

interface Stage {
  name: string;
  workdir: string;
  env: Record<string, string>;
  /** Absolute path in the stage → path in the build context (repository), for files COPY'd from the context. */
  files: Map<string, string>;
  copies: Array<{ from?: string; sources: string[]; dest: string }>;
  runs: string[];
  entrypoint?: string[];
}

/**
 * Reads the Dockerfile's stages: FROM ... AS, WORKDIR, ENV, COPY [--from=stage], RUN, ENTRYPOINT (exec form).
 * Other instructions (ARG, USER, EXPOSE) do not change which files the image holds.
 */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  for (const line of lines) {
    const [instr = "", ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    const stage = stages.at(-1);
    switch (instr.toUpperCase()) {
      case "FROM": {
        const name = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? String(stages.length);
        stages.push({ name, workdir: "/", env: {}, files: new Map(), copies: [], runs: [] });
        break;
      }
      case "WORKDIR":
        if (stage) stage.workdir = posix.resolve(stage.workdir, args);
        break;
      case "ENV":
        for (const m of args.matchAll(/(\w+)=(\S+)/g)) if (stage && m[1] && m[2]) stage.env[m[1]] = m[2];
        break;
      case "RUN":
        stage?.runs.push(args);
        break;
      case "ENTRYPOINT":
        if (stage) stage.entrypoint = JSON.parse(args) as string[];
        break;
      case "COPY": {
        const parts = rest.filter((p) => !p.startsWith("--") || p.startsWith("--from="));
        const from = parts.find((p) => p.startsWith("--from="))?.slice("--from=".length);
        const paths = parts.filter((p) => !p.startsWith("--from="));
        const dest = posix.resolve(stage?.workdir ?? "/", paths.pop() ?? ".");
        stage?.copies.push({ ...(from ? { from } : {}), sources: paths, dest });
        if (stage && !from) for (const src of paths) stage.files.set(destFor(src, dest, paths.length), src);
        break;
      }
    }
  }
  return stages;
}

function destFor(src: string, dest: string, count: number): string {
  // `COPY a b ./` puts each under the folder; `COPY bin ./bin` copies the folder's content to ./bin
  return count > 1 || dest.endsWith("/") || src.includes(".") ? posix.join(dest, posix.basename(src)) : dest;
}

const suite = useSuite({ beforeCleanup: killAllSinkers });
const { a } = suite;
let app: string;

before(async () => {
  app = mkdtempSync(join(tmpdir(), "sinker-image-"));
});

after(() => rmSync(app, { recursive: true, force: true }));

describe("the image's runtime stage, reproduced without Docker", () => {
  const stages = parseDockerfile(readFileSync(join(repoRoot, "Dockerfile"), "utf8"));
  const runtime = stages.at(-1) as Stage;
  const dockerignore = readFileSync(join(repoRoot, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

  it("the Dockerfile's runtime stage is what this test reproduces", () => {
    assert.ok(stages.length >= 2, "a multi-stage Dockerfile");
    assert.equal(runtime.env.NODE_ENV, "production");
    assert.deepEqual(runtime.entrypoint?.slice(0, 1), ["node"]);
    assert.equal(
      runtime.runs.length,
      1,
      "one RUN: the production install (update this test when that changes)",
    );
    assert.match(runtime.runs[0] ?? "", /^npm ci --omit=dev --ignore-scripts\b/);
  });

  it("installs and runs the controller until it is ready and has synced a ResourceSync", async () => {
    // The files, as the COPY instructions place them (relative to the runtime WORKDIR).
    for (const copy of runtime.copies) {
      const origin = copy.from ? stages.find((s) => s.name === copy.from) : runtime;
      assert.ok(origin, `COPY --from=${copy.from}: no such stage`);
      for (const src of copy.sources) {
        const stagePath = copy.from ? src : destFor(src, copy.dest, copy.sources.length);
        const contextPath = copy.from ? origin.files.get(posix.resolve(origin.workdir, src)) : src;
        assert.ok(
          contextPath,
          `COPY --from=${copy.from} ${src}: the ${copy.from} stage copies nothing there`,
        );
        assert.ok(
          !dockerignore.includes(contextPath.split("/")[0] ?? ""),
          `${contextPath} is excluded by .dockerignore`,
        );
        const target = copy.from ? copy.dest : stagePath;
        const rel = posix.relative(runtime.workdir, target);
        assert.ok(!rel.startsWith(".."), `${target} is outside WORKDIR ${runtime.workdir}`);
        mkdirSync(join(app, posix.dirname(rel)), { recursive: true });
        cpSync(join(repoRoot, contextPath), join(app, rel), { recursive: true });
      }
    }
    assert.ok(existsSync(join(app, "package-lock.json")));

    // The production install: offline from the npm cache the developer's own `npm ci` filled.
    const npmArgs = ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"];
    let install = await runCommand("npm", [...npmArgs, "--offline"], { cwd: app, timeoutMs: 300_000 });
    if (install.code !== 0 && /ENOTCACHED/.test(install.stderr)) {
      install = await runCommand("npm", [...npmArgs, "--prefer-offline"], { cwd: app, timeoutMs: 300_000 });
    }
    assert.equal(install.code, 0, install.stderr);
    assert.equal(existsSync(join(app, "node_modules", "typescript")), false, "no dev dependencies");

    // Every subcommand's modules load from the production install (they are imported lazily by main.ts).
    // ENTRYPOINT ["node", <node flags>..., <entry script>]: the same node flags, the same script
    const [node, ...entryArgs] = runtime.entrypoint ?? [];
    assert.equal(node, "node", "the image runs node");
    const nodeArgs = entryArgs.filter((a) => a.startsWith("--"));
    const entry = entryArgs.find((a) => !a.startsWith("--"));
    const bin = join(app, entry ?? "bin/sinker.js");
    const imageEnv = { PATH: process.env.PATH ?? "", HOME: app, ...runtime.env };
    for (const args of [["version"], ["manifests"], ["render", "--help"], ["diff", "--help"]]) {
      const r = await runCommand(process.execPath, [...nodeArgs, bin, ...args], { cwd: app, env: imageEnv });
      assert.equal(r.code, 0, `sinker ${args.join(" ")} from the image: ${r.stderr}`);
    }

    const namespace = await suite.ns("a", "image");
    await a.apply(configMap(namespace, "source", { k: "from-the-image" }));
    const ref = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: "ConfigMap", name } });
    await a.apply(resourceSync(namespace, "image", { source: ref("source"), target: ref("target") }));

    const sinker = new Sinker(
      ["--kubeconfig", suite.env.kubeconfigPath("a"), "--admin-addr", "127.0.0.1:0", "--log-format", "json"],
      { SINKER_LOG: "sinker=info,warn" },
      {
        bin,
        nodeArgs,
        cwd: app,
        // Only what the image sets: no NODE_ENV=test, no developer's variables.
        env: imageEnv,
      },
    );
    try {
      await sinker.waitLog(
        "the controller to list ResourceSyncs",
        (r) => r.msg === "initial ResourceSync list received",
        30_000,
      );
      assert.equal(await sinker.status("/ready"), 200);
      await waitReady(a, namespace, "image", "True");
      const target = await a.get("v1", "ConfigMap", namespace, "target");
      assert.equal(target?.data?.k, "from-the-image");
      assert.equal(await sinker.status("/live"), 200);
      assert.deepEqual(sinker.badLines, [], "every log line is JSON");
      assert.deepEqual(
        sinker.records.filter((r) => r.level === "error" || r.level === "fatal"),
        [],
        "no errors logged",
      );
    } finally {
      const exit = await sinker.terminate();
      assert.equal(exit.code, 0, sinker.stderr);
    }
  });
});
