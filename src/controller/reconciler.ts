/**
 * The reconciler: a plain async function of (ResourceSync key, context) → result, in the manner of
 * controller-runtime. It reads the ResourceSync, the kubeconfig Secrets, the source and the target from informer
 * caches only, computes the target with the pure projection, server-side-applies it, and writes the status when it
 * changed. Every failure is a SinkerError whose stable reason becomes the Ready condition's reason.
 */
import type { Logger } from "pino";
import {
  ANNOTATION_DISABLE_TARGET_DELETION,
  ANNOTATION_FORCE_DELETE,
  annotationIsTrue,
  FIELD_MANAGER,
  FINALIZER,
  type ResourceSync,
} from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import type { ClusterClient, ResourceInfo } from "../kube/client.ts";
import type { EventRecorder } from "../kube/events.ts";
import type { Informer } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";
import { checkSecretAccess, type RemoteClusters } from "../kube/remote-clusters.ts";
import { project } from "../projection/index.ts";
import { findCondition, nextStatus, type Outcome, READY, type SyncStatus, statusDiffers } from "./status.ts";
import type { Watches } from "./watches.ts";

export interface ReconcilerOptions {
  allowClusterScoped: boolean;
}

export interface ReconcileContext {
  local: ClusterClient;
  /** Cache of every ResourceSync in the local cluster. */
  resourceSyncs: Informer;
  resourceSyncResource: ResourceInfo;
  watches: Watches;
  remoteClusters: RemoteClusters;
  events: EventRecorder;
  options: ReconcilerOptions;
  logger: Logger;
  /**
   * The last outcome per key (seeded from the status an earlier run wrote): decides which changes are
   * transitions worth an Event (the cache may lag behind our own status writes) and feeds the state gauge.
   */
  lastOutcome: Map<string, { ok: boolean; reason?: string }>;
  /** The watch references each ResourceSync's last reconcile committed. */
  watchRefs: Map<string, WatchRef[]>;
  /**
   * The target each ResourceSync last synced, with the client used. When a namespace is deleted, its kubeconfig
   * Secret may go before the ResourceSync's finalizer runs; this client still deletes the remote target then.
   */
  lastTargets: Map<string, ResolvedEnd>;
  /** Called after a successful apply (metrics: sync latency, cluster reachability). */
  onApplied?: (key: string, clusters: string[]) => void;
  /** Called when talking to a cluster failed or worked (metrics: remote cluster reachability). */
  onClusterReachability?: (cluster: string, reachable: boolean) => void;
}

export type ReconcileResult =
  | { kind: "synced" }
  | { kind: "gone" }
  | { kind: "requeue"; afterMs: number }
  | { kind: "failed"; error: SinkerError };

type WatchRef = Parameters<Watches["setRefs"]>[1][number];

/** Where one end (source or target) of a ResourceSync lives, resolved. */
export interface ResolvedEnd {
  client: ClusterClient;
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
  local: boolean;
}

const DELETE_POLL_MS = 2_000;

export async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
  const [namespace, name] = splitKey(key);
  const cached = ctx.resourceSyncs.get(namespace, name);
  if (!cached) {
    // Gone from the API server: nothing to clean up that the finalizer did not already do.
    await forget(key, ctx);
    return { kind: "gone" };
  }
  const refs = new RefSet(key, ctx);
  const deleting = Boolean(cached.metadata?.deletionTimestamp);
  try {
    if (deleting) return await finalize(key, cached, refs, ctx);
    return await sync(key, cached, refs, ctx);
  } catch (err) {
    const error = asSinkerError(err);
    if (error.reason === "Conflict") {
      // Someone changed the ResourceSync under us; the new version is on its way through the watch.
      return { kind: "requeue", afterMs: 200 };
    }
    if (!deleting) await reportFailure(key, cached, error, ctx);
    return { kind: "failed", error };
  }
}

