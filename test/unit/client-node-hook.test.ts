// bin/sinker.js keeps @kubernetes/client-node's generated API clients out of the process (memory), while
// KubeConfig keeps working. Each case runs in a fresh process: module hooks and the module cache are global.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

const root = join(import.meta.dirname, "..", "..");

/** Runs an ES module script in a fresh Node process; returns its stdout (whatever its exit code). */
function runScript(source: string): string {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", source], {
    cwd: root,
    encoding: "utf8",
    env: { ...process.env, SINKER_LOG: "off" },
    timeout: 60_000,
  });
  return r.stdout;
}

test("the sinker entry point loads client-node's config module but none of its generated API clients", () => {
  const out = runScript(`
    import { registerHooks } from "node:module";
    const seen = [];
    // registered first, so it sees every resolution the entry point's own hook lets through
    registerHooks({ resolve(s, c, next) { const r = next(s, c); seen.push(r.url); return r; } });
    // the controller's start-up path up to loading its kubeconfig (which fails: the file does not exist)
    process.argv = [process.argv[0], "bin/sinker.js", "--kubeconfig", "/nonexistent/kubeconfig"];
    process.on("exit", () => {
      const config = seen.some((u) => u.endsWith("/@kubernetes/client-node/dist/config.js"));
      // (gen/rxjsStub.js, a few lines the middleware module needs, is not a generated client)
      const generated = seen.filter((u) => ["index", "apis", "models"].some((g) => u.includes("/client-node/dist/gen/" + g)));
      console.log(JSON.stringify({ config, generated: generated.length }));
    });
    await import("./bin/sinker.js");
  `);
  const last = out.trim().split("\n").at(-1) ?? "";
  assert.deepEqual(JSON.parse(last), { config: true, generated: 0 });
});

test("with the hook, KubeConfig loads and computes credentials; makeApiClient fails loudly", () => {
  const out = runScript(`
    const { skipGeneratedApiClients } = await import("./src/kube/client-node-hook.ts");
    skipGeneratedApiClients();
    const { KubeConfig } = await import("./src/kube/client-node.ts");
    const kc = new KubeConfig();
    kc.loadFromString(JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "c",
      clusters: [{ name: "k", cluster: { server: "https://127.0.0.1:6443" } }],
      users: [{ name: "u", user: { token: "t0ken" } }],
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }],
    }));
    const opts = {};
    await kc.applyToHTTPSOptions(opts);
    let error = "";
    try { kc.makeApiClient(class {}); } catch (e) { error = e.message; }
    console.log(JSON.stringify({ server: kc.getCurrentCluster()?.server, auth: opts.headers?.Authorization, error }));
  `);
  assert.deepEqual(JSON.parse(out.trim()), {
    server: "https://127.0.0.1:6443",
    auth: "Bearer t0ken",
    error: "sinker: the generated API clients of @kubernetes/client-node are not loaded",
  });
});
