/** What an Informer (informer.ts) tells its users: its events, its health, and how it is set up. */
import type { Logger } from "pino";
import type { ErrorReason } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "./client.ts";
import type { KubeObject } from "./object.ts";

export type InformerEventType = "added" | "modified" | "deleted";

export interface InformerEvent {
  type: InformerEventType;
  object: KubeObject;
  /** For modified: the previous object. For a deleted found by relisting: the last object known. */
  old?: KubeObject;
  /**
   * True for the events of the informer's first list: whoever started the informer waits for that list and
   * reads the cache afterwards, so these need not trigger anything (a relist after 410 Gone is not initial).
   */
  initial?: boolean;
}

export interface InformerHealth {
  /** A watch stream is open right now (the server accepted it and it has not ended). */
  watching: boolean;
  lastError?: string;
  /** The SinkerError reason of lastError (Forbidden, Unauthorized, ClusterUnreachable…). */
  lastErrorReason?: ErrorReason;
  /** ms since epoch of the last successful list or of the last watch event (incl. bookmarks). */
  lastSyncAt?: number;
  /** Failed list/watch attempts since the last success (a list, or a watch the server accepted). */
  consecutiveFailures: number;
  /** Lists done (the first one + relists). */
  lists: number;
  /** Watch requests opened. */
  watches: number;
  /** 410 Gone / expired resourceVersion seen. */
  expired: number;
}

export interface InformerOptions {
  client: ClusterClient;
  resource: ResourceInfo;
  /** undefined = all namespaces (or a cluster-scoped resource). */
  namespace?: string;
  fieldSelector?: string;
  logger: Logger;
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** Range of the watch `timeoutSeconds`, chosen at random per watch (default [300, 600]). */
  watchTimeoutSeconds?: [number, number];
  /**
   * Watch idle timeout: no byte for this long → the watch is dropped and re-opened from the last resourceVersion.
   * Default 150 s: kube-apiserver's watch cache sends a bookmark about every 60 s to watches that allow them
   * (measured against v1.36), so silence that long means a dead connection.
   */
  idleTimeoutSeconds?: number;
  /** Backoff after a failure: initial and maximum delay (default 500 ms, 30 s); ±50 % jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Deep-freeze stored objects (default: NODE_ENV is development or test). */
  freeze?: boolean;
  /**
   * Applied to every object before it is stored (and emitted): drop what no reader needs (managedFields, the
   * last-applied annotation) so the cache holds less. Must return a new object or the one it was given.
   */
  transform?: (object: KubeObject) => KubeObject;
  /** Called when a list or watch succeeds after failures (e.g. the cluster is back). */
  onRecovered?: () => void;
  /** Called at the second failure in a row after a success (e.g. the cluster went away). */
  onTrouble?: () => void;
}
