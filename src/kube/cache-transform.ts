import type { KubeObject } from "./object.ts";

/**
 * The cache transform of Sinker's informers: managedFields reduced to each manager's name, operation and time
 * (only "is this Sinker's?" and "who wrote last?" are ever asked of them, never which fields) and the
 * last-applied annotation dropped.
 */
export function stripForCache(object: KubeObject): KubeObject {
  const meta = object.metadata;
  if (!meta) return object;
  const annotations = meta.annotations;
  const hasLastApplied = annotations !== undefined && LAST_APPLIED in annotations;
  if (meta.managedFields === undefined && !hasLastApplied) return object;
  const { managedFields, ...rest } = meta;
  const slim: KubeObject["metadata"] = { ...rest };
  const writers = (managedFields ?? []).filter((m) => !m.subresource);
  if (writers.length > 0)
    slim.managedFields = writers.map((m) => ({
      manager: m.manager,
      operation: m.operation,
      ...(m.time ? { time: m.time } : {}),
    }));
  if (hasLastApplied && annotations) {
    const { [LAST_APPLIED]: _dropped, ...kept } = annotations;
    slim.annotations = kept;
  }
  return { ...object, metadata: slim };
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";
