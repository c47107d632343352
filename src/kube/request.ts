/**
 * Request building for the Kubernetes API, pure (no I/O, no client): the resource a kind is served as, the URL
 * path of a resource or object, the query strings of list, watch and apply, and the type fields filled in on
 * answers. The client (client.ts) sends what these build; transport.ts does the sending.
 */
import { SinkerError } from "../errors.ts";
import type { KubeObject } from "./object.ts";

export interface ResourceInfo {
  /** `v1` or `group/version`. */
  apiVersion: string;
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** The resource name in URLs, e.g. `configmaps`. */
  plural: string;
  namespaced: boolean;
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  /** Only meaningful with resourceVersion: "NotOlderThan" | "Exact". */
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  resourceVersion: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Asks the server to end the watch after this many seconds (the server adds no jitter: the caller should). */
  timeoutSeconds?: number;
  allowWatchBookmarks?: boolean;
  signal: AbortSignal;
  /**
   * No bytes for this many seconds (events, bookmarks) → the watch is aborted and the promise rejects with
   * ClusterUnreachable. Default: timeoutSeconds + 60, or 300 without timeoutSeconds.
   */
  idleTimeoutSeconds?: number;
  /** Called once the server accepted the watch (2xx response headers). */
  onOpen?: () => void;
}

export interface DeleteOptions {
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ApplyOptions {
  fieldManager: string;
  force: boolean;
  subresource?: "status";
  /** The server computes and validates the result without storing it (`dryRun=All`), as `sinker diff` needs. */
  dryRun?: boolean;
}

export type PatchType = "merge" | "json" | "strategic";

export const PATCH_CONTENT_TYPES: Readonly<Record<PatchType, string>> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
};

export const APPLY_CONTENT_TYPE = "application/apply-patch+yaml";

/** `apps/v1` → { group: "apps", version: "v1" }, `v1` → { group: "", version: "v1" }. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const parts = apiVersion.split("/");
  if (parts.length === 1 && parts[0]) return { group: "", version: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { group: parts[0], version: parts[1] };
  throw new SinkerError(
    "UnknownKind",
    `invalid apiVersion "${apiVersion}": expected "version" or "group/version"`,
  );
}

/** Where a request goes within a resource: a namespace, an object, a subresource, a query. */
export interface Target {
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string | undefined;
  query?: URLSearchParams;
}

/** The URL path (and query) of a resource, or of one object of it. */
export function resourcePath(res: ResourceInfo, target: Target = {}): string {
  const { namespace, name, subresource, query } = target;
  let p = res.group === "" ? `/api/${res.version}` : `/apis/${res.group}/${res.version}`;
  if (res.namespaced && namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  else if (res.namespaced && name !== undefined) {
    throw new SinkerError("InvalidSpec", `${res.kind} "${name}" is namespaced but no namespace was given`);
  }
  p += `/${res.plural}`;
  if (name !== undefined) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  const qs = query?.toString();
  return qs ? `${p}?${qs}` : p;
}

/** The discovery path of a group/version: `/api/v1` or `/apis/<group>/<version>`. */
export function discoveryPath(groupVersion: string): string {
  return groupVersion.includes("/") ? `/apis/${groupVersion}` : `/api/${groupVersion}`;
}

/** Fills in apiVersion and kind where the server left them out (list items, watch events). Mutates. */
export function withTypeMeta(res: ResourceInfo, obj: KubeObject): KubeObject {
  if (obj.apiVersion === undefined) obj.apiVersion = res.apiVersion;
  if (obj.kind === undefined) obj.kind = res.kind;
  return obj;
}

export function listQuery(opts: ListOptions): URLSearchParams {
  const q = new URLSearchParams();
  if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
  if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
  if (opts.limit !== undefined) q.set("limit", String(opts.limit));
  if (opts.continue) q.set("continue", opts.continue);
  if (opts.resourceVersion !== undefined) q.set("resourceVersion", opts.resourceVersion);
  if (opts.resourceVersionMatch) q.set("resourceVersionMatch", opts.resourceVersionMatch);
  return q;
}

export function watchQuery(opts: WatchOptions): URLSearchParams {
  const q = new URLSearchParams({ watch: "1", resourceVersion: opts.resourceVersion });
  if (opts.allowWatchBookmarks) q.set("allowWatchBookmarks", "true");
  if (opts.timeoutSeconds !== undefined)
    q.set("timeoutSeconds", String(Math.max(1, Math.floor(opts.timeoutSeconds))));
  if (opts.fieldSelector) q.set("fieldSelector", opts.fieldSelector);
  if (opts.labelSelector) q.set("labelSelector", opts.labelSelector);
  return q;
}

/** How long a watch may stay silent before it is given up, in ms. */
export function watchIdleMs(opts: WatchOptions): number {
  return (
    1000 * (opts.idleTimeoutSeconds ?? (opts.timeoutSeconds !== undefined ? opts.timeoutSeconds + 60 : 300))
  );
}

export function applyQuery(opts: ApplyOptions): URLSearchParams {
  const q = new URLSearchParams({ fieldManager: opts.fieldManager });
  if (opts.force) q.set("force", "true");
  if (opts.dryRun) q.set("dryRun", "All");
  return q;
}

/** The DeleteOptions body of a DELETE. */
export function deleteBody(opts: DeleteOptions): Record<string, unknown> {
  const body: Record<string, unknown> = { apiVersion: "v1", kind: "DeleteOptions" };
  if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
  if (opts.preconditions) body.preconditions = opts.preconditions;
  return body;
}
