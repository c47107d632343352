/**
 * The reconciler: a plain async function of (ResourceSync key, context) → result, in the manner of
 * controller-runtime. It reads the ResourceSync, the kubeconfig Secrets, the source and the target from informer
 * caches, computes the target with the pure projection, server-side-applies it, and writes the status (with the
 * sync record, see sync-record.ts) when it changed. What to write, delete or release is decided by the pure
 * functions of decisions.ts from the API's state, never from process memory. Every failure is a SinkerError
 * whose stable reason becomes the Ready condition's reason.
 */
import { createHash } from "node:crypto";
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
import type { ClaimIndex } from "./claims.ts";
import {
  ANNOTATION_ADOPT_TARGET,
  type Candidate,
  decideFinalize,
  decideTargetChange,
  decideWrite,
  type LiveTarget,
} from "./decisions.ts";
import { findCondition, nextStatus, type Outcome, READY, type SyncStatus, statusDiffers } from "./status.ts";
import {
  type AppliedTarget,
  type ClusterIdentity,
  describeTarget,
  nextRecord,
  readRecord,
  sameTarget,
  type TargetIdentity,
} from "./sync-record.ts";
import type { Watches, WatchRef } from "./watches.ts";

export interface ReconcilerOptions {
  allowClusterScoped: boolean;
}

/** What this process last applied for a ResourceSync: lets a resync cost nothing. An optimisation only. */
export interface AppliedMemo {
  /** `watchIdentity` of the target. */
  target: string;
  /** resourceVersion the apply returned. */
  resourceVersion: string;
  /** Hash of the applied projection. */
  hash: string;
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
   * The ResourceSync as our own last write returned it (finalizer, status), until the cache has caught up: a
   * decision never rests on a cache older than what we wrote ourselves (no second finalization).
   */
  written: Map<string, KubeObject>;
  /** Which ResourceSyncs name which target (from the ResourceSync cache). */
  claims: ClaimIndex;
  /** Per ResourceSync, what this process last applied (see AppliedMemo). */
  applied: Map<string, AppliedMemo>;
  /** Called after a successful apply (metrics: sync latency). */
  onApplied?: (key: string) => void;
  /** Marks a remote client as in use by this reconcile (it is not pruned before the reconcile ends). */
  hold?: (client: ClusterClient) => void;
  /** Called with the outcome of requests to a cluster (metrics: remote cluster reachability). */
  onClusterOutcome?: (client: ClusterClient, reachable: boolean) => void;
}

export type ReconcileResult =
  | { kind: "synced" }
  | { kind: "gone" }
  /** Nothing to do until a watch reports a change (e.g. a target being deleted); afterMs: a safety net. */
  | { kind: "waiting"; afterMs: number }
  | { kind: "requeue"; afterMs: number }
  | { kind: "failed"; error: SinkerError };

/** Where one end (source or target) of a ResourceSync lives, resolved. */
export interface ResolvedEnd {
  client: ClusterClient;
  cluster: ClusterIdentity;
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
  local: boolean;
}

/** Safety net while waiting for a watch to report a target gone (the watch event is what normally ends it). */
const WAIT_SAFETY_MS = 60_000;
/** Our own write of the ResourceSync met a concurrent change: the new version is on its way through the watch. */
const RS_CONFLICT_RETRY_MS = 200;

/** A 409 on a write of the ResourceSync itself (not on a target). */
class ResourceSyncConflict extends Error {}

export async function reconcile(key: string, ctx: ReconcileContext): Promise<ReconcileResult> {
  const [namespace, name] = splitKey(key);
  const rs = latest(key, ctx.resourceSyncs.get(namespace, name), ctx);
  if (!rs) {
    // Gone from the API server: nothing to clean up that the finalizer did not already do.
    await forget(key, ctx);
    return { kind: "gone" };
  }
  const refs = new RefSet(key, ctx);
  try {
    if (rs.metadata?.deletionTimestamp) return await finalize(key, rs, refs, ctx);
    return await sync(key, rs, refs, ctx);
  } catch (err) {
    if (err instanceof ResourceSyncConflict) return { kind: "requeue", afterMs: RS_CONFLICT_RETRY_MS };
    const error = asSinkerError(err);
    if (error.reason !== "Cancelled") await reportFailure(key, rs, error, ctx);
    return { kind: "failed", error };
  }
}

