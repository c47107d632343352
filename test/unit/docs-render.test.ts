/** The `sinker render` example in docs/cli.md works as written and prints what the page shows. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

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
