/**
 * Errors as values with a stable `reason`.
 *
 * The reason is machine-readable and never changes between releases: it becomes the `reason` of the
 * ResourceSync's Ready condition, the `reason` label of error metrics and the reason of Events. The message is
 * for people and may carry details (never Secret data).
 */
export type ErrorReason =
  // spec / input problems (retrying will not help until the user changes something)
  | "InvalidSpec"
  | "InvalidMapping"
  | "InvalidJSONPath"
  | "AmbiguousJSONPath"
  | "JSONPathLimitExceeded"
  | "ProjectionBudgetExceeded"
  | "SourceTooLarge"
  | "NotAKubernetesObject"
  | "KindMismatch"
  | "InvalidFieldPath"
  | "InvalidExpression"
  | "ExpressionFailed"
  | "ExpressionBudgetExceeded"
  | "ClusterScopedNotAllowed"
  | "UnknownKind"
  | "Invalid"
  | "BadRequest"
  // access problems
  | "SecretAccessDenied"
  | "InvalidKubeconfig"
  | "UnsafeKubeconfig"
  | "Forbidden"
  | "BlockedAddress"
  | "Unauthorized"
  | "SecretNotFound"
  | "SourceNamespaceNotGranted"
  // ownership (what Sinker may write or delete)
  | "TargetNotOwned"
  | "TargetConflict"
  | "TargetIsSource"
  /** The kubeconfig Secret of a recorded target now reaches another cluster (docs/security.md#cluster-identity). */
  | "ClusterChanged"
  // another writer keeps rewriting the target (contest.ts): repaired with back-off
  | "TargetContested"
  // replacing a target on an immutable change (spec.onImmutableChange: Replace)
  | "ReplaceLimitReached"
  // the world is not (yet) as we need it
  | "SourceNotFound"
  | "ClusterUnreachable"
  | "ResponseTooLarge"
  | "NotFound"
  | "Gone"
  | "Throttled"
  | "Conflict"
  | "Cancelled"
  | "Internal";

export class SinkerError extends Error {
  readonly reason: ErrorReason;
  /** HTTP status of the API server response this error comes from, when there was one. */
  readonly status?: number;
  /** A 422 refusing a change of immutable fields: their paths as the API server named them (maybe none). */
  readonly immutableFields?: readonly string[];

  constructor(
    reason: ErrorReason,
    message: string,
    options?: { cause?: unknown; status?: number; immutableFields?: readonly string[] },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "SinkerError";
    this.reason = reason;
    if (options?.status !== undefined) this.status = options.status;
    if (options?.immutableFields !== undefined) this.immutableFields = options.immutableFields;
  }
}

/** Turns anything thrown into a SinkerError, keeping a SinkerError as it is. */
export function asSinkerError(err: unknown): SinkerError {
  if (err instanceof SinkerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SinkerError("Internal", message, { cause: err });
}
