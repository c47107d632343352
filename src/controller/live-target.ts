/** A target object as the decisions see it, and the name of one watched object in one client. */
import { FIELD_MANAGER } from "../api/types.ts";
import type { ResourceInfo } from "../kube/client.ts";
import type { KubeObject } from "../kube/object.ts";
import type { LiveTarget } from "./decisions.ts";

/** The live target as decisions.ts sees it, from the cached object. */
export function liveOf(object: KubeObject | undefined, rsUid: string | undefined): LiveTarget {
  if (!object) return { exists: false };
  const meta = object.metadata ?? {};
  return {
    exists: true,
    uid: meta.uid ?? "",
    deleting: Boolean(meta.deletionTimestamp),
    writtenBySinker: (meta.managedFields ?? []).some(isSinkerEntry),
    ownedByThis: rsUid !== undefined && (meta.ownerReferences ?? []).some((o) => o.uid === rsUid),
  };
}

type ManagedFieldsEntry = { manager?: string; operation?: string; subresource?: string };

/** Sinker's server-side apply of the object itself (what a sync record's fieldSetHash describes). */
export function isSinkerApply(m: ManagedFieldsEntry): boolean {
  return m.manager === FIELD_MANAGER && !m.subresource && m.operation === "Apply";
}

/**
 * A managedFields entry of Sinker's field manager on the object itself: its server-side apply, or its create
 * under writePolicy CreateOnly (a create is recorded as "Update"). Sinker sends no other write with its field
 * manager to a target, so either says Sinker wrote the object, also when it stopped before recording it.
 */
function isSinkerEntry(m: ManagedFieldsEntry): boolean {
  return isSinkerApply(m) || (m.manager === FIELD_MANAGER && !m.subresource && m.operation === "Update");
}

/** Names one object in one client (instance): what the echo filter and the applied memo compare. */
/** `watchIdentity` of the object a watch event is about. */
export function eventIdentity(event: {
  clientId: number;
  resource: ResourceInfo;
  object: { metadata?: { namespace?: string; name?: string } };
}): string {
  const meta = event.object.metadata;
  return watchIdentity({
    client: { id: event.clientId },
    resource: event.resource,
    namespace: meta?.namespace,
    name: meta?.name ?? "",
  });
}

export function watchIdentity(end: {
  client: { id: number };
  resource: ResourceInfo;
  namespace: string | undefined;
  name: string;
}): string {
  const r = end.resource;
  return `${end.client.id}|${r.group}/${r.plural}|${r.namespaced ? (end.namespace ?? "") : ""}|${end.name}`;
}
