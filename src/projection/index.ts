/**
 * The projection: ResourceSync + source object → the object Sinker applies onto the target. The JSONPath engine
 * (./jsonpath.ts) is not re-exported here: the projection loads it at the first mapping that needs it.
 */
export { getFieldPath, parseFieldPath, setFieldPath } from "./fieldpath.ts";
export { applyMetadataRule, isToolTrackingKey, TOOL_TRACKING_KEYS } from "./metadata-policy.ts";
export { deepCopy, ownerReference, type ProjectionInput, type ProjectionTarget, project } from "./project.ts";
