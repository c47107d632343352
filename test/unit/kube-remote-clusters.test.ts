import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { stringify } from "yaml";
import { SinkerError } from "../../src/errors.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import {
  ALLOWED_NAMESPACES_ANNOTATION,
  checkSecretAccess,
  loadKubeconfig,
  RemoteClusters,
  SECRET_ACCESS_DENIED_MESSAGE,
  unsafeKubeconfigFindings,
} from "../../src/kube/remote-clusters.ts";

const logger = pino({ level: "silent" });

function secret(namespace: string, annotation?: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "kc",
      namespace,
      ...(annotation !== undefined ? { annotations: { [ALLOWED_NAMESPACES_ANNOTATION]: annotation } } : {}),
    },
  };
}

function denied(e: unknown): boolean {
  return (
    e instanceof SinkerError &&
    e.reason === "SecretAccessDenied" &&
    e.message === SECRET_ACCESS_DENIED_MESSAGE
  );
}

describe("checkSecretAccess (SPEC 2 cross-namespace rule)", () => {
  it("allows a Secret in the ResourceSync's own namespace, annotation or not", () => {
    checkSecretAccess(secret("team-a"), "team-a");
    checkSecretAccess(secret("team-a", "nothing-matches"), "team-a");
  });

  it("reports a missing Secret in the own namespace honestly", () => {
    assert.throws(
      () => checkSecretAccess(undefined, "team-a", "team-a"),
      (e: unknown) => e instanceof SinkerError && e.reason === "SecretNotFound",
    );
  });

  it("allows another namespace only when the anchored expression matches the whole name", () => {
    const table: Array<[string | undefined, string, boolean]> = [
      ["team-a", "team-a", true],
      ["team-a", "team-a-evil", false],
      ["team-a", "xteam-a", false],
      ["team-a", "team-ab", false],
      ["team-.*", "team-a", true],
      ["team-.*", "xteam-a", false],
      ["team-a|team-b", "team-b", true],
      ["team-a|team-b", "team-b-evil", false],
      ["team-a|team-b", "evil-team-a", false],
      ["^team-a$", "team-a", true],
      [".*", "anything", true],
      ["", "team-a", false],
      [undefined, "team-a", false],
      ["team-(a", "team-a", false], // invalid expression
      ["[", "[", false],
    ];
    for (const [pattern, ns, ok] of table) {
      const s = secret("secrets", pattern);
      if (ok) checkSecretAccess(s, ns);
      else assert.throws(() => checkSecretAccess(s, ns), denied, `${pattern} vs ${ns}`);
    }
  });

  it("refuses, instead of hanging on, a catastrophically backtracking expression", () => {
    const t0 = Date.now();
    assert.throws(() => checkSecretAccess(secret("secrets", "(a+)+"), `${"a".repeat(60)}-b`), denied);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    checkSecretAccess(secret("secrets", "(a+)+"), "aaaa");
  });

  it("gives the same refusal for a missing Secret in another namespace", () => {
    assert.throws(() => checkSecretAccess(undefined, "team-a", "secrets"), denied);
    assert.throws(() => checkSecretAccess(undefined, "team-a"), denied);
  });
});

function kubeconfig(over: {
  cluster?: Record<string, unknown>;
  user?: Record<string, unknown>;
  namespace?: string;
}) {
  return {
    apiVersion: "v1",
    kind: "Config",
    "current-context": "ctx",
    clusters: [{ name: "remote", cluster: { server: "https://127.0.0.1:6443", ...over.cluster } }],
    users: [{ name: "someone", user: { token: "abc.def", ...over.user } }],
    contexts: [
      {
        name: "ctx",
        context: {
          cluster: "remote",
          user: "someone",
          ...(over.namespace ? { namespace: over.namespace } : {}),
        },
      },
    ],
  };
}

