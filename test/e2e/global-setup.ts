// Global setup of the end-to-end tests (node --test --test-global-setup): builds the control plane and the
// command-line tools (helm, promtool) if needed and starts the control plane once per test run. A control plane
// started by a developer (`npm run testenv -- up`) is used as it is and left running; one started by a test run
// is stopped by the last test run using it.
import { ensureBinaries } from "../controlplane/build.ts";
import { releaseTestRun, upForTestRun } from "../controlplane/testenv.ts";
import { ensureTools } from "../tools/build.ts";

export async function globalSetup(): Promise<void> {
  await ensureBinaries();
  await ensureTools();
  await upForTestRun();
}

export async function globalTeardown(): Promise<void> {
  await releaseTestRun();
}
