/**
 * The list-continuation guard: a hostile server may never stop paging, so the pages and items of one continued
 * list are counted across calls, by continue token, and bounded (ClientLimits.maxListPages / maxListItems).
 * Abandoned lists leave entries behind: only the newest few are kept.
 */

const MAX_CHAINS = 64;

export class ListGuard {
  /** Continue token handed out → [pages so far, items so far] of that list. */
  readonly #chains = new Map<string, [number, number]>();
  readonly #maxPages: number;
  readonly #maxItems: number;

  constructor(limits: { maxListPages: number; maxListItems: number }) {
    this.#maxPages = limits.maxListPages;
    this.#maxItems = limits.maxListItems;
  }

  /**
   * Counts one page of `items` items, asked for with `continueToken` (undefined: the first page), and remembers
   * the totals under the page's `next` token. False when the list went past its bounds.
   */
  page(continueToken: string | undefined, items: number, next: string | undefined): boolean {
    const chain = (continueToken ? this.#chains.get(continueToken) : undefined) ?? [0, 0];
    if (continueToken) this.#chains.delete(continueToken);
    const pages = chain[0] + 1;
    const total = chain[1] + items;
    if (total > this.#maxItems || pages > this.#maxPages) return false;
    if (next !== undefined) {
      this.#chains.set(next, [pages, total]);
      if (this.#chains.size > MAX_CHAINS) {
        const oldest = this.#chains.keys().next();
        if (!oldest.done) this.#chains.delete(oldest.value);
      }
    }
    return true;
  }
}