async function sync(
  key: string,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const spec = validated(rs);
  const current = await ensureFinalizer(rs, ctx);
  const source = await resolveEnd(spec, "source", refs, ctx);
  const target = await resolveEnd(spec, "target", refs, ctx);
  await refs.need(
    { client: source.client, resource: source.resource, namespace: source.namespace, name: source.name },
    { client: target.client, resource: target.resource, namespace: target.namespace, name: target.name },
  );
  // Narrow the watch set to what this version of the spec needs (drops informers an old spec used).
  await refs.commit();

  const sourceObject = ctx.watches.get(source.client, source.resource, source.namespace, source.name);
  if (!sourceObject) {
    throw new SinkerError(
      "SourceNotFound",
      `source ${describeEnd(spec.spec.source.resourceRef.kind, source)} not found`,
    );
  }
  const desired = project({
    resourceSync: spec,
    source: sourceObject,
    target: { namespace: target.namespace, ownerReference: target.local && target.resource.namespaced },
  });
  await target.client.apply(target.resource, desired, { fieldManager: FIELD_MANAGER, force: true });
  ctx.lastTargets.set(key, target);
  ctx.onApplied?.(key, [source.client.name, target.client.name]);

  await reportSuccess(
    key,
    current,
    `target ${describeEnd(spec.spec.target.resourceRef.kind, target)} is in sync with source ${describeEnd(spec.spec.source.resourceRef.kind, source)}`,
    ctx,
  );
  return { kind: "synced" };
}

/** Deletion: clean the target up (unless told not to), then let the ResourceSync go. */
async function finalize(
  key: string,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const log = ctx.logger;
  if (!rs.metadata?.finalizers?.includes(FINALIZER)) {
    await forget(key, ctx);
    return { kind: "gone" };
  }
  if (annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION)) {
    log.info("target deletion disabled by annotation; leaving the target in place");
    await orphanLocalTarget(rs, ctx);
    await releaseAndRemoveFinalizer(key, rs, ctx);
    return { kind: "gone" };
  }
  const force = annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE);
  let target: ResolvedEnd;
  let described: string;
  try {
    const spec = validated(rs);
    try {
      target = await resolveEnd(spec, "target", refs, ctx);
    } catch (err) {
      const last = ctx.lastTargets.get(key);
      const reason = asSinkerError(err).reason;
      if (!last || (reason !== "SecretNotFound" && reason !== "SecretAccessDenied")) throw err;
      log.info("kubeconfig Secret gone; deleting the target with the client it was last synced with");
      target = last;
    }
    described = describeEnd(spec.spec.target.resourceRef.kind, target);
  } catch (err) {
    const error = asSinkerError(err);
    if (force) return forceRelease(key, rs, error, ctx);
    if (error.reason === "InvalidSpec") {
      // No target could ever have been written from this spec: nothing to clean up.
      await releaseAndRemoveFinalizer(key, rs, ctx);
      return { kind: "gone" };
    }
    throw error;
  }
  try {
    // A live read: the decision to remove the finalizer must not rest on a cache that may lag.
    const existing = await target.client.get(target.resource, target.namespace, target.name);
    if (!existing) {
      ctx.events.record(rs, "Normal", "TargetDeleted", `target ${described} deleted`);
      await releaseAndRemoveFinalizer(key, rs, ctx);
      return { kind: "gone" };
    }
    if (!existing.metadata?.deletionTimestamp) {
      // Foreground waits for the target's dependents; a target with finalizers of its own may wait for
      // something outside Kubernetes, so it is deleted in the background and waited for below.
      const propagationPolicy = existing.metadata?.finalizers?.length ? "Background" : "Foreground";
      log.info({ propagationPolicy }, `deleting target ${described}`);
      await target.client.delete(target.resource, target.namespace, target.name, {
        propagationPolicy,
        preconditions: { uid: existing.metadata?.uid ?? "" },
      });
    }
    return { kind: "requeue", afterMs: DELETE_POLL_MS };
  } catch (err) {
    const error = asSinkerError(err);
    const unreachable = ["ClusterUnreachable", "Unauthorized", "Forbidden"].includes(error.reason);
    if (force && unreachable) return forceRelease(key, rs, error, ctx);
    throw error;
  }
}

