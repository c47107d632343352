/**
 * Entry point of the `sinker` command: picks the subcommand and hands over to its module.
 * Each subcommand returns an exit code; user errors are printed as one line, never as a stack trace.
 */
import { readFileSync } from "node:fs";

const USAGE = `sinker — keeps Kubernetes resources in sync, in a cluster and across clusters

Usage:
  sinker [flags]            run the controller (see sinker --help for flags)
  sinker manifests          print the CustomResourceDefinitions as YAML
  sinker render [flags]     print the object a ResourceSync would apply, offline
  sinker diff [NAME]        show what applying ResourceSyncs now would change on their targets
  sinker version            print the version
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "version":
    case "--version":
      process.stdout.write(`sinker ${version()}\n`);
      return 0;
    case "help":
      process.stdout.write(USAGE);
      return 0;
    case "manifests": {
      const { runManifests } = await import("./manifests.ts");
      return runManifests(rest);
    }
    case "diff": {
      const { runDiff } = await import("./diff.ts");
      return runDiff(rest);
    }
    case "render": {
      const { runRender } = await import("./render.ts");
      return runRender(rest);
    }
    default: {
      const { runController } = await import("./run.ts");
      return runController(argv, { usage: USAGE, version: version() });
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `sinker: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 70;
  },
);
