/**
 * monitoring/: the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), and
 * every series the rules and the Grafana dashboard name exists in a real /metrics scrape of the sinker process
 * after it synced locally and to cluster b, failed once, and carried a source change; docs/operations.md
 * documents every panel and has the runbook each alert links to.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { repoRoot } from "../controlplane/testenv.ts";
import { killAllSinkers, Sinker } from "../support/sinker-process.ts";
import {
  configMap,
  deleteResourceSyncs,
  kubeconfigSecret,
  resourceSync,
  waitReady,
} from "./support/cluster.ts";
import { useSuite } from "./support/suite.ts";
import { cleanUpTools, tool } from "./support/tools.ts";

const dir = join(repoRoot, "monitoring");
const operations = readFileSync(join(repoRoot, "docs", "operations.md"), "utf8");

interface Rule {
  alert: string;
  expr: string;
  annotations: { runbook: string; summary: string };
}
const rules = (parse(readFileSync(join(dir, "alerts.yaml"), "utf8")) as { groups: Array<{ rules: Rule[] }> })
  .groups[0]?.rules as Rule[];
interface Panel {
  title: string;
  description: string;
  targets: Array<{ expr: string }>;
}
const dashboard = JSON.parse(readFileSync(join(dir, "grafana-dashboard.json"), "utf8")) as {
  panels: Panel[];
};

/** Series synthesized by Prometheus itself, never in a target's /metrics. */
const SYNTHETIC = new Set(["up"]);

const KEYWORDS = new Set(["and", "or", "unless", "bool", "offset", "inf", "nan"]);

