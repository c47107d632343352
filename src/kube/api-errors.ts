/**
 * Errors of the Kubernetes API client, every one a SinkerError with a stable reason. A non-2xx answer maps its
 * HTTP status to a reason (`reasonForStatus`) and carries the API server's Status message, reduced
 * (api-message.ts: no quoted values); a body that is not a Status gives only the status code and reason phrase.
 * Connection problems and 5xx are `ClusterUnreachable`. Request bodies (which may be Secret data) never go
 * into messages.
 */
import { STATUS_CODES } from "node:http";
import { type ErrorReason, SinkerError } from "../errors.ts";
import { reduceApiMessage } from "./api-message.ts";
import { isPlainObject } from "./object.ts";

/** Maps an HTTP status of a Kubernetes API answer to an error reason. */
export function reasonForStatus(status: number): ErrorReason {
  switch (status) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 422:
      return "Invalid";
    case 429:
      return "Throttled";
    default:
      return status >= 500 ? "ClusterUnreachable" : "BadRequest";
  }
}

/**
 * Builds the SinkerError for a non-2xx answer. `body` is the response body text (a meta/v1 Status when an API
 * server answered). Only a Status's message is used, reduced (no quoted values); any other body gives the
 * status code and reason phrase only. For a `remote` cluster, the message keeps the Status reason and a reduced
 * message of at most 300 characters.
 */
export function apiError(
  cluster: string,
  status: number,
  body: string,
  what: string,
  remote = false,
): SinkerError {
  const phrase = STATUS_CODES[status] ?? "";
  let message = `HTTP ${status}${phrase ? ` ${phrase}` : ""}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined; // not JSON (a proxy, a load balancer, a hostile server): never reflected
  }
  if (
    isPlainObject(parsed) &&
    parsed.kind === "Status" &&
    typeof parsed.message === "string" &&
    parsed.message !== ""
  ) {
    if (remote) {
      const reason =
        typeof parsed.reason === "string" && /^[A-Za-z]{1,64}$/.test(parsed.reason) ? parsed.reason : "";
      let reduced = reduceApiMessage(parsed.message).replace(/[^\x20-\x7e]/g, "?");
      if (reduced.length > 300) reduced = `${reduced.slice(0, 300)}…`;
      message = `${message}${reason ? ` (${reason})` : ""}: ${reduced}`;
    } else {
      message = reduceApiMessage(parsed.message);
    }
  }
  const reason = reasonForStatus(status);
  const prefix =
    reason === "ClusterUnreachable" ? `cluster "${cluster}" failed ${what}` : `cluster "${cluster}"`;
  const immutableFields = status === 422 ? immutableFieldsOf(parsed) : undefined;
  return new SinkerError(reason, `${prefix}: ${message}`, {
    status,
    ...(immutableFields ? { immutableFields } : {}),
  });
}

const IMMUTABLE = /\bfield is immutable\b/;
/** A field path as API servers write them (`type`, `spec.selector`, `data[key]`); anything else is dropped. */
const FIELD_PATH = /^[A-Za-z0-9_.\-[\]/]{1,256}$/;
const MAX_IMMUTABLE_FIELDS = 8;

/**
 * The fields a 422 Status refuses as immutable: its `details.causes` whose message says "field is immutable"
 * (`type`, or `data` of an immutable ConfigMap or Secret), or [] when only its message says so. undefined: not
 * an immutability refusal. Bounded and filtered, as the answer may come from a hostile server.
 */
export function immutableFieldsOf(status: unknown): readonly string[] | undefined {
  if (!isPlainObject(status)) return undefined;
  const fields: string[] = [];
  const details = status.details;
  const causes = isPlainObject(details) && Array.isArray(details.causes) ? details.causes : [];
  for (const cause of causes.slice(0, 64)) {
    if (!isPlainObject(cause) || typeof cause.message !== "string") continue;
    if (!IMMUTABLE.test(cause.message.slice(0, 1024))) continue;
    const field = typeof cause.field === "string" && FIELD_PATH.test(cause.field) ? cause.field : "";
    if (field && !fields.includes(field) && fields.length < MAX_IMMUTABLE_FIELDS) fields.push(field);
  }
  if (fields.length > 0) return fields;
  const anyCause = causes.some(
    (c) => isPlainObject(c) && typeof c.message === "string" && IMMUTABLE.test(c.message.slice(0, 1024)),
  );
  const inMessage = typeof status.message === "string" && IMMUTABLE.test(status.message.slice(0, 4096));
  return anyCause || inMessage ? [] : undefined;
}

/** Wraps a transport error (connection refused, TLS, timeouts) into ClusterUnreachable. */
export function transportError(cluster: string, err: unknown, what: string): SinkerError {
  if (err instanceof SinkerError) return err;
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = typeof e?.code === "string" ? e.code : typeof e?.cause?.code === "string" ? e.cause.code : "";
  const msg =
    typeof e?.cause?.message === "string" && e.cause.message !== ""
      ? e.cause.message
      : typeof e?.message === "string"
        ? e.message
        : String(err);
  const detail =
    code === "UND_ERR_HEADERS_TIMEOUT"
      ? "no response headers within the timeout"
      : code === "UND_ERR_BODY_TIMEOUT"
        ? "response body stalled"
        : code === "ESINKERBLOCKED"
          ? "the server's address is link-local, cloud metadata or denied by the operator"
          : msg;
  return new SinkerError("ClusterUnreachable", `cluster "${cluster}" unreachable (${what}): ${detail}`, {
    cause: err,
  });
}

export function cancelledError(cluster: string, what: string): SinkerError {
  return new SinkerError("Cancelled", `cluster "${cluster}": ${what} cancelled`);
}

/** A headers or body timeout of undici. */
export function isTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = e?.code ?? e?.cause?.code;
  return code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
}

export function isConnectionReset(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = e?.code ?? e?.cause?.code;
  return code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE";
}

/** A watch that received nothing (no event, no bookmark) for its idle time. */
export function idleError(cluster: string, what: string, idleMs: number): SinkerError {
  return new SinkerError(
    "ClusterUnreachable",
    `cluster "${cluster}": ${what} received nothing for ${Math.round(idleMs / 1000)} s`,
  );
}

/** A request without a complete answer within its total deadline. */
export function deadlineError(
  cluster: string,
  what: string,
  deadlineMs: number,
  cause: unknown,
): SinkerError {
  return new SinkerError(
    "ClusterUnreachable",
    `cluster "${cluster}" unreachable (${what}): no complete answer within ${Math.round(deadlineMs / 1000)} s`,
    { cause },
  );
}

/**
 * A Status message of a watch ERROR event, reduced like any API error message (it ends up in logs and status);
 * for a remote cluster also cut to 300 printable ASCII characters.
 */
export function reduceEventMessage(message: string, remote: boolean): string {
  const reduced = reduceApiMessage(message);
  return remote ? reduced.slice(0, 300).replace(/[^\x20-\x7e]/g, "?") : reduced;
}
