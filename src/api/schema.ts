/**
 * The one source of truth for the shape of Sinker's custom resources: a small subset of OpenAPI v3 (the part a
 * structural CRD schema uses) with the descriptions `kubectl explain` shows. `crds.ts` turns it into the CRD
 * schemas; `validate.ts` interprets the very same definitions, so what the API server refuses at `kubectl apply`
 * time and what the controller refuses are the same thing.
 *
 * Over 400 lines on purpose: one declarative schema (the ResourceSync's), read top to bottom like the CRD it
 * becomes; splitting it would scatter one resource's shape over files.
 */

import { targetMetadataProperties } from "./metadata-schema.ts";

/** The longest `fromFieldPath`/`toFieldPath` accepted (CRD `maxLength` and the JSONPath entry point's bound). */
export const MAX_FIELD_PATH_LENGTH = 1024;
/** The longest mapping `expression` accepted (CRD `maxLength` and the CEL compiler's bound). */
export const MAX_EXPRESSION_LENGTH = 4096;
/** The most mappings one ResourceSync may have (CRD `maxItems`, the validator and the projection). */
export const MAX_MAPPINGS = 256;

/** A CEL rule (`x-kubernetes-validations`) together with its TypeScript twin, which must agree with it. */
export interface ValidationRule {
  /** CEL expression, evaluated by the API server with `self` = the value of the schema node. */
  rule: string;
  message: string;
  /**
   * The same rule in TypeScript, for the controller and `sinker render` (the CRD may lack validation). A `null`
   * field counts as absent, as the API server prunes nulls of non-nullable fields before validating.
   */
  holds(self: Record<string, unknown>): boolean;
}

export interface Schema {
  type: "object" | "array" | "string" | "integer" | "boolean";
  description: string;
  properties?: Record<string, Schema>;
  /** Schema of every property of a map-like object (`additionalProperties`). */
  additionalProperties?: Schema;
  maxProperties?: number;
  required?: string[];
  items?: Schema;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** What the validator says when `pattern` does not match (the API server prints the pattern itself). */
  patternMessage?: string;
  enum?: string[];
  format?: "int64" | "date-time";
  preserveUnknownFields?: boolean;
  listType?: "atomic" | "map";
  listMapKeys?: string[];
  validations?: ValidationRule[];
}

export const nonEmpty = (description: string, maxLength?: number): Schema => ({
  type: "string",
  description,
  minLength: 1,
  ...(maxLength === undefined ? {} : { maxLength }),
});

/**
 * Names become URL path segments of API requests, so they are checked before any request is made (`.` and
 * `..` would address the collection or the namespace itself; docs/security.md, "name objects"):
 * - object names (any kind): what the API server accepts for every resource, a path segment of 1 to 253
 *   characters that is not `.` or `..` and holds no `/` or `%` (each kind's own stricter rules are the API
 *   server's business, e.g. DNS subdomains for ConfigMaps; RBAC kinds allow `:`);
 * - namespaces: RFC 1123 labels (lower-case letters, digits, `-`; at most 63 characters);
 * - Secret names: RFC 1123 subdomains; Secret keys: letters, digits, `-`, `_`, `.`, not `.` or `..`;
 * - apiVersion `[group/]version` with a DNS-subdomain group and a DNS-label version; kind: letters and digits.
 */
export const OBJECT_NAME_PATTERN = "^(?:[^/%.][^/%]*|\\.[^/%.][^/%]*|\\.\\.[^/%]+)$";
export const NAMESPACE_PATTERN = "^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$";
export const DNS_SUBDOMAIN_PATTERN =
  "^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$";
export const SECRET_KEY_PATTERN =
  "^(?:[-_a-zA-Z0-9][-._a-zA-Z0-9]*|\\.[-_a-zA-Z0-9][-._a-zA-Z0-9]*|\\.\\.[-._a-zA-Z0-9]+)$";
export const API_VERSION_PATTERN =
  "^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$";
export const KIND_PATTERN = "^[A-Za-z][A-Za-z0-9]*$";

