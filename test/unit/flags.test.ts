import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { FLAGS } from "../../src/cli/flag-table.ts";
import {
  type ControllerConfig,
  HELP,
  parseAddress,
  parseControllerFlags,
  parseDuration,
} from "../../src/cli/flags.ts";

function config(argv: string[], env: NodeJS.ProcessEnv = {}, podNamespace?: string): ControllerConfig {
  const r = parseControllerFlags(argv, env, { podNamespace: () => podNamespace });
  if (!r.ok) assert.fail(`expected ${JSON.stringify(argv)} to parse, got: ${r.error}`);
  if (!("config" in r)) assert.fail("expected a config, got help");
  return r.config;
}

function error(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = parseControllerFlags(argv, env);
  if (r.ok) assert.fail(`expected ${JSON.stringify(argv)} to be refused`);
  assert.ok(!r.error.includes("\n"), "one-line message");
  return r.error;
}

describe("parseDuration", () => {
  for (const [text, ms] of [
    ["9s", 9000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["1h", 3_600_000],
    ["1.5s", 1500],
    ["2m", 120_000],
    ["1500us", 1.5],
    ["0", 0],
  ] as const) {
    it(`${text} → ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }
  for (const text of ["", "9", "s", "9x", "-1s", "1s 2s", "9 s", "abc", "1.2.3s"]) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => parseDuration(text), /invalid duration/));
  }
});

describe("parseAddress", () => {
  for (const [text, host, port] of [
    ["0.0.0.0:8080", "0.0.0.0", 8080],
    ["127.0.0.1:0", "127.0.0.1", 0],
    ["[::]:8080", "::", 8080],
    ["[::1]:9090", "::1", 9090],
    [":8080", "0.0.0.0", 8080],
    ["localhost:8080", "localhost", 8080],
  ] as const) {
    it(`${text}`, () => assert.deepEqual(parseAddress(text), { host, port }));
  }
  for (const text of [
    "8080",
    "0.0.0.0",
    "0.0.0.0:",
    "0.0.0.0:99999",
    "0.0.0.0:http",
    "::1:8080",
    "[::1:8080",
    "a b:1",
  ]) {
    it(`refuses ${JSON.stringify(text)}`, () => assert.throws(() => parseAddress(text), /invalid address/));
  }
});

describe("parseControllerFlags", () => {
  it("defaults", () => {
    const c = config([]);
    assert.deepEqual(c, {
      logLevel: "sinker=info,warn",
      logFormat: "plain",
      asGroups: [],
      responseHeadersTimeoutMs: 9000,
      requestTimeoutMs: 30_000,
      adminAddr: { host: "0.0.0.0", port: 8080 },
      allowClusterScoped: false,
      allowUnsafeKubeconfigs: false,
      denyRemoteCidrs: [],
      concurrency: 8,
      maxConcurrentPerCluster: 4,
      resyncPeriodMs: 600_000,
      maxChildrenPerSet: 1000,
      leaderElection: {
        enabled: false,
        id: "sinker",
        namespace: "default",
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
      },
    });
  });

  it("--help and -h give the help text", () => {
    for (const flag of ["--help", "-h"]) {
      const r = parseControllerFlags(["--concurrency", "3", flag], {});
      assert.ok(r.ok && "help" in r);
      for (const name of ["--log-level", "--admin-addr", "--leader-elect", "--as-group", "SINKER_LOG"]) {
        assert.ok(r.help.includes(name), `help mentions ${name}`);
      }
    }
  });

  const cases: Array<[string, string[], (c: ControllerConfig) => unknown, unknown]> = [
    [
      "--log-level",
      ["--log-level", "sinker::controller=trace,warn"],
      (c) => c.logLevel,
      "sinker::controller=trace,warn",
    ],
    ["--log-level=", ["--log-level=debug"], (c) => c.logLevel, "debug"],
    ["--log-format json", ["--log-format", "json"], (c) => c.logFormat, "json"],
    ["--log-format=plain", ["--log-format=plain"], (c) => c.logFormat, "plain"],
    ["--kubeconfig", ["--kubeconfig", "/tmp/kc"], (c) => c.kubeconfig, "/tmp/kc"],
    ["--context", ["--context", "prod"], (c) => c.context, "prod"],
    ["--cluster", ["--cluster=c1"], (c) => c.cluster, "c1"],
    ["--user", ["--user", "u1"], (c) => c.user, "u1"],
    ["--as", ["--as", "system:serviceaccount:x:y"], (c) => c.as, "system:serviceaccount:x:y"],
    [
      "--as-group repeated",
      ["--as", "u", "--as-group", "g1", "--as-group=g2"],
      (c) => c.asGroups,
      ["g1", "g2"],
    ],
    [
      "headers timeout",
      ["--kube-api-response-headers-timeout", "1m30s"],
      (c) => c.responseHeadersTimeoutMs,
      90_000,
    ],
    [
      "--admin-addr v4",
      ["--admin-addr", "127.0.0.1:9000"],
      (c) => c.adminAddr,
      { host: "127.0.0.1", port: 9000 },
    ],
    ["--admin-addr v6", ["--admin-addr=[::]:8080"], (c) => c.adminAddr, { host: "::", port: 8080 }],
    ["--allow-cluster-scoped", ["--allow-cluster-scoped"], (c) => c.allowClusterScoped, true],
    ["--allow-cluster-scoped=false", ["--allow-cluster-scoped=false"], (c) => c.allowClusterScoped, false],
    [
      "--allow-unsafe-kubeconfigs",
      ["--allow-unsafe-kubeconfigs=true"],
      (c) => c.allowUnsafeKubeconfigs,
      true,
    ],
    [
      "--deny-remote-cidr repeated",
      ["--deny-remote-cidr", "10.0.0.0/8", "--deny-remote-cidr=fd00::/8"],
      (c) => c.denyRemoteCidrs,
      ["10.0.0.0/8", "fd00::/8"],
    ],
    ["--kube-api-request-timeout", ["--kube-api-request-timeout=1m"], (c) => c.requestTimeoutMs, 60_000],
    ["--concurrency", ["--concurrency", "32"], (c) => c.concurrency, 32],
    [
      "per-cluster share follows --concurrency",
      ["--concurrency", "32"],
      (c) => c.maxConcurrentPerCluster,
      16,
    ],
    ["per-cluster share of 1 worker", ["--concurrency", "1"], (c) => c.maxConcurrentPerCluster, 1],
    [
      "--max-concurrent-reconciles-per-cluster",
      ["--concurrency=6", "--max-concurrent-reconciles-per-cluster", "5"],
      (c) => c.maxConcurrentPerCluster,
      5,
    ],
    ["--resync-period", ["--resync-period", "90s"], (c) => c.resyncPeriodMs, 90_000],
    ["--max-children-per-set", ["--max-children-per-set", "50"], (c) => c.maxChildrenPerSet, 50],
    ["--leader-elect", ["--leader-elect"], (c) => c.leaderElection.enabled, true],
    [
      "--leader-election-id",
      ["--leader-election-id", "sinker.example"],
      (c) => c.leaderElection.id,
      "sinker.example",
    ],
    [
      "--leader-election-namespace",
      ["--leader-election-namespace", "ops"],
      (c) => c.leaderElection.namespace,
      "ops",
    ],
    [
      "lease durations",
      [
        "--leader-election-lease-duration=30s",
        "--leader-election-renew-deadline=20s",
        "--leader-election-retry-period=500ms",
      ],
      (c) => [
        c.leaderElection.leaseDurationMs,
        c.leaderElection.renewDeadlineMs,
        c.leaderElection.retryPeriodMs,
      ],
      [30_000, 20_000, 500],
    ],
  ];
  for (const [name, argv, get, want] of cases) {
    it(`parses ${name}`, () => assert.deepEqual(get(config(argv)), want));
  }

  it("SINKER_LOG is the fallback of --log-level, and the flag wins", () => {
    assert.equal(config([], { SINKER_LOG: "sinker=debug" }).logLevel, "sinker=debug");
    assert.equal(config(["--log-level", "info"], { SINKER_LOG: "sinker=debug" }).logLevel, "info");
  });

  it("the Lease namespace defaults to the pod's namespace", () => {
    assert.equal(config([], {}, "sinker").leaderElection.namespace, "sinker");
    assert.equal(config(["--leader-election-namespace", "x"], {}, "sinker").leaderElection.namespace, "x");
  });

  const bad: Array<[string, string[], RegExp, NodeJS.ProcessEnv?]> = [
    ["unknown flag", ["--nope"], /unknown flag --nope/],
    ["positional argument", ["run"], /unexpected argument "run"/],
    ["missing value", ["--context"], /--context needs a value/],
    ["flag as value", ["--context", "--user", "x"], /--context needs a value/],
    ["bad log format", ["--log-format", "xml"], /--log-format: "xml" is not one of plain, json/],
    ["bad log level", ["--log-level", "sinker=loud"], /--log-level: .*unknown level "loud"/],
    ["bad log target", ["--log-level", "sin ker=info"], /--log-level: .*not a module name/],
    ["bad SINKER_LOG", [], /SINKER_LOG: .*unknown level "verbose"/, { SINKER_LOG: "sinker=verbose" }],
    [
      "bad duration",
      ["--kube-api-response-headers-timeout", "9"],
      /--kube-api-response-headers-timeout: invalid duration "9"/,
    ],
    ["zero duration", ["--kube-api-response-headers-timeout", "0"], /must be greater than 0/],
    ["bad address", ["--admin-addr", "8080"], /--admin-addr: invalid address "8080"/],
    ["bad port", ["--admin-addr", "0.0.0.0:70000"], /port "70000" is not 0-65535/],
    ["bad boolean", ["--leader-elect=yes"], /"yes" for --leader-elect: expected true or false/],
    ["bad concurrency", ["--concurrency", "0"], /--concurrency: "0" is not a whole number/],
    [
      "bad max-children-per-set",
      ["--max-children-per-set", "0"],
      /--max-children-per-set: "0" is not a whole number/,
    ],
    ["non-numeric concurrency", ["--concurrency", "many"], /--concurrency/],
    [
      "zero per-cluster share",
      ["--max-concurrent-reconciles-per-cluster=0"],
      /--max-concurrent-reconciles-per-cluster: "0" is not a whole number/,
    ],
    ["empty context", ["--context="], /--context: must not be empty/],
    ["--as-group without --as", ["--as-group", "g"], /--as-group needs --as/],
    ["--deny-remote-cidr not a CIDR", ["--deny-remote-cidr", "10.0.0.0"], /deny-remote-cidr.*invalid CIDR/],
    [
      "bad lease name",
      ["--leader-election-id", "Sinker_Lease"],
      /--leader-election-id: "Sinker_Lease" is not a valid Lease name/,
    ],
    ["bad lease namespace", ["--leader-election-namespace", "a.b"], /not a valid namespace name/],
    [
      "lease duration ≤ renew deadline",
      ["--leader-election-lease-duration", "10s"],
      /lease-duration must be greater than --leader-election-renew-deadline/,
    ],
    [
      "renew deadline too close to retry period",
      ["--leader-election-retry-period", "9s"],
      /renew-deadline must be greater than 1.2 × --leader-election-retry-period/,
    ],
  ];
  for (const [name, argv, re, env] of bad) {
    it(`refuses ${name}`, () => assert.match(error(argv, env), re));
  }
});

/** The rows of the controller's flag table (`| Flag | Default | Meaning |`) in docs/cli.md. */
function documentedFlagRows(): Array<{ flags: string; default: string }> {
  const repo = fileURLToPath(new URL("../..", import.meta.url));
  const lines = readFileSync(join(repo, "docs", "cli.md"), "utf8").split("\n");
  const start = lines.indexOf("| Flag | Default | Meaning |");
  assert.ok(start >= 0, "no flag table (| Flag | Default | Meaning |) in docs/cli.md");
  const rows: Array<{ flags: string; default: string }> = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const [flags = "", def = ""] = line
      .split(/(?<!\\)\|/)
      .slice(1)
      .map((c) => c.trim().replaceAll("\\|", "|"));
    rows.push({ flags, default: def });
  }
  return rows;
}

describe("the documented flag table matches the flag declarations", () => {
  const rows = documentedFlagRows();
  const documented = new Map<string, { span: string; default: string }>();
  for (const row of rows) {
    for (const [, span = ""] of row.flags.matchAll(/`([^`]+)`/g)) {
      const name = /^--([a-z-]+)/.exec(span)?.[1];
      if (name !== undefined) documented.set(name, { span, default: row.default });
    }
  }

  it("documents every flag, and no flag that does not exist", () => {
    assert.deepEqual([...documented.keys()].sort(), [...FLAGS.map((f) => f.name), "help"].sort());
  });

  for (const f of FLAGS) {
    it(`--${f.name}: placeholder and default`, () => {
      const doc = documented.get(f.name);
      assert.ok(doc, `--${f.name} is documented`);
      assert.equal(doc.span, f.value === undefined ? `--${f.name}` : `--${f.name} ${f.value}`);
      if (f.type === "boolean") assert.equal(doc.default, "off");
      else if (f.default !== undefined) assert.ok(doc.default.includes(`\`${f.default}\``), doc.default);
      else if (f.defaultText !== undefined) assert.notEqual(doc.default, "");
      else assert.equal(doc.default, "");
      if (f.env !== undefined) assert.ok(doc.default.includes(`\`${f.env}\``), `mentions ${f.env}`);
    });
  }

  it("the help text lists every flag with its default", () => {
    for (const f of FLAGS) {
      assert.ok(HELP.includes(`  --${f.name}${f.value === undefined ? "" : ` ${f.value}`}`), f.name);
      const d = f.default;
      const text = HELP.replace(/\s+/g, " ");
      if (d !== undefined) assert.ok(text.includes(`default ${d})`) || text.includes(`default "${d}")`), d);
    }
  });
});
