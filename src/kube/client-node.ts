/**
 * Sinker's one door to @kubernetes/client-node at run time: the KubeConfig class (kubeconfig loading, in-cluster
 * configuration, credentials). It is imported from the package's config module, not from the package index: the
 * index also loads the generated clients of every Kubernetes API (over 2,700 modules), which Sinker never uses
 * (its HTTP layer is src/kube/client.ts). bin/sinker.js also keeps the config module from loading them (see
 * client-node-hook.ts).
 */

export { KubeConfig } from "@kubernetes/client-node/dist/config.js";
export type { Cluster, Context, User } from "@kubernetes/client-node/dist/config_types.js";
