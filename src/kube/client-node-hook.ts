/**
 * A module resolution hook that keeps @kubernetes/client-node's config module (which holds KubeConfig, all that
 * Sinker uses of the library) from loading the generated clients of every Kubernetes API: over 2,700 modules,
 * about 45 MiB of resident memory from the start (measured on Node 24), never used by Sinker, whose HTTP layer is
 * src/kube/client.ts. bin/sinker.js registers it before anything imports client-node; this file must therefore
 * import nothing that does.
 */
import { registerHooks } from "node:module";

/**
 * What stands in for client-node's generated API module. KubeConfig needs it only in `makeApiClient`, which
 * Sinker never calls; if something did, it fails loudly instead of misbehaving.
 */
const STUB =
  "data:text/javascript," +
  encodeURIComponent(
    [
      "const no = () => { throw new Error('sinker: the generated API clients of @kubernetes/client-node are not loaded'); };",
      "export const createConfiguration = no;",
      "export class ServerConfiguration { constructor() { no(); } }",
    ].join("\n"),
  );

let registered = false;

/**
 * Registers a module resolution hook: client-node's config module gets the stub instead of `./gen/index.js`.
 * Must run before anything imports client-node. Everything else resolves as usual; should a future client-node
 * move its files, nothing matches and the generated clients are simply loaded as before.
 */
export function skipGeneratedApiClients(): void {
  if (registered) return;
  registered = true;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (
        specifier === "./gen/index.js" &&
        context.parentURL?.endsWith("/node_modules/@kubernetes/client-node/dist/config.js")
      ) {
        return { url: STUB, shortCircuit: true, format: "module" };
      }
      return nextResolve(specifier, context);
    },
  });
}
