import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import pino from "pino";
import { stringify } from "yaml";
import { SinkerError } from "../../src/errors.ts";
import { AddressPolicy, kubeconfigFindings, parseCidr } from "../../src/kube/kubeconfig-policy.ts";
import type { KubeObject } from "../../src/kube/object.ts";
import {
  ALLOWED_NAMESPACES_ANNOTATION,
  checkSecretAccess,
  loadKubeconfig,
  MAX_KUBECONFIG_BYTES,
  RemoteClusters,
  SECRET_ACCESS_DENIED_MESSAGE,
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

describe("checkSecretAccess (the allowed-namespaces rule for cross-namespace Secrets)", () => {
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
      // RE2 syntax, as the Rust controller's regex crate: drop-in annotations keep working
      ["(?i)TEAM-A", "team-a", true],
      ["(?P<team>team)-[a-z]+", "team-b", true],
      ["\\Ateam-a\\z", "team-a", true],
      ["[[:alpha:]]+-[[:digit:]]+", "team-42", true],
      ["\\pL+", "teama", true],
      ["(a)\\1", "aa", false], // no backreferences in RE2: invalid, refused
      ["[", "[", false],
    ];
    for (const [pattern, ns, ok] of table) {
      const s = secret("secrets", pattern);
      if (ok) checkSecretAccess(s, ns);
      else assert.throws(() => checkSecretAccess(s, ns), denied, `${pattern} vs ${ns}`);
    }
  });

  it("answers at once for expressions that make a backtracking engine take exponential time", () => {
    const t0 = Date.now();
    for (const p of ["(a+)+", "((a)+)+", "((a+))+", "((a|b)*)*c", "(.?){30}.{30}", "(a|aa)+$"]) {
      assert.throws(() => checkSecretAccess(secret("secrets", p), `${"a".repeat(60)}-b`), denied, p);
    }
    // compiled once: the same expression on every reconcile of hundreds of ResourceSyncs
    for (let i = 0; i < 2000; i++) {
      assert.throws(() => checkSecretAccess(secret("secrets", "(.?){30}.{30}"), `ns-${i % 300}`), denied);
    }
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    checkSecretAccess(secret("secrets", "(a+)+"), "aaaa");
    checkSecretAccess(secret("secrets", "(.?){30}.{30}"), "a".repeat(45));
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
  const cases: Array<[string, ReturnType<typeof kubeconfig> & Record<string, unknown>, RegExp | undefined]> =
    [
      ["token", kubeconfig({}), undefined],
      [
        "embedded certificates",
        kubeconfig({ user: { "client-certificate-data": "Zm9v", "client-key-data": "YmFy" } }),
        undefined,
      ],
      ["tls-server-name", kubeconfig({ cluster: { "tls-server-name": "api.internal" } }), undefined],
      ["basic auth", kubeconfig({ user: { token: undefined, username: "u", password: "p" } }), undefined],
      ["preferences and extensions", { ...kubeconfig({}), preferences: {}, extensions: [] }, undefined],
      [
        "insecure-skip-tls-verify",
        kubeconfig({ cluster: { "insecure-skip-tls-verify": true } }),
        /turns off TLS verification/,
      ],
      // a number where a path is expected is read by client-node as a file descriptor
      ["token-file as a number", kubeconfig({ user: { "token-file": 3 } }), /reads a file \(token-file\)/],
      [
        "client-certificate as a number",
        kubeconfig({ user: { "client-certificate": 5 } }),
        /client-certificate/,
      ],
      [
        "certificate-authority as a number",
        kubeconfig({ cluster: { "certificate-authority": 0 } }),
        /certificate-authority/,
      ],
      [
        "a token that is not a string",
        kubeconfig({ user: { token: 12345 } }),
        /field "token" must be a string/,
      ],
      ["impersonation", kubeconfig({ user: { as: "system:admin" } }), /unsupported field "as"/],
      ["an unknown user field", kubeconfig({ user: { "new-thing": "x" } }), /unsupported field "new-thing"/],
      ["an unknown top-level field", { ...kubeconfig({}), "proxy-everything": true }, /unsupported field/],
      [
        "exec plugin",
        kubeconfig({ user: { exec: { command: "sh", args: ["-c", "id"] } } }),
        /exec credential plugin/,
      ],
      ["auth-provider", kubeconfig({ user: { "auth-provider": { name: "oidc" } } }), /auth-provider/],
      [
        "token-file",
        kubeconfig({ user: { "token-file": "/var/run/secrets/token" } }),
        /reads a file \(token-file\)/,
      ],
      [
        "tokenFile",
        kubeconfig({ user: { tokenFile: "/var/run/secrets/token" } }),
        /reads a file \(tokenFile\)/,
      ],
      [
        "client-certificate",
        kubeconfig({ user: { "client-certificate": "/c.pem" } }),
        /reads a file \(client-certificate\)/,
      ],
      ["client-key", kubeconfig({ user: { "client-key": "/k.pem" } }), /reads a file \(client-key\)/],
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
        assert.deepEqual(kubeconfigFindings(config), []);
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
      if (!/token-file|tokenFile|number|not a string/.test(name)) loadKubeconfig(text, "x", true);
    });
  }

  it("names every finding, of every user and cluster (client-node parses them all)", () => {
    const config = kubeconfig({ user: { exec: { command: "x" } } });
    config.users.push({ name: "other", user: { "token-file": "/t" } } as never);
    const found = kubeconfigFindings(config);
    assert.equal(found.length, 2);
    assert.match(found[1] ?? "", /user #2 \("other"\) reads a file \(token-file\)/);
  });

  it("refuses a token-file before @kubernetes/client-node can read it", () => {
    const dir = mkdtempSync(join(tmpdir(), "sinker-kc-"));
    try {
      const file = join(dir, "token");
      writeFileSync(file, "controller-own-token");
      const text = stringify(kubeconfig({ user: { token: undefined, "token-file": file } }));
      assert.throws(() => loadKubeconfig(text, "x", false), /reads a file \(token-file\)/);
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
    assert.throws(
      () => loadKubeconfig(stringify(wrongContext), "x", false),
      /current-context that is not defined/,
    );
    const noServer = kubeconfig({});
    (noServer.clusters[0] as { cluster: Record<string, unknown> }).cluster = { server: "" };
    assert.throws(() => loadKubeconfig(stringify(noServer), "x", false), invalid);
  });

  it("accepts only https://host[:port][/path] servers that are not link-local or metadata addresses", () => {
    const table: Array<[string, string | RegExp | undefined]> = [
      ["https://127.0.0.1:6443", undefined], // the test control plane: loopback stays allowed
      ["https://api.example.com", undefined],
      ["https://[::1]:6443/k8s/clusters/c-1", undefined],
      ["http://127.0.0.1:6443", /must be an https/],
      ["file:///etc/passwd", /must be an https/],
      ["https://127.0.0.1:6443/latest/meta-data/?", /must not have a query/],
      ["https://127.0.0.1:6443/x?a=b", /must not have a query/],
      ["https://127.0.0.1:6443/#frag", /must not have a fragment/],
      ["https://user:pw@127.0.0.1:6443", /user info/],
      ["not a url", /is not a URL/],
      ["https://169.254.169.254", "BlockedAddress"],
      ["https://169.254.1.1:443/", "BlockedAddress"],
      ["https://2852039166/", "BlockedAddress"], // 169.254.169.254 written as a number
      ["https://[::ffff:169.254.169.254]/", "BlockedAddress"],
      ["https://[fe80::1]/", "BlockedAddress"],
      ["https://[fd00:ec2::254]/", "BlockedAddress"],
      ["https://metadata.google.internal/computeMetadata/v1", "BlockedAddress"],
      ["https://METADATA.google.internal./", "BlockedAddress"],
    ];
    for (const [server, refused] of table) {
      const text = stringify(kubeconfig({ cluster: { server } }));
      if (refused === undefined) {
        loadKubeconfig(text, "x", false);
        continue;
      }
      assert.throws(
        () => loadKubeconfig(text, "x", false),
        (e: unknown) => {
          assert.ok(e instanceof SinkerError);
          if (typeof refused === "string") assert.equal(e.reason, refused, server);
          else {
            assert.equal(e.reason, "InvalidKubeconfig", server);
            assert.match(e.message, refused);
          }
          assert.ok(!e.message.includes(server), `the URL leaked: ${e.message}`);
          return true;
        },
        server,
      );
      // the unsafe opt-in does not lift these
      assert.throws(() => loadKubeconfig(text, "x", true), SinkerError, server);
    }
  });

  it("refuses more ranges when the operator asks (--deny-remote-cidr)", () => {
    const text = stringify(kubeconfig({ cluster: { server: "https://10.1.2.3:6443" } }));
    loadKubeconfig(text, "x", false);
    const policy = new AddressPolicy(["10.0.0.0/8"]);
    assert.throws(() => loadKubeconfig(text, "x", false, policy), /operator-denied/);
    assert.equal(policy.deniesAddress("127.0.0.1"), false);
    assert.throws(() => parseCidr("10.0.0.0/33"), /invalid CIDR/);
    assert.throws(() => parseCidr("nope"), /invalid CIDR/);
    assert.deepEqual(parseCidr("fd00::/8"), { address: "fd00::", prefix: 8, family: "ipv6" });
  });

  it("the address policy's lookup refuses host names that resolve to denied addresses", async () => {
    const policy = new AddressPolicy(["127.0.0.0/8"]);
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) =>
      policy.lookup("localhost", { family: 4 }, (e) => resolve(e)),
    );
    assert.equal(err?.code, "ESINKERBLOCKED");
    const ok = await new Promise<unknown>((resolve) =>
      new AddressPolicy().lookup("localhost", { family: 4 }, (e, address) => resolve(e ?? address)),
    );
    assert.equal(ok, "127.0.0.1");
  });

  it("refuses a huge kubeconfig without parsing it, and a bad one is parsed once (cached by content)", () => {
    const huge = `# ${"x".repeat(MAX_KUBECONFIG_BYTES)}\n${stringify(kubeconfig({}))}`;
    assert.throws(() => loadKubeconfig(huge, "x", false), /larger than 512 KiB/);
    const bad = `${"a: [".repeat(10)}\n${"#".repeat(400_000)}`;
    const t0 = performance.now();
    assert.throws(() => loadKubeconfig(bad, "x", false), /not valid YAML/);
    const first = performance.now() - t0;
    const t1 = performance.now();
    for (let i = 0; i < 20; i++)
      assert.throws(() => loadKubeconfig(bad, `y${i}`, false), /in y\d+ is not valid YAML/);
    // informational: the cached refusals cost a hash each
    assert.ok(first >= 0 && performance.now() - t1 >= 0);
  });

  it("refuses a context namespace that is not a namespace name", () => {
    assert.throws(() => loadKubeconfig(stringify(kubeconfig({ namespace: ".." })), "x", false), /namespace/);
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
