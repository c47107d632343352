/**
 * What the shared watches are made of: the references ResourceSyncs (and sets) hold, the informer entries they
 * resolve to (keyed by client instance, group/version/plural, namespace and, for a single-object informer, name),
 * and what a change or an informer looks like to their users.
 */
import type { Logger } from "pino";
import { type ErrorReason, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import { Informer, type InformerEvent, type InformerHealth, stripForCache } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";

/**
 * The name of a reference to every object of a kind in one namespace (a set's sourceSelector): its user hears of
 * each object's changes through the namespace's shared informer (never a watch of its own); not a valid name.
 */
export const EVERY_OBJECT = "*";

export interface WatchRef {
  client: ClusterClient;
  resource: ResourceInfo;
  /** The object's namespace; ignored (use undefined) for cluster-scoped resources. */
  namespace: string | undefined;
  name: string;
  /** Watch only this object (field selector on its name), never its whole namespace. */
  single?: boolean;
  /** Set by Watches on a reference it serves from its kind's cluster-wide informer (widening). */
  clusterWide?: boolean;
}

export interface WatchChange {
  /** The client's name ("local", "secret/ns/name"). */
  cluster: string;
  /** The client instance's id (ClusterClient.id). */
  clientId: number;
  resource: ResourceInfo;
  type: "added" | "modified" | "deleted";
  object: KubeObject;
  old?: KubeObject;
}

export interface WatchesOptions {
  logger: Logger;
  /** Called with the keys of the ResourceSyncs that reference exactly this object (namespace + name). */
  onChange: (rsKeys: string[], e: WatchChange) => void;
  /**
   * Called with every ResourceSync using an informer whose list or watch works again after failures (its
   * cluster is back): they are retried now rather than at the end of their backoff.
   */
  onRecovered?: (rsKeys: string[]) => void;
  /**
   * Called with every ResourceSync using an informer that just started failing (its cluster went away): they
   * are reconciled, so their status shows it instead of resting on a cache that no longer follows the cluster.
   */
  onTrouble?: (rsKeys: string[]) => void;
  /** Bound on waiting for a newly needed informer's first list in setRefs (default 10 000 ms). */
  syncTimeoutMs?: number;
  /**
   * Widening (fan-out): when the local cluster has namespace-wide informers of one kind in at least `at`
   * namespaces, and those are at least `minShare` of all its namespaces (`namespaceCount`), one cluster-wide
   * informer replaces them (once its first list is in; refused lists keep the per-namespace ones). Watches then
   * stay independent of how many namespaces a ClusterResourceSyncSet writes to, and the cache holds at most about
   * 1/minShare times what the per-namespace informers held. Absent: never.
   */
  widening?: { local: ClusterClient; at: number; minShare: number; namespaceCount: () => number };
  /** Extra options for every informer (tests shorten backoff and timeouts with it). */
  informerOptions?: {
    watchTimeoutSeconds?: [number, number];
    idleTimeoutSeconds?: number;
    backoff?: { initialMs: number; maxMs: number };
    pageSize?: number;
  };
}

export interface WatchInfo {
  cluster: string;
  clientId: number;
  resource: ResourceInfo;
  namespace: string | undefined;
  /** The one object watched by a single-object informer. */
  name?: string;
  /** ResourceSyncs referencing objects through this informer. */
  refCount: number;
  objects: number;
  synced: boolean;
  health: InformerHealth;
}

export interface Entry {
  key: string;
  informer: Informer;
  client: ClusterClient;
  resource: ResourceInfo;
  namespace: string | undefined;
  /** Set for a single-object informer. */
  name: string | undefined;
  /** object key (namespace/name) → ResourceSync keys. */
  index: Map<string, Set<string>>;
  /** ResourceSync keys with at least one reference here. */
  users: Set<string>;
  unsubscribe: () => void;
}

/** One reference resolved to its informer key and object key. */
export interface ResolvedRef {
  entryKey: string;
  objKey: string;
  ref: WatchRef;
}

/** Whether two resolved references name the same object through the same informer. */
export function sameRef(a: ResolvedRef, b: ResolvedRef): boolean {
  return a.entryKey === b.entryKey && a.objKey === b.objKey;
}

/** Whether two lists of resolved references name the same objects through the same informers (as sets). */
export function sameRefs(a: readonly ResolvedRef[], b: readonly ResolvedRef[]): boolean {
  return b.every((r) => a.some((m) => sameRef(m, r))) && a.every((r) => b.some((m) => sameRef(m, r)));
}

export function gvr(resource: ResourceInfo): string {
  return `${resource.group}/${resource.version}/${resource.plural}`;
}

/** A kind in one client: the unit of widening. */
export function kindKey(client: ClusterClient, resource: ResourceInfo): string {
  return `${client.name}#${client.id}|${gvr(resource)}`;
}

export function entryKeyOf(
  client: ClusterClient,
  resource: ResourceInfo,
  namespace: string | undefined,
  name?: string,
): string {
  const base = `${client.name}#${client.id}|${gvr(resource)}|${resource.namespaced ? (namespace ?? "") : ""}`;
  return name === undefined ? base : `${base}|${name}`;
}

/** List failures that waiting will not cure. */
const TERMINAL_REASONS = new Set<ErrorReason>(["Forbidden", "Unauthorized", "UnknownKind"]);
export const isTerminal = (reason: ErrorReason | undefined) =>
  reason !== undefined && TERMINAL_REASONS.has(reason);

/** Why the first list of an informer did not come: its refusal's reason, else ClusterUnreachable. */
export function syncError(late: Entry | undefined, syncTimeoutMs: number): SinkerError {
  if (!late) return new SinkerError("Internal", "no informer to wait for");
  const what = `${late.resource.plural}${late.resource.group ? `.${late.resource.group}` : ""}`;
  const where = late.namespace ? ` in namespace "${late.namespace}"` : "";
  const { lastError, lastErrorReason } = late.informer.health();
  // keep a meaningful reason of the informer's last failure (Forbidden, Unauthorized…)
  const terminal = isTerminal(lastErrorReason);
  const reason = terminal && lastErrorReason ? lastErrorReason : "ClusterUnreachable";
  const when = terminal ? "" : ` within ${Math.round(syncTimeoutMs / 1000)} s`;
  return new SinkerError(
    reason,
    `could not list ${what}${where} on cluster "${late.client.name}"${when}` +
      (lastError ? `: ${lastError}` : ""),
  );
}

/**
 * Starts the informer of a reference's entry: namespace-wide, cluster-wide (widening) or single-object (a field
 * selector on the name); its events go to `onEvent`, its recoveries and troubles to the entry's users.
 */
export function startEntry(
  r: ResolvedRef,
  logger: Logger,
  informerOptions: NonNullable<WatchesOptions["informerOptions"]>,
  on: { onRecovered(): void; onTrouble(): void; onEvent(e: InformerEvent): void },
): Entry {
  const { client, resource } = r.ref;
  const namespace = r.ref.clusterWide ? undefined : r.ref.namespace;
  const name = r.ref.single ? r.ref.name : undefined;
  const informer = new Informer({
    client,
    resource,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { fieldSelector: `metadata.name=${name}` } : {}),
    logger,
    transform: stripForCache,
    onRecovered: on.onRecovered,
    onTrouble: on.onTrouble,
    ...informerOptions,
  });
  const entry: Entry = {
    key: r.entryKey,
    informer,
    client,
    resource,
    namespace,
    name,
    index: new Map(),
    users: new Set(),
    unsubscribe: informer.onEvent((e) => on.onEvent(e)),
  };
  informer.start();
  logger.debug(
    { cluster: client.name, resource: gvr(resource), namespace, ...(name ? { name } : {}) },
    "started informer (shared by every ResourceSync that needs it)",
  );
  return entry;
}

/** An informer as diagnostics and metrics see it. */
export function infoOf(e: Entry): WatchInfo {
  return {
    cluster: e.client.name,
    clientId: e.client.id,
    resource: e.resource,
    namespace: e.namespace,
    ...(e.name !== undefined ? { name: e.name } : {}),
    refCount: e.users.size,
    objects: e.informer.size,
    synced: e.informer.hasSynced(),
    health: e.informer.health(),
  };
}