/** force-delete: the target cannot be reached, so the ResourceSync goes without it (recorded as an Event). */
async function forceRelease(
  key: string,
  rs: KubeObject,
  error: SinkerError,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  ctx.logger.warn(
    { reason: error.reason, error: error.message },
    "target unreachable; finalizer removed (force-delete)",
  );
  ctx.events.record(rs, "Warning", "ForceDeleted", `target not deleted: ${error.message}`);
  await releaseAndRemoveFinalizer(key, rs, ctx);
  return { kind: "gone" };
}

/**
 * A local target carries an ownerReference to its ResourceSync, so the garbage collector would delete it once
 * the ResourceSync is gone, whatever disable-target-deletion says. Remove that reference first (a JSON patch that
 * tests the uid, so a concurrent change to the list cannot make it remove the wrong entry).
 */
async function orphanLocalTarget(rs: KubeObject, ctx: ReconcileContext): Promise<void> {
  const parsed = validateResourceSync(rs);
  if (!parsed.ok || parsed.value.spec.target.cluster) return;
  const { apiVersion, kind, name } = parsed.value.spec.target.resourceRef;
  const resource = await ctx.local.resolve(apiVersion, kind);
  if (!resource.namespaced) return;
  const namespace = rs.metadata?.namespace;
  const target = await ctx.local.get(resource, namespace, name);
  const index = (target?.metadata?.ownerReferences ?? []).findIndex((o) => o.uid === rs.metadata?.uid);
  if (index < 0) return;
  await ctx.local.patch(
    resource,
    namespace,
    name,
    [
      { op: "test", path: `/metadata/ownerReferences/${index}/uid`, value: rs.metadata?.uid },
      { op: "remove", path: `/metadata/ownerReferences/${index}` },
    ],
    "json",
  );
}

function validated(rs: KubeObject): ResourceSync {
  const result = validateResourceSync(rs);
  if (!result.ok) {
    throw new SinkerError("InvalidSpec", result.errors.map((e) => `${e.path}: ${e.message}`).join("; "));
  }
  return result.value;
}

async function ensureFinalizer(rs: KubeObject, ctx: ReconcileContext): Promise<KubeObject> {
  const finalizers = rs.metadata?.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return rs;
  // The resourceVersion makes the merge patch conditional: a concurrent finalizer change is not lost.
  return ctx.local.patch(
    ctx.resourceSyncResource,
    rs.metadata?.namespace,
    rs.metadata?.name ?? "",
    { metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: rs.metadata?.resourceVersion } },
    "merge",
  );
}

/** Sinker no longer manages this ResourceSync: drop its watches and everything remembered about it. */
async function forget(key: string, ctx: ReconcileContext): Promise<void> {
  ctx.watchRefs.delete(key);
  ctx.lastTargets.delete(key);
  ctx.lastOutcome.delete(key);
  await ctx.watches.release(key);
}

