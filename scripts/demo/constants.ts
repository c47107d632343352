/** The demo's names: namespaces, the fan-out set, the ResourceSyncs examples/ creates. */
export const NS = "demo"; // in clusters a and b
export const REMOTES_NS = "sinker-remotes"; // in cluster a: the kubeconfig Secret of cluster b
/** The fan-out step: a ClusterResourceSyncSet copies app-settings into the namespaces labelled FANOUT_LABEL. */
export const FANOUT_SET = "demo-fanout";
export const FANOUT_LABEL = "sinker-demo/team";
export const FANOUT_NS = ["demo-team-1", "demo-team-2", "demo-team-3"];
export const CRSS_PATH = "/apis/sinker.influxdata.io/v1alpha1/clusterresourcesyncsets";
export const RS_API = "/apis/sinker.influxdata.io/v1alpha1";
export const EXPECTED_SYNCS = [
  "clone-in-cluster",
  "copy-secret-to-cluster-b",
  "mappings-from-cluster-b",
  "sinkercontainer-to-cluster-b",
  "keep-target-on-deletion",
  "transforms",
  "create-only",
  "replace-on-immutable-change",
];
