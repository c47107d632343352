/**
 * Discovery of one cluster: group/version/kind → resource and scope, from `/api/v1` and `/apis/<g>/<v>`,
 * cached per group/version. An unknown kind (or group/version) refreshes that group/version once, at most every
 * 5 s, before failing with UnknownKind. Errors (cluster unreachable, forbidden) are not cached.
 */
import { SinkerError } from "../errors.ts";
import { isPlainObject, type KubeObject } from "./object.ts";
import { discoveryPath, parseApiVersion, type ResourceInfo } from "./request.ts";

/** Least time between two discovery refreshes of one group/version caused by an unknown kind. */
const DISCOVERY_REFRESH_INTERVAL_MS = 5000;

interface GroupVersionCache {
  /** Kinds of this group/version; undefined when the group/version does not exist on the server. */
  kinds: Map<string, ResourceInfo> | undefined;
  fetchedAt: number;
}

/** GETs a discovery path: the answer, or undefined for a 404. */
export type DiscoveryFetch = (path: string, what: string) => Promise<KubeObject | undefined>;

export class Discovery {
  readonly #cluster: string;
  readonly #fetch: DiscoveryFetch;
  readonly #cache = new Map<string, Promise<GroupVersionCache>>();

  constructor(cluster: string, fetch: DiscoveryFetch) {
    this.#cluster = cluster;
    this.#fetch = fetch;
  }

  async resolve(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const { group, version } = parseApiVersion(apiVersion);
    const gv = group === "" ? version : `${group}/${version}`;
    let cache = await this.#groupVersion(gv, false);
    let info = cache.kinds?.get(kind);
    if (info) return info;
    if (Date.now() - cache.fetchedAt >= DISCOVERY_REFRESH_INTERVAL_MS) {
      cache = await this.#groupVersion(gv, true);
      info = cache.kinds?.get(kind);
      if (info) return info;
    }
    const why =
      cache.kinds === undefined ? `API group/version "${gv}" is not served` : `kind "${kind}" is not served`;
    throw new SinkerError(
      "UnknownKind",
      `cluster "${this.#cluster}": ${why} (apiVersion "${apiVersion}", kind "${kind}"); is the CRD installed?`,
    );
  }

  /** Forgets everything cached, e.g. after a CRD change. */
  invalidate(): void {
    this.#cache.clear();
  }

  #groupVersion(gv: string, refresh: boolean): Promise<GroupVersionCache> {
    const cached = this.#cache.get(gv);
    if (cached && !refresh) return cached;
    const p = this.#fetchGroupVersion(gv);
    this.#cache.set(gv, p);
    p.catch(() => {
      if (this.#cache.get(gv) === p) this.#cache.delete(gv);
    });
    return p;
  }

  async #fetchGroupVersion(gv: string): Promise<GroupVersionCache> {
    const res = await this.#fetch(discoveryPath(gv), `discovery of ${gv}`);
    if (res === undefined) return { kinds: undefined, fetchedAt: Date.now() };
    return { kinds: kindsOf(gv, res), fetchedAt: Date.now() };
  }
}

/** The kinds of a group/version's APIResourceList (subresources left out; the first resource of a kind wins). */
export function kindsOf(gv: string, list: KubeObject): Map<string, ResourceInfo> {
  const kinds = new Map<string, ResourceInfo>();
  const { group, version } = parseApiVersion(gv);
  const resources = isPlainObject(list) && Array.isArray(list.resources) ? list.resources : [];
  for (const r of resources) {
    if (!isPlainObject(r) || typeof r.name !== "string" || typeof r.kind !== "string") continue;
    if (r.name.includes("/")) continue; // subresource
    if (kinds.has(r.kind)) continue;
    kinds.set(r.kind, {
      apiVersion: gv,
      group,
      version,
      kind: r.kind,
      plural: r.name,
      namespaced: r.namespaced === true,
    });
  }
  return kinds;
}