export const objectName = (description: string): Schema => ({
  type: "string",
  description,
  minLength: 1,
  maxLength: 253,
  pattern: OBJECT_NAME_PATTERN,
  patternMessage: 'must be a valid object name: not "." or "..", without "/" or "%"',
});

export const namespaceName = (description: string): Schema => ({
  type: "string",
  description,
  minLength: 1,
  maxLength: 63,
  pattern: NAMESPACE_PATTERN,
  patternMessage:
    "must be a valid namespace name: lower-case letters, digits and '-', starting and ending alphanumeric",
});

export const MAPPING_RULE_MESSAGE = "a mapping must set fromFieldPath, toFieldPath or both";
export const EXPRESSION_EXCLUSIVE_MESSAGE = "a mapping sets fromFieldPath or expression, not both";
export const EXPRESSION_TARGET_MESSAGE = "a mapping with an expression must set toFieldPath";

export const resourceRefSchema = (end: "source" | "target"): Schema => ({
  type: "object",
  description:
    end === "source"
      ? "The object to read: its group/version, kind and name. Its namespace is the ResourceSync's own " +
        "namespace (or cluster.namespace when cluster is set); a cluster-scoped kind has none."
      : "The object to write: its group/version, kind and name. Its namespace is the ResourceSync's own " +
        "namespace (or cluster.namespace when cluster is set); a cluster-scoped kind has none.",
  required: ["apiVersion", "kind", "name"],
  properties: {
    apiVersion: {
      ...nonEmpty('API group and version of the object, e.g. "v1" or "apps/v1".', 317),
      pattern: API_VERSION_PATTERN,
      patternMessage: 'must be "version" or "group/version", e.g. "v1" or "apps/v1"',
    },
    kind: {
      ...nonEmpty('Kind of the object, e.g. "ConfigMap".', 253),
      pattern: KIND_PATTERN,
      patternMessage: 'must be a kind name of letters and digits, e.g. "ConfigMap"',
    },
    name: objectName("Name of the object."),
  },
});

export const clusterSchema: Schema = {
  type: "object",
  description:
    "A remote cluster, reached with a kubeconfig stored in a Secret of the local cluster. Absent: the cluster " +
    "Sinker runs in, where a ResourceSync can only reach objects in its own namespace (or cluster-scoped ones).",
  required: ["kubeConfig"],
  properties: {
    namespace: namespaceName(
      "Namespace of the object in the remote cluster. Default: the namespace of the kubeconfig's current " +
        'context, else "default".',
    ),
    kubeConfig: {
      type: "object",
      description: "Where the kubeconfig of the remote cluster is stored. Its current context is used.",
      required: ["secretRef"],
      properties: {
        secretRef: {
          type: "object",
          description:
            "A key of a Secret in the local cluster holding kubeconfig text. A Secret in another namespace than " +
            "the ResourceSync's must carry the annotation sinker.influxdata.io/allowed-namespaces, a regular " +
            "expression that matches the whole namespace name of the ResourceSync.",
          required: ["name", "key"],
          properties: {
            name: {
              ...nonEmpty("Name of the Secret.", 253),
              pattern: DNS_SUBDOMAIN_PATTERN,
              patternMessage: "must be a valid Secret name (lower-case RFC 1123 subdomain)",
            },
            key: {
              ...nonEmpty("Key in the Secret's data holding the kubeconfig.", 253),
              pattern: SECRET_KEY_PATTERN,
              patternMessage:
                'must be a valid Secret key: letters, digits, "-", "_" and ".", not "." or ".."',
            },
            namespace: namespaceName("Namespace of the Secret. Default: the ResourceSync's namespace."),
          },
        },
      },
    },
  },
};

export const endSchema = (end: "source" | "target"): Schema => ({
  type: "object",
  description:
    end === "source"
      ? "The object Sinker reads and keeps watching."
      : "The object Sinker server-side-applies the projection of the source onto (field manager " +
        "sinker.influxdata.io) and keeps watching, undoing drift. A target in the local cluster gets an owner " +
        "reference to the ResourceSync unless it is cluster-scoped or the ResourceSync has the annotation " +
        'sinker.influxdata.io/disable-target-deletion: "true" (a target Sinker keeps is never garbage-collected).',
  required: ["resourceRef"],
  properties: {
    resourceRef: resourceRefSchema(end),
    cluster: clusterSchema,
    ...(end === "target" ? targetMetadataProperties() : {}),
  },
});

