/**
 * Cluster identity (docs/security.md#cluster-identity): "same cluster or not" and "who claims a target" decided by
 * the cluster's identity, not by the Secret or URL it is reached through. Tables over the pure functions.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ClaimIndex } from "../../src/controller/claims.ts";
import { isOurs, type LiveTarget, type ObjectRef, sameObject } from "../../src/controller/decisions.ts";
import {
  type AppliedTarget,
  nextRecord,
  readRecord,
  sameTarget,
  type TargetIdentity,
} from "../../src/controller/sync-record.ts";
import * as errors from "../../src/errors.ts";
import type { ClusterClient } from "../../src/kube/client.ts";
import { KubeConfig } from "../../src/kube/client-node.ts";
import {
  type ClusterFacts,
  ClusterIdentities,
  caFingerprint,
  factKeys,
  readFacts,
  registerKubeConfig,
  sameCluster,
  serverOrigin,
} from "../../src/kube/cluster-identity.ts";
import type { KubeObject } from "../../src/kube/object.ts";

const hex = (c: string) => c.repeat(64);
const B: ClusterFacts = { kubeSystemUID: "uid-b", caSHA256: hex("b"), serverSHA256: hex("1") };
const B_ALIAS: ClusterFacts = { kubeSystemUID: "uid-b", caSHA256: hex("b"), serverSHA256: hex("2") };
const B_RESTRICTED: ClusterFacts = { caSHA256: hex("b"), serverSHA256: hex("1") };
const C_SAME_CA: ClusterFacts = { kubeSystemUID: "uid-c", caSHA256: hex("b"), serverSHA256: hex("3") };
const LOCAL: ClusterFacts = { kubeSystemUID: "uid-a", caSHA256: hex("a"), serverSHA256: hex("4") };

describe("sameCluster: the strongest fact both sides know decides", () => {
  const rows: Array<[string, ClusterFacts, ClusterFacts, boolean]> = [
    ["same kube-system uid, other server (an alias)", B, B_ALIAS, true],
    [
      "same uid, other CA: a server cannot borrow another cluster's uid",
      B,
      { ...B, caSHA256: hex("9") },
      false,
    ],
    [
      "same uid, CA unknown on one side (system trust roots)",
      B,
      { kubeSystemUID: "uid-b", serverSHA256: hex("7") },
      true,
    ],
    ["different uids, same CA (one CA signs two clusters)", B, C_SAME_CA, false],
    ["one side without uid: the CA decides (a user who may not read kube-system)", B, B_RESTRICTED, true],
    ["no uid on one side, other CA", B_RESTRICTED, { caSHA256: hex("c") }, false],
    ["only servers known: same origin", { serverSHA256: hex("1") }, { serverSHA256: hex("1") }, true],
    [
      "only servers known: an alias is not told apart",
      { serverSHA256: hex("1") },
      { serverSHA256: hex("2") },
      false,
    ],
    [
      "only servers on one side, CA on the other: nothing in common",
      { serverSHA256: hex("1") },
      { caSHA256: hex("b") },
      false,
    ],
    ["nothing known", {}, {}, false],
  ];
  for (const [what, x, y, want] of rows) {
    it(what, () => {
      assert.equal(sameCluster(x, y), want);
      assert.equal(sameCluster(y, x), want, "symmetric");
      // two facts called the same always share an index key (claims find each other)
      if (want) assert.ok(factKeys(x).some((k) => factKeys(y).includes(k)));
    });
  }
});

describe("facts: fingerprints and what is read back from a record", () => {
  it("the CA fingerprint is of the certificates, not of the PEM text around them", () => {
    const body = Buffer.from("certificate bytes").toString("base64");
    const pem = (s: string) => Buffer.from(s);
    const one = caFingerprint(pem(`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`));
    const spaced = caFingerprint(
      pem(`\n-----BEGIN CERTIFICATE-----\r\n${body}\r\n-----END CERTIFICATE-----`),
    );
    assert.equal(one, spaced);
    assert.match(one, /^[0-9a-f]{64}$/);
    const other = Buffer.from("other bytes").toString("base64");
    const two = `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n${other}\n-----END CERTIFICATE-----\n`;
    const swapped = `-----BEGIN CERTIFICATE-----\n${other}\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
    assert.equal(caFingerprint(pem(two)), caFingerprint(pem(swapped)), "a bundle's order does not matter");
    assert.notEqual(caFingerprint(pem(two)), one);
  });

  it("serverOrigin: case, trailing dot and default port do not make another server", () => {
    assert.equal(serverOrigin("https://API.Example.com.:443/"), "https://api.example.com:443");
    assert.equal(serverOrigin("https://api.example.com"), "https://api.example.com:443");
    assert.notEqual(serverOrigin("https://localhost:6443"), serverOrigin("https://127.0.0.1:6443"));
  });

  it("readFacts keeps well-formed facts only", () => {
    assert.deepEqual(readFacts({ kubeSystemUID: "u", caSHA256: hex("a") }), {
      kubeSystemUID: "u",
      caSHA256: hex("a"),
    });
    assert.deepEqual(readFacts({ caSHA256: "not hex", serverSHA256: hex("f") }), { serverSHA256: hex("f") });
    assert.equal(readFacts({ caSHA256: 42 }), undefined);
    assert.equal(readFacts("x"), undefined);
    assert.equal(readFacts({ kubeSystemUID: "x".repeat(65) }), undefined);
  });
});

const cm = (cluster: TargetIdentity["cluster"], name = "dst", namespace = "shared"): TargetIdentity => ({
  cluster,
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace,
  name,
});
const secret = (namespace: string, name = "cluster-b") => ({ namespace, name, key: "value" });

describe("sameTarget: one object in one cluster, however reached", () => {
  const rows: Array<[string, TargetIdentity, TargetIdentity, boolean]> = [
    [
      "two tenants' Secrets, one cluster",
      cm({ secretRef: secret("t1"), identity: B }),
      cm({ secretRef: secret("t2"), identity: B_ALIAS }),
      true,
    ],
    [
      "two Secrets, two clusters",
      cm({ secretRef: secret("t1"), identity: B }),
      cm({ secretRef: secret("t2"), identity: C_SAME_CA }),
      false,
    ],
    [
      "one Secret now reaching another cluster",
      cm({ secretRef: secret("t1"), identity: B }),
      cm({ secretRef: secret("t1"), identity: LOCAL }),
      false,
    ],
    [
      "an old record (no identity) and the same Secret",
      cm({ secretRef: secret("t1") }),
      cm({ secretRef: secret("t1"), identity: B }),
      true,
    ],
    [
      "an old record (no identity) and another Secret: by Secret",
      cm({ secretRef: secret("t1") }),
      cm({ secretRef: secret("t2"), identity: B }),
      false,
    ],
    [
      "same cluster, other name",
      cm({ secretRef: secret("t1"), identity: B }),
      cm({ secretRef: secret("t2"), identity: B }, "other"),
      false,
    ],
    ["both local", cm({}), cm({}), true],
  ];
  for (const [what, x, y, want] of rows) {
    it(what, () => assert.equal(sameTarget(x, y), want));
  }
  it("a localhost alias of the local cluster is the local cluster (given the local identity)", () => {
    const alias = cm({ secretRef: secret("t1", "self"), identity: { ...LOCAL, serverSHA256: hex("5") } });
    assert.equal(sameTarget(cm({}), alias, LOCAL), true);
    assert.equal(sameTarget(cm({}), cm({ secretRef: secret("t1"), identity: B }), LOCAL), false);
  });
});

describe("sameObject: the self-target check", () => {
  const end = (facts: ClusterFacts, name = "src"): ObjectRef => ({
    facts,
    group: "",
    kind: "ConfigMap",
    namespace: "n",
    name,
  });
  const rows: Array<[string, ObjectRef, ObjectRef, boolean]> = [
    [
      "the local source through a localhost Secret",
      end(LOCAL),
      end({ ...LOCAL, serverSHA256: hex("5") }),
      true,
    ],
    [
      "through a kubeconfig that may not read kube-system (same CA)",
      end(LOCAL),
      end({ caSHA256: hex("a") }),
      true,
    ],
    ["the same name in another cluster", end(LOCAL), end(B), false],
    ["another name in the same cluster", end(LOCAL), end(LOCAL, "dst"), false],
  ];
  for (const [what, x, y, want] of rows) it(what, () => assert.equal(sameObject(x, y), want));
});

const rsObject = (
  namespace: string,
  name: string,
  createdAt: string,
  target: Record<string, unknown>,
  appliedTarget?: Record<string, unknown>,
): KubeObject => ({
  apiVersion: "sinker.influxdata.io/v1alpha1",
  kind: "ResourceSync",
  metadata: { namespace, name, creationTimestamp: createdAt },
  spec: { source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "src" } }, target },
  ...(appliedTarget ? { status: { appliedTarget } } : {}),
});
const remoteSpec = (secretName = "cluster-b") => ({
  resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" },
  cluster: { namespace: "shared", kubeConfig: { secretRef: { name: secretName, key: "value" } } },
});
const recordIn = (ns: string, identity: ClusterFacts | undefined, at: string, secretName = "cluster-b") => ({
  cluster: {
    secretRef: { namespace: ns, name: secretName, key: "value" },
    ...(identity ? { identity } : {}),
  },
  apiVersion: "v1",
  kind: "ConfigMap",
  namespace: "shared",
  name: "dst",
  uid: `uid-${ns}`,
  appliedAt: at,
});

describe("ClaimIndex: claims read from the records, across Secrets and tenants", () => {
  const T1 = "2026-01-01T00:00:00Z";
  const T2 = "2026-01-01T00:00:05Z";

  it("a record through another tenant's Secret for the same cluster claims the target", () => {
    const claims = new ClaimIndex(LOCAL);
    claims.update(rsObject("t1", "sync", T1, remoteSpec(), recordIn("t1", B, T1)));
    claims.update(rsObject("t2", "sync", T1, remoteSpec()));
    const target = cm({ secretRef: secret("t2"), identity: B_ALIAS });
    assert.equal(claims.claimedBy("t2/sync", target, { key: "t2/sync", createdAt: T1 }), "t1/sync");
    // and the holder is not told it conflicts
    const own = cm({ secretRef: secret("t1"), identity: B });
    assert.equal(
      claims.claimedBy("t1/sync", own, { key: "t1/sync", createdAt: T1, appliedAt: T1 }),
      undefined,
    );
  });

  it("both applied (a race): the earlier record holds it, whichever Secret", () => {
    const claims = new ClaimIndex(LOCAL);
    claims.update(rsObject("t1", "sync", T1, remoteSpec(), recordIn("t1", B, T2)));
    claims.update(rsObject("t2", "sync", T2, remoteSpec(), recordIn("t2", B_RESTRICTED, T1)));
    const t1 = cm({ secretRef: secret("t1"), identity: B });
    const t2 = cm({ secretRef: secret("t2"), identity: B_RESTRICTED });
    assert.equal(
      claims.claimedBy("t1/sync", t1, { key: "t1/sync", createdAt: T1, appliedAt: T2 }),
      "t2/sync",
    );
    assert.equal(
      claims.claimedBy("t2/sync", t2, { key: "t2/sync", createdAt: T2, appliedAt: T1 }),
      undefined,
    );
  });

  it("the same name in another cluster is no claim", () => {
    const claims = new ClaimIndex(LOCAL);
    claims.update(rsObject("t1", "sync", T1, remoteSpec(), recordIn("t1", C_SAME_CA, T1)));
    const target = cm({ secretRef: secret("t2"), identity: B });
    assert.equal(claims.claimedBy("t2/sync", target, { key: "t2/sync", createdAt: T2 }), undefined);
  });

  it("a local record claims the object reached through an alias of the local cluster", () => {
    const claims = new ClaimIndex(LOCAL);
    const local = { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "dst" } };
    claims.update(
      rsObject("shared", "local", T1, local, {
        cluster: {},
        apiVersion: "v1",
        kind: "ConfigMap",
        namespace: "shared",
        name: "dst",
        uid: "u",
        appliedAt: T1,
      }),
    );
    const viaAlias = cm({
      secretRef: secret("shared", "self"),
      identity: { ...LOCAL, serverSHA256: hex("5") },
    });
    assert.equal(
      claims.claimedBy("shared/alias", viaAlias, { key: "shared/alias", createdAt: T2 }),
      "shared/local",
    );
  });

  it("an old record without identity still claims through its own Secret; removal frees the target", () => {
    const claims = new ClaimIndex(LOCAL);
    claims.update(rsObject("t1", "old", T1, remoteSpec(), recordIn("t1", undefined, T1)));
    const target = cm({ secretRef: secret("t1"), identity: B });
    assert.equal(claims.claimedBy("t1/new", target, { key: "t1/new", createdAt: T2 }), "t1/old");
    assert.deepEqual(claims.remove("t1/old"), []);
    assert.equal(claims.claimedBy("t1/new", target, { key: "t1/new", createdAt: T2 }), undefined);
  });
});

describe("ClaimIndex: two new ResourceSyncs through two Secrets, before either has a record", () => {
  const T1 = "2026-01-01T00:00:00Z";
  const T2 = "2026-01-01T00:00:05Z";
  const at = (t: string, plusMs: number) => Date.parse(t) + plusMs;
  /** Claims where the Secrets `reached` name the clusters given (what this process learnt reaching them). */
  const index = (reached: Record<string, ClusterFacts>) =>
    new ClaimIndex(LOCAL, (ref) => reached[`${ref.namespace}/${ref.name}`]);
  const older = rsObject("t1", "sync", T1, remoteSpec("b-admin"));
  const younger = rsObject("t2", "sync", T2, remoteSpec("b-alias"));
  const target2 = cm({ secretRef: secret("t2", "b-alias"), identity: B_ALIAS });
  const target1 = cm({ secretRef: secret("t1", "b-admin"), identity: B });
  const self2 = { key: "t2/sync", createdAt: T2 };
  const self1 = { key: "t1/sync", createdAt: T1 };

  it("the other Secret reached the same cluster: the older spec holds the target", () => {
    const claims = index({ "t1/b-admin": B, "t2/b-alias": B_ALIAS });
    claims.update(older);
    claims.update(younger);
    assert.equal(claims.claimedBy("t2/sync", target2, self2), "t1/sync");
    assert.equal(claims.claimedBy("t1/sync", target1, self1), undefined);
    assert.equal(claims.awaitedClaimant("t2/sync", target2, self2, at(T2, 100)), undefined, "known: no wait");
  });

  it("the other Secret reached another cluster (same CA, other uid): no claim, no wait", () => {
    const claims = index({ "t1/b-admin": C_SAME_CA });
    claims.update(older);
    assert.equal(claims.claimedBy("t2/sync", target2, self2), undefined);
    assert.equal(claims.awaitedClaimant("t2/sync", target2, self2, at(T2, 100)), undefined);
  });

  it("the other Secret not reached yet: the younger waits for the older's first reconcile, within a bound", () => {
    const claims = index({});
    claims.update(older);
    claims.update(younger);
    assert.equal(claims.claimedBy("t2/sync", target2, self2), undefined, "not known to be the same cluster");
    const cases: Array<[string, KubeObject, number, string | undefined]> = [
      ["the older one, never reconciled, 1 s old", older, at(T1, 1_000), "t1/sync"],
      ["the older one, 29 s old", older, at(T1, 29_000), "t1/sync"],
      ["the older one, 30 s old: waited long enough", older, at(T1, 30_000), undefined],
      ["a clock 10 s behind the API server's", older, at(T1, -10_000), "t1/sync"],
      ["a clock 5 min behind: no wait stretched by it", older, at(T1, -300_000), undefined],
      [
        "the older one, reconciled (it has a status)",
        { ...older, status: { observedGeneration: 1 } },
        at(T1, 1_000),
        undefined,
      ],
    ];
    for (const [what, other, now, want] of cases) {
      claims.update(other);
      assert.equal(claims.awaitedClaimant("t2/sync", target2, self2, now), want, what);
    }
    // the older one never waits for the younger: it would hold the target anyway
    claims.update(older);
    assert.equal(claims.awaitedClaimant("t1/sync", target1, self1, at(T1, 1_000)), undefined);
    // a ResourceSync that already applied the target (its record) waits for nobody
    assert.equal(
      claims.awaitedClaimant("t2/sync", target2, { ...self2, appliedAt: T2 }, at(T1, 1_000)),
      undefined,
    );
  });

  it("without a lookup of Secrets: claims by records and Secret references as before, never a wait", () => {
    const claims = new ClaimIndex(LOCAL);
    claims.update(older);
    assert.equal(claims.claimedBy("t2/sync", target2, self2), undefined);
    assert.equal(claims.awaitedClaimant("t2/sync", target2, self2, at(T1, 1_000)), undefined);
  });
});

