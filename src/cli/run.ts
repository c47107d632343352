/**
 * `sinker` (no subcommand): runs the controller.
 *
 * Order: flags → logger → kubeconfig → metrics → admin server → (leader election →) controller.
 * Exit codes: 0 after SIGTERM/SIGINT; 1 when start-up fails (e.g. the CRD is not installed) or leadership is
 * lost (the pod restarts clean, as controller-runtime does); 2 for a bad command line.
 *
 * /live: 200 unless the controller reports itself stalled (RunningController.healthy()).
 * /ready: without leader election, 200 once the initial ResourceSync list is in; with it, a standby replica is
 * ready (it is healthy and able to take over; a never-ready standby would block rolling updates) and the leader
 * is ready once its initial list is in. Always 503 once shutting down.
 */

import { existsSync, readFileSync } from "node:fs";
import { flushCompileCache } from "node:module";
import { join } from "node:path";
import type { Logger } from "pino";
import { Metrics } from "../admin/metrics.ts";
import { type AdminServer, startAdminServer } from "../admin/server.ts";
import { checkCrd, type RunningController, startController } from "../controller/controller.ts";
import { LeaderElector } from "../controller/leader-election.ts";
import { asSinkerError } from "../errors.ts";
import { ClusterClient } from "../kube/client.ts";
import { registerKubeConfig } from "../kube/cluster-identity.ts";
import { loadLocalKubeConfig, SERVICE_ACCOUNT_DIR } from "../kube/kubeconfig.ts";
import { createLogger, moduleLogger } from "../log.ts";
import { type ControllerConfig, parseControllerFlags } from "./flags.ts";

/** Upper bound of a graceful shutdown; past it the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 10_000;
/** After losing leadership, how long in-flight reconciles get before the process exits. */
const LOST_LEADERSHIP_STOP_MS = 2_000;

/** The pod's namespace: POD_NAMESPACE (downward API), else the service-account namespace file. */
function podNamespace(env: NodeJS.ProcessEnv): string | undefined {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  const file = join(SERVICE_ACCOUNT_DIR, "namespace");
  try {
    return existsSync(file) ? readFileSync(file, "utf8").trim() || undefined : undefined;
  } catch {
    return undefined;
  }
}

function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, " ");
}

export async function runController(
  argv: string[],
  info: { usage: string; version: string },
): Promise<number> {
  const parsed = parseControllerFlags(argv, process.env, { podNamespace: () => podNamespace(process.env) });
  if (!parsed.ok) {
    process.stderr.write(`sinker: ${parsed.error}\n`);
    return 2;
  }
  if ("help" in parsed) {
    process.stdout.write(parsed.help);
    return 0;
  }
  const config = parsed.config;
  const root = createLogger({ level: config.logLevel, format: config.logFormat });
  const log = moduleLogger(root, "sinker::controller");

  const fail = (message: string, err?: unknown): number => {
    log.error(err === undefined ? {} : { reason: asSinkerError(err).reason }, message);
    process.stderr.write(`sinker: ${oneLine(message)}\n`);
    return 1;
  };

  let local: ClusterClient;
  try {
    const { kubeConfig, source } = loadLocalKubeConfig(config);
    local = ClusterClient.fromKubeConfig(kubeConfig, {
      name: "local",
      responseHeadersTimeoutMs: config.responseHeadersTimeoutMs,
      limits: { requestTimeoutMs: config.requestTimeoutMs },
      impersonate: { ...(config.as !== undefined ? { user: config.as } : {}), groups: config.asGroups },
      userAgent: `sinker/${info.version}`,
    });
    registerKubeConfig(local, kubeConfig); // its CA: the local cluster's identity when kube-system is not readable
    log.info(
      {
        version: info.version,
        kubeconfigSource: source,
        context: kubeConfig.getCurrentContext(),
        server: local.server,
        ...(config.as !== undefined ? { as: config.as, asGroups: config.asGroups } : {}),
      },
      "starting",
    );
  } catch (err) {
    return fail(asSinkerError(err).message, err);
  }

  const code = await new Manager(config, root, local).run();
  // Everything is closed; should a stray handle still hold the event loop, do not hang the pod's termination.
  setTimeout(() => process.exit(code), 2_000).unref();
  return code;
}

/**
 * The manager (controller-runtime's word): owns the admin server, the leader elector, the signals and the
 * controllers it starts, and shuts them down in order.
 */
