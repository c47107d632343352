/**
 * `sinker diff`: what applying a ResourceSync now would change on its target, in a live cluster. The source is
 * read, projected as the controller does (src/projection), and server-side-applied as Sinker's field manager in
 * a dry run (dryRun=All): the API server answers with the object it would store, defaults, admission and
 * field ownership included, and that is compared with the target as it is. Nothing is written.
 *
 * Exit status as kubectl diff: 0 nothing would change, 1 something would, 2 an error (with several
 * ResourceSyncs, 2 when any failed; the others are still shown).
 */
import { parseArgs } from "node:util";
import {
  annotationIsTrue,
  FIELD_MANAGER,
  GROUP_VERSION,
  RESOURCE_SYNC_KIND,
  type ResourceSync,
} from "../api/types.ts";
import { formatValidationErrors, validateResourceSync } from "../api/validate.ts";
import { ANNOTATION_ADOPT_TARGET, decideWrite } from "../controller/decisions.ts";
import { liveOf } from "../controller/live-target.ts";
import { identityOf } from "../controller/resolve.ts";
import { type ClusterIdentity, readRecord } from "../controller/sync-record.ts";
import { decideWriteAction } from "../controller/write-policy.ts";
import { asSinkerError, SinkerError } from "../errors.ts";
import { ClusterClient, type ResourceInfo } from "../kube/client.ts";
import { loadLocalKubeConfig } from "../kube/kubeconfig.ts";
import type { KubeObject } from "../kube/object.ts";
import { checkSecretAccess, loadKubeconfig } from "../kube/remote-clusters.ts";
import { project } from "../projection/index.ts";
import { targetDiff } from "./diff-text.ts";

export const DIFF_HELP = `Usage: sinker diff [NAME] [flags]

Shows what applying a ResourceSync now would change on its target: its source is read and projected as the
controller does, then server-side-applied onto the target as field manager ${FIELD_MANAGER} in a dry run
(nothing is written). The output is a unified diff of the target's YAML, from the object as it is to the
object the API server would store (managedFields, status, resourceVersion, uid, generation and
creationTimestamp left out). Without NAME, every ResourceSync of the namespace is compared.

Flags:
  -n, --namespace NS            namespace of the ResourceSync(s) (default: the context's, else "default")
  --kubeconfig FILE             kubeconfig to use (default: KUBECONFIG, then ~/.kube/config)
  --context NAME                kubeconfig context to use
  --show-secrets                show Secret values (default: masked as ***, "*** (before)" / "*** (after)")
  --allow-cluster-scoped        as the controller flag: allow local cluster-scoped kinds
  --allow-unsafe-kubeconfigs    as the controller flag: allow kubeconfigs from Secrets that run programs,
                                read files or use a proxy (they would run on this machine)
  -h, --help                    show this help

Exit status: 0 when nothing would change, 1 when something would, 2 on an error.
`;

class UsageError extends Error {}

interface DiffOptions {
  name: string | undefined;
  namespace: string | undefined;
  kubeconfig: string | undefined;
  context: string | undefined;
  showSecrets: boolean;
  allowClusterScoped: boolean;
  allowUnsafeKubeconfigs: boolean;
}

