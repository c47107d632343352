/**
 * Error messages of API servers, reduced before Sinker stores or logs them: Secret data never reaches logs,
 * Events or status, not even quoted in a refusal (docs/security.md).
 *
 * An API server quotes what it refuses: a 422 for a label written from a Secret reads
 * `ConfigMap "x" is invalid: metadata.labels: Invalid value: "c2VjcmV0": a valid label must be ...`, and an
 * admission webhook may say anything. The reducer keeps what helps a person fix the problem — the object's kind
 * and name, field paths, the kind of problem and the API server's own explanation — and drops values:
 * - the value after a field error type (`Invalid value:`, `Unsupported value:`, `Duplicate value:`,
 *   `Not found:`), whatever its form (a Go-quoted string, a number, `map[...]{...}`, `[]string{...}`);
 * - every double-quoted string that does not stand right after a word (where Kubernetes puts object, user and
 *   manager names: `configmaps "x" not found`, `User "u" cannot`, `conflict with "kubectl"`) or that does not
 *   look like a name;
 * - what an admission webhook adds after "denied the request";
 * and caps the length. Remote clusters are reduced further by the client (see `remoteApiMessage`).
 */

export const MAX_API_MESSAGE_LENGTH = 1024;

/** Longest message written to a condition or Event (the API server caps Event messages at 1 KiB). */
const MAX_WRITTEN_MESSAGE = 1024;

/** A message Sinker writes (a condition, an Event), cut to what the API server takes. */
export function truncateMessage(message: string): string {
  return message.length <= MAX_WRITTEN_MESSAGE ? message : `${message.slice(0, MAX_WRITTEN_MESSAGE - 3)}...`;
}
const REDACTED = "<value omitted>";
const FIELD_ERROR_VALUE = /\b(Invalid value|Unsupported value|Duplicate value|Not found): /g;
/** A quoted thing that may stay: a Kubernetes-style name (DNS-ish, with `:`, `@`, `/` for users and groups). */
const NAME_LIKE = /^[-A-Za-z0-9.:@/_]{1,253}$/;

/** Reduces an API server message (see the module comment). Pure; never throws. */
export function reduceApiMessage(message: string): string {
  let out = dropFieldErrorValues(message);
  const denied = /denied the request\b/.exec(out);
  if (denied) out = `${out.slice(0, denied.index + denied[0].length)} (the webhook's message is omitted)`;
  out = dropQuotedValues(out);
  out = out.replace(/\s+/g, " ").trim();
  if (out.length > MAX_API_MESSAGE_LENGTH) out = `${out.slice(0, MAX_API_MESSAGE_LENGTH)}…`;
  return out;
}

/** Replaces the value after each field error type by a placeholder. */
function dropFieldErrorValues(message: string): string {
  let out = "";
  let pos = 0;
  FIELD_ERROR_VALUE.lastIndex = 0;
  for (let m = FIELD_ERROR_VALUE.exec(message); m !== null; m = FIELD_ERROR_VALUE.exec(message)) {
    const start = m.index + m[0].length;
    if (start < pos) continue;
    out += message.slice(pos, start) + REDACTED;
    pos = skipValue(message, start);
    FIELD_ERROR_VALUE.lastIndex = pos;
  }
  return out + message.slice(pos);
}

/**
 * The index after a Go-formatted value starting at `start`: a quoted string, or anything up to the next `: `
 * or `, ` (or `]` closing an aggregate) outside quotes and brackets, or the end.
 */
function skipValue(s: string, start: number): number {
  if (s[start] === '"') return skipQuoted(s, start);
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      i = skipQuoted(s, i) - 1;
    } else if (c === "{" || c === "[" || c === "(") {
      depth++;
    } else if (c === "}" || c === "]" || c === ")") {
      if (depth === 0) return i;
      depth--;
    } else if (depth === 0 && (c === ":" || c === ",") && s[i + 1] === " ") {
      return i;
    }
  }
  return s.length;
}

/** The index after the Go-quoted string starting at `start` (which is a `"`); the end when unterminated. */
function skipQuoted(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === "\\") i++;
    else if (s[i] === '"') return i + 1;
  }
  return s.length;
}

function dropQuotedValues(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '"') {
      out += s[i];
      continue;
    }
    const end = skipQuoted(s, i);
    const inner = s.slice(i + 1, end - 1);
    const before = /[A-Za-z0-9)] $/.test(s.slice(Math.max(0, i - 2), i));
    out += before && NAME_LIKE.test(inner) ? s.slice(i, end) : `"${REDACTED}"`;
    i = end - 1;
  }
  return out;
}
