/**
 * The cancellation of the work in progress, carried implicitly to every API request it makes.
 *
 * The controller runtime runs each reconcile inside `withRequestSignal(signal, …)`; ClusterClient reads
 * `currentRequestSignal()` for every request it sends. So when leadership is lost or the process stops, the
 * runtime aborts one signal and every request of every in-flight reconcile is cancelled, however deep in the
 * call chain it was made, without a `signal` parameter threaded through each function (node:async_hooks'
 * AsyncLocalStorage follows the promise chain).
 */
import { AsyncLocalStorage } from "node:async_hooks";

const storage = new AsyncLocalStorage<AbortSignal>();

export function withRequestSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  return storage.run(signal, fn);
}

/** The signal of the work in progress, if any. */
export function currentRequestSignal(): AbortSignal | undefined {
  return storage.getStore();
}