/**
 * The metric names a PromQL expression selects: identifiers that are neither functions, aggregations, keywords,
 * label names (inside {...} or by/without/on/ignoring/group_*(...)) nor durations. Enough for the expressions of
 * monitoring/ (a check of our own files, not a PromQL parser).
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\w+/g, " ");
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = stripped.slice((m.index ?? 0) + m[0].length);
    if (/^\s*\(/.test(rest) || KEYWORDS.has(m[0].toLowerCase())) continue;
    if (/\d$/.test(stripped.slice(0, m.index)) && /^[smhdwy]+$/.test(m[0])) continue; // 5m, 1h
    names.add(m[0]);
  }
  return [...names];
}

/** GitHub's anchor of a Markdown heading. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replace(/ /g, "-");

const suite = useSuite();
const { a } = suite;

after(async () => {
  killAllSinkers();
  cleanUpTools();
});

describe("monitoring: alert rules", () => {
  it("pass promtool check rules", async () => {
    const r = await tool("promtool", ["check", "rules", join(dir, "alerts.yaml")]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /SUCCESS: 6 rules found/);
  });

  it("pass their promtool unit tests", async () => {
    const r = await tool("promtool", ["test", "rules", "alerts.test.yaml"], { cwd: dir });
    assert.equal(r.code, 0, r.stderr + r.stdout);
  });

  it("each links to a runbook section of docs/operations.md", () => {
    const anchors = new Set([...operations.matchAll(/^#{2,6} (.+)$/gm)].map((m) => slug(m[1] ?? "")));
    for (const rule of rules) {
      const [file, anchor = ""] = rule.annotations.runbook.split("#");
      assert.equal(file, "docs/operations.md", rule.alert);
      assert.ok(anchors.has(anchor), `docs/operations.md has no heading for #${anchor} (${rule.alert})`);
    }
  });
});

describe("monitoring: Grafana dashboard", () => {
  it("every panel has a query, a description, and a paragraph in docs/operations.md", () => {
    assert.ok(dashboard.panels.length >= 10);
    for (const p of dashboard.panels) {
      assert.ok(p.targets.length > 0 && p.targets.every((t) => t.expr.trim() !== ""), p.title);
      assert.ok(p.description.length > 20, `${p.title} has a description`);
      assert.ok(operations.includes(`**${p.title}**`), `docs/operations.md describes the panel "${p.title}"`);
    }
  });

  it("metricNames finds the series of an expression (the check below relies on it)", () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(sinker_sync_latency_seconds_bucket{job=~"$job"}[$__rate_interval]))) > 10',
      ),
      ["sinker_sync_latency_seconds_bucket"],
    );
    assert.deepEqual(metricNames('absent(up{job="sinker-admin"} == 1)'), ["up"]);
    assert.deepEqual(
      metricNames("process_resident_memory_bytes / 1048576 and on (instance) sinker_leader offset 5m"),
      ["process_resident_memory_bytes", "sinker_leader"],
    );
  });
});

describe("monitoring: every series named exists in a real scrape", () => {
  it("of a sinker process that synced locally and to cluster b, failed once and carried a change", async () => {
    const namespace = await suite.ns("a", "monitoring");
    const remoteNs = await suite.ns("b", "monitoring");
    await a.apply(kubeconfigSecret(namespace, "cluster-b", suite.env.kubeconfigText("b")));
    await a.apply(configMap(namespace, "source", { k: "1" }));
    const ref = (name: string) => ({ resourceRef: { apiVersion: "v1", kind: "ConfigMap", name } });
    await a.apply(resourceSync(namespace, "local", { source: ref("source"), target: ref("local-copy") }));
    await a.apply(
      resourceSync(namespace, "remote", {
        source: ref("source"),
        target: {
          ...ref("remote-copy"),
          cluster: { namespace: remoteNs, kubeConfig: { secretRef: { name: "cluster-b", key: "value" } } },
        },
      }),
    );
    await a.apply(resourceSync(namespace, "failing", { source: ref("missing"), target: ref("never") }));

    const sinker = new Sinker([
      "--kubeconfig",
      suite.env.kubeconfigPath("a"),
      "--admin-addr",
      "127.0.0.1:0",
      "--log-format",
      "json",
      "--leader-elect",
      "--leader-election-namespace",
      namespace,
      "--leader-election-id",
      "sinker-monitoring-e2e",
    ]);
    try {
      await waitReady(a, namespace, "local", "True", undefined, 30_000);
      await waitReady(a, namespace, "remote", "True");
      await waitReady(a, namespace, "failing", "False", "SourceNotFound");
      await a.apply(configMap(namespace, "source", { k: "2" }));
      await a.waitFor(
        "the change to reach the local copy",
        "v1",
        "ConfigMap",
        namespace,
        "local-copy",
        (o) => (o?.data?.k === "2" ? true : undefined),
      );
      let text = "";
      await a.waitFor("sync latency observed", "v1", "ConfigMap", namespace, "local-copy", async () => {
        text = await (await fetch(`${await sinker.adminUrl()}/metrics`)).text();
        // (sinker_watch_connections exists from the start; its value is refreshed every 5 s)
        return /^sinker_sync_latency_seconds_count [1-9]/m.test(text) &&
          /^sinker_watch_connections\{/m.test(text)
          ? true
          : undefined;
      });
      const scraped = new Set(
        text
          .split("\n")
          .filter((l) => l !== "" && !l.startsWith("#"))
          .map((l) => /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(l)?.[0] ?? ""),
      );
      const named = new Map<string, string>();
      for (const r of rules) for (const n of metricNames(r.expr)) named.set(n, `alert ${r.alert}`);
      for (const p of dashboard.panels)
        for (const t of p.targets) for (const n of metricNames(t.expr)) named.set(n, `panel "${p.title}"`);
      assert.ok(named.size >= 15, `only ${named.size} series named`);
      const missing = [...named]
        .filter(([n]) => !SYNTHETIC.has(n) && !scraped.has(n))
        .map(([n, w]) => `${n} (${w})`);
      assert.deepEqual(missing, [], "series named in monitoring/ but absent from /metrics");
      await deleteResourceSyncs(a, [namespace]);
    } finally {
      const exit = await sinker.terminate();
      assert.equal(exit.code, 0, sinker.stderr);
    }
  });
});
