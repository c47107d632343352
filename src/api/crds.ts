/**
 * The CustomResourceDefinitions (apiextensions.k8s.io/v1), generated from the schema definitions in schema.ts.
 * `sinker manifests` prints crdYaml(); manifests/crds.yaml is that output (a unit test keeps them equal).
 */
import { stringify } from "yaml";
import type { KubeObject } from "../kube/object.ts";
import {
  resourceSyncDescription,
  resourceSyncSpecSchema,
  resourceSyncStatusSchema,
  type Schema,
  sinkerContainerDescription,
  sinkerContainerSpecSchema,
} from "./schema.ts";
import {
  clusterResourceSyncSetDescription,
  clusterResourceSyncSetSpecSchema,
  resourceSyncSetDescription,
  resourceSyncSetSpecSchema,
  setStatusSchema,
} from "./set-schema.ts";
import {
  API_GROUP,
  API_VERSION,
  CLUSTER_RESOURCE_SYNC_SET_KIND,
  CLUSTER_RESOURCE_SYNC_SET_PLURAL,
  CLUSTER_RESOURCE_SYNC_SET_SHORT_NAME,
  CLUSTER_RESOURCE_SYNC_SET_SINGULAR,
  RESOURCE_SYNC_KIND,
  RESOURCE_SYNC_PLURAL,
  RESOURCE_SYNC_SET_KIND,
  RESOURCE_SYNC_SET_PLURAL,
  RESOURCE_SYNC_SET_SHORT_NAME,
  RESOURCE_SYNC_SET_SINGULAR,
  RESOURCE_SYNC_SHORT_NAME,
  RESOURCE_SYNC_SINGULAR,
  SINKER_CONTAINER_KIND,
  SINKER_CONTAINER_PLURAL,
  SINKER_CONTAINER_SINGULAR,
} from "./types.ts";

/** Converts a schema definition into an OpenAPI v3 JSONSchemaProps object as the CRD API wants it. */
export function openAPISchema(schema: Schema): Record<string, unknown> {
  const out: Record<string, unknown> = { description: schema.description, type: schema.type };
  if (schema.format !== undefined) out.format = schema.format;
  if (schema.enum !== undefined) out.enum = [...schema.enum];
  if (schema.minLength !== undefined) out.minLength = schema.minLength;
  if (schema.maxLength !== undefined) out.maxLength = schema.maxLength;
  if (schema.pattern !== undefined) out.pattern = schema.pattern;
  if (schema.required !== undefined) out.required = [...schema.required];
  if (schema.properties !== undefined) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, s]) => [name, openAPISchema(s)] as const),
    );
  }
  if (schema.additionalProperties !== undefined)
    out.additionalProperties = openAPISchema(schema.additionalProperties);
  if (schema.maxProperties !== undefined) out.maxProperties = schema.maxProperties;
  if (schema.items !== undefined) out.items = openAPISchema(schema.items);
  if (schema.maxItems !== undefined) out.maxItems = schema.maxItems;
  if (schema.listType !== undefined) out["x-kubernetes-list-type"] = schema.listType;
  if (schema.listMapKeys !== undefined) out["x-kubernetes-list-map-keys"] = [...schema.listMapKeys];
  if (schema.preserveUnknownFields) out["x-kubernetes-preserve-unknown-fields"] = true;
  if (schema.validations !== undefined) {
    out["x-kubernetes-validations"] = schema.validations.map((v) => ({ rule: v.rule, message: v.message }));
  }
  return out;
}

function crd(options: {
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  description: string;
  spec: Schema;
  status?: Schema;
  printerColumns?: Record<string, unknown>[];
  scope?: "Namespaced" | "Cluster";
}): KubeObject {
  const properties: Record<string, unknown> = {
    apiVersion: {
      description: "Versioned schema of this representation of an object.",
      type: "string",
    },
    kind: { description: "REST resource this object represents.", type: "string" },
    metadata: { type: "object" },
    spec: openAPISchema(options.spec),
  };
  if (options.status !== undefined) properties.status = openAPISchema(options.status);
  const version: Record<string, unknown> = {
    name: API_VERSION,
    served: true,
    storage: true,
    schema: {
      openAPIV3Schema: {
        description: options.description,
        type: "object",
        required: ["spec"],
        properties,
      },
    },
  };
  if (options.status !== undefined) version.subresources = { status: {} };
  if (options.printerColumns !== undefined) version.additionalPrinterColumns = options.printerColumns;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${options.plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: {
        kind: options.kind,
        listKind: `${options.kind}List`,
        plural: options.plural,
        singular: options.singular,
        ...(options.shortNames === undefined ? {} : { shortNames: options.shortNames }),
      },
      scope: options.scope ?? "Namespaced",
      versions: [version],
    },
  };
}

const setPrinterColumns = [
  { name: "Source", type: "string", jsonPath: ".spec.source.resourceRef.name" },
  { name: "Desired", type: "integer", jsonPath: ".status.desired" },
  { name: "Synced", type: "integer", jsonPath: ".status.synced" },
  { name: "Failing", type: "integer", jsonPath: ".status.failing" },
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

/** Every CRD: ResourceSync first, then SinkerContainer, then the fan-out kinds (docs/spec/resourcesyncset.md). */
export function crdObjects(): KubeObject[] {
  return [
    crd({
      kind: RESOURCE_SYNC_KIND,
      plural: RESOURCE_SYNC_PLURAL,
      singular: RESOURCE_SYNC_SINGULAR,
      shortNames: [RESOURCE_SYNC_SHORT_NAME],
      description: resourceSyncDescription,
      spec: resourceSyncSpecSchema,
      status: resourceSyncStatusSchema,
      printerColumns: [
        { name: "Source Kind", type: "string", jsonPath: ".spec.source.resourceRef.kind" },
        { name: "Source Name", type: "string", jsonPath: ".spec.source.resourceRef.name" },
        { name: "Target Kind", type: "string", jsonPath: ".spec.target.resourceRef.kind" },
        { name: "Target Name", type: "string", jsonPath: ".spec.target.resourceRef.name" },
        { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
        { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
      ],
    }),
    crd({
      kind: SINKER_CONTAINER_KIND,
      plural: SINKER_CONTAINER_PLURAL,
      singular: SINKER_CONTAINER_SINGULAR,
      description: sinkerContainerDescription,
      spec: sinkerContainerSpecSchema,
    }),
    crd({
      kind: RESOURCE_SYNC_SET_KIND,
      plural: RESOURCE_SYNC_SET_PLURAL,
      singular: RESOURCE_SYNC_SET_SINGULAR,
      shortNames: [RESOURCE_SYNC_SET_SHORT_NAME],
      description: resourceSyncSetDescription,
      spec: resourceSyncSetSpecSchema,
      status: setStatusSchema,
      printerColumns: setPrinterColumns,
    }),
    crd({
      kind: CLUSTER_RESOURCE_SYNC_SET_KIND,
      plural: CLUSTER_RESOURCE_SYNC_SET_PLURAL,
      singular: CLUSTER_RESOURCE_SYNC_SET_SINGULAR,
      shortNames: [CLUSTER_RESOURCE_SYNC_SET_SHORT_NAME],
      description: clusterResourceSyncSetDescription,
      spec: clusterResourceSyncSetSpecSchema,
      status: setStatusSchema,
      printerColumns: setPrinterColumns,
      scope: "Cluster",
    }),
  ];
}

/** Every CRD as one multi-document YAML stream, ResourceSync first. */
export function crdYaml(): string {
  return crdObjects()
    .map((o) => `---\n${stringify(o, { lineWidth: 0 })}`)
    .join("");
}
