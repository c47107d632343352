/**
 * The documented examples work as written: the `sinker render` example of docs/cli.md prints what the page shows,
 * and the whole ResourceSyncs the README and the API reference show are valid.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { validateResourceSync } from "../../src/api/validate.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));

test("docs/cli.md: the sinker render example prints the documented output", () => {
  const page = readFileSync(join(repo, "docs", "cli.md"), "utf8");
  const section = /<!-- section: render -->([\s\S]*?)<!-- \/section: render -->/.exec(page)?.[1] ?? "";
  const command = /```sh\nnpm run --silent sinker -- (render [^\n]+)\n```/.exec(section)?.[1];
  assert.ok(command, "the render section shows an `npm run --silent sinker -- render ...` command");
  const shown = /this prints:\n\n```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(shown, "the render section shows the output");
  const r = spawnSync(
    join(repo, "node_modules", ".bin", "node"),
    ["src/cli/main.ts", ...command.split(/\s+/)],
    {
      cwd: repo,
      encoding: "utf8",
    },
  );
  assert.equal(r.stderr, "");
  assert.equal(r.status, 0);
  assert.equal(r.stdout, shown);
});

test("README.md and docs/spec: every complete ResourceSync example passes the CRD's validation", () => {
  const examples: Array<{ page: string; doc: unknown }> = [];
  for (const page of ["README.md", join("docs", "spec", "resourcesync.md")]) {
    const text = readFileSync(join(repo, page), "utf8");
    for (const [, block = ""] of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
      const doc = parse(block) as { kind?: unknown } | null;
      if (doc?.kind === "ResourceSync") examples.push({ page, doc });
    }
  }
  assert.ok(examples.length >= 2, "README.md and docs/spec/resourcesync.md each show a whole ResourceSync");
  for (const { page, doc } of examples) {
    const r = validateResourceSync(doc);
    assert.ok(r.ok, `${page}: ${JSON.stringify(r.ok ? [] : r.errors)}`);
  }
});