async function releaseAndRemoveFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<void> {
  await forget(key, ctx);
  const finalizers = (rs.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
  try {
    await ctx.local.patch(
      ctx.resourceSyncResource,
      rs.metadata?.namespace,
      rs.metadata?.name ?? "",
      { metadata: { finalizers, resourceVersion: rs.metadata?.resourceVersion } },
      "merge",
    );
  } catch (err) {
    if (asSinkerError(err).reason !== "NotFound") throw err;
  }
}

/**
 * Resolves one end of the ResourceSync: which cluster (the local one or a kubeconfig Secret's), which resource
 * (through discovery), which namespace. Enforces the tenancy rules of SPEC 2.
 */
async function resolveEnd(
  rs: ResourceSync,
  end: "source" | "target",
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ResolvedEnd> {
  const spec = rs.spec[end];
  const rsNamespace = rs.metadata.namespace ?? "";
  const { apiVersion, kind, name } = spec.resourceRef;
  if (!spec.cluster) {
    const resource = await ctx.local.resolve(apiVersion, kind);
    if (!resource.namespaced && !ctx.options.allowClusterScoped) {
      throw new SinkerError(
        "ClusterScopedNotAllowed",
        `${end} ${kind} is cluster-scoped; local cluster-scoped kinds need the controller flag --allow-cluster-scoped`,
      );
    }
    return {
      client: ctx.local,
      resource,
      namespace: resource.namespaced ? rsNamespace : undefined,
      name,
      local: true,
    };
  }
  const secretRef = spec.cluster.kubeConfig.secretRef;
  const secretNamespace = secretRef.namespace ?? rsNamespace;
  const secretResource = await ctx.local.resolve("v1", "Secret");
  await refs.need({
    client: ctx.local,
    resource: secretResource,
    namespace: secretNamespace,
    name: secretRef.name,
  });
  const secret = ctx.watches.get(ctx.local, secretResource, secretNamespace, secretRef.name);
  checkSecretAccess(secret, rsNamespace, secretNamespace);
  const remote = ctx.remoteClusters.clusterFor(secret as KubeObject, secretRef.key);
  let resource: ResourceInfo;
  try {
    resource = await remote.client.resolve(apiVersion, kind);
    ctx.onClusterReachability?.(remote.client.name, true);
  } catch (err) {
    if (asSinkerError(err).reason === "ClusterUnreachable")
      ctx.onClusterReachability?.(remote.client.name, false);
    throw err;
  }
  return {
    client: remote.client,
    resource,
    namespace: resource.namespaced ? (spec.cluster.namespace ?? remote.namespace ?? "default") : undefined,
    name,
    local: false,
  };
}

async function reportSuccess(
  key: string,
  rs: KubeObject,
  message: string,
  ctx: ReconcileContext,
): Promise<void> {
  const previous = ctx.lastOutcome.get(key) ?? outcomeFromStatus(rs);
  if (!previous?.ok) ctx.events.record(rs, "Normal", "Synced", message);
  ctx.lastOutcome.set(key, { ok: true });
  await writeStatus(rs, { ok: true, message }, ctx);
}

async function reportFailure(
  key: string,
  rs: KubeObject,
  error: SinkerError,
  ctx: ReconcileContext,
): Promise<void> {
  const previous = ctx.lastOutcome.get(key) ?? outcomeFromStatus(rs);
  if (previous === undefined || previous.ok || previous.reason !== error.reason) {
    ctx.events.record(rs, "Warning", error.reason, error.message);
  }
  ctx.lastOutcome.set(key, { ok: false, reason: error.reason });
  try {
    await writeStatus(rs, { ok: false, reason: error.reason, message: error.message }, ctx);
  } catch (err) {
    ctx.logger.warn({ error: asSinkerError(err).message }, "could not write failure status");
  }
}

export function outcomeFromStatus(rs: KubeObject): { ok: boolean; reason?: string } | undefined {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (!ready) return undefined;
  return { ok: ready.status === "True", reason: ready.reason };
}

async function writeStatus(rs: KubeObject, outcome: Outcome, ctx: ReconcileContext): Promise<void> {
  const previous = rs.status as SyncStatus | undefined;
  const status = nextStatus(previous, rs.metadata?.generation, outcome, new Date());
  if (!statusDiffers(previous, status)) return;
  await ctx.local.patch(
    ctx.resourceSyncResource,
    rs.metadata?.namespace,
    rs.metadata?.name ?? "",
    { status },
    "merge",
    { subresource: "status" },
  );
}

function describeEnd(kind: string, end: ResolvedEnd): string {
  const where = end.local ? "" : ` in cluster ${end.client.name}`;
  return `${kind} ${end.namespace ? `${end.namespace}/` : ""}${end.name}${where}`;
}

export function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * The watch references of one reconcile. References only grow while the reconcile resolves things (so an
 * informer it still needs is never stopped in between), and `commit` narrows them to exactly what was needed.
 */
class RefSet {
  private readonly refs: WatchRef[] = [];
  private readonly key: string;
  private readonly ctx: ReconcileContext;

  constructor(key: string, ctx: ReconcileContext) {
    this.key = key;
    this.ctx = ctx;
  }

  async need(...refs: WatchRef[]): Promise<void> {
    this.refs.push(...refs);
    await this.ctx.watches.setRefs(this.key, [...(this.ctx.watchRefs.get(this.key) ?? []), ...this.refs]);
  }

  async commit(): Promise<void> {
    await this.ctx.watches.setRefs(this.key, this.refs);
    this.ctx.watchRefs.set(this.key, [...this.refs]);
  }
}
