import type { ReconcileContext } from "./context.ts";
import type { WatchRef } from "./watches.ts";

/**
 * The watch references of one reconcile. They only grow while the reconcile resolves things (also across a
 * failed attempt: a failing ResourceSync keeps its watches), and `commit` narrows them to exactly what a
 * complete resolution needed.
 */
export class RefSet {
  private readonly refs: WatchRef[] = [];
  private readonly key: string;
  private readonly ctx: ReconcileContext;

  constructor(key: string, ctx: ReconcileContext) {
    this.key = key;
    this.ctx = ctx;
  }

  async add(...refs: WatchRef[]): Promise<void> {
    this.refs.push(...refs);
    await this.ctx.watches.addRefs(this.key, refs);
  }

  async drop(ref: WatchRef): Promise<void> {
    const i = this.refs.findIndex(
      (r) =>
        r.client === ref.client &&
        r.resource === ref.resource &&
        r.namespace === ref.namespace &&
        r.name === ref.name,
    );
    if (i >= 0) this.refs.splice(i, 1);
    await this.ctx.watches.dropRef(this.key, ref);
  }

  async commit(): Promise<void> {
    await this.ctx.watches.setRefs(this.key, this.refs);
  }
}