describe("isOurs and the sync record with identities", () => {
  const live: LiveTarget = {
    exists: true,
    uid: "u",
    deleting: false,
    writtenBySinker: true,
    ownedByThis: false,
  };
  it("an object another ResourceSync holds is not ours, even with our record's uid", () => {
    const rec: AppliedTarget = { ...cm({}), uid: "u", appliedAt: "2026-01-01T00:00:00Z" };
    assert.equal(isOurs(live, rec, "other/rs"), false);
    assert.equal(isOurs(live, rec, undefined), true);
    assert.equal(isOurs(live, undefined, undefined), true, "Sinker's field manager, no claim: taken over");
  });

  it("an old record gets the cluster's identity, its appliedAt kept; a local one never carries it", () => {
    const old = readRecord({ appliedTarget: recordIn("t1", undefined, "2026-01-01T00:00:00Z") });
    assert.ok(old);
    const target = cm({ secretRef: secret("t1"), identity: B });
    const next = nextRecord(old, target, "uid-t1", new Date());
    assert.deepEqual(next.cluster.identity, B);
    assert.equal(next.appliedAt, old.appliedAt);
    assert.equal(nextRecord(next, target, "uid-t1", new Date()), next, "unchanged: the same record");
    const local = nextRecord(undefined, { ...cm({}), cluster: { identity: LOCAL } }, "x", new Date());
    assert.deepEqual(local.cluster, {});
    assert.deepEqual(readRecord({ appliedTarget: { ...next } })?.cluster.identity, B, "read back");
  });
});

