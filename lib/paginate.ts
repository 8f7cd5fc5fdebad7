/**
 * Pagination as its own small object (dlt's and Meltano's paginators):
 * init → next request → has more, with loop detection. One page token or
 * cursor seen twice is an error, never an endless loop: servers that ignore
 * the token and answer page one again exist (and a buggy fake is easy to
 * write).
 *
 * Used by the Iceberg REST catalog client (`next-page-token`) and by API
 * connectors (Stripe's `starting_after`, HubSpot's `paging.next.after`,
 * Google's `nextPageToken`).
 */
import { DativoError, type ErrorCode, type ErrorContext } from './errors.js';

/** A page token or cursor: what the next request carries. */
export type PageToken = string | number;

/** Options of {@link Paginator}. */
export interface PaginatorOptions<Page> {
  /**
   * The next token from a page, or undefined/null/'' when it is the last one.
   * E.g. `(p) => p['next-page-token']`, `(p) => p.has_more ? p.data.at(-1)?.id : undefined`.
   */
  next: (page: Page) => PageToken | null | undefined;
  /** What is being listed, for the error message, e.g. `stripe customers`. */
  what: string;
  /** Code of the loop error. Default `SOURCE_ERROR`. */
  code?: ErrorCode;
  /**
   * Disposition of the loop error. Default `fatal` (retrying the request
   * repeats the loop); an API connector may say `retryable` (exit 2: the
   * server broke its own cursor, a later run may find it mended).
   */
  disposition?: 'fatal' | 'retryable';
  /** Context fields of the loop error. Default none. */
  context?: ErrorContext;
  /** Stop with an error after this many pages (a runaway guard). Default: no limit. */
  maxPages?: number;
}

/**
 * Token pagination state. `token` is what the next request sends (undefined
 * for the first page); after each answered page call {@link advance}; loop
 * while {@link hasMore}.
 *
 * ```ts
 * const pager = new Paginator({ next: (p: Body) => p.nextPageToken, what: 'drive files' });
 * while (pager.hasMore) {
 *   const page = await http.json(`/files?pageToken=${pager.token ?? ''}`);
 *   yield* page.files;
 *   pager.advance(page);
 * }
 * ```
 */
export class Paginator<Page> {
  private readonly seen = new Set<string>();
  private current: PageToken | undefined;
  private done = false;
  private count = 0;

  constructor(private readonly options: PaginatorOptions<Page>) {}

  /** Token for the next request; undefined for the first page. */
  get token(): PageToken | undefined {
    return this.current;
  }

  /** True until a page without a next token was seen. */
  get hasMore(): boolean {
    return !this.done;
  }

  /** Pages answered so far. */
  get pages(): number {
    return this.count;
  }

  /** Record an answered page. Throws (code from the options) when its next token was seen before. */
  advance(page: Page): void {
    if (this.done) throw new DativoError('INTERNAL', `${this.options.what}: advance() after the last page`);
    this.count++;
    const next = this.options.next(page);
    if (next === undefined || next === null || next === '') {
      this.done = true;
      return;
    }
    const key = `${typeof next}:${String(next)}`;
    if (this.seen.has(key) || next === this.current) {
      throw new DativoError(this.options.code ?? 'SOURCE_ERROR', `${this.options.what}: the server returned the same page token twice (${String(next).slice(0, 80)}); stopping instead of looping`, {
        disposition: this.options.disposition ?? 'fatal',
        context: { ...this.options.context, event_type: 'page_loop', page: this.count, pageToken: String(next).slice(0, 200) },
      });
    }
    if (this.options.maxPages !== undefined && this.count >= this.options.maxPages) {
      throw new DativoError(this.options.code ?? 'SOURCE_ERROR', `${this.options.what}: more than ${this.options.maxPages} pages`, {
        disposition: 'fatal',
        context: { ...this.options.context, page: this.count },
      });
    }
    this.seen.add(key);
    this.current = next;
  }
}

/**
 * Every page: `fetchPage(token)` (token undefined for the first) until the
 * paginator has no more. Pull-based: the next page is fetched only when the
 * consumer asks for it.
 */
export async function* pages<Page>(paginator: Paginator<Page>, fetchPage: (token: PageToken | undefined) => Promise<Page>): AsyncGenerator<Page> {
  while (paginator.hasMore) {
    const page = await fetchPage(paginator.token);
    paginator.advance(page);
    yield page;
  }
}
