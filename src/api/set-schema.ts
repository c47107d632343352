/**
 * Schemas of the fan-out kinds (docs/spec/resourcesyncset.md): ResourceSyncSet (namespaced, for tenants) and
 * ClusterResourceSyncSet (cluster-scoped, for platform teams). They reuse the ResourceSync's building blocks, so a
 * set's source, target and mappings are checked exactly as a ResourceSync's are.
 *
 * About 400 lines on purpose: one declarative schema of the two set kinds, read top to bottom like the CRDs.
 */
import { targetMetadataProperties } from "./metadata-schema.ts";
import {
  clusterSchema,
  conditionSchema,
  endSchema,
  MAX_MAPPINGS,
  mappingSchema,
  namespaceName,
  resourceRefSchema,
  type Schema,
  writeFieldsRule,
  writeFieldsSchemas,
} from "./schema.ts";

/** Most explicit clusters of one set, and most names in one include/exclude list (bounded work per reconcile). */
export const MAX_SET_CLUSTERS = 64;
export const MAX_NAMESPACE_NAMES = 1024;
/** Failing destinations listed in a set's status. */
export const MAX_STATUS_FAILURES = 5;

/** Label values and keys as Kubernetes accepts them in a selector (refused at admission otherwise). */
const LABEL_VALUE_PATTERN = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
const LABEL_KEY_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
const LABEL_KEY_MESSAGE =
  "must be a label key: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, " +
  "'-', '_' or '.', starting and ending with a letter or digit";
const labelKeyRegExp = new RegExp(LABEL_KEY_PATTERN, "u");

const labelValue: Schema = {
  type: "string",
  description: "A label value.",
  maxLength: 63,
  pattern: LABEL_VALUE_PATTERN,
  patternMessage:
    "must be a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
};

const labelSelectorProperties: Record<string, Schema> = {
  matchLabels: {
    type: "object",
    description: "Labels that must all be present with these values.",
    additionalProperties: labelValue,
    maxProperties: 64,
    validations: [
      {
        rule: `self.all(k, size(k) <= 317 && k.matches('${LABEL_KEY_PATTERN.replaceAll("\\", "\\\\")}'))`,
        message: `every key ${LABEL_KEY_MESSAGE}`,
        holds: (self) => Object.keys(self).every((k) => k.length <= 317 && labelKeyRegExp.test(k)),
      },
    ],
  },
  matchExpressions: {
    type: "array",
    description: "Requirements that must all hold (as in a Kubernetes label selector).",
    maxItems: 32,
    items: {
      type: "object",
      description: "One requirement: key, operator (In, NotIn, Exists, DoesNotExist) and values.",
      required: ["key", "operator"],
      properties: {
        key: {
          type: "string",
          description: "The label key.",
          minLength: 1,
          maxLength: 317,
          pattern: LABEL_KEY_PATTERN,
          patternMessage: LABEL_KEY_MESSAGE,
        },
        operator: {
          type: "string",
          description: "In, NotIn, Exists or DoesNotExist.",
          enum: ["In", "NotIn", "Exists", "DoesNotExist"],
        },
        values: {
          type: "array",
          description: "Values for In and NotIn; empty for Exists and DoesNotExist.",
          maxItems: 64,
          items: labelValue,
        },
      },
      validations: [
        {
          rule: "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
          message: "In and NotIn need values; Exists and DoesNotExist take none",
          holds: (self) => {
            const values = Array.isArray(self.values) ? self.values : [];
            return (self.operator === "In" || self.operator === "NotIn") === values.length > 0;
          },
        },
      ],
    },
  },
};

const namespaceList = (description: string): Schema => ({
  type: "array",
  description,
  maxItems: MAX_NAMESPACE_NAMES,
  items: namespaceName("A namespace name."),
});

const namespaceSelectorSchema: Schema = {
  type: "object",
  description:
    "Which namespaces of the local cluster get a copy: those matching the label selector (matchLabels and " +
    "matchExpressions, all of which must hold) plus those named in include, minus those named in exclude. " +
    "With neither matchLabels nor matchExpressions, no namespace is selected by label (every namespace: " +
    "matchExpressions [{key: kubernetes.io/metadata.name, operator: Exists}]). Namespaces being deleted are " +
    "skipped, and so is the source's own namespace when the copy would be the source itself.",
  properties: {
    ...labelSelectorProperties,
    include: namespaceList("Namespaces that get a copy whatever their labels."),
    exclude: namespaceList("Namespaces that never get a copy."),
  },
};

const pruningSchema: Schema = {
  type: "string",
  description:
    "What happens to a copy when its destination stops matching or the set is deleted: Delete (default) " +
    "deletes the copy Sinker made, Orphan leaves it in place (its ResourceSync carries " +
    "sinker.influxdata.io/disable-target-deletion).",
  enum: ["Delete", "Orphan"],
};

