import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { after, describe, it } from "node:test";
import { stringify } from "yaml";
import { SinkerError } from "../../src/errors.ts";
import { loadLocalKubeConfig } from "../../src/kube/kubeconfig.ts";

const dir = mkdtempSync(join(tmpdir(), "sinker-kubeconfig-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(
  name: string,
  doc: {
    clusters?: string[];
    users?: string[];
    contexts?: Array<[string, string, string, string?]>;
    current?: string;
    server?: string;
  },
): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: (doc.clusters ?? []).map((c) => ({
        name: c,
        cluster: {
          server: `${doc.server ?? "https://from-"}${name}-${c}:6443`,
          "certificate-authority": "ca.crt",
        },
      })),
      users: (doc.users ?? []).map((u) => ({ name: u, user: { token: `token-${name}-${u}` } })),
      contexts: (doc.contexts ?? []).map(([n, cluster, user, namespace]) => ({
        name: n,
        context: { cluster, user, ...(namespace ? { namespace } : {}) },
      })),
      ...(doc.current ? { "current-context": doc.current } : {}),
    }),
  );
  return file;
}

const one = write("one", {
  clusters: ["c1", "c2"],
  users: ["u1", "u2"],
  contexts: [
    ["ctx1", "c1", "u1", "ns1"],
    ["ctx2", "c2", "u2"],
  ],
  current: "ctx1",
});
const two = write("two", {
  clusters: ["c1", "c3"],
  users: ["u1", "u3"],
  contexts: [
    ["ctx1", "c3", "u3"],
    ["ctx3", "c3", "u3"],
  ],
  current: "ctx3",
});
const noCurrent = write("nocurrent", { clusters: ["c9"], users: ["u9"], contexts: [["ctx9", "c9", "u9"]] });
const home = join(dir, "home");
mkdirSync(join(home, ".kube"), { recursive: true });
write(join("home", ".kube", "config"), {
  clusters: ["hc"],
  users: ["hu"],
  contexts: [["hctx", "hc", "hu"]],
  current: "hctx",
});
const emptyHome = join(dir, "empty-home");

function load(sel: Parameters<typeof loadLocalKubeConfig>[0], env: NodeJS.ProcessEnv = {}, h = emptyHome) {
  return loadLocalKubeConfig(sel, { env, home: h, inCluster: false });
}

function refused(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SinkerError);
    assert.equal(err.reason, "InvalidKubeconfig");
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

describe("loadLocalKubeConfig", () => {
  it("--kubeconfig: that file, its current context; relative paths resolved against its directory", () => {
    const { kubeConfig, source } = load({ kubeconfig: one }, { KUBECONFIG: two }, home);
    assert.equal(source, one);
    assert.equal(kubeConfig.getCurrentContext(), "ctx1");
    assert.equal(kubeConfig.getCurrentCluster()?.server, "https://from-one-c1:6443");
    assert.equal(kubeConfig.getCurrentCluster()?.caFile, join(dir, "ca.crt"));
    assert.equal(kubeConfig.getContextObject("ctx1")?.namespace, "ns1");
  });

  it("KUBECONFIG: merged, first definition and first current-context win, missing files skipped", () => {
    const { kubeConfig } = load({}, { KUBECONFIG: [join(dir, "missing"), one, two].join(delimiter) }, home);
    assert.equal(kubeConfig.getCurrentContext(), "ctx1");
    assert.equal(kubeConfig.getCurrentCluster()?.server, "https://from-one-c1:6443");
    assert.equal(kubeConfig.getContextObject("ctx3")?.cluster, "c3");
    assert.equal(kubeConfig.getCluster("c3")?.server, "https://from-two-c3:6443");
    const reversed = load({}, { KUBECONFIG: [two, one].join(delimiter) }).kubeConfig;
    assert.equal(reversed.getCurrentContext(), "ctx3");
    assert.equal(reversed.getContextObject("ctx1")?.cluster, "c3");
  });

  it("~/.kube/config when neither is given", () => {
    const { kubeConfig } = load({}, {}, home);
    assert.equal(kubeConfig.getCurrentContext(), "hctx");
  });

  it("in-cluster when nothing else is there", () => {
    const r = loadLocalKubeConfig(
      {},
      {
        env: { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" },
        home: emptyHome,
        inCluster: true,
      },
    );
    assert.equal(r.source, "in-cluster service account");
    assert.equal(r.kubeConfig.getCurrentCluster()?.server, "https://10.0.0.1:443");
  });

  it("no configuration at all is a clear error", () => {
    refused(() => load({}), /no kubeconfig found .* not running in a cluster/);
  });

  it("--context picks a context", () => {
    const { kubeConfig } = load({ kubeconfig: one, context: "ctx2" });
    assert.equal(kubeConfig.getCurrentCluster()?.name, "c2");
    assert.equal(kubeConfig.getCurrentUser()?.name, "u2");
  });

  it("--cluster and --user override the context's, keeping its namespace", () => {
    const { kubeConfig } = load({ kubeconfig: one, cluster: "c2", user: "u2" });
    assert.equal(kubeConfig.getCurrentCluster()?.name, "c2");
    assert.equal(kubeConfig.getCurrentUser()?.name, "u2");
    assert.equal(kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace, "ns1");
    const userOnly = load({ kubeconfig: one, context: "ctx2", user: "u1" }).kubeConfig;
    assert.equal(userOnly.getCurrentCluster()?.name, "c2");
    assert.equal(userOnly.getCurrentUser()?.name, "u1");
  });

  it("refuses an unknown context, cluster or user", () => {
    refused(() => load({ kubeconfig: one, context: "nope" }), /context "nope" not found in kubeconfig/);
    refused(() => load({ kubeconfig: one, cluster: "nope" }), /cluster "nope" not found/);
    refused(() => load({ kubeconfig: one, user: "nope" }), /user "nope" not found/);
  });

  it("refuses a kubeconfig without current context unless --context is given", () => {
    refused(() => load({ kubeconfig: noCurrent }), /has no current-context: use --context/);
    assert.equal(load({ kubeconfig: noCurrent, context: "ctx9" }).kubeConfig.getCurrentCluster()?.name, "c9");
  });

  it("refuses a missing or unreadable --kubeconfig", () => {
    refused(
      () => load({ kubeconfig: join(dir, "missing") }),
      /cannot read kubeconfig file ".*missing": ENOENT/,
    );
    if (process.getuid?.() !== 0) {
      const locked = write("locked", { clusters: ["c"] });
      chmodSync(locked, 0o000);
      refused(() => load({ kubeconfig: locked }), /cannot read kubeconfig file .*EACCES/);
    }
  });

  it("refuses invalid YAML without quoting the file", () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "users:\n  - name: x\n    user: {token: SECRET-TOKEN\n  bad: [\n");
    assert.throws(
      () => load({ kubeconfig: bad }),
      (err: Error) =>
        /is not valid YAML \(line \d+\)/.test(err.message) && !err.message.includes("SECRET-TOKEN"),
    );
  });
});
