/**
 * Loads the kubeconfig of the cluster Sinker runs against, the way kubectl does:
 * 1. `--kubeconfig <file>`: that file only (it must exist);
 * 2. else `KUBECONFIG`: a list of files separated by `:` (`;` on Windows); files that do not exist are skipped;
 *    the rest are merged: for each cluster, user and context name the first file that defines it wins, and the
 *    current context is the first one set;
 * 3. else `~/.kube/config` when it exists;
 * 4. else in-cluster credentials (KUBERNETES_SERVICE_HOST/PORT and the pod's service-account token).
 * Then `--context` picks the context, and `--cluster` / `--user` replace the context's cluster / user.
 *
 * Every problem (unreadable file, invalid YAML, unknown context, cluster or user, no configuration at all) is a
 * SinkerError("InvalidKubeconfig") with a one-line message that names the file or entry, never its contents.
 */
import { existsSync, readFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { SinkerError } from "../errors.ts";
import { type Cluster, type Context, KubeConfig, type User } from "./client-node.ts";

/** Where Kubernetes mounts a pod's service-account credentials. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeConfigSelection {
  kubeconfig?: string;
  context?: string;
  cluster?: string;
  user?: string;
}

export interface KubeConfigEnvironment {
  env?: NodeJS.ProcessEnv;
  /** Home directory (default: os.homedir()). */
  home?: string;
  /** Whether in-cluster credentials are available (default: service env vars set and token file present). */
  inCluster?: boolean;
}

function fail(message: string, cause?: unknown): SinkerError {
  return new SinkerError("InvalidKubeconfig", message, cause === undefined ? undefined : { cause });
}

/** Reads and parses one kubeconfig file; relative file paths in it become relative to its directory. */
function loadFile(file: string): KubeConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code ?? "error";
    throw fail(`cannot read kubeconfig file "${file}": ${code}`, err);
  }
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    // js-yaml errors quote a snippet of the file, which may hold a token: keep only the line number.
    const line = (err as { mark?: { line?: number } }).mark?.line;
    const what =
      line !== undefined
        ? `is not valid YAML (line ${line + 1})`
        : `is not a valid kubeconfig (${(err as Error).message})`;
    throw fail(`kubeconfig file "${file}" ${what}`, err);
  }
  kc.clusters ??= [];
  kc.users ??= [];
  kc.contexts ??= [];
  kc.makePathsAbsolute(dirname(file));
  return kc;
}

/** kubectl's merge: the first definition of every name wins, and the first current-context set wins. */
function merge(configs: readonly KubeConfig[]): KubeConfig {
  const clusters = new Map<string, Cluster>();
  const users = new Map<string, User>();
  const contexts = new Map<string, Context>();
  let currentContext = "";
  for (const kc of configs) {
    for (const c of kc.clusters) if (!clusters.has(c.name)) clusters.set(c.name, c);
    for (const u of kc.users) if (!users.has(u.name)) users.set(u.name, u);
    for (const c of kc.contexts) if (!contexts.has(c.name)) contexts.set(c.name, c);
    if (currentContext === "" && kc.currentContext) currentContext = kc.currentContext;
  }
  const merged = new KubeConfig();
  merged.loadFromOptions({
    clusters: [...clusters.values()],
    users: [...users.values()],
    contexts: [...contexts.values()],
    currentContext,
  });
  return merged;
}

function defaultInCluster(env: NodeJS.ProcessEnv): boolean {
  return (
    Boolean(env.KUBERNETES_SERVICE_HOST) &&
    Boolean(env.KUBERNETES_SERVICE_PORT) &&
    existsSync(join(SERVICE_ACCOUNT_DIR, "token"))
  );
}

/** Where the configuration came from, for a log line at start. */
export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  source: string;
}

/**
 * Loads the local kubeconfig as kubectl would (see the module comment) and applies the overrides. The result's
 * current context is the one to use. Throws SinkerError("InvalidKubeconfig").
 */
export function loadLocalKubeConfig(
  selection: KubeConfigSelection,
  environment: KubeConfigEnvironment = {},
): LoadedKubeConfig {
  const env = environment.env ?? process.env;
  let kc: KubeConfig | undefined;
  let source: string;
  if (selection.kubeconfig !== undefined) {
    kc = loadFile(selection.kubeconfig);
    source = selection.kubeconfig;
  } else if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== "") {
    const files = env.KUBECONFIG.split(delimiter).filter((f) => f !== "");
    const present = files.filter((f) => existsSync(f));
    source = `KUBECONFIG=${env.KUBECONFIG}`;
    if (present.length > 0) kc = merge(present.map(loadFile));
  } else {
    const file = join(environment.home ?? homedir(), ".kube", "config");
    source = file;
    if (existsSync(file)) kc = loadFile(file);
  }

  const hasOverrides =
    selection.context !== undefined || selection.cluster !== undefined || selection.user !== undefined;
  if (kc === undefined || (isEmpty(kc) && !hasOverrides)) {
    if (environment.inCluster ?? defaultInCluster(env)) {
      kc = inClusterConfig(env);
      source = "in-cluster service account";
    } else {
      throw fail(
        `no kubeconfig found (looked at ${source}) and not running in a cluster: ` +
          "use --kubeconfig or set KUBECONFIG",
      );
    }
  }

  applyOverrides(kc, selection, source);
  return { kubeConfig: kc, source };
}

/** client-node's in-cluster config (service-account token file, re-read as it rotates), for the given env. */
function inClusterConfig(env: NodeJS.ProcessEnv): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromCluster();
  const host = env.KUBERNETES_SERVICE_HOST ?? "";
  const port = env.KUBERNETES_SERVICE_PORT ?? "";
  const scheme = port === "80" || port === "8080" || port === "8001" ? "http" : "https";
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => ({ ...c, server })),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return kc;
}

function isEmpty(kc: KubeConfig): boolean {
  return kc.clusters.length === 0 && kc.users.length === 0 && kc.contexts.length === 0;
}

function applyOverrides(kc: KubeConfig, selection: KubeConfigSelection, source: string): void {
  const contextName = selection.context ?? kc.currentContext;
  let context: Context | undefined;
  if (contextName) {
    context = kc.getContextObject(contextName) ?? undefined;
    if (!context) throw fail(`context "${contextName}" not found in kubeconfig (${source})`);
  } else if (selection.cluster === undefined) {
    throw fail(`kubeconfig (${source}) has no current-context: use --context`);
  }
  const clusterName = selection.cluster ?? context?.cluster ?? "";
  const userName = selection.user ?? context?.user ?? "";
  if (!kc.getCluster(clusterName)) {
    throw fail(
      `cluster "${clusterName}" not found in kubeconfig (${source})` +
        (context && selection.cluster === undefined ? ` for context "${context.name}"` : ""),
    );
  }
  if (userName !== "" && !kc.getUser(userName)) {
    throw fail(
      `user "${userName}" not found in kubeconfig (${source})` +
        (context && selection.user === undefined ? ` for context "${context.name}"` : ""),
    );
  }
  if (selection.cluster === undefined && selection.user === undefined && context) {
    kc.setCurrentContext(context.name);
    return;
  }
  // kubectl builds an in-memory context from the overrides; so do we, under a name no file can use.
  const name = "sinker-command-line-overrides";
  const overridden: Context = {
    name,
    cluster: clusterName,
    user: userName,
    ...(context?.namespace !== undefined ? { namespace: context.namespace } : {}),
  };
  kc.loadFromOptions({
    clusters: kc.clusters,
    users: kc.users,
    contexts: [...kc.contexts.filter((c) => c.name !== name), overridden],
    currentContext: name,
  });
}