const targetRef = resourceRefSchema("target");
const setTargetSchema: Schema = {
  type: "object",
  description:
    "The object written at every destination: its group/version, kind and name. Its namespace is the " +
    "destination's. With sourceSelector the name may be left out: each copy then takes its source's name.",
  required: ["resourceRef"],
  properties: {
    resourceRef: {
      ...targetRef,
      description:
        "The object to write: its group/version, kind and name (with sourceSelector: optional, default the " +
        "source's name; a name given there is the name of every copy, so two selected sources collide).",
      required: ["apiVersion", "kind"],
    },
    ...targetMetadataProperties(),
  },
};

const sourceSelectorSchema = (namespace: boolean): Schema => ({
  type: "object",
  description:
    "Many sources instead of one: every object of this kind whose labels match (matchLabels and " +
    "matchExpressions, all of which must hold; an empty selector selects nothing) " +
    (namespace ? "in namespace `namespace`" : "in the set's namespace") +
    " of the local cluster. Each selected source × each destination is one ResourceSync; a source that stops " +
    "matching or is deleted has its copies pruned per `pruning`. Exclusive with source.",
  required: namespace ? ["apiVersion", "kind", "namespace"] : ["apiVersion", "kind"],
  properties: {
    apiVersion: targetRef.properties?.apiVersion as Schema,
    kind: targetRef.properties?.kind as Schema,
    ...labelSelectorProperties,
    ...(namespace ? { namespace: namespaceName("Namespace of the sources.") } : {}),
  },
});

/** Exactly one of source and sourceSelector; a named source needs a named target. */
const sourceRules = [
  {
    rule: "has(self.source) != has(self.sourceSelector)",
    message: "exactly one of source and sourceSelector must be set",
    holds: (self: Record<string, unknown>) =>
      (self.source !== undefined) !== (self.sourceSelector !== undefined),
  },
  {
    rule: "!has(self.source) || has(self.target.resourceRef.name)",
    message: "with source, target.resourceRef.name is required",
    holds: (self: Record<string, unknown>) => {
      const target = self.target as { resourceRef?: { name?: unknown } } | undefined;
      return self.source === undefined || target?.resourceRef?.name !== undefined;
    },
  },
];

const mappingsSchema: Schema = {
  type: "array",
  description: "Field mappings, as in a ResourceSync. Absent or empty: every copy is a clone of the source.",
  items: mappingSchema,
  maxItems: MAX_MAPPINGS,
};

const secretRefOf = (schema: Schema): Schema => {
  const kubeConfig = schema.properties?.kubeConfig;
  const secretRef = kubeConfig?.properties?.secretRef;
  if (!secretRef) throw new Error("clusterSchema has no kubeConfig.secretRef");
  return secretRef;
};
const tenantSecretRef = secretRefOf(clusterSchema);
const secretRefProperties = tenantSecretRef.properties ?? {};

export const resourceSyncSetSpecSchema: Schema = {
  type: "object",
  description:
    "One source copied to every remote cluster this namespace holds a kubeconfig Secret for (listed, or " +
    "selected by label). Each destination becomes a ResourceSync in the set's namespace.",
  required: ["target"],
  properties: {
    source: endSchema("source"),
    sourceSelector: sourceSelectorSchema(false),
    target: setTargetSchema,
    mappings: mappingsSchema,
    clusters: {
      type: "array",
      description: "Remote clusters by kubeconfig Secret, each with the namespace to write to there.",
      maxItems: MAX_SET_CLUSTERS,
      items: {
        type: "object",
        description: clusterSchema.description,
        required: ["kubeConfig"],
        properties: clusterSchema.properties ?? {},
      },
    },
    clusterSelector: {
      type: "object",
      description:
        "Every kubeconfig Secret of the set's namespace whose labels match is a destination cluster. An empty " +
        "selector (no matchLabels, no matchExpressions) selects none.",
      required: ["key"],
      properties: {
        ...labelSelectorProperties,
        key: {
          ...(secretRefProperties.key ?? { type: "string", description: "" }),
          description: "Key of the kubeconfig in each selected Secret.",
        },
        namespace: namespaceName(
          "Namespace to write to in every selected cluster. Default: the kubeconfig context's namespace, else " +
            '"default".',
        ),
      },
    },
    pruning: pruningSchema,
    ...writeFieldsSchemas("every copy (passed to each child ResourceSync)"),
  },
  validations: [...sourceRules, writeFieldsRule],
};

