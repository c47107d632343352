/**
 * Schema of the target's metadata policy (`spec.target.labels`, `spec.target.annotations`;
 * docs/spec/resourcesync.md#labels-and-annotations-of-the-target), in a block of its own shared by ResourceSync and
 * the sets' target. Keys are checked as the API server checks label and annotation keys (qualified names), so a bad
 * key is refused at `kubectl apply` time, not on every apply.
 */
import type { Schema, ValidationRule } from "./schema.ts";

/** Most entries in one include/exclude list and most keys in one `add` (bounded work per projection). */
export const MAX_METADATA_KEYS = 64;
/** A label/annotation key: `[prefix/]name`, prefix a DNS subdomain (at most 253), name at most 63 characters. */
export const MAX_KEY_LENGTH = 317;
export const MAX_ANNOTATION_VALUE_LENGTH = 4096;

const DNS = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*";
const NAME = "[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
/** A label or annotation key (Kubernetes' qualified name). */
export const METADATA_KEY_PATTERN = `^(?:${DNS}/)?${NAME}$`;
/** A key, or a prefix of one followed by `*` (`example.com/*`, `team-*`, `*`). */
export const METADATA_KEY_OR_PREFIX_PATTERN = `^(?:(?:${DNS}/)?${NAME}|(?:${DNS}/)?(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?\\*)$`;
const LABEL_VALUE_PATTERN = "^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$";

const keyRegExp = new RegExp(METADATA_KEY_PATTERN);

/** The prefix of a key (before `/`) is a DNS subdomain of at most 253 characters. */
function keyValid(k: string): boolean {
  const slash = k.indexOf("/");
  return k.length <= MAX_KEY_LENGTH && keyRegExp.test(k) && slash <= 253;
}

const keyList = (description: string): Schema => ({
  type: "array",
  description,
  maxItems: MAX_METADATA_KEYS,
  items: {
    type: "string",
    description: "A key, or a prefix followed by * (e.g. example.com/*).",
    minLength: 1,
    maxLength: MAX_KEY_LENGTH,
    pattern: METADATA_KEY_OR_PREFIX_PATTERN,
    patternMessage:
      'must be a label/annotation key ("example.com/name", "name"), or a prefix of one followed by "*" ' +
      '("example.com/*", "*")',
  },
});

const addKeysRule: ValidationRule = {
  rule:
    `self.all(k, size(k) <= ${MAX_KEY_LENGTH} && k.matches('${METADATA_KEY_PATTERN.replaceAll("\\", "\\\\")}') && ` +
    "(!k.contains('/') || k.split('/')[0].size() <= 253))",
  message:
    'every key must be a valid label/annotation key: "[prefix/]name", prefix a DNS subdomain of at most 253 ' +
    "characters, name at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric",
  holds: (self) => Object.keys(self).every(keyValid),
};

export const metadataRuleSchema = (field: "labels" | "annotations"): Schema => ({
  type: "object",
  description:
    `Which of the source's ${field} the target gets, and fixed ones. Default (absent): every ${field.slice(0, -1)} ` +
    "except the tool-tracking keys of Argo CD, Flux, Helm, kapp and Fleet, and kubectl's last-applied " +
    "annotation (see docs/spec/resourcesync.md). Applies to whatever the clone or the mappings put there.",
  properties: {
    include: keyList(
      `Copy only the ${field} whose key matches one of these (exact keys, or prefixes ending in "*"). Absent: ` +
        "all; empty: none. A tool-tracking key is copied only when named here exactly.",
    ),
    exclude: keyList(
      `Never copy the ${field} whose key matches one of these (exact keys, or prefixes ending in "*").`,
    ),
    add: {
      type: "object",
      description: `Fixed ${field} set on the target, over any copied value of the same key.`,
      maxProperties: MAX_METADATA_KEYS,
      additionalProperties:
        field === "labels"
          ? {
              type: "string",
              description: "A label value.",
              maxLength: 63,
              pattern: LABEL_VALUE_PATTERN,
              patternMessage:
                "must be a valid label value: at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric",
            }
          : { type: "string", description: "An annotation value.", maxLength: MAX_ANNOTATION_VALUE_LENGTH },
      validations: [addKeysRule],
    },
  },
});

/** The properties a target end gets on top of resourceRef (and cluster). */
export const targetMetadataProperties = (): Record<string, Schema> => ({
  labels: metadataRuleSchema("labels"),
  annotations: metadataRuleSchema("annotations"),
});