export const mappingSchema: Schema = {
  type: "object",
  description:
    "Copies one node of the source into the target. With both paths: the node selected by fromFieldPath is " +
    "written at toFieldPath; when fromFieldPath selects nothing, toFieldPath is left out (and so removed from " +
    "the target if Sinker wrote it before). With only fromFieldPath: the selected node must be a whole " +
    "Kubernetes object (apiVersion and kind equal to the target's) and the target becomes a clone of it. With " +
    "only toFieldPath: the whole source object is written there. With expression and toFieldPath: the value the " +
    "CEL expression computes is written at toFieldPath (null: left out).",
  properties: {
    fromFieldPath: {
      type: "string",
      description:
        "RFC 9535 JSONPath into the source object, selecting at most one node. Written relative " +
        '("data.foo", "spec.template", "metadata.labels"; Sinker prefixes "$."), or absolute when it starts with ' +
        '"$" (e.g. "$.data[\'app.properties\']"). Empty or absent: the whole source object.',
      maxLength: MAX_FIELD_PATH_LENGTH,
    },
    toFieldPath: {
      type: "string",
      description:
        'Dotted path into the target ("data.bar", "spec.config.inner", "metadata.labels", ' +
        '"metadata.annotations.team"). Missing objects on the way are created; a non-object on the way is an ' +
        'error. A dot inside a field name is escaped with a backslash: "data.app\\.properties", ' +
        '"metadata.annotations.example\\.com/team". apiVersion, kind, metadata.name and metadata.namespace ' +
        "always stay the target's.",
      minLength: 1,
      maxLength: MAX_FIELD_PATH_LENGTH,
      pattern: "^(?:[^.\\\\]|\\\\[.\\\\])+(?:\\.(?:[^.\\\\]|\\\\[.\\\\])+)*$",
      patternMessage:
        'must be a dotted path of non-empty field names, e.g. "data.foo" (a dot in a name is written "\\.")',
    },
    expression: {
      type: "string",
      description:
        "A CEL expression computing the value written at toFieldPath, instead of fromFieldPath. Variables: " +
        "object (the source object) and resourceSync (metadata.name, namespace, labels, annotations of this " +
        "ResourceSync). Besides the CEL standard library: the strings extension (replace, split, join, format, " +
        "lowerAscii, ...), base64.encode(bytes)/base64.decode(string), and RE2 regular expressions (matches, " +
        "find, findAll). A null result leaves toFieldPath out; bytes are written base64-encoded. Bounded: " +
        "an expression that does not compile fails with InvalidExpression, one that fails at evaluation with " +
        "ExpressionFailed, one that needs too much work with ExpressionBudgetExceeded. " +
        'Example: "base64.decode(object.data.token).string().upperAscii()".',
      minLength: 1,
      maxLength: MAX_EXPRESSION_LENGTH,
    },
  },
  validations: [
    {
      rule: "has(self.fromFieldPath) || has(self.toFieldPath)",
      message: MAPPING_RULE_MESSAGE,
      holds: (self) => self.fromFieldPath != null || self.toFieldPath != null,
    },
    {
      rule: "!has(self.expression) || !has(self.fromFieldPath)",
      message: EXPRESSION_EXCLUSIVE_MESSAGE,
      holds: (self) => self.expression == null || self.fromFieldPath == null,
    },
    {
      rule: "!has(self.expression) || has(self.toFieldPath)",
      message: EXPRESSION_TARGET_MESSAGE,
      holds: (self) => self.expression == null || self.toFieldPath != null,
    },
  ],
};

export const WRITE_POLICY_RULE_MESSAGE =
  "onImmutableChange: Replace needs writePolicy Apply (a CreateOnly target is never updated)";

