/** Timed outcomes: a write, then the time until every expected object state is seen through watches. */
import { performance } from "node:perf_hooks";
import { Watch } from "@kubernetes/client-node";
import { env, type Obj } from "./cluster.ts";
import { NS, RS_API } from "./constants.ts";
import { active, Failure } from "./interrupt.ts";
import { ms } from "./live-view.ts";
import { bold, okLine, red, rel, say } from "./output.ts";
import { controllerExit, logFile, logTail } from "./supervision.ts";

// The scenario

export const timings: Array<[string, number]> = [];
export const failures: string[] = [];

/** An outcome to wait for: object `name` in `collection` of `cluster` satisfies `test` (undefined: absent). */
export type Expect = {
  cluster: "a" | "b";
  collection: string;
  name: string;
  test: (o: Obj | undefined) => boolean;
};

export const coll = {
  cm: `/api/v1/namespaces/${NS}/configmaps`,
  secret: `/api/v1/namespaces/${NS}/secrets`,
  rs: `${RS_API}/namespaces/${NS}/resourcesyncs`,
};

/**
 * Watches every expectation's object (from the resourceVersion of a fresh list, so no event is missed), runs
 * `write`, and resolves with the milliseconds from the write to the watch event that made the last expectation
 * true. An expectation counts only when an event after the write satisfies it, so "restored after a change"
 * is measured at the restore, not at the change.
 */
export async function whenAll(
  write: () => Promise<void>,
  expects: Expect[],
  timeoutMs: number,
): Promise<number> {
  const watches: AbortController[] = [];
  try {
    const states = expects.map(() => ({ ok: false, at: 0 }));
    let notify = () => {};
    let watchError: Error | undefined;
    let armed = false;
    for (const [i, e] of expects.entries()) {
      const selector = `metadata.name=${e.name}`;
      const r = await env.request(
        e.cluster,
        "GET",
        `${e.collection}?fieldSelector=${encodeURIComponent(selector)}`,
      );
      if (r.status !== 200) throw new Failure(`list ${e.collection} in ${e.cluster}: ${r.status}`);
      const rv = (r.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
      const st = states[i] as { ok: boolean; at: number };
      watches.push(
        await new Watch(env.kubeConfig(e.cluster)).watch(
          e.collection,
          { fieldSelector: selector, resourceVersion: rv, allowWatchBookmarks: true },
          (phase: string, obj: Obj) => {
            if (phase === "BOOKMARK" || !armed) return;
            if (phase === "ERROR") {
              watchError = new Error(`watch ${e.collection} in ${e.cluster}: ${JSON.stringify(obj)}`);
            } else {
              const ok = e.test(phase === "DELETED" ? undefined : obj);
              if (ok && !st.ok) st.at = performance.now();
              st.ok = ok;
            }
            notify();
          },
          (err: unknown) => {
            if (err && !(err instanceof Error && err.name === "AbortError")) {
              watchError = new Error(
                `watch ${e.collection} in ${e.cluster} closed: ${(err as Error).message}`,
              );
              notify();
            }
          },
        ),
      );
    }
    armed = true;
    const t0 = performance.now();
    await write();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Failure(`no outcome within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const onAbort = () => {
        clearTimeout(timer);
        reject(active.reason);
      };
      active.addEventListener("abort", onAbort, { once: true });
      notify = () => {
        if (watchError) {
          clearTimeout(timer);
          reject(watchError);
        } else if (states.every((st) => st.ok)) {
          clearTimeout(timer);
          active.removeEventListener("abort", onAbort);
          resolve();
        }
      };
      notify();
    });
    const crashed = (controllerExit ?? new Promise<never>(() => {})).then((code) => {
      throw new Failure(
        `the controller exited (code ${code}); last lines of ${rel(logFile())}:\n${logTail(15)}`,
      );
    });
    await Promise.race([done, crashed]);
    return Math.max(...states.map((st) => st.at)) - t0;
  } finally {
    for (const w of watches) w.abort();
  }
}

/** Runs `write` and reports the time until every expectation held, as seen by watches. */
export async function timed(
  what: string,
  write: () => Promise<void>,
  expects: Expect[],
  timeoutMs = 20_000,
): Promise<void> {
  try {
    const took = await whenAll(write, expects, timeoutMs);
    timings.push([what, took]);
    okLine(`${what}: ${bold(ms(took))}`);
  } catch (err) {
    if (active.aborted) throw err;
    failures.push(`${what}: ${(err as Error).message}`);
    say(`${red("✗")} ${what}: ${(err as Error).message}`);
  }
}

export function check(what: string, ok: boolean, detail: string): void {
  if (ok) {
    okLine(what);
  } else {
    failures.push(`${what}: ${detail}`);
    say(`${red("✗")} ${what}: ${detail}`);
  }
}

export const b64 = (s: string) => Buffer.from(s).toString("base64");
