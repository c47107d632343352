/**
 * `sinker render`: prints the object a ResourceSync would apply onto its target, given the source object, offline
 * (no cluster, no discovery). User errors are one line on stderr and exit code 1, never a stack trace.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import type { ResourceSync } from "../api/types.ts";
import { validateResourceSync } from "../api/validate.ts";
import { SinkerError } from "../errors.ts";
import { isPlainObject, type KubeObject } from "../kube/object.ts";
import { project } from "../projection/index.ts";

/**
 * Well-known cluster-scoped kinds of Kubernetes itself, by apiVersion and kind. Without discovery, every other
 * kind is taken as namespaced unless --cluster-scoped is given.
 */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  "v1/Namespace",
  "v1/Node",
  "v1/PersistentVolume",
  "rbac.authorization.k8s.io/v1/ClusterRole",
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding",
  "storage.k8s.io/v1/StorageClass",
  "storage.k8s.io/v1/CSIDriver",
  "storage.k8s.io/v1/CSINode",
  "storage.k8s.io/v1/VolumeAttachment",
  "scheduling.k8s.io/v1/PriorityClass",
  "node.k8s.io/v1/RuntimeClass",
  "networking.k8s.io/v1/IngressClass",
  "apiextensions.k8s.io/v1/CustomResourceDefinition",
  "apiregistration.k8s.io/v1/APIService",
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration",
  "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration",
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
  "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding",
  "certificates.k8s.io/v1/CertificateSigningRequest",
  "flowcontrol.apiserver.k8s.io/v1/FlowSchema",
  "flowcontrol.apiserver.k8s.io/v1/PriorityLevelConfiguration",
]);

export const RENDER_HELP = `Usage: sinker render --resource-sync RS.yaml --source SOURCE.yaml [flags]

Prints the object Sinker would server-side-apply onto the target of a ResourceSync, given its source object.
Works offline: no cluster is contacted.

Flags:
  --resource-sync FILE      the ResourceSync (YAML or JSON; "-" reads standard input)
  --source FILE             the source object, as read from its cluster ("-" reads standard input)
  --target-namespace NS     namespace of the target (default: spec.target.cluster.namespace, else the
                            ResourceSync's metadata.namespace, else "default")
  --cluster-scoped          the target kind is cluster-scoped (no namespace, no owner reference)
  -o, --output yaml|json    output format (default yaml)
  -h, --help                show this help

Without discovery the target is taken as namespaced, unless --cluster-scoped is given or its kind is one of
Kubernetes' own cluster-scoped kinds (Namespace, Node, PersistentVolume, ClusterRole, ClusterRoleBinding,
StorageClass, PriorityClass, CustomResourceDefinition, webhook configurations, ...).

A target in the local cluster (no spec.target.cluster) of a namespaced kind gets an owner reference to the
ResourceSync, as Sinker adds it; that needs the ResourceSync's metadata.uid, so when the file has none (a
manifest not yet applied) the owner reference is left out.

Exit status: 0 on success, 1 when an input is unreadable or invalid or the projection fails.
`;

class UsageError extends Error {}
class HelpRequested extends Error {}

export async function runRender(args: string[]): Promise<number> {
  try {
    process.stdout.write(render(args));
    return 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(RENDER_HELP);
      return 0;
    }
    const message =
      err instanceof SinkerError || err instanceof UsageError
        ? err.message
        : `internal error: ${err instanceof Error ? err.message : String(err)}`;
    process.stderr.write(`sinker render: ${oneLine(message)}\n`);
    return 1;
  }
}