/** `writePolicy` and `onImmutableChange`, shared by a ResourceSync and the sets' child template. */
export const writeFieldsSchemas = (what: string): Record<string, Schema> => ({
  writePolicy: {
    type: "string",
    description:
      `How Sinker writes ${what}. Apply (default): server-side-applied on every change of the source or the ` +
      "spec, drift undone. CreateOnly: created from the source whenever Sinker finds it absent (at first, and " +
      "again after it is deleted), never updated: later source changes and edits of the target are left alone. " +
      "Deletion follows the finalizer and annotations either way.",
    enum: ["Apply", "CreateOnly"],
  },
  onImmutableChange: {
    type: "string",
    description:
      "What happens when the API server refuses an update of the target because a field is immutable (a " +
      "Secret's type, the data of an immutable ConfigMap or Secret, ...). Fail (default): the ResourceSync " +
      "fails with reason Invalid, naming the field. Replace: Sinker deletes the object it wrote (uid " +
      "precondition) and creates it again (Event TargetReplaced), at most 3 times per source version and " +
      "generation of the ResourceSync (status.replacement).",
    enum: ["Fail", "Replace"],
  },
});

/** CreateOnly never updates, so it never meets an immutable field: Replace with it is a mistake. */
export const writeFieldsRule: ValidationRule = {
  rule: "!(has(self.writePolicy) && self.writePolicy == 'CreateOnly' && has(self.onImmutableChange) && self.onImmutableChange == 'Replace')",
  message: WRITE_POLICY_RULE_MESSAGE,
  holds: (self) => !(self.writePolicy === "CreateOnly" && self.onImmutableChange === "Replace"),
};

export const resourceSyncSpecSchema: Schema = {
  type: "object",
  description: "Which object to copy, where to, and how.",
  required: ["source", "target"],
  properties: {
    source: endSchema("source"),
    target: endSchema("target"),
    mappings: {
      type: "array",
      description:
        "Field mappings, applied in order onto an object holding only the target's apiVersion, kind, name and " +
        "namespace. Absent or empty: the target is a clone of the source (every top-level field except " +
        "apiVersion, kind and metadata, plus the source's labels and annotations as target.labels and " +
        "target.annotations let them through). At most 256 mappings.",
      items: mappingSchema,
      maxItems: MAX_MAPPINGS,
    },
    ...writeFieldsSchemas("the target"),
  },
  validations: [writeFieldsRule],
};

export const conditionSchema: Schema = {
  type: "object",
  description: "One aspect of the ResourceSync's state (metav1.Condition).",
  required: ["type", "status", "lastTransitionTime", "reason", "message"],
  properties: {
    type: nonEmpty('Type of the condition: "Ready" or "ResourceSyncFailing".', 316),
    status: { type: "string", description: "True, False or Unknown.", enum: ["True", "False", "Unknown"] },
    observedGeneration: {
      type: "integer",
      format: "int64",
      description: "The .metadata.generation the condition was set for.",
    },
    lastTransitionTime: {
      type: "string",
      format: "date-time",
      description: "When the condition last changed status.",
    },
    reason: nonEmpty("Machine-readable reason of the last transition, in CamelCase.", 1024),
    message: { type: "string", description: "Human-readable details.", maxLength: 32768 },
  },
};

