/**
 * ResourceSyncs that form a cycle (A: cm1 → cm2 and B: cm2 → cm1, or a longer ring): a change of one member is a
 * source change of the next, so it travels round the ring by itself. A member that "repaired" its target while
 * the change is still on its way would revert the very edit the ring is carrying, and the two would then swap
 * values for as long as their reconciles interleave. So a member repairs drift of its target only once the ring
 * is at rest: every other member has read its source at least at the version that was last written to it, and
 * none of them is queued or in flight. This module keeps the in-memory flow graph (which object each
 * ResourceSync reads and writes, and at which resourceVersions) and answers those two questions. An
 * optimisation of the process: a restart loses nothing the API does not hold.
 */
import { rvNewer } from "../kube/resource-version.ts";

export interface Flow {
  /** Watch identities (context.ts `watchIdentity`) of the source and target. */
  source: string;
  target: string;
  /** resourceVersion of the source at the last reconcile that read it. */
  sourceRv?: string;
  /** resourceVersion the last apply to the target returned. */
  appliedRv?: string;
}

/** At most this many ResourceSyncs are visited looking for a ring (tenant input: bounded work). */
const MAX_VISITS = 64;

export class FlowGraph {
  readonly #flows = new Map<string, Flow>();
  readonly #readers = new Map<string, Set<string>>();

  get(key: string): Flow | undefined {
    return this.#flows.get(key);
  }

  set(key: string, flow: Flow): void {
    const before = this.#flows.get(key);
    if (before && before.source !== flow.source) this.#readers.get(before.source)?.delete(key);
    this.#flows.set(key, flow);
    let readers = this.#readers.get(flow.source);
    if (!readers) {
      readers = new Set();
      this.#readers.set(flow.source, readers);
    }
    readers.add(key);
  }

  update(key: string, patch: Partial<Pick<Flow, "sourceRv" | "appliedRv">>): void {
    const flow = this.#flows.get(key);
    if (flow) this.#flows.set(key, { ...flow, ...patch });
  }

  remove(key: string): void {
    const flow = this.#flows.get(key);
    if (!flow) return;
    this.#flows.delete(key);
    const readers = this.#readers.get(flow.source);
    readers?.delete(key);
    if (readers?.size === 0) this.#readers.delete(flow.source);
  }

  readersOf(object: string): Iterable<string> {
    return this.#readers.get(object) ?? [];
  }

  size(): number {
    return this.#flows.size;
  }
}

/**
 * The other members of a ring through `key`, in order from the one reading key's target to the one writing
 * key's source; undefined when key's target does not lead back to its source (within MAX_VISITS).
 */
export function ringThrough(graph: FlowGraph, key: string): string[] | undefined {
  const start = graph.get(key);
  if (!start) return undefined;
  const previous = new Map<string, string | undefined>();
  const queue: Array<{ key: string; from: string | undefined }> = [];
  for (const k of graph.readersOf(start.target)) if (k !== key) queue.push({ key: k, from: undefined });
  let visits = 0;
  while (queue.length > 0 && visits < MAX_VISITS) {
    const { key: k, from } = queue.shift() as { key: string; from: string | undefined };
    if (previous.has(k)) continue;
    previous.set(k, from);
    visits++;
    const flow = graph.get(k);
    if (!flow) continue;
    if (flow.target === start.source) {
      const path: string[] = [];
      for (let at: string | undefined = k; at !== undefined; at = previous.get(at)) path.unshift(at);
      return path;
    }
    for (const next of graph.readersOf(flow.target))
      if (next !== key && !previous.has(next)) queue.push({ key: next, from: k });
  }
  return undefined;
}

/**
 * Whether a change is still travelling round the ring `path` of `key` (from ringThrough): a member is queued or
 * in flight, or one has not yet read the version its predecessor wrote. `targetRv`: key's target as it is now;
 * `sourceRv`: key's source as its projection read it.
 */
export function ringInMotion(
  graph: FlowGraph,
  path: readonly string[],
  targetRv: string | undefined,
  sourceRv: string | undefined,
  pending: (key: string) => boolean,
): boolean {
  let written = targetRv;
  for (const k of path) {
    if (pending(k)) return true;
    const flow = graph.get(k);
    if (!flow) return false;
    if (rvNewer(written, flow.sourceRv)) return true;
    written = flow.appliedRv;
  }
  return rvNewer(written, sourceRv);
}