describe("ClusterIdentities: asked once per client", () => {
  const fakeClient = (answers: Array<() => unknown>, server = "https://127.0.0.1:6443") => {
    const calls: string[] = [];
    const client = {
      server,
      get: async (_res: unknown, _ns: unknown, name: string) => {
        calls.push(name);
        const next = answers.shift();
        return next?.();
      },
    };
    return { client: client as unknown as ClusterClient, calls };
  };
  const { SinkerError } = errors;

  it("reads the kube-system uid once, then answers from its cache", async () => {
    const ids = new ClusterIdentities();
    const { client, calls } = fakeClient([() => ({ metadata: { uid: "uid-x" } })]);
    const first = await ids.of(client);
    const second = await ids.of(client);
    assert.equal(first.kubeSystemUID, "uid-x");
    assert.equal(second, first);
    assert.deepEqual(calls, ["kube-system"]);
    assert.equal(ids.known(client), first);
  });

  it("a user who may not read kube-system: the identity without uid (cached); the server origin at least", async () => {
    const ids = new ClusterIdentities();
    const { client, calls } = fakeClient([
      () => {
        throw new SinkerError("Forbidden", "forbidden");
      },
    ]);
    const facts = await ids.of(client);
    assert.equal(facts.kubeSystemUID, undefined);
    assert.match(facts.serverSHA256 ?? "", /^[0-9a-f]{64}$/);
    await ids.of(client);
    assert.equal(calls.length, 1);
  });

  it("an unreachable cluster is an error, asked again next time", async () => {
    const ids = new ClusterIdentities();
    const { client, calls } = fakeClient([
      () => {
        throw new SinkerError("ClusterUnreachable", "down");
      },
      () => ({ metadata: { uid: "uid-y" } }),
    ]);
    await assert.rejects(ids.of(client), /down/);
    assert.equal((await ids.of(client)).kubeSystemUID, "uid-y");
    assert.equal(calls.length, 2);
  });

  it("the share key: the kubeconfig's CA when it has one (aliases share it), else the server origin", () => {
    const ids = new ClusterIdentities();
    const ca = Buffer.from("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").toString(
      "base64",
    );
    const kc = (server: string, withCa: boolean) => {
      const k = new KubeConfig();
      k.loadFromOptions({
        clusters: [{ name: "c", server, ...(withCa ? { caData: ca } : {}) }],
        users: [{ name: "u" }],
        contexts: [{ name: "x", cluster: "c", user: "u" }],
        currentContext: "x",
      });
      return k;
    };
    const one = fakeClient([], "https://127.0.0.1:6443").client;
    const alias = fakeClient([], "https://localhost:6443").client;
    const noCa = fakeClient([], "https://LOCALHOST:6443").client;
    registerKubeConfig(one, kc("https://127.0.0.1:6443", true));
    registerKubeConfig(alias, kc("https://localhost:6443", true));
    registerKubeConfig(noCa, kc("https://LOCALHOST:6443", false));
    assert.equal(ids.shareKey(one), ids.shareKey(alias));
    assert.match(ids.shareKey(one), /^ca:[0-9a-f]{64}$/);
    assert.equal(ids.shareKey(noCa), "https://localhost:6443");
  });
});