export const resourceSyncStatusSchema: Schema = {
  type: "object",
  description: "What Sinker observed, written by Sinker.",
  properties: {
    conditions: {
      type: "array",
      description:
        "Ready: True (reason Synced) after a successful apply, else False with the failure's reason and " +
        "message. ResourceSyncFailing: True while syncing fails, False once it syncs again.",
      items: conditionSchema,
      listType: "map",
      listMapKeys: ["type"],
    },
    observedGeneration: {
      type: "integer",
      format: "int64",
      description: "The .metadata.generation Sinker last acted on.",
    },
    writePolicy: {
      type: "string",
      description:
        "The write policy the last successful reconcile acted under (spec.writePolicy): Apply or CreateOnly.",
      enum: ["Apply", "CreateOnly"],
    },
    replacement: {
      type: "object",
      description:
        "Replacements of the target on an immutable change (spec.onImmutableChange: Replace) for one source " +
        "version and ResourceSync generation, counted before each attempt so that a restart does not reset the " +
        "bound. A new source version or generation starts a new count.",
      required: ["attempts"],
      properties: {
        generation: { type: "integer", format: "int64", description: "The ResourceSync's generation." },
        sourceResourceVersion: {
          type: "string",
          description: "The source's resourceVersion.",
          maxLength: 256,
        },
        attempts: { type: "integer", description: "Replacements attempted for them." },
        lastAttemptTime: { type: "string", format: "date-time", description: "When the last one started." },
      },
    },
    appliedTarget: {
      type: "object",
      description:
        "The sync record: the object Sinker applied for this ResourceSync and when. Sinker deletes only this " +
        "object (by uid), and deletes it when spec.target changes or the ResourceSync is deleted (unless " +
        "target deletion is disabled). Absent: Sinker never applied anything for it.",
      required: ["apiVersion", "kind", "name", "uid"],
      properties: {
        cluster: {
          type: "object",
          description: "The cluster of the object. Empty: the cluster Sinker runs in.",
          properties: {
            secretRef: {
              type: "object",
              description:
                "The kubeconfig Secret (in the local cluster) the object's cluster is reached through.",
              required: ["namespace", "name", "key"],
              properties: {
                namespace: nonEmpty("Namespace of the Secret."),
                name: nonEmpty("Name of the Secret."),
                key: nonEmpty("Key of the kubeconfig in the Secret."),
              },
            },
            identity: {
              type: "object",
              description:
                "Which cluster the Secret reached when the object was applied, as the cluster itself says: " +
                "two Secrets (or an alias of the local cluster) with the same identity name one cluster. " +
                "Compared by the strongest fact both sides know. A changed identity is handled like a new target.",
              properties: {
                kubeSystemUID: {
                  type: "string",
                  maxLength: 64,
                  description:
                    "UID of the cluster's kube-system namespace (when the kubeconfig's user may read it).",
                },
                caSHA256: {
                  type: "string",
                  pattern: "^[0-9a-f]{64}$",
                  description:
                    "SHA-256 (hex) of the CA certificates the kubeconfig trusts for the API server.",
                },
                serverSHA256: {
                  type: "string",
                  pattern: "^[0-9a-f]{64}$",
                  description:
                    "SHA-256 (hex) of the API server's origin (scheme, host, port): the weakest fact.",
                },
              },
            },
          },
        },
        apiVersion: nonEmpty("API group and version the object was applied with."),
        kind: nonEmpty("Kind of the object."),
        namespace: {
          type: "string",
          description: "Namespace of the object; absent for a cluster-scoped kind.",
        },
        name: nonEmpty("Name of the object."),
        uid: nonEmpty("uid of the object Sinker applied."),
        appliedAt: {
          type: "string",
          format: "date-time",
          description: "When Sinker first applied this object.",
        },
        fieldSetHash: {
          type: "string",
          maxLength: 64,
          description:
            "Hash of the set of fields (not their values) Sinker's last apply of this object set. A target " +
            "that holds the values Sinker would apply, in exactly these fields, needs no apply: after a " +
            "restart or a failover Sinker writes nothing to targets that did not change.",
        },
      },
    },
  },
};

export const resourceSyncDescription =
  "ResourceSync keeps a target object in sync with a source object, in the same cluster or across clusters: " +
  "Sinker projects the source (whole, or field by field through mappings) and server-side-applies the result " +
  "onto the target, and re-applies it whenever either end changes.";

export const sinkerContainerSpecSchema: Schema = {
  type: "object",
  description:
    "Arbitrary structured data, e.g. a whole Kubernetes object carried from one cluster to another to be " +
    "unpacked there by a ResourceSync mapping.",
  preserveUnknownFields: true,
};

export const sinkerContainerDescription =
  "SinkerContainer holds arbitrary structured data under .spec, as a source or target of a ResourceSync.";
