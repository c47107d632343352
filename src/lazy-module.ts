/**
 * A module loaded at its first use instead of at start: a synchronous `require` of an ES module (or a CommonJS
 * one), so that the call site stays synchronous. For the parts a controller whose ResourceSyncs never need them
 * should not pay for in resident memory (each module's source, compiled code and top-level objects stay for the
 * life of the process): the CEL implementation, the JSONPath engine, the RE2 engine, the YAML parser of remote
 * kubeconfigs.
 */
import { createRequire } from "node:module";

/** `load()` gives the module, loading it the first time; `specifier` is resolved from `parentUrl`. */
export function lazyModule<T>(parentUrl: string, specifier: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= createRequire(parentUrl)(specifier) as T;
    return loaded;
  };
}
