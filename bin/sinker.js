#!/usr/bin/env node
// The sources are TypeScript run by Node 24's built-in type stripping: no build step between the code that is
// tested and the code that runs (the container image runs the same entry point).
// The compile cache first (NODE_COMPILE_CACHE, else a directory under the OS temp dir): a start after the first
// one (a restart of the container, whose /tmp is an emptyDir) neither strips types nor compiles again, about half
// of the CPU a start costs. Where it cannot be written, Node runs without it.
import { enableCompileCache } from "node:module";

enableCompileCache();
// The module hook next (it must be in place before @kubernetes/client-node is loaded), then the program.
const { skipGeneratedApiClients } = await import("../src/kube/client-node-hook.ts");
skipGeneratedApiClients();
await import("../src/cli/main.ts");
