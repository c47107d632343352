/**
 * The TypeScript shape of Sinker's custom resources and the names the Rust implementation made part of the
 * contract (API group, finalizer, field manager, annotations). Changing any constant here breaks drop-in
 * compatibility with existing clusters.
 */
import type { KubeObject, ObjectMeta } from "../kube/object.ts";

export const API_GROUP = "sinker.influxdata.io";
export const API_VERSION = "v1alpha1";
/** `sinker.influxdata.io/v1alpha1` */
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export const RESOURCE_SYNC_KIND = "ResourceSync";
export const RESOURCE_SYNC_PLURAL = "resourcesyncs";
export const RESOURCE_SYNC_SINGULAR = "resourcesync";
export const RESOURCE_SYNC_SHORT_NAME = "rsync";

export const SINKER_CONTAINER_KIND = "SinkerContainer";
export const SINKER_CONTAINER_PLURAL = "sinkercontainers";
export const SINKER_CONTAINER_SINGULAR = "sinkercontainer";

/** Added to every ResourceSync before anything is written to its target. */
export const FINALIZER = "sinker.influxdata.io/target";
/** Field manager of every server-side apply Sinker makes. */
export const FIELD_MANAGER = "sinker.influxdata.io";

/** `"true"` on a ResourceSync: remove the finalizer even when the source or target cluster cannot be reached. */
export const ANNOTATION_FORCE_DELETE = "sinker.influxdata.io/force-delete";
/** `"true"` on a ResourceSync: leave the target alone when the ResourceSync is deleted. */
export const ANNOTATION_DISABLE_TARGET_DELETION = "sinker.influxdata.io/disable-target-deletion";
/** On a kubeconfig Secret: regular expression (anchored) of the namespaces whose ResourceSyncs may use it. */
export const ANNOTATION_ALLOWED_NAMESPACES = "sinker.influxdata.io/allowed-namespaces";

/** Never carried from a source to a target. */
export const LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration";

/** Annotation values count only when exactly `"true"`. */
export function annotationIsTrue(meta: ObjectMeta | undefined, name: string): boolean {
  return meta?.annotations?.[name] === "true";
}

export interface ResourceRef {
  apiVersion: string;
  kind: string;
  name: string;
}

export interface SecretRef {
  name: string;
  key: string;
  /** Default: the ResourceSync's namespace. */
  namespace?: string;
}

export interface KubeConfigRef {
  secretRef: SecretRef;
}

export interface ClusterRef {
  /** Default: the kubeconfig context's namespace, else `default`. */
  namespace?: string;
  kubeConfig: KubeConfigRef;
}

export interface ClusterResourceRef {
  resourceRef: ResourceRef;
  /** Absent: the cluster Sinker runs in. */
  cluster?: ClusterRef;
}

/**
 * Which of the source's labels (or annotations) the target gets, and fixed ones to add. Keys
 * are exact, or end in `*` to match every key starting with what precedes it.
 */
export interface MetadataRule {
  /** Only these keys are copied (absent: all; a tool-tracking key only when named here exactly). */
  include?: string[];
  /** These keys are never copied. */
  exclude?: string[];
  /** Fixed keys and values, set whatever the source says. */
  add?: Record<string, string>;
}

/** The target end: where it is, and the policy for its labels and annotations. */
export interface TargetRef extends ClusterResourceRef {
  labels?: MetadataRule;
  annotations?: MetadataRule;
}

export interface Mapping {
  /** RFC 9535 JSONPath into the source; relative paths get `$.` prefixed; empty or absent = the whole source. */
  fromFieldPath?: string;
  /** Dotted path into the target; absent = the selected node is a whole Kubernetes object to clone. */
  toFieldPath?: string;
  /** CEL over the source (`object`) computing the value written at toFieldPath; exclusive with fromFieldPath. */
  expression?: string;
}

/** How Sinker writes the target: `Apply` (default) on every change, or `CreateOnly` when it is absent. */
export type WritePolicy = "Apply" | "CreateOnly";
/** What an update refused because a field is immutable leads to: `Fail` (default), or `Replace` the target. */
export type ImmutableChangePolicy = "Fail" | "Replace";

/** The write fields a ResourceSync and the sets' child template share. */
export interface WriteFields {
  writePolicy?: WritePolicy;
  onImmutableChange?: ImmutableChangePolicy;
}

export interface ResourceSyncSpec extends WriteFields {
  source: ClusterResourceRef;
  target: TargetRef;
  mappings?: Mapping[];
}

/** metav1.Condition */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface ResourceSyncStatus {
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface ResourceSync extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string };
  spec: ResourceSyncSpec;
  status?: ResourceSyncStatus;
}

export interface SinkerContainer extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Record<string, unknown>;
}

// ---------------------------------------------------------------- fan-out (docs/spec/resourcesyncset.md)

export const RESOURCE_SYNC_SET_KIND = "ResourceSyncSet";
export const RESOURCE_SYNC_SET_PLURAL = "resourcesyncsets";
export const RESOURCE_SYNC_SET_SINGULAR = "resourcesyncset";
export const RESOURCE_SYNC_SET_SHORT_NAME = "rsyncset";
export const CLUSTER_RESOURCE_SYNC_SET_KIND = "ClusterResourceSyncSet";
export const CLUSTER_RESOURCE_SYNC_SET_PLURAL = "clusterresourcesyncsets";
export const CLUSTER_RESOURCE_SYNC_SET_SINGULAR = "clusterresourcesyncset";
export const CLUSTER_RESOURCE_SYNC_SET_SHORT_NAME = "crsyncset";

