/**
 * Kubernetes objects are handled as raw JSON end to end: typed model classes would turn timestamps into Dates and
 * drop fields they do not know, and Sinker syncs any kind, including ones it has never heard of.
 */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  time?: string;
  fieldsType?: string;
  fieldsV1?: unknown;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: ManagedFieldsEntry[];
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [key: string]: unknown;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * One object of a known kind by namespace and name (controller-runtime's NamespacedName, kube-rs's ObjectRef):
 * the namespace is undefined (or empty) for a cluster-scoped object.
 */
export interface NamespacedName {
  namespace: string | undefined;
  name: string;
}

/**
 * The one string form of a NamespacedName, for cache and work-queue keys: `namespace/name` for a namespaced
 * object, `name` for a cluster-scoped one. `parseKey` reads it back.
 */
export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The key (objectKey) of an object, from its metadata. */
export function keyOf(object: KubeObject): string {
  return objectKey(object.metadata?.namespace, object.metadata?.name ?? "");
}

/** The NamespacedName a key (objectKey) names. */
export function parseKey(key: string): NamespacedName {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: undefined, name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
