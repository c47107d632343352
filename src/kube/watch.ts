/**
 * One watch request: streams events until the server ends the watch, the caller's signal aborts, or an error.
 * No body timeout (a watch may be quiet for minutes) but an idle timer: nothing received (no event, no bookmark)
 * for the idle time → the watch is aborted and fails with ClusterUnreachable. Bookmarks are passed on and a 410
 * Gone arrives as an ERROR event (client-node's Watch drops lines it cannot parse, has a fixed 30 s timer and no
 * bookmark handling). Lines are capped (watch-lines.ts).
 */
import { type Dispatcher, request } from "undici";
import { SinkerError } from "../errors.ts";
import { apiError, idleError, isTimeout, reduceEventMessage, transportError } from "./api-errors.ts";
import {
  type ResourceInfo,
  resourcePath,
  type WatchOptions,
  watchIdleMs,
  watchQuery,
  withTypeMeta,
} from "./request.ts";
import { readErrorBody, type Transport } from "./transport.ts";
import { type WatchEvent, WatchLineDecoder } from "./watch-lines.ts";

/** An idle timer: `arm()` (re)starts it; when it fires it aborts `signal`. */
class IdleTimer {
  readonly #controller = new AbortController();
  readonly #ms: number;
  #timer: NodeJS.Timeout | undefined;
  fired = false;

  constructor(ms: number) {
    this.#ms = ms;
  }
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
  arm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.fired = true;
      this.#controller.abort();
    }, this.#ms);
  }
  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
  }
}

/**
 * Streams watch events until the server ends the watch (resolves), `signal` aborts (resolves), or an error
 * (rejects: HTTP error, broken stream, idle timeout). ERROR events (e.g. a 410 Gone Status) are passed to
 * `onEvent` like any other; the server ends the stream after one. An exception thrown by `onEvent` ends the
 * watch and rejects with it.
 */
export async function watchResource(
  t: Transport,
  res: ResourceInfo,
  namespace: string | undefined,
  opts: WatchOptions,
  onEvent: (e: WatchEvent) => void,
): Promise<void> {
  if (opts.signal.aborted) return;
  const idleMs = watchIdleMs(opts);
  const what = `watch ${res.plural}`;
  const idle = new IdleTimer(idleMs);
  const signal = AbortSignal.any([opts.signal, idle.signal]);
  const path = resourcePath(res, { namespace, query: watchQuery(opts) });
  try {
    idle.arm();
    const { dispatcher, headers } = await t.connection();
    t.admit();
    let response: Dispatcher.ResponseData;
    try {
      response = await request(t.server + path, {
        method: "GET",
        headers,
        dispatcher,
        signal,
        bodyTimeout: 0,
        headersTimeout: t.headersTimeoutMs,
      });
    } catch (err) {
      if (opts.signal.aborted && !idle.fired) {
        t.breaker?.abandon(); // not the server's fault; a probe must not stay pending
        return;
      }
      t.breaker?.failure(idle.fired || isTimeout(err));
      throw idle.fired ? idleError(t.name, what, idleMs) : transportError(t.name, err, what);
    }
    t.breaker?.success();
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await readErrorBody(response.body, t.limits.maxErrorBodyBytes);
      if (response.statusCode === 401) t.credentialsRefused();
      throw apiError(t.name, response.statusCode, text, what, t.remote);
    }
    idle.arm();
    opts.onOpen?.();
    await stream(t, res, response, { idle, signal, callerSignal: opts.signal, what, idleMs }, onEvent);
  } finally {
    idle.clear();
  }
}

interface StreamState {
  idle: IdleTimer;
  /** The caller's signal and the idle timer's together. */
  signal: AbortSignal;
  callerSignal: AbortSignal;
  what: string;
  idleMs: number;
}

/** Decodes the body of an accepted watch into events, until it ends. */
async function stream(
  t: Transport,
  res: ResourceInfo,
  response: Dispatcher.ResponseData,
  s: StreamState,
  onEvent: (e: WatchEvent) => void,
): Promise<void> {
  let handlerFailed = false;
  const decoder = new WatchLineDecoder((e) => {
    if (e.type !== "ERROR" && e.type !== "BOOKMARK") withTypeMeta(res, e.object);
    if (e.type === "ERROR" && typeof e.object.message === "string") {
      e.object.message = reduceEventMessage(e.object.message, t.remote);
    }
    try {
      onEvent(e);
    } catch (err) {
      handlerFailed = true;
      throw err;
    }
  }, t.limits.maxWatchLineBytes);
  try {
    for await (const chunk of response.body) {
      s.idle.arm();
      decoder.write(chunk as Uint8Array);
    }
    decoder.end();
  } catch (err) {
    response.body.destroy();
    if (err instanceof SinkerError && err.reason === "ResponseTooLarge") t.breaker?.failure();
    if (handlerFailed || err instanceof SinkerError) throw err;
    if (s.callerSignal.aborted && !s.idle.fired) return;
    if (s.idle.fired) throw idleError(t.name, s.what, s.idleMs);
    if (s.signal.aborted) return;
    throw transportError(t.name, err, s.what);
  }
}