/** On a ResourceSync made by a set: the set's name (or a hash of it when longer than a label value may be). */
export const LABEL_SET_NAME = "sinker.influxdata.io/set";
/** On a ResourceSync made by a set: the set's kind. */
export const LABEL_SET_KIND = "sinker.influxdata.io/set-kind";
/**
 * On a ResourceSync made by a ClusterResourceSyncSet for a local namespace: the namespace of the source. Honoured
 * only while that set (its controller owner reference, by uid) selects the ResourceSync's namespace and would make
 * exactly this ResourceSync; on any other ResourceSync it is refused.
 */
export const ANNOTATION_SOURCE_NAMESPACE = "sinker.influxdata.io/source-namespace";

export type PruningPolicy = "Delete" | "Orphan";

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** Namespaces by label selector, plus names always included and names always excluded. */
export interface NamespaceSelector extends LabelSelector {
  include?: string[];
  exclude?: string[];
}

/** One remote cluster of a ResourceSyncSet: a kubeconfig Secret and the namespace there. */
export interface SetClusterRef {
  kubeConfig: KubeConfigRef;
  /** Namespace in the remote cluster. Default: the kubeconfig context's namespace, else `default`. */
  namespace?: string;
}

/** kubeconfig Secrets of the set's namespace, selected by label. */
export interface SetClusterSelector extends LabelSelector {
  /** Key of the kubeconfig in each selected Secret. */
  key: string;
  namespace?: string;
}

export interface SetTarget {
  /** With sourceSelector, `name` may be absent: each copy takes its source's name. */
  resourceRef: ResourceRef;
  labels?: MetadataRule;
  annotations?: MetadataRule;
}

/** Many sources, by kind and labels, in one namespace of the local cluster (instead of one named `source`). */
export interface SourceSelector extends LabelSelector {
  apiVersion: string;
  kind: string;
}

export interface ResourceSyncSetSpec extends WriteFields {
  /** One named source; exactly one of source and sourceSelector is set. */
  source?: ClusterResourceRef;
  /** The objects of the set's namespace this selector picks. */
  sourceSelector?: SourceSelector;
  target: SetTarget;
  mappings?: Mapping[];
  clusters?: SetClusterRef[];
  clusterSelector?: SetClusterSelector;
  pruning?: PruningPolicy;
}

/** One remote cluster of a ClusterResourceSyncSet: a kubeconfig Secret (any namespace) and its namespaces. */
export interface ClusterSetClusterRef {
  kubeConfig: { secretRef: Required<SecretRef> };
  /** Namespaces in the remote cluster. Default (neither this nor namespaceSelector): the context's, else `default`. */
  namespaces?: string[];
  /** Namespaces of the remote cluster selected as in the local namespaceSelector (its kubeconfig must list them). */
  namespaceSelector?: NamespaceSelector;
}

export interface ClusterResourceSyncSetSpec extends WriteFields {
  /** One named source; exactly one of source and sourceSelector is set. */
  source?: { resourceRef: ResourceRef; namespace: string };
  /** The objects of one namespace this selector picks. */
  sourceSelector?: SourceSelector & { namespace: string };
  target: SetTarget;
  mappings?: Mapping[];
  /** Local namespaces to copy into. Absent: none. */
  namespaceSelector?: NamespaceSelector;
  clusters?: ClusterSetClusterRef[];
  pruning?: PruningPolicy;
}

export interface SetFailure {
  resourceSync: string;
  namespace?: string;
  cluster?: string;
  /** The selected source (sourceSelector) this destination copies. */
  source?: string;
  reason: string;
  message: string;
}

/** A remote cluster whose namespaces a set cannot list: counted apart from its destinations. */
export interface SetClusterFailure {
  cluster: string;
  reason: string;
  message: string;
}

export interface ResourceSyncSetStatus {
  observedGeneration?: number;
  desired?: number;
  synced?: number;
  failing?: number;
  failures?: SetFailure[];
  failingClusters?: number;
  clusterFailures?: SetClusterFailure[];
  /** The label selector of the set's children (`kubectl get rsync -A -l ...`). */
  childSelector?: string;
  conditions?: Condition[];
}

export interface ResourceSyncSet extends KubeObject {
  apiVersion: string;
  kind: typeof RESOURCE_SYNC_SET_KIND;
  metadata: ObjectMeta & { name: string; namespace: string };
  spec: ResourceSyncSetSpec;
  status?: ResourceSyncSetStatus;
}

export interface ClusterResourceSyncSet extends KubeObject {
  apiVersion: string;
  kind: typeof CLUSTER_RESOURCE_SYNC_SET_KIND;
  metadata: ObjectMeta & { name: string };
  spec: ClusterResourceSyncSetSpec;
  status?: ResourceSyncSetStatus;
}

export type AnySet = ResourceSyncSet | ClusterResourceSyncSet;
