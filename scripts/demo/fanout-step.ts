/** The scenario's fan-out step: a ClusterResourceSyncSet over labelled namespaces and cluster b. */
import { get, kubectl, must, type Obj, path } from "./cluster.ts";
import { CRSS_PATH, FANOUT_LABEL, FANOUT_NS, FANOUT_SET, NS, REMOTES_NS } from "./constants.ts";
import { until } from "./interrupt.ts";
import { dim, say, step } from "./output.ts";
import { check, type Expect, timed } from "./timing.ts";

/**
 * Fan-out: a ClusterResourceSyncSet copies app-settings (namespace demo) into every namespace labelled
 * FANOUT_LABEL and into namespace demo of cluster b; namespaces labelled and unlabelled while it runs gain and
 * lose their copy.
 */
export async function fanOut(): Promise<void> {
  step("Fan-out: one ConfigMap to every labelled namespace, and to cluster b");
  const [ns1, ns2, ns3] = FANOUT_NS as [string, string, string];
  for (const n of FANOUT_NS) {
    const labels = n === ns3 ? {} : { [FANOUT_LABEL]: "yes" };
    await must("a", "POST", "/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: n, labels },
    });
  }
  say(dim(`namespaces ${ns1} and ${ns2} labelled ${FANOUT_LABEL}=yes, ${ns3} not`));
  const copyIn = (cluster: "a" | "b", n: string, test: (o: Obj | undefined) => boolean): Expect => ({
    cluster,
    collection: `/api/v1/namespaces/${n}/configmaps`,
    name: "app-settings",
    test,
  });
  const present = (o: Obj | undefined) => o?.data?.greeting !== undefined;
  const set = {
    apiVersion: "sinker.influxdata.io/v1alpha1",
    kind: "ClusterResourceSyncSet",
    metadata: { name: FANOUT_SET },
    spec: {
      source: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "app-settings" }, namespace: NS },
      target: { resourceRef: { apiVersion: "v1", kind: "ConfigMap", name: "app-settings" } },
      namespaceSelector: { matchLabels: { [FANOUT_LABEL]: "yes" } },
      clusters: [
        {
          kubeConfig: { secretRef: { namespace: REMOTES_NS, name: "cluster-b", key: "value" } },
          namespaces: [NS],
        },
      ],
    },
  };
  await timed(
    `ClusterResourceSyncSet ${FANOUT_SET} created → copies in ${ns1}, ${ns2} and in b`,
    () => must("a", "POST", CRSS_PATH, set),
    [copyIn("a", ns1, present), copyIn("a", ns2, present), copyIn("b", NS, present)],
  );
  await timed(
    `namespace ${ns3} labelled → its copy`,
    () =>
      must(
        "a",
        "PATCH",
        path.ns(ns3),
        { metadata: { labels: { [FANOUT_LABEL]: "yes" } } },
        "application/merge-patch+json",
      ),
    [copyIn("a", ns3, present)],
  );
  await timed(
    `namespace ${ns1} unlabelled → its copy deleted`,
    () =>
      must(
        "a",
        "PATCH",
        path.ns(ns1),
        { metadata: { labels: { [FANOUT_LABEL]: null } } },
        "application/merge-patch+json",
      ),
    [copyIn("a", ns1, (o) => o === undefined)],
  );
  await timed(
    "source edited → every copy updated",
    () => must("a", "PATCH", path.cm("app-settings"), { data: { greeting: "hello, fleet" } }),
    [ns2, ns3]
      .map((n) => copyIn("a", n, (o) => o?.data?.greeting === "hello, fleet"))
      .concat(copyIn("b", NS, (o) => o?.data?.greeting === "hello, fleet")),
  );
  const status = await until(
    "the set's status to count 3 synced destinations",
    async () => {
      const s = (await get("a", `${CRSS_PATH}/${FANOUT_SET}`)) as
        | { status?: Record<string, number> }
        | undefined;
      return s?.status?.desired === 3 && s.status.synced === 3 ? s.status : undefined;
    },
    20_000,
    100,
  ).catch(() => undefined);
  check(
    `kubectl get crsyncset ${FANOUT_SET}: DESIRED 3, SYNCED 3, FAILING 0`,
    status !== undefined && status.failing === 0,
    JSON.stringify(status),
  );
  await kubectl("a", ["get", "crsyncset", FANOUT_SET]);
}