describe("kubeconfig validation", () => {
  const cases: Array<[string, ReturnType<typeof kubeconfig>, RegExp | undefined]> = [
    ["token", kubeconfig({}), undefined],
    [
      "embedded certificates",
      kubeconfig({ user: { "client-certificate-data": "Zm9v", "client-key-data": "YmFy" } }),
      undefined,
    ],
    ["insecure-skip-tls-verify", kubeconfig({ cluster: { "insecure-skip-tls-verify": true } }), undefined],
    [
      "exec plugin",
      kubeconfig({ user: { exec: { command: "sh", args: ["-c", "id"] } } }),
      /exec credential plugin/,
    ],
    ["auth-provider", kubeconfig({ user: { "auth-provider": { name: "oidc" } } }), /auth-provider/],
    [
      "token-file",
      kubeconfig({ user: { "token-file": "/var/run/secrets/token" } }),
      /reads token-file from a file/,
    ],
    [
      "tokenFile",
      kubeconfig({ user: { tokenFile: "/var/run/secrets/token" } }),
      /reads tokenFile from a file/,
    ],
    [
      "client-certificate",
      kubeconfig({ user: { "client-certificate": "/c.pem" } }),
      /client-certificate from a file/,
    ],
    ["client-key", kubeconfig({ user: { "client-key": "/k.pem" } }), /client-key from a file/],
    [
      "certificate-authority",
      kubeconfig({ cluster: { "certificate-authority": "/ca.pem" } }),
      /certificate-authority/,
    ],
    ["proxy-url", kubeconfig({ cluster: { "proxy-url": "http://proxy:3128" } }), /proxy/],
  ];
  for (const [name, config, refused] of cases) {
    it(`${refused ? "refuses" : "accepts"} ${name}`, () => {
      const text = stringify(config);
      if (!refused) {
        assert.deepEqual(unsafeKubeconfigFindings(config), []);
        loadKubeconfig(text, 'Secret ns/kc key "value"', false);
        return;
      }
      assert.throws(
        () => loadKubeconfig(text, 'Secret ns/kc key "value"', false),
        (e: unknown) => {
          assert.ok(e instanceof SinkerError);
          assert.equal(e.reason, "UnsafeKubeconfig");
          assert.match(e.message, refused);
          assert.match(e.message, /Secret ns\/kc key "value"/);
          // never a value: no paths, commands, URLs or tokens
          for (const v of [
            "/var/run",
            "/c.pem",
            "/k.pem",
            "/ca.pem",
            "proxy:3128",
            "abc.def",
            "oidc",
            '"sh"',
          ]) {
            assert.ok(!e.message.includes(v), `${v} leaked into: ${e.message}`);
          }
          return true;
        },
      );
      // the operator opt-in allows it (parsing only: nothing runs until a request is made)
      if (name !== "token-file" && name !== "tokenFile") loadKubeconfig(text, "x", true);
    });
  }

  it("names every finding, of every user and cluster (client-node parses them all)", () => {
    const config = kubeconfig({ user: { exec: { command: "x" } } });
    config.users.push({ name: "other", user: { "token-file": "/t" } } as never);
    const found = unsafeKubeconfigFindings(config);
    assert.equal(found.length, 2);
    assert.match(found[1] ?? "", /user "other" reads token-file/);
  });

  it("refuses a token-file before @kubernetes/client-node can read it", () => {
    const dir = mkdtempSync(join(tmpdir(), "sinker-kc-"));
    try {
      const file = join(dir, "token");
      writeFileSync(file, "controller-own-token");
      const text = stringify(kubeconfig({ user: { token: undefined, "token-file": file } }));
      assert.throws(() => loadKubeconfig(text, "x", false), /reads token-file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reports unparsable or incomplete kubeconfigs as InvalidKubeconfig without quoting them", () => {
    const invalid = (e: unknown) =>
      e instanceof SinkerError && e.reason === "InvalidKubeconfig" && !e.message.includes("s3cr3t");
    assert.throws(() => loadKubeconfig("token: s3cr3t\n  bad: [indent", "x", false), invalid);
    assert.throws(() => loadKubeconfig("just-a-string-s3cr3t", "x", false), invalid);
    const noContext = { ...kubeconfig({}), "current-context": "" };
    assert.throws(() => loadKubeconfig(stringify(noContext), "x", false), /no current-context/);
    const wrongContext = { ...kubeconfig({}), "current-context": "elsewhere" };
    assert.throws(() => loadKubeconfig(stringify(wrongContext), "x", false), /"elsewhere" is not defined/);
    const noServer = kubeconfig({});
    (noServer.clusters[0] as { cluster: Record<string, unknown> }).cluster = { server: "" };
    assert.throws(() => loadKubeconfig(stringify(noServer), "x", false), invalid);
  });

  it("returns the context's namespace", () => {
    assert.equal(loadKubeconfig(stringify(kubeconfig({ namespace: "apps" })), "x", false).namespace, "apps");
    assert.equal(loadKubeconfig(stringify(kubeconfig({})), "x", false).namespace, undefined);
  });
});

describe("RemoteClusters", () => {
  const text = stringify(kubeconfig({ namespace: "remote-ns" }));
  const kcSecret = (resourceVersion: string, uid = "u1"): KubeObject => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "kc", namespace: "ns", uid, resourceVersion },
    data: { value: Buffer.from(text).toString("base64") },
  });

  it("caches by Secret uid + resourceVersion + key", async () => {
    const rc = new RemoteClusters({ allowUnsafeKubeconfigs: false, responseHeadersTimeoutMs: 1000, logger });
    const a = rc.clusterFor(kcSecret("1"), "value");
    assert.equal(a.namespace, "remote-ns");
    assert.equal(a.client.name, "secret/ns/kc");
    assert.equal(rc.clientFor(kcSecret("1"), "value"), a.client, "unchanged Secret: same client");
    assert.equal(rc.defaultNamespace(a.client), "remote-ns");
    const b = rc.clusterFor(kcSecret("2"), "value");
    assert.notEqual(b.client, a.client, "changed Secret: a new client");
    assert.notEqual(b.client.id, a.client.id);
    assert.notEqual(rc.clientFor(kcSecret("1", "u2"), "value"), a.client, "another Secret (uid)");
    assert.equal(rc.size, 3);
    assert.equal(await rc.prune(new Set([b.client])), 2);
    assert.equal(rc.size, 1);
    assert.equal(rc.clientFor(kcSecret("2"), "value"), b.client);
    await rc.closeAll();
  });

  it("never prunes a client held by work in progress; keeps the last client of a Secret while cached", async () => {
    const rc = new RemoteClusters({ allowUnsafeKubeconfigs: false, responseHeadersTimeoutMs: 1000, logger });
    const a = rc.clusterFor(kcSecret("1"), "value");
    const release = rc.hold(a.client);
    const again = rc.hold(a.client);
    assert.equal(await rc.prune(new Set()), 0, "held twice: kept");
    release();
    release(); // idempotent
    assert.equal(await rc.prune(new Set()), 0, "still held once");
    assert.equal(rc.lastClusterFor("ns", "kc", "value")?.client, a.client);
    assert.deepEqual([...rc.clusterNames()], ["secret/ns/kc"]);
    again();
    assert.equal(await rc.prune(new Set()), 1, "released: pruned");
    assert.equal(rc.lastClusterFor("ns", "kc", "value"), undefined, "gone with its client");
    assert.deepEqual([...rc.clusterNames()], []);
    await rc.closeAll();
  });

  it("reads stringData too, and reports a missing key", () => {
    const rc = new RemoteClusters({ allowUnsafeKubeconfigs: false, responseHeadersTimeoutMs: 1000, logger });
    const s: KubeObject = {
      metadata: { name: "kc", namespace: "ns", uid: "u3", resourceVersion: "1" },
      stringData: { config: text },
    };
    assert.equal(rc.clusterFor(s, "config").namespace, "remote-ns");
    assert.throws(
      () => rc.clusterFor(s, "value"),
      (e: unknown) =>
        e instanceof SinkerError &&
        e.reason === "InvalidKubeconfig" &&
        /key "value" does not exist/.test(e.message),
    );
  });

  it("refuses unsafe kubeconfigs unless allowed", () => {
    const unsafe = stringify(kubeconfig({ user: { exec: { command: "curl" } } }));
    const s: KubeObject = {
      metadata: { name: "kc", namespace: "ns", uid: "u4", resourceVersion: "1" },
      data: { value: Buffer.from(unsafe).toString("base64") },
    };
    const strict = new RemoteClusters({
      allowUnsafeKubeconfigs: false,
      responseHeadersTimeoutMs: 1000,
      logger,
    });
    assert.throws(
      () => strict.clusterFor(s, "value"),
      (e: unknown) => e instanceof SinkerError && e.reason === "UnsafeKubeconfig",
    );
    const lax = new RemoteClusters({ allowUnsafeKubeconfigs: true, responseHeadersTimeoutMs: 1000, logger });
    assert.ok(lax.clusterFor(s, "value").client);
  });
});
