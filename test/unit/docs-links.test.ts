/**
 * The documentation's links hold: every relative link in README.md and docs/ names a file of the repository and,
 * with an anchor, a heading of that page; every alert's runbook link names a heading of docs/operations.md.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const repo = fileURLToPath(new URL("../..", import.meta.url));

/** GitHub's anchor of a Markdown heading. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replace(/ /g, "-");

/** The text of a page without its fenced code blocks (a `#` line in a shell block is no heading). */
const prose = (file: string): string =>
  readFileSync(join(repo, file), "utf8").replace(/^```[\s\S]*?^```/gm, "");

const anchors = (file: string): Set<string> =>
  new Set([...prose(file).matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] ?? "")));

const pages = [
  "README.md",
  ...readdirSync(join(repo, "docs"), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".md"))
    .map((f) => join("docs", f)),
];

describe("documentation links", () => {
  it("finds the pages and their links (the checks below rely on it)", () => {
    assert.ok(pages.includes(join("docs", "operations.md")));
    assert.ok(pages.includes(join("docs", "spec", "resourcesync.md")));
    assert.ok(anchors(join("docs", "operations.md")).has("sinkerdown"));
    assert.ok(anchors(join("docs", "cli.md")).has("sinker-the-controller-and-its-flags"));
  });

  for (const page of pages) {
    it(`every relative link of ${page} resolves`, () => {
      const broken: string[] = [];
      for (const [, target = ""] of prose(page).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target)) continue;
        const [path = "", anchor] = target.split("#");
        const file = path === "" ? page : normalize(join(dirname(page), path));
        if (!existsSync(join(repo, file))) broken.push(`${target}: no file ${file}`);
        else if (anchor !== undefined && file.endsWith(".md") && !anchors(file).has(anchor))
          broken.push(`${target}: no heading #${anchor} in ${file}`);
      }
      assert.deepEqual(broken, []);
    });
  }
});

describe("alert runbook links", () => {
  const operations = anchors(join("docs", "operations.md"));
  for (const file of ["alerts.yaml", "alerts.test.yaml"]) {
    it(`every runbook in monitoring/${file} is a heading of docs/operations.md`, () => {
      const text = readFileSync(join(repo, "monitoring", file), "utf8");
      const runbooks = [...text.matchAll(/^\s*runbook: (\S+)$/gm)].map((m) => m[1] ?? "");
      assert.ok(runbooks.length >= 6, `${file} has the runbooks of the six alerts`);
      for (const runbook of runbooks) {
        const [path, anchor = ""] = runbook.split("#");
        assert.equal(path, "docs/operations.md", runbook);
        assert.ok(operations.has(anchor), `docs/operations.md has no heading for #${anchor}`);
      }
    });
  }

  it("each alert of monitoring/alerts.yaml has a runbook", () => {
    const rules = (
      parse(readFileSync(join(repo, "monitoring", "alerts.yaml"), "utf8")) as {
        groups: Array<{ rules: Array<{ alert: string; annotations?: { runbook?: string } }> }>;
      }
    ).groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 6);
    for (const rule of rules) assert.ok(rule.annotations?.runbook, `${rule.alert} has a runbook`);
  });
});
