/** Interruption of the demo (signals), and the waits that obey it. */
import { setTimeout as sleep } from "node:timers/promises";
import { say } from "./output.ts";

// Interruption: the first SIGINT/SIGTERM aborts the scenario (or the live view) and starts the clean-up; npm
// forwards the terminal's Ctrl-C to us as well, so a second signal within a second is the same one. A later
// second signal skips the namespace clean-up; a third exits at once.

export const scenarioAbort = new AbortController();
export const cleanupAbort = new AbortController();
/** What waits and sleeps obey: the scenario's signal, then the clean-up's (aborted only by a second signal). */
export let active: AbortSignal = scenarioAbort.signal;
export let signals = 0;
export let firstSignalAt = 0;
export let forced = false;

export function onSignal(sig: NodeJS.Signals): void {
  const now = Date.now();
  if (signals > 0 && now - firstSignalAt < 1000) return;
  signals++;
  if (signals === 1) {
    firstSignalAt = now;
    say();
    say(`${sig}: stopping and cleaning up (Ctrl-C again to skip the namespace clean-up)`);
    scenarioAbort.abort(new Interrupted());
  } else if (signals === 2) {
    forced = true;
    cleanupAbort.abort(new Interrupted());
    say(`${sig}: skipping the namespace clean-up; stopping the processes this demo started`);
  } else {
    say(`${sig}: exiting now`);
    process.exit(130); // the "exit" handler below still kills the controller
  }
}

export class Interrupted extends Error {
  constructor() {
    super("interrupted");
  }
}

export class Failure extends Error {}

/** Polls `fn` every `intervalMs` until it returns a truthy value; throws Failure(`what`) after `timeoutMs`. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    active.throwIfAborted();
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      if (err instanceof Failure) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError ? ` (last error: ${(lastError as Error).message})` : "";
      throw new Failure(`timed out after ${timeoutMs / 1000} s waiting for ${what}${detail}`);
    }
    await sleep(intervalMs, undefined, { signal: active });
  }
}

/** From now on waits obey the clean-up's signal (aborted only by a second signal), not the scenario's. */
export function enterCleanup(): void {
  active = cleanupAbort.signal;
}