/** The newer of the cached ResourceSync and our own last write of it. */
function latest(key: string, cached: KubeObject | undefined, ctx: ReconcileContext): KubeObject | undefined {
  const mine = ctx.written.get(key);
  if (!mine) return cached;
  if (!cached || cached.metadata?.uid !== mine.metadata?.uid) {
    if (!cached) ctx.written.delete(key);
    return cached;
  }
  if (rvNewer(mine.metadata?.resourceVersion, cached.metadata?.resourceVersion)) return mine;
  ctx.written.delete(key); // the cache caught up
  return cached;
}

/** a > b, for resourceVersions (etcd revisions in practice; opaque strings compare as "not newer"). */
export function rvNewer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return a.length !== b.length ? a.length > b.length : a > b;
}

async function sync(
  key: string,
  cached: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const spec = validated(cached);
  const rs = await ensureFinalizer(key, cached, ctx);
  const source = await resolveEnd(spec, "source", refs, ctx);
  const target = await resolveEnd(spec, "target", refs, ctx);
  const targetId = identityOf(spec, target);
  refuseSelfReference(spec, source, target, ctx);
  await refs.add(watchRef(source), watchRef(target));

  const record = readRecord(rs.status);
  const disable = annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  let nextRec: AppliedTarget | null | undefined;
  switch (decideTargetChange(record, targetId, disable)) {
    case "delete-old":
      if (record) await deleteOldTarget(key, rs, record, refs, ctx);
      nextRec = null;
      break;
    case "forget-old":
      if (record)
        ctx.events.record(
          rs,
          "Normal",
          "OldTargetKept",
          `target changed; ${describeTarget(record)} left in place`,
        );
      nextRec = null;
      break;
    case "none":
      break;
  }
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
  const liveObject = ctx.watches.get(target.client, target.resource, target.namespace, target.name);
  const live = liveOf(liveObject, rs.metadata?.uid);
  const currentRecord = nextRec === null ? undefined : record;
  const refusal = decideWrite({
    target: targetId,
    record: currentRecord,
    live,
    adopt: annotationIsTrue(rs.metadata, ANNOTATION_ADOPT_TARGET),
    claimedBy: ctx.claims.claimedBy(key, targetId, {
      key,
      createdAt: rs.metadata?.creationTimestamp ?? "",
      ...(currentRecord && sameTarget(currentRecord, targetId) ? { appliedAt: currentRecord.appliedAt } : {}),
    }),
  });
  if (refusal) throw refusal;

  const hash = createHash("sha1").update(JSON.stringify(desired)).digest("base64");
  const memo = ctx.applied.get(key);
  const targetWatch = watchIdentity(target);
  let uid = live.exists ? live.uid : "";
  const unchanged =
    memo !== undefined &&
    memo.target === targetWatch &&
    memo.hash === hash &&
    liveObject?.metadata?.resourceVersion === memo.resourceVersion &&
    currentRecord?.uid === uid;
  if (!unchanged) {
    const result = await track(
      target.client,
      ctx,
      target.client.apply(target.resource, desired, { fieldManager: FIELD_MANAGER, force: true }),
    );
    uid = result.metadata?.uid ?? "";
    ctx.applied.set(key, {
      target: targetWatch,
      resourceVersion: result.metadata?.resourceVersion ?? "",
      hash,
    });
    ctx.onApplied?.(key);
  }

  await reportSuccess(
    key,
    rs,
    `target ${describeEnd(spec.spec.target.resourceRef.kind, target)} is in sync with source ${describeEnd(spec.spec.source.resourceRef.kind, source)}`,
    uid ? nextRecord(currentRecord, targetId, uid, new Date()) : (nextRec ?? undefined),
    ctx,
  );
  return { kind: "synced" };
}

/** Source == target, or a target that is the ResourceSync itself, are refused (SPEC 3). */
function refuseSelfReference(
  spec: ResourceSync,
  source: ResolvedEnd,
  target: ResolvedEnd,
  ctx: ReconcileContext,
): void {
  const same = (
    a: ResolvedEnd,
    b: { server: string; group: string; kind: string; ns?: string; name: string },
  ) =>
    a.client.server === b.server &&
    a.resource.group === b.group &&
    a.resource.kind === b.kind &&
    (a.namespace ?? "") === (b.ns ?? "") &&
    a.name === b.name;
  const src = {
    server: source.client.server,
    group: source.resource.group,
    kind: source.resource.kind,
    name: source.name,
    ...(source.namespace ? { ns: source.namespace } : {}),
  };
  if (same(target, src)) {
    throw new SinkerError(
      "TargetIsSource",
      "the target is the source itself; a ResourceSync cannot sync an object onto itself",
    );
  }
  const self = {
    server: ctx.local.server,
    group: ctx.resourceSyncResource.group,
    kind: ctx.resourceSyncResource.kind,
    ns: spec.metadata.namespace ?? "",
    name: spec.metadata.name,
  };
  if (same(target, self)) {
    throw new SinkerError("TargetIsSource", "the target is this ResourceSync itself");
  }
}

