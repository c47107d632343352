/**
 * The kubeconfig Secrets a ResourceSyncSet may select by label: one informer per namespace that holds such a set,
 * caching names and labels only (never Secret data), shared by every set of that namespace and stopped when the
 * last one goes.
 */
import type { Informer } from "../kube/informer.ts";
import type { KubeObject } from "../kube/object.ts";
import type { SecretInfo } from "./children.ts";

/** Keeps names and labels of Secrets only: the set controller never needs (or holds) their data. */
export function secretMetadataOnly(secret: KubeObject): KubeObject {
  const m = secret.metadata ?? {};
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      ...(m.labels ? { labels: m.labels } : {}),
    },
  };
}

export class TenantSecrets {
  readonly #make: (namespace: string) => Informer;
  readonly #onChange: (users: string[]) => void;
  readonly #byNamespace = new Map<string, { informer: Informer; users: Set<string> }>();

  /** `make` builds (and starts) a namespace's informer; `onChange` gets the sets to reconcile again. */
  constructor(make: (namespace: string) => Informer, onChange: (users: string[]) => void) {
    this.#make = make;
    this.#onChange = onChange;
  }

  /** The Secrets of `namespace` for set `user`; undefined until the first list is in (it then calls onChange). */
  of(namespace: string, user: string): SecretInfo[] | undefined {
    let entry = this.#byNamespace.get(namespace);
    if (!entry) {
      const informer = this.#make(namespace);
      const created = { informer, users: new Set<string>() };
      entry = created;
      informer.onEvent((e) => {
        const labelsSame =
          e.type === "modified" &&
          e.old &&
          JSON.stringify(e.old.metadata?.labels) === JSON.stringify(e.object.metadata?.labels);
        if (!labelsSame && !e.initial) this.#onChange([...created.users]);
      });
      // the first list (even an empty one) decides the sets' clusters
      void informer.synced.then(() => this.#onChange([...created.users]));
      this.#byNamespace.set(namespace, created);
    }
    entry.users.add(user);
    if (!entry.informer.hasSynced()) return undefined;
    return entry.informer
      .list()
      .map((s) => ({ name: s.metadata?.name ?? "", labels: s.metadata?.labels ?? {} }));
  }

  /** Set `user` no longer needs any namespace's Secrets. */
  release(user: string): void {
    for (const [namespace, entry] of this.#byNamespace) {
      if (!entry.users.delete(user) || entry.users.size > 0) continue;
      this.#byNamespace.delete(namespace);
      void entry.informer.stop();
    }
  }

  async stop(): Promise<void> {
    const all = [...this.#byNamespace.values()];
    this.#byNamespace.clear();
    await Promise.all(all.map((e) => e.informer.stop()));
  }
}
