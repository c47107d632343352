/** The projection: ResourceSync + source object → the object Sinker applies onto the target. */
export { getFieldPath, parseFieldPath, setFieldPath } from "./fieldpath.ts";
export {
  CACHE_SIZE,
  type CompiledPath,
  cachedPathCount,
  compilePath,
  MAX_DESCENDANT_DEPTH,
  MAX_DESCENDANT_SEGMENTS,
  MAX_VISITS,
  type Selection,
  selectAll,
  selectOne,
  toExpression,
} from "./jsonpath.ts";
export { applyMetadataRule, isToolTrackingKey, TOOL_TRACKING_KEYS } from "./metadata-policy.ts";
export { deepCopy, ownerReference, type ProjectionInput, type ProjectionTarget, project } from "./project.ts";