/** `spec.target` changed: delete the recorded old target if it is still the object Sinker applied. */
async function deleteOldTarget(
  key: string,
  rs: KubeObject,
  record: AppliedTarget,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<void> {
  const old = await resolveRecorded(key, record, rs, refs, ctx);
  // A live read of an object no longer watched (one request, only when the target changes).
  const existing = await track(old.client, ctx, old.client.get(old.resource, old.namespace, old.name));
  if (!existing || existing.metadata?.uid !== record.uid) return;
  await track(
    old.client,
    ctx,
    old.client.delete(old.resource, old.namespace, old.name, {
      propagationPolicy: "Background",
      preconditions: { uid: record.uid },
    }),
  );
  ctx.events.record(
    rs,
    "Normal",
    "OldTargetDeleted",
    `target changed; deleted the old target ${describeTarget(record)}`,
  );
  ctx.logger.info({ target: describeTarget(record) }, "spec.target changed: old target deleted");
}

/** Deletion: clean the target up (unless told not to), then let the ResourceSync go. */
async function finalize(
  key: string,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ReconcileResult> {
  const record = readRecord(rs.status);
  const candidates: Candidate[] = [];
  const resolved = new Map<Candidate, ResolvedEnd>();
  const hasFinalizer = Boolean(rs.metadata?.finalizers?.includes(FINALIZER));
  const disable = annotationIsTrue(rs.metadata, ANNOTATION_DISABLE_TARGET_DELETION);
  if (hasFinalizer && !disable) {
    if (record) {
      const c: Candidate = { target: record };
      try {
        resolved.set(c, await resolveRecorded(key, record, rs, refs, ctx));
      } catch (err) {
        c.unresolved = asSinkerError(err);
      }
      candidates.push(c);
    }
    const parsed = validateResourceSync(rs);
    if (parsed.ok) {
      try {
        const end = await resolveEnd(parsed.value, "target", refs, ctx);
        const id = identityOf(parsed.value, end);
        if (!sameTarget(id, record)) {
          const c: Candidate = { target: id };
          resolved.set(c, end);
          candidates.push(c);
        }
      } catch {
        // the spec's target cannot be reached: nothing was applied there without a record (see decideFinalize)
      }
    }
    for (const c of candidates) {
      const end = resolved.get(c);
      if (!end) continue;
      try {
        await refs.add(watchRef(end));
        c.live = liveOf(ctx.watches.get(end.client, end.resource, end.namespace, end.name), rs.metadata?.uid);
        const claimedBy = ctx.claims.claimedBy(key, c.target, {
          key,
          createdAt: rs.metadata?.creationTimestamp ?? "",
          ...(record && sameTarget(record, c.target) ? { appliedAt: record.appliedAt } : {}),
        });
        if (claimedBy !== undefined) c.claimedBy = claimedBy;
      } catch (err) {
        c.unresolved = asSinkerError(err);
      }
    }
  }
  const action = decideFinalize({
    hasFinalizer,
    disableTargetDeletion: disable,
    forceDelete: annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE),
    record,
    candidates,
  });
  const log = ctx.logger;
  switch (action.kind) {
    case "none":
      await forget(key, ctx);
      return { kind: "gone" };
    case "orphan":
      log.info("target deletion disabled by annotation; leaving the target in place");
      await orphanLocalTarget(rs, record, ctx);
      await releaseAndRemoveFinalizer(key, rs, ctx);
      return { kind: "gone" };
    case "release":
      if (action.deleted)
        ctx.events.record(rs, "Normal", "TargetDeleted", `target ${describeTarget(action.deleted)} deleted`);
      log.info({ why: action.why }, "finalizer removed");
      await releaseAndRemoveFinalizer(key, rs, ctx);
      return { kind: "gone" };
    case "force-release":
      return forceRelease(key, rs, action.error, ctx);
    case "fail":
      throw deletionError(action.error);
    case "wait":
      return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
    case "delete": {
      const end = [...resolved.entries()].find(([c]) => c.target === action.target)?.[1];
      if (!end) throw new SinkerError("Internal", "no client for the target to delete");
      // Background: the target goes at once unless it has finalizers of its own; its dependents (if any) are
      // removed by the garbage collector afterwards, off this critical path. Its watch reports it gone.
      log.info({ target: describeTarget(action.target) }, "deleting target");
      try {
        await track(
          end.client,
          ctx,
          end.client.delete(end.resource, end.namespace, end.name, {
            propagationPolicy: "Background",
            preconditions: { uid: action.uid },
          }),
        );
      } catch (err) {
        const error = asSinkerError(err);
        // the uid precondition failed: another object of that name now; the watch brings it
        if (error.reason === "Conflict") return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
        if (annotationIsTrue(rs.metadata, ANNOTATION_FORCE_DELETE)) return forceRelease(key, rs, error, ctx);
        throw deletionError(error);
      }
      return { kind: "waiting", afterMs: WAIT_SAFETY_MS };
    }
  }
}

function deletionError(error: SinkerError): SinkerError {
  return new SinkerError(error.reason, `deleting the target: ${error.message}`, { cause: error });
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
async function orphanLocalTarget(
  rs: KubeObject,
  record: AppliedTarget | undefined,
  ctx: ReconcileContext,
): Promise<void> {
  let target: { apiVersion: string; kind: string; name: string } | undefined;
  if (record && !record.cluster.secretRef) target = record;
  else {
    const parsed = validateResourceSync(rs);
    if (parsed.ok && !parsed.value.spec.target.cluster) target = parsed.value.spec.target.resourceRef;
  }
  if (!target) return;
  const resource = await ctx.local.resolve(target.apiVersion, target.kind);
  if (!resource.namespaced) return;
  const namespace = rs.metadata?.namespace;
  const live = await ctx.local.get(resource, namespace, target.name);
  const index = (live?.metadata?.ownerReferences ?? []).findIndex((o) => o.uid === rs.metadata?.uid);
  if (index < 0) return;
  await ctx.local.patch(
    resource,
    namespace,
    target.name,
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

/** A write of the ResourceSync (metadata or status); a 409 means a newer version is on its way. */
async function writeResourceSync(
  key: string,
  ctx: ReconcileContext,
  write: Promise<KubeObject>,
): Promise<KubeObject> {
  try {
    const out = await write;
    ctx.written.set(key, out);
    return out;
  } catch (err) {
    if (asSinkerError(err).reason === "Conflict") throw new ResourceSyncConflict();
    throw err;
  }
}

async function ensureFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<KubeObject> {
  const finalizers = rs.metadata?.finalizers ?? [];
  if (finalizers.includes(FINALIZER)) return rs;
  // The resourceVersion makes the merge patch conditional: a concurrent finalizer change is not lost.
  return writeResourceSync(
    key,
    ctx,
    ctx.local.patch(
      ctx.resourceSyncResource,
      rs.metadata?.namespace,
      rs.metadata?.name ?? "",
      { metadata: { finalizers: [...finalizers, FINALIZER], resourceVersion: rs.metadata?.resourceVersion } },
      "merge",
    ),
  );
}

/** Sinker no longer manages this ResourceSync: drop its watches and what this process remembers of it. */
async function forget(key: string, ctx: ReconcileContext): Promise<void> {
  ctx.applied.delete(key);
  await ctx.watches.release(key);
}

async function releaseAndRemoveFinalizer(key: string, rs: KubeObject, ctx: ReconcileContext): Promise<void> {
  const finalizers = (rs.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER);
  try {
    await writeResourceSync(
      key,
      ctx,
      ctx.local.patch(
        ctx.resourceSyncResource,
        rs.metadata?.namespace,
        rs.metadata?.name ?? "",
        { metadata: { finalizers, resourceVersion: rs.metadata?.resourceVersion } },
        "merge",
      ),
    );
  } catch (err) {
    if (asSinkerError(err).reason !== "NotFound") throw err;
  }
  await forget(key, ctx);
}

/** Records the outcome of a request to a cluster (reachability metric) and passes its result on. */
async function track<T>(client: ClusterClient, ctx: ReconcileContext, p: Promise<T>): Promise<T> {
  try {
    const out = await p;
    ctx.onClusterOutcome?.(client, true);
    return out;
  } catch (err) {
    const reason = asSinkerError(err).reason;
    if (reason !== "Cancelled") ctx.onClusterOutcome?.(client, reason !== "ClusterUnreachable");
    throw err;
  }
}

/** The client of a cluster: the local one, or the one of a kubeconfig Secret (access checked before watching). */
async function clusterClient(
  key: string,
  cluster: ClusterIdentity,
  rsNamespace: string,
  refs: RefSet,
  ctx: ReconcileContext,
  opts: { secretGoneFallback: boolean },
): Promise<{ client: ClusterClient; namespace: string | undefined }> {
  const secretRef = cluster.secretRef;
  if (!secretRef) return { client: ctx.local, namespace: undefined };
  const secretResource = await ctx.local.resolve("v1", "Secret");
  const ref: WatchRef = {
    client: ctx.local,
    resource: secretResource,
    namespace: secretRef.namespace,
    name: secretRef.name,
    single: true,
  };
  const crossNamespace = secretRef.namespace !== rsNamespace;
  try {
    if (crossNamespace && !ctx.watches.holds(key, ref)) {
      // Another namespace's Secret is watched only once this ResourceSync may use it: one GET, the check, then
      // a watch of that one Secret.
      checkSecretAccess(
        await ctx.local.get(secretResource, secretRef.namespace, secretRef.name),
        rsNamespace,
        secretRef.namespace,
      );
    }
    await refs.add(ref);
    const secret = ctx.watches.get(ctx.local, secretResource, secretRef.namespace, secretRef.name);
    try {
      checkSecretAccess(secret, rsNamespace, secretRef.namespace);
    } catch (err) {
      if (crossNamespace) await refs.drop(ref);
      throw err;
    }
    const remote = ctx.remoteClusters.clusterFor(secret as KubeObject, secretRef.key);
    ctx.hold?.(remote.client);
    return { client: remote.client, namespace: remote.namespace };
  } catch (err) {
    const reason = asSinkerError(err).reason;
    if (opts.secretGoneFallback && (reason === "SecretNotFound" || reason === "SecretAccessDenied")) {
      // The Secret went first (a namespace being deleted): the client it was last loaded into, if this process
      // still has it, can still clean the recorded target up.
      const last = ctx.remoteClusters.lastClusterFor(secretRef.namespace, secretRef.name, secretRef.key);
      if (last) {
        ctx.hold?.(last.client);
        ctx.logger.info("kubeconfig Secret gone; using the client it was last loaded into");
        return { client: last.client, namespace: last.namespace };
      }
    }
    throw err;
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
      cluster: {},
      resource,
      namespace: resource.namespaced ? rsNamespace : undefined,
      name,
      local: true,
    };
  }
  const secretRef = spec.cluster.kubeConfig.secretRef;
  const cluster: ClusterIdentity = {
    secretRef: { namespace: secretRef.namespace ?? rsNamespace, name: secretRef.name, key: secretRef.key },
  };
  const remote = await clusterClient(`${rsNamespace}/${rs.metadata.name}`, cluster, rsNamespace, refs, ctx, {
    secretGoneFallback: rs.metadata.deletionTimestamp !== undefined,
  });
  const resource = await track(remote.client, ctx, remote.client.resolve(apiVersion, kind));
  return {
    client: remote.client,
    cluster,
    resource,
    namespace: resource.namespaced ? (spec.cluster.namespace ?? remote.namespace ?? "default") : undefined,
    name,
    local: false,
  };
}

/** Resolves the recorded target (its cluster from the record, the kind through discovery). */
async function resolveRecorded(
  key: string,
  record: AppliedTarget,
  rs: KubeObject,
  refs: RefSet,
  ctx: ReconcileContext,
): Promise<ResolvedEnd> {
  const rsNamespace = rs.metadata?.namespace ?? "";
  const { client } = await clusterClient(key, record.cluster, rsNamespace, refs, ctx, {
    secretGoneFallback: true,
  });
  const resource = await track(client, ctx, client.resolve(record.apiVersion, record.kind));
  return {
    client,
    cluster: record.cluster,
    resource,
    namespace: resource.namespaced ? record.namespace : undefined,
    name: record.name,
    local: !record.cluster.secretRef,
  };
}

function identityOf(_rs: ResourceSync, end: ResolvedEnd): TargetIdentity {
  return {
    cluster: end.cluster,
    apiVersion: end.resource.apiVersion,
    kind: end.resource.kind,
    ...(end.namespace ? { namespace: end.namespace } : {}),
    name: end.name,
  };
}

/** The live target as decisions.ts sees it, from the cached object. */
export function liveOf(object: KubeObject | undefined, rsUid: string | undefined): LiveTarget {
  if (!object) return { exists: false };
  const meta = object.metadata ?? {};
  return {
    exists: true,
    uid: meta.uid ?? "",
    deleting: Boolean(meta.deletionTimestamp),
    appliedBySinker: (meta.managedFields ?? []).some(
      (m) => m.manager === FIELD_MANAGER && m.operation === "Apply",
    ),
    ownedByThis: rsUid !== undefined && (meta.ownerReferences ?? []).some((o) => o.uid === rsUid),
  };
}

function watchRef(end: ResolvedEnd): WatchRef {
  return { client: end.client, resource: end.resource, namespace: end.namespace, name: end.name };
}

/** Names one object in one client (instance): what the echo filter and the applied memo compare. */
export function watchIdentity(end: {
  client: { id: number };
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
}): string {
  const r = end.resource;
  return `${end.client.id}|${r.group}/${r.plural}|${r.namespaced ? (end.namespace ?? "") : ""}|${end.name}`;
}

async function reportSuccess(
  key: string,
  rs: KubeObject,
  message: string,
  record: AppliedTarget | null | undefined,
  ctx: ReconcileContext,
): Promise<void> {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (ready?.status !== "True") ctx.events.record(rs, "Normal", "Synced", message);
  await writeStatus(key, rs, { ok: true, message }, record, ctx);
}

async function reportFailure(
  key: string,
  rs: KubeObject,
  error: SinkerError,
  ctx: ReconcileContext,
): Promise<void> {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (ready === undefined || ready.status === "True" || ready.reason !== error.reason) {
    ctx.events.record(rs, "Warning", error.reason, error.message);
  }
  try {
    await writeStatus(key, rs, { ok: false, reason: error.reason, message: error.message }, undefined, ctx);
  } catch (err) {
    ctx.logger.warn(
      { error: err instanceof Error ? err.message : String(err) },
      "could not write failure status",
    );
  }
}

/** Synced or failing, as the status says (the state gauge). */
export function outcomeFromStatus(rs: KubeObject): { ok: boolean; reason?: string } | undefined {
  const ready = findCondition(rs.status as SyncStatus | undefined, READY);
  if (!ready) return undefined;
  return { ok: ready.status === "True", reason: ready.reason };
}

async function writeStatus(
  key: string,
  rs: KubeObject,
  outcome: Outcome,
  record: AppliedTarget | null | undefined,
  ctx: ReconcileContext,
): Promise<void> {
  const previous = rs.status as SyncStatus | undefined;
  const status = nextStatus(previous, rs.metadata?.generation, outcome, new Date(), record);
  if (!statusDiffers(previous, status)) return;
  await writeResourceSync(
    key,
    ctx,
    ctx.local.patch(
      ctx.resourceSyncResource,
      rs.metadata?.namespace,
      rs.metadata?.name ?? "",
      { status },
      "merge",
      {
        subresource: "status",
      },
    ),
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
 * The watch references of one reconcile. They only grow while the reconcile resolves things (also across a
 * failed attempt: a failing ResourceSync keeps its watches), and `commit` narrows them to exactly what a
 * complete resolution needed.
 */
class RefSet {
  private readonly refs: WatchRef[] = [];
  private readonly key: string;
  private readonly ctx: ReconcileContext;

  constructor(key: string, ctx: ReconcileContext) {
    this.key = key;
    this.ctx = ctx;
  }

  async add(...refs: WatchRef[]): Promise<void> {
    this.refs.push(...refs);
    await this.ctx.watches.addRefs(this.key, refs);
  }

  async drop(ref: WatchRef): Promise<void> {
    const i = this.refs.findIndex(
      (r) =>
        r.client === ref.client &&
        r.resource === ref.resource &&
        r.namespace === ref.namespace &&
        r.name === ref.name,
    );
    if (i >= 0) this.refs.splice(i, 1);
    await this.ctx.watches.dropRef(this.key, ref);
  }

  async commit(): Promise<void> {
    await this.ctx.watches.setRefs(this.key, this.refs);
  }
}