function parse(args: string[]): DiffOptions | "help" {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        namespace: { type: "string", short: "n" },
        kubeconfig: { type: "string" },
        context: { type: "string" },
        "show-secrets": { type: "boolean" },
        "allow-cluster-scoped": { type: "boolean" },
        "allow-unsafe-kubeconfigs": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message} (see --help)`);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return "help";
  if (parsed.positionals.length > 1) throw new UsageError("at most one ResourceSync name (see --help)");
  const str = (k: string) => (typeof v[k] === "string" ? (v[k] as string) : undefined);
  return {
    name: parsed.positionals[0],
    namespace: str("namespace"),
    kubeconfig: str("kubeconfig"),
    context: str("context"),
    showSecrets: v["show-secrets"] === true,
    allowClusterScoped: v["allow-cluster-scoped"] === true,
    allowUnsafeKubeconfigs: v["allow-unsafe-kubeconfigs"] === true,
  };
}

export async function runDiff(args: string[]): Promise<number> {
  let opts: DiffOptions | "help";
  try {
    opts = parse(args);
  } catch (err) {
    process.stderr.write(`sinker diff: ${(err as Error).message}\n`);
    return 2;
  }
  if (opts === "help") {
    process.stdout.write(DIFF_HELP);
    return 0;
  }
  const clients: ClusterClient[] = [];
  try {
    const { kubeConfig } = loadLocalKubeConfig({
      ...(opts.kubeconfig !== undefined ? { kubeconfig: opts.kubeconfig } : {}),
      ...(opts.context !== undefined ? { context: opts.context } : {}),
    });
    const contextNs = kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace;
    const namespace = opts.namespace ?? (contextNs || "default");
    const local = ClusterClient.fromKubeConfig(kubeConfig, { name: "local", userAgent: "sinker-diff" });
    clients.push(local);
    const rsResource = await local.resolve(GROUP_VERSION, RESOURCE_SYNC_KIND).catch((err: unknown) => {
      const e = asSinkerError(err);
      throw e.reason === "UnknownKind" ? new SinkerError(e.reason, `${e.message} (ResourceSync)`) : e;
    });
    let resourceSyncs: KubeObject[];
    if (opts.name !== undefined) {
      const rs = await local.get(rsResource, namespace, opts.name);
      if (!rs) throw new SinkerError("NotFound", `ResourceSync ${namespace}/${opts.name} not found`);
      resourceSyncs = [rs];
    } else {
      resourceSyncs = (await local.list(rsResource, namespace)).items.sort((x, y) =>
        (x.metadata?.name ?? "").localeCompare(y.metadata?.name ?? ""),
      );
    }
    let changed = false;
    let failed = false;
    for (const rs of resourceSyncs) {
      const id = `${rs.metadata?.namespace ?? namespace}/${rs.metadata?.name ?? ""}`;
      try {
        const text = await diffOne(rs, local, opts, clients);
        if (text !== "") {
          changed = true;
          process.stdout.write(text);
        }
      } catch (err) {
        failed = true;
        process.stderr.write(`sinker diff: ResourceSync ${id}: ${asSinkerError(err).message}\n`);
      }
    }
    return failed ? 2 : changed ? 1 : 0;
  } catch (err) {
    process.stderr.write(`sinker diff: ${asSinkerError(err).message}\n`);
    return 2;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** Where one end of a ResourceSync lives (as the reconciler resolves it: docs/spec/resourcesync.md#remote-clusters). */
interface End {
  client: ClusterClient;
  resource: ResourceInfo;
  namespace: string | undefined;
  local: boolean;
  /** As the sync record names it: the kubeconfig Secret, or nothing for the local cluster. */
  cluster: ClusterIdentity;
}

async function resolveEnd(
  rs: ResourceSync,
  end: "source" | "target",
  local: ClusterClient,
  opts: DiffOptions,
  clients: ClusterClient[],
): Promise<End> {
  const spec = rs.spec[end];
  const rsNamespace = rs.metadata.namespace ?? "";
  const { apiVersion, kind } = spec.resourceRef;
  if (!spec.cluster) {
    const resource = await local.resolve(apiVersion, kind);
    if (!resource.namespaced && !opts.allowClusterScoped) {
      throw new SinkerError(
        "ClusterScopedNotAllowed",
        `${end} ${kind} is cluster-scoped; local cluster-scoped kinds need --allow-cluster-scoped`,
      );
    }
    return {
      client: local,
      resource,
      namespace: resource.namespaced ? rsNamespace : undefined,
      local: true,
      cluster: {},
    };
  }
  const ref = spec.cluster.kubeConfig.secretRef;
  const secretNamespace = ref.namespace ?? rsNamespace;
  const secret = await local.get(await local.resolve("v1", "Secret"), secretNamespace, ref.name);
  checkSecretAccess(secret, rsNamespace, secretNamespace);
  const where = `Secret ${secretNamespace}/${ref.name} key "${ref.key}"`;
  const data = (secret?.data ?? {}) as Record<string, unknown>;
  const value = data[ref.key];
  if (typeof value !== "string") throw new SinkerError("InvalidKubeconfig", `${where} does not exist`);
  const { kubeConfig, namespace } = loadKubeconfig(
    Buffer.from(value, "base64").toString("utf8"),
    where,
    opts.allowUnsafeKubeconfigs,
  );
  const client = ClusterClient.fromKubeConfig(kubeConfig, {
    name: `secret/${secretNamespace}/${ref.name}`,
    userAgent: "sinker-diff",
  });
  clients.push(client);
  const resource = await client.resolve(apiVersion, kind);
  return {
    client,
    resource,
    namespace: resource.namespaced ? (spec.cluster.namespace ?? namespace ?? "default") : undefined,
    local: false,
    cluster: { secretRef: { namespace: secretNamespace, name: ref.name, key: ref.key } },
  };
}

/** The diff text of one ResourceSync's target ("" when applying would change nothing). Throws SinkerError. */
async function diffOne(
  obj: KubeObject,
  local: ClusterClient,
  opts: DiffOptions,
  clients: ClusterClient[],
): Promise<string> {
  const v = validateResourceSync(obj);
  if (!v.ok) throw new SinkerError("InvalidSpec", formatValidationErrors(v.errors));
  const rs = v.value;
  const source = await resolveEnd(rs, "source", local, opts, clients);
  const target = await resolveEnd(rs, "target", local, opts, clients);
  const sourceRef = rs.spec.source.resourceRef;
  const sourceObject = await source.client.get(source.resource, source.namespace, sourceRef.name);
  if (!sourceObject) {
    const where = source.namespace ? `${source.namespace}/${sourceRef.name}` : sourceRef.name;
    throw new SinkerError("SourceNotFound", `source ${sourceRef.kind} ${where} not found`);
  }
  const desired = project({
    resourceSync: rs,
    source: sourceObject,
    target: { namespace: target.namespace, ownerReference: target.local && target.resource.namespaced },
  });
  const targetName = rs.spec.target.resourceRef.name;
  const live = await target.client.get(target.resource, target.namespace, targetName);
  // The controller's own decision: an object it did not write is not overwritten (TargetNotOwned), so there is
  // no change to show. (Conflicts with other ResourceSyncs are not looked for: that needs them all.)
  const refusal = decideWrite({
    target: identityOf(rs, { ...target, name: targetName }),
    record: readRecord(obj.status),
    live: liveOf(live, obj.metadata?.uid),
    adopt: annotationIsTrue(obj.metadata, ANNOTATION_ADOPT_TARGET),
    claimedBy: undefined,
  });
  if (refusal) throw refusal;
  // writePolicy CreateOnly: an existing target is never updated, so applying would change nothing.
  if (decideWriteAction(rs.spec.writePolicy ?? "Apply", liveOf(live, obj.metadata?.uid)) === "leave")
    return "";
  const merged = await target.client.apply(target.resource, desired, {
    fieldManager: FIELD_MANAGER,
    force: true,
    dryRun: true,
  });
  // e.g. local/v1/ConfigMap/team-a/app or secret:sinker/cluster-b/apps/v1/Deployment/team-a/app
  const cluster = target.local ? "local" : target.client.name.replace(/^secret\//, "secret:");
  const label = [cluster, target.resource.apiVersion, target.resource.kind, target.namespace, targetName]
    .filter((p) => p !== undefined)
    .join("/");
  return targetDiff(label, live, merged, opts.showSecrets);
}