class Manager {
  readonly #config: ControllerConfig;
  readonly #root: Logger;
  readonly #log: Logger;
  readonly #local: ClusterClient;
  readonly #metrics = new Metrics();
  #admin: AdminServer | undefined;
  #elector: LeaderElector | undefined;
  #controller: RunningController | undefined;
  #starting: Promise<void> | undefined;
  #initialListDone = false;
  #shuttingDown = false;
  #exit!: (code: number) => void;
  readonly #exited = new Promise<number>((resolve) => {
    this.#exit = resolve;
  });

  constructor(config: ControllerConfig, root: Logger, local: ClusterClient) {
    this.#config = config;
    this.#root = root;
    this.#log = moduleLogger(root, "sinker::controller");
    this.#local = local;
  }

  async run(): Promise<number> {
    const config = this.#config;
    try {
      this.#admin = await startAdminServer({
        host: config.adminAddr.host,
        port: config.adminAddr.port,
        metrics: this.#metrics,
        live: () => this.#controller?.healthy() ?? true,
        ready: () => this.#ready(),
        logger: moduleLogger(this.#root, "sinker::admin"),
      });
    } catch (err) {
      const message = `cannot start the admin server on ${config.adminAddr.host}:${config.adminAddr.port}: ${
        (err as Error).message
      }`;
      await this.#local.close();
      return this.#fail(message);
    }

    const onSignal = (signal: NodeJS.Signals) => {
      if (this.#shuttingDown) {
        this.#log.warn({ signal }, "second signal: exiting now");
        process.exit(1);
      }
      this.#log.info({ signal }, "shutting down");
      void this.#shutdown(0);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);

    if (config.leaderElection.enabled) {
      // A standby without the CRD must fail now, not report ready forever while it waits for the Lease.
      try {
        await checkCrd(this.#local);
      } catch (err) {
        await this.#admin?.close();
        await this.#local.close();
        return this.#fail(asSinkerError(err).message);
      }
      const le = config.leaderElection;
      this.#elector = new LeaderElector({
        client: this.#local,
        namespace: le.namespace,
        name: le.id,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        logger: moduleLogger(this.#root, "sinker::leader"),
        onStartedLeading: () => {
          this.#metrics.leader.set(1);
          this.#metrics.leaderElectionMasterStatus.set({ name: le.id }, 1);
          this.#starting = this.#startController();
        },
        onStoppedLeading: () => {
          this.#metrics.leader.set(0);
          this.#metrics.leaderElectionMasterStatus.set({ name: le.id }, 0);
          if (this.#shuttingDown) return;
          this.#log.error("leadership lost: stopping reconciles and exiting so the pod restarts clean");
          void this.#shutdown(1, LOST_LEADERSHIP_STOP_MS);
        },
      });
      this.#metrics.leaderElectionMasterStatus.set({ name: le.id }, 0);
      this.#elector.start();
    } else {
      this.#metrics.leader.set(1);
      this.#starting = this.#startController();
    }

    const code = await this.#exited;
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    return code;
  }

  #ready(): boolean {
    if (this.#shuttingDown) return false;
    if (this.#elector && !this.#elector.isLeader()) return true;
    return this.#initialListDone;
  }

  async #startController(): Promise<void> {
    const config = this.#config;
    try {
      const controller = await startController({
        local: this.#local,
        logger: this.#root,
        metrics: this.#metrics,
        concurrency: config.concurrency,
        maxConcurrentPerCluster: config.maxConcurrentPerCluster,
        maxChildrenPerSet: config.maxChildrenPerSet,
        allowClusterScoped: config.allowClusterScoped,
        allowUnsafeKubeconfigs: config.allowUnsafeKubeconfigs,
        denyRemoteCidrs: config.denyRemoteCidrs,
        requestTimeoutMs: config.requestTimeoutMs,
        responseHeadersTimeoutMs: config.responseHeadersTimeoutMs,
        resyncPeriodMs: config.resyncPeriodMs,
      });
      this.#controller = controller;
      if (this.#shuttingDown) return; // #shutdown stops it
      controller.ready.then(
        () => {
          this.#initialListDone = true;
          this.#log.info("ready");
          // every module is loaded by now: the compile cache (bin/sinker.js) is written now, not only at a clean
          // exit, so a process that is killed still leaves it for the next start
          flushCompileCache();
        },
        (err: unknown) => {
          this.#log.error({ err: asSinkerError(err).message }, "initial ResourceSync list failed");
        },
      );
    } catch (err) {
      if (this.#shuttingDown) return;
      const message = asSinkerError(err).message;
      this.#log.error({ reason: asSinkerError(err).reason }, message);
      process.stderr.write(`sinker: ${oneLine(message)}\n`);
      void this.#shutdown(1);
    }
  }

  #fail(message: string): number {
    this.#log.error(message);
    process.stderr.write(`sinker: ${oneLine(message)}\n`);
    return 1;
  }

  /**
   * Stops everything, in order: not ready → controller (stop taking work, drain, close watches) → Lease released
   * → admin server → connections. Idempotent; bounded by SHUTDOWN_TIMEOUT_MS (or `controllerStopMs` for the
   * controller part after a lost leadership).
   */
  async #shutdown(code: number, controllerStopMs = SHUTDOWN_TIMEOUT_MS): Promise<void> {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    const deadline = setTimeout(() => {
      this.#log.warn("shutdown timed out: exiting anyway");
      this.#exit(code);
    }, SHUTDOWN_TIMEOUT_MS + 2_000);
    deadline.unref();
    const bounded = (p: Promise<unknown>, ms: number) =>
      Promise.race([p, new Promise((resolve) => setTimeout(resolve, ms).unref())]);
    try {
      // A start in progress finishes first, so its controller is stopped too.
      if (this.#starting) await bounded(this.#starting, controllerStopMs);
      if (this.#controller) await bounded(this.#controller.stop(), controllerStopMs);
      if (this.#elector) await bounded(this.#elector.stop(), 3_000);
      await this.#admin?.close();
      await this.#local.close();
    } catch (err) {
      this.#log.warn({ err: asSinkerError(err).message }, "error during shutdown");
    }
    clearTimeout(deadline);
    this.#log.info({ exitCode: code }, "stopped");
    this.#exit(code);
  }
}
