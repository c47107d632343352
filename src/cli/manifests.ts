/** `sinker manifests`: prints both CRDs as one multi-document YAML stream (ResourceSync first). */
import { crdYaml } from "../api/crds.ts";

const HELP = `Usage: sinker manifests

Prints the CustomResourceDefinitions of ResourceSync and SinkerContainer as one multi-document YAML stream,
ready for kubectl apply -f -.
`;

export async function runManifests(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.length > 0) {
    process.stderr.write(`sinker manifests: unexpected argument ${JSON.stringify(args[0])} (see --help)\n`);
    return 1;
  }
  process.stdout.write(crdYaml());
  return 0;
}