export const clusterResourceSyncSetSpecSchema: Schema = {
  type: "object",
  description:
    "One source copied to every selected namespace of the local cluster and to namespaces of remote clusters. " +
    "Each destination becomes a ResourceSync: in the destination namespace for a local one, in the source's " +
    "namespace for a remote one.",
  required: ["target"],
  properties: {
    sourceSelector: sourceSelectorSchema(true),
    source: {
      type: "object",
      description: "The object to copy, in the local cluster.",
      required: ["resourceRef", "namespace"],
      properties: {
        resourceRef: resourceRefSchema("source"),
        namespace: namespaceName("Namespace of the source object."),
      },
    },
    target: setTargetSchema,
    mappings: mappingsSchema,
    namespaceSelector: namespaceSelectorSchema,
    clusters: {
      type: "array",
      description: "Remote clusters by kubeconfig Secret (in any namespace), each with its namespaces.",
      maxItems: MAX_SET_CLUSTERS,
      items: {
        type: "object",
        description: "A remote cluster and the namespaces to write to there.",
        required: ["kubeConfig"],
        properties: {
          kubeConfig: {
            type: "object",
            description: "Where the kubeconfig of the remote cluster is stored. Its current context is used.",
            required: ["secretRef"],
            properties: {
              secretRef: {
                ...tenantSecretRef,
                description: "A key of a Secret in the local cluster holding kubeconfig text.",
                required: ["name", "key", "namespace"],
              },
            },
          },
          namespaces: namespaceList(
            "Namespaces to write to in that cluster. Default (without namespaceSelector): the kubeconfig " +
              'context\'s namespace, else "default".',
          ),
          namespaceSelector: {
            ...namespaceSelectorSchema,
            description:
              "Namespaces of that cluster selected as the local namespaceSelector selects (added to namespaces). " +
              "Sinker watches that cluster's Namespaces, so its kubeconfig must be allowed to list and watch them. " +
              "While they cannot be listed, copies made earlier stay and the set reports the cluster as failing.",
          },
        },
      },
    },
    pruning: pruningSchema,
    ...writeFieldsSchemas("every copy (passed to each child ResourceSync)"),
  },
  validations: [...sourceRules, writeFieldsRule],
};

export const setStatusSchema: Schema = {
  type: "object",
  description: "What Sinker observed of the set's destinations, written by Sinker.",
  properties: {
    observedGeneration: {
      type: "integer",
      format: "int64",
      description: "The .metadata.generation Sinker last acted on.",
    },
    desired: {
      type: "integer",
      description:
        "Destinations the set selects right now (one ResourceSync each), including those of a remote cluster " +
        "whose namespaces cannot be listed at the moment (the destinations it had are kept and counted).",
    },
    synced: { type: "integer", description: "Destinations whose ResourceSync is Ready." },
    failing: {
      type: "integer",
      description:
        "Destinations whose ResourceSync reports a failure, or that the set cannot make (NameTaken, " +
        "TargetCollision, ChildLimitReached). A cluster that cannot be listed is counted in failingClusters.",
    },
    failingClusters: {
      type: "integer",
      description:
        "Remote clusters whose namespaces a namespaceSelector needs and that cannot be listed now.",
    },
    clusterFailures: {
      type: "array",
      description: `The first ${MAX_STATUS_FAILURES} failing clusters (by kubeconfig Secret), with their reasons.`,
      maxItems: MAX_STATUS_FAILURES,
      items: {
        type: "object",
        description: "A remote cluster whose namespaces cannot be listed.",
        required: ["cluster", "reason", "message"],
        properties: {
          cluster: { type: "string", description: "The cluster's kubeconfig Secret (namespace/name)." },
          reason: { type: "string", description: "Why its namespaces cannot be listed (e.g. Forbidden)." },
          message: { type: "string", description: "What failed.", maxLength: 1024 },
        },
      },
    },
    failures: {
      type: "array",
      description: `The first ${MAX_STATUS_FAILURES} failing destinations (by namespace and name), with their reasons.`,
      maxItems: MAX_STATUS_FAILURES,
      items: {
        type: "object",
        description: "A failing destination.",
        required: ["resourceSync", "reason", "message"],
        properties: {
          resourceSync: { type: "string", description: "The destination's ResourceSync (namespace/name)." },
          namespace: { type: "string", description: "The destination namespace." },
          cluster: {
            type: "string",
            description: "The destination cluster's kubeconfig Secret (namespace/name).",
          },
          source: { type: "string", description: "The selected source copied there (sourceSelector)." },
          reason: {
            type: "string",
            description:
              "The ResourceSync's failure reason, or why the set did not make it (NameTaken, TargetCollision, " +
              "ChildLimitReached).",
          },
          message: { type: "string", description: "The ResourceSync's failure message.", maxLength: 1024 },
        },
      },
    },
    childSelector: {
      type: "string",
      description:
        "The label selector of the set's child ResourceSyncs, for kubectl get rsync -A -l (set names over 63 " +
        "characters are shortened in the label).",
    },
    conditions: {
      type: "array",
      description:
        "Ready: True when every destination is synced and every cluster listed, else False (reason " +
        "Progressing, Failing, ClustersFailing, InvalidSpec or ChildLimitReached).",
      items: conditionSchema,
      listType: "map",
      listMapKeys: ["type"],
    },
  },
};

export const resourceSyncSetDescription =
  "ResourceSyncSet copies one source to the remote clusters a namespace holds kubeconfig Secrets for, as one " +
  "ResourceSync per destination, added and pruned as the Secrets come and go.";

export const clusterResourceSyncSetDescription =
  "ClusterResourceSyncSet copies one source to every namespace of the local cluster a selector picks and to " +
  "namespaces of remote clusters, as one ResourceSync per destination, added and pruned as namespaces come and go.";
