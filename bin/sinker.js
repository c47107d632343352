#!/usr/bin/env node
// The sources are TypeScript run by Node 24's built-in type stripping: no build step between the code that is
// tested and the code that runs (the container image runs the same entry point).
// The module hook first (it must be in place before @kubernetes/client-node is loaded), then the program.
import { skipGeneratedApiClients } from "../src/kube/client-node-hook.ts";

skipGeneratedApiClients();
await import("../src/cli/main.ts");
