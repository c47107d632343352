// Global setup of the end-to-end tests (node --test --test-global-setup): builds the control plane if needed and
// starts it once per test run. A control plane that was already up (a developer's `npm run testenv -- up`) is used
// as it is and left running; one started here is stopped again in globalTeardown.
import { ensureBinaries } from "../controlplane/build.ts";
import { down, up } from "../controlplane/testenv.ts";

let startedHere = false;

export async function globalSetup(): Promise<void> {
  await ensureBinaries();
  const r = await up();
  startedHere = r.started;
}

export async function globalTeardown(): Promise<void> {
  if (startedHere) await down();
}
