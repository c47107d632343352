// Global setup of the node tier (npm run test:node): builds the control plane, helm, and the node binaries if
// needed, and starts the control plane with the node tier (`testenv up --node`) once per test run. An environment
// started by a developer is used as it is; one started by a test run is stopped by the last test run using it.
import { ensureBinaries } from "../controlplane/build.ts";
import { releaseTestRun, upForTestRun } from "../controlplane/testenv.ts";
import { ensureTools } from "../tools/build.ts";
import { ensureNodeBinaries } from "./build.ts";

export async function globalSetup(): Promise<void> {
  await ensureBinaries();
  await ensureTools();
  await ensureNodeBinaries();
  await upForTestRun({ node: true });
}

export async function globalTeardown(): Promise<void> {
  await releaseTestRun();
}
