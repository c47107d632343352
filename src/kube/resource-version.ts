/** a > b, for resourceVersions (etcd revisions in practice; opaque strings compare as "not newer"). */
export function rvNewer(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return a.length !== b.length ? a.length > b.length : a > b;
}