/** The rendered output for the given arguments; throws UsageError, SinkerError or HelpRequested. */
function render(args: string[]): string {
  let values: {
    "resource-sync"?: string;
    source?: string;
    "target-namespace"?: string;
    "cluster-scoped"?: boolean;
    output?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "resource-sync": { type: "string" },
        source: { type: "string" },
        "target-namespace": { type: "string" },
        "cluster-scoped": { type: "boolean" },
        output: { type: "string", short: "o" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)} (see sinker render --help)`);
  }
  if (values.help) throw new HelpRequested();
  const rsPath = values["resource-sync"];
  const sourcePath = values.source;
  if (rsPath === undefined || sourcePath === undefined) {
    throw new UsageError("--resource-sync and --source are required (see sinker render --help)");
  }
  if (rsPath === "-" && sourcePath === "-") {
    throw new UsageError("only one of --resource-sync and --source can read standard input");
  }
  const output = values.output ?? "yaml";
  if (output !== "yaml" && output !== "json") {
    throw new UsageError(`--output must be yaml or json, got ${JSON.stringify(output)}`);
  }
  const namespaceFlag = values["target-namespace"];
  if (namespaceFlag === "") throw new UsageError("--target-namespace must not be empty");

  const rsDoc = readDocument(rsPath, "ResourceSync");
  const validation = validateResourceSync(rsDoc);
  if (!validation.ok) {
    const list = validation.errors.map((e) => (e.path === "" ? e.message : `${e.path}: ${e.message}`));
    throw new UsageError(`${display(rsPath)} is not a valid ResourceSync: ${list.join("; ")}`);
  }
  const resourceSync = validation.value;

  const source = readDocument(sourcePath, "source object");
  if (!isPlainObject(source)) {
    throw new UsageError(
      `${display(sourcePath)}: the source must be a Kubernetes object (a YAML/JSON mapping)`,
    );
  }
  checkSourceMatches(resourceSync, source, sourcePath);

  const ref = resourceSync.spec.target.resourceRef;
  const clusterScoped =
    values["cluster-scoped"] === true || CLUSTER_SCOPED_KINDS.has(`${ref.apiVersion}/${ref.kind}`);
  const namespace = clusterScoped ? undefined : targetNamespace(resourceSync, namespaceFlag);
  const local = resourceSync.spec.target.cluster == null;
  const uid = resourceSync.metadata.uid;
  const ownerReference = local && !clusterScoped && typeof uid === "string" && uid !== "";

  const result = project({ resourceSync, source, target: { namespace, ownerReference } });
  return output === "json" ? `${JSON.stringify(result, null, 2)}\n` : stringifyYaml(result, { lineWidth: 0 });
}

/** --target-namespace, else spec.target.cluster.namespace, else the ResourceSync's namespace, else "default". */
function targetNamespace(resourceSync: ResourceSync, flag: string | undefined): string {
  if (flag !== undefined) return flag;
  const clusterNamespace = resourceSync.spec.target.cluster?.namespace;
  if (typeof clusterNamespace === "string" && clusterNamespace !== "") return clusterNamespace;
  const own = resourceSync.metadata.namespace;
  if (typeof own === "string" && own !== "") return own;
  return "default";
}

/** A source whose apiVersion/kind contradict spec.source.resourceRef is almost certainly the wrong file. */
function checkSourceMatches(resourceSync: ResourceSync, source: KubeObject, path: string): void {
  const ref = resourceSync.spec.source.resourceRef;
  const mismatch =
    (source.apiVersion !== undefined && source.apiVersion !== ref.apiVersion) ||
    (source.kind !== undefined && source.kind !== ref.kind);
  if (mismatch) {
    throw new UsageError(
      `${display(path)} is a ${String(source.apiVersion)} ${String(source.kind)}, but the ResourceSync's source ` +
        `is a ${ref.apiVersion} ${ref.kind}`,
    );
  }
}

function readDocument(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (code ?? String(err));
    throw new UsageError(`cannot read the ${what} from ${display(path)}: ${why}`);
  }
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UsageError(
      `${display(path)} is not valid YAML/JSON: ${(err instanceof Error ? err.message : String(err)).split("\n")[0]}`,
    );
  }
}

function display(path: string): string {
  return path === "-" ? "standard input" : path;
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ").trim();
}
