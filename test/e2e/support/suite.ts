/**
 * The one fixture of an end-to-end test file, in the manner of envtest's `Environment`: `useSuite()` registers
 * the file's (or a `describe`'s) `before`/`after` hooks and hands the tests the control plane, its two clusters,
 * an optional in-process controller and namespaces that are cleaned up afterwards. The control plane itself is
 * started once per test run by global-setup.ts (or by `npm run testenv -- up`), CRDs included.
 */
import { after, before } from "node:test";
import { load, type TestEnv } from "../../controlplane/testenv.ts";
import {
  Cluster,
  type ControllerOptions,
  deleteResourceSyncs,
  RS_API,
  startTestController,
  type TestController,
  TestNamespaces,
} from "./cluster.ts";

export interface SuiteOptions {
  /** Start Sinker's controller in this process before the tests (with these options when an object). */
  controller?: boolean | ControllerOptions;
  /** Runs first in the clean-up, while the suite's controllers still run (for example: stop hostile servers). */
  beforeCleanup?: () => Promise<void> | void;
  /** Runs after the ResourceSyncs are gone and before the namespaces are deleted (for example: kill processes). */
  afterCleanup?: () => Promise<void> | void;
  /**
   * Whether the clean-up starts an in-process controller to let the ResourceSyncs go when none of the suite's
   * runs. Default true; false when the file runs Sinker some other way (a child process) until then.
   */
  cleanupController?: boolean;
  /** How long the clean-up waits for the suite's ResourceSyncs to go (force-deleted). Default 60 s. */
  cleanupTimeoutMs?: number;
}

export interface Suite {
  /** The running control plane (available from the suite's `before` hook on). */
  readonly env: TestEnv;
  /** Clusters a and b, usable anywhere (they load the control plane when first used). */
  readonly a: Cluster;
  readonly b: Cluster;
  /** The controller started by `options.controller` (or the latest `startController`). */
  readonly controller: TestController;
  /** A new namespace in `cluster`, deleted (with its ResourceSyncs first) after the suite. */
  ns(cluster: "a" | "b", prefix: string): Promise<string>;
  /** A namespace made some other way, cleaned up with the others. */
  track(cluster: "a" | "b", name: string): void;
  /** A ClusterResourceSyncSet the suite made, deleted first in the clean-up. */
  trackClusterSet(name: string): void;
  /** The suite's namespaces in `cluster`. */
  namespaces(cluster: "a" | "b"): string[];
  /** Starts another in-process controller; stopped after the suite unless stopped before. */
  startController(options?: ControllerOptions): Promise<TestController>;
}

/** Registers the hooks of one suite in the current scope (module or `describe`) and returns its handle. */
export function useSuite(options: SuiteOptions = {}): Suite {
  let env: TestEnv | undefined;
  const getEnv = (): TestEnv => {
    env ??= load();
    return env;
  };
  const spaces = new TestNamespaces(getEnv);
  const running = new Set<TestController>();
  const clusterSets: string[] = [];
  let current: TestController | undefined;

  const startController = async (opts: ControllerOptions = {}): Promise<TestController> => {
    const started = await startTestController(getEnv(), opts);
    const tracked: TestController = {
      controller: started.controller,
      metrics: started.metrics,
      async stop() {
        if (!running.delete(tracked)) return;
        await started.stop();
      },
    };
    running.add(tracked);
    current = tracked;
    return tracked;
  };

  before(async () => {
    getEnv();
    if (options.controller) await startController(options.controller === true ? {} : options.controller);
  });

  after(async () => {
    await options.beforeCleanup?.();
    const local = spaces.in("a");
    if (local.length > 0 || clusterSets.length > 0) {
      // ResourceSyncs carry Sinker's finalizer: a controller must run while they go, or their namespaces hang.
      const needed = running.size === 0 && options.cleanupController !== false;
      const helper = needed ? await startController() : undefined;
      // The sets first, or they would make again the ResourceSyncs deleted below.
      await deleteSets(suite.a, clusterSets, local);
      await deleteResourceSyncs(suite.a, local, options.cleanupTimeoutMs).catch((err: Error) =>
        process.stderr.write(`# cleanup: ${err.message}\n`),
      );
      await helper?.stop();
    }
    for (const c of [...running]) await c.stop();
    await options.afterCleanup?.();
    await spaces.deleteAll();
  });

  const suite: Suite = {
    get env() {
      return getEnv();
    },
    a: new Cluster(getEnv, "a"),
    b: new Cluster(getEnv, "b"),
    get controller() {
      if (!current) throw new Error("test fixture: this suite started no controller");
      return current;
    },
    ns: (cluster, prefix) => spaces.create(cluster, prefix),
    track: (cluster, name) => spaces.track(cluster, name),
    trackClusterSet: (name) => {
      clusterSets.push(name);
    },
    namespaces: (cluster) => spaces.in(cluster),
    startController,
  };
  return suite;
}

async function deleteSets(a: Cluster, clusterSets: string[], namespaces: string[]): Promise<void> {
  const quiet = () => undefined;
  for (const name of clusterSets)
    await a.delete(RS_API, "ClusterResourceSyncSet", undefined, name).catch(quiet);
  for (const n of namespaces)
    for (const set of await a.list(RS_API, "ResourceSyncSet", n).catch(() => []))
      await a.delete(RS_API, "ResourceSyncSet", n, set.metadata?.name ?? "").catch(quiet);
}
