/**
 * Reading one Stripe object: the events pass (updates and deletions since
 * the last run), then the list pass (objects created in the cursor window),
 * every call through the SDK under the job's retry policy and limiter.
 *
 * Window (docs/connectors/stripe.md): `from <= created < watermark`. The
 * watermark is Stripe's clock (the `Date` header of the run's first answer)
 * minus `lag_seconds`, saved as the next cursor. When the first call's
 * answer sets the watermark, that call cannot carry `created[lt]` yet: its
 * pages are filtered here (newest first, so only the first page can hold
 * objects past the watermark); every call made after it sends
 * `created[gte]` and `created[lt]`.
 *
 * Events (`/v1/events`, kept 30 days by Stripe): for the object's type, the
 * newest event per object in `[events_from, watermark)` gives a row version:
 * its `data.object` with `_dativo_deleted = false`, or, for `*.deleted`,
 * with `_dativo_deleted = true`. An update of an object created inside the
 * window is left to the list pass (which reads its current state). Events
 * of other object types are counted and ignored. A saved events cursor
 * older than the retention makes this run a logged full refresh of the
 * object (the table's rows are replaced).
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import Stripe from 'stripe';
import type { CursorWindow, ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { sdkError, type HttpClient } from '../../lib/http.js';
import { Paginator } from '../../lib/paginate.js';
import { WindowPool } from '../../lib/window-pool.js';
import { formatTimestampMicros, parseTimestampMicros } from '../../lib/records/time.js';
import { withLocation } from '../../lib/records/location.js';
import { networkOf } from '../../lib/run/network.js';
import { DELETED_COLUMN, type ObjectState } from '../../lib/types.js';
import { listEvents, type ListParams, type StripeObjectSpec, type StripePage } from './objects.js';
import type { StripeSettings } from './options.js';

/** Page size of every list call (Stripe's maximum). */
export const PAGE_LIMIT = 100;
/** Stripe keeps events this long. */
export const EVENT_RETENTION_SECONDS = 30 * 86_400;
/** An events cursor this close to the retention edge already counts as expired (the run itself takes time). */
const RETENTION_MARGIN_SECONDS = 3_600;

/** The lower end of a parallel read from the beginning: 2011-01-01, before Stripe's launch (nothing is older). */
export const STRIPE_EPOCH = 1_293_840_000;

/** Pages of one created window read together before a split hands the rest on (fewer windows: fewer short last pages). */
const PAGES_PER_SPLIT = 4;
/** A window split while its page is in flight gives parts of at least this many pages (by the density read). */
const TAIL_MIN_PAGES = 2;

/**
 * One window of a parallel list pass, `a <= created < b`, read newest
 * first. Everything in `[top, b)` was handed on; `[a, top)` not yet: the
 * objects of the oldest second a page reached are held until that second
 * is complete, so a window stopped by a failure resumes at a whole second
 * (`[a, top)`), never inside one.
 */
interface CreatedWindow {
  a: number;
  /** No lower bound sent (a read from the beginning). */
  open: boolean;
  b: number;
  top: number;
  /** The list goes on after this id, inside second `heldAt`. */
  after?: string;
  heldAt?: number;
  held: Record<string, unknown>[];
  /** Objects read and the seconds they took (`b - heldAt`): the window's density, to size a split. */
  read: number;
  pager: Paginator<StripePage>;
}

/** A window's page as handed on: the objects it completed. */
interface WindowPage {
  rows: Record<string, unknown>[];
  index: number;
}

/** What a run stopped by a failure leaves for the next: the list windows not read (all below `to`, the run's watermark). */
export interface StripeListState {
  to: number;
  windows: { a: number; b: number; open?: boolean }[];
}

/** The windows a stopped run left, if they continue from `from` (the saved cursor; undefined: from the beginning). */
function resumeOf(s: StripeListState | undefined, from: number | undefined): StripeListState | undefined {
  if (s === undefined || !Array.isArray(s.windows) || typeof s.to !== 'number') return undefined;
  if (from !== undefined && s.windows.some((w) => w.a < from || w.open === true)) {
    throw new DativoError('STATE_CORRUPT', `stripe: the saved list windows start before the saved cursor (${isoOfSeconds(from)}); the state was edited or mixed up`, { context: { connector: 'stripe' } });
  }
  return s;
}

/** The Stripe part of an object's saved state (beside `cursor`). */
export interface StripeEventsState {
  /** Events at or after this unix second are still to be read. */
  from: number;
}

declare module '../../lib/types.js' {
  interface ObjectState {
    /** Stripe: where the next run's events pass starts (connectors/stripe). */
    stripe_events?: StripeEventsState;
    /** Stripe: the created windows a run stopped by a failure did not read (connectors/stripe); read first by the next run. */
    stripe_list?: StripeListState | undefined;
  }
}

/** Counts of one read, logged at the end. */
interface ReadCounts {
  listed: number;
  updated: number;
  deleted: number;
  /** Events of object types this job does not sync. */
  ignored: number;
  /** Events of this type already covered (older versions, objects created in the window). */
  superseded: number;
  pages: number;
}

/** The keep-alive agent of one read (closed with the read's stream). */
export function stripeAgent(s: StripeSettings): http.Agent {
  return s.baseUrl?.protocol === 'http:' ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
}

/** A Stripe SDK client on the job's connection settings (its own agent when given). */
export function stripeClient(s: StripeSettings, agent?: http.Agent): Stripe {
  const config: Stripe.StripeConfig = {
    ...(agent ? { httpAgent: agent } : {}),
    apiVersion: s.apiVersion as Stripe.StripeConfig['apiVersion'],
    // One retry policy, ours (docs/network.md).
    maxNetworkRetries: 0,
    telemetry: false,
    timeout: s.timeoutMs,
    appInfo: { name: 'dativo-ingest' },
  };
  if (s.baseUrl) {
    config.host = s.baseUrl.hostname;
    config.protocol = s.baseUrl.protocol === 'http:' ? 'http' : 'https';
    if (s.baseUrl.port !== '') config.port = s.baseUrl.port;
  }
  if (s.account !== undefined) config.stripeAccount = s.account;
  return new Stripe(s.apiKey, config);
}

function secondsOfCursor(value: string): number | undefined {
  const us = parseTimestampMicros(value);
  if (typeof us === 'string') return undefined;
  // A whole second when saved by this connector; round a fraction up (`>=`).
  return Number((us + 999_999n) / 1_000_000n);
}

function isoOfSeconds(s: number): string {
  return formatTimestampMicros(BigInt(s) * 1_000_000n);
}

function dateHeaderSeconds(page: StripePage): number | undefined {
  const h = page.lastResponse?.headers;
  const d = h?.['date'] ?? h?.['Date'];
  const ms = d !== undefined ? Date.parse(d) : Number.NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** One object's read; `rows()` is its generator, `checkpoint()` its state. */
export class StripeObjectRead {
  readonly counts: ReadCounts = { listed: 0, updated: 0, deleted: 0, ignored: 0, superseded: 0, pages: 0 };
  /** True when this read replaces the object's rows (events past retention). */
  replaces = false;
  /** Set when the read's stream closed: no attempt (no retry) starts after it. */
  closed = false;
  private readonly stripe: Stripe;
  private readonly client: HttpClient;
  private readonly incremental: boolean;
  /** Lower bound of `created` (unix s, inclusive); undefined: from the beginning. */
  private from: number | undefined;
  private eventsFrom: number | undefined;
  private watermark: number | undefined;
  private readonly lag: number;
  private windowReported = false;
  private readonly ignoredTypes = new Map<string, number>();
  /** The windows an earlier run stopped by a failure left (read before the new range). */
  private resume: StripeListState | undefined;
  private pool: WindowPool<CreatedWindow, WindowPage> | undefined;
  /** Rows handed on by this read. */
  private emitted = 0;
  /** The list pass stopped early at a clean point (see {@link incomplete}). */
  private stopped: { error: unknown; pending: CreatedWindow[]; to: number } | undefined;

  constructor(
    private readonly ctx: ReadContext,
    private readonly settings: StripeSettings,
    private readonly spec: StripeObjectSpec,
    agent?: http.Agent,
  ) {
    this.stripe = stripeClient(settings, agent);
    this.client = networkOf(ctx, 'stripe').http({ credentialKey: 'source.connection.api_key' });
    const inc = ctx.plan.source.incremental;
    this.incremental = !ctx.fullRefresh && ctx.plan.syncMode === 'incremental_append' && inc !== undefined && inc.strategy !== 'file_modified' && ctx.reportWindow !== undefined;
    this.lag = Math.max(0, Math.ceil(inc?.lagSeconds ?? 0));
    if (!this.incremental) return;
    const field = inc?.cursorField;
    if (field !== 'created') {
      const key = 'source.incremental.cursor_field';
      throw new DativoError('CONFIG_INVALID', `stripe ${spec.name}: lists filter on created only, not ${JSON.stringify(field)}`, {
        problems: [{ file: ctx.plan.file, key, message: 'the Stripe source reads incrementally on created (updates and deletions come from the Events API)' }],
        context: { connector: 'stripe', object: spec.name, key, file: ctx.plan.file },
      });
    }
    const saved = ctx.state?.cursor;
    const runStart = Math.floor(ctx.runStartedAt.getTime() / 1000);
    if (saved !== undefined && saved.field === 'created') {
      const s = secondsOfCursor(saved.value);
      if (s === undefined) throw new DativoError('STATE_CORRUPT', `stripe ${spec.name}: saved cursor ${JSON.stringify(saved.value.slice(0, 40))} is not a timestamp`, { context: { connector: 'stripe', object: spec.name } });
      this.from = saved.upper === 'inclusive' ? s + 1 : s;
      if (settings.events && spec.events) this.eventsFrom = ctx.state?.stripe_events?.from ?? this.from;
      this.resume = resumeOf(ctx.state?.stripe_list, this.from);
    } else if (ctx.state?.stripe_list !== undefined && saved === undefined) {
      // A first run stopped by a failure: its windows, from the beginning.
      this.resume = resumeOf(ctx.state.stripe_list, undefined);
    } else if ((inc?.lookbackDays ?? 0) > 0) {
      this.from = runStart - this.lag - (inc?.lookbackDays ?? 0) * 86_400;
    }
  }

  /** State to merge after the read (the windows left when it stopped early). */
  checkpoint(): Partial<ObjectState> {
    if (!this.incremental || this.watermark === undefined) return {};
    const out: Partial<ObjectState> = {
      stripe_list: this.stopped ? { to: this.stopped.to, windows: this.stopped.pending.map((w) => ({ a: w.a, b: w.top, ...(w.open ? { open: true } : {}) })).sort((x, y) => x.a - y.a) } : undefined,
    };
    if (this.settings.events && this.spec.events) out.stripe_events = { from: Math.max(this.watermark, this.eventsFrom ?? 0) };
    return out;
  }

  /**
   * Set when the parallel list pass stopped on a failure after rows were
   * handed on: those rows are committed, the cursor goes to the start of the
   * oldest window left (the contiguous prefix read), and the windows left
   * are in `stripe_list` for the next run.
   */
  incomplete(): { error: unknown; cursor?: string } | undefined {
    const s = this.stopped;
    if (!s) return undefined;
    const lowest = s.pending.reduce<number | undefined>((m, w) => (w.open ? Number.NEGATIVE_INFINITY : Math.min(m ?? Number.POSITIVE_INFINITY, w.a)), undefined);
    const prefix = lowest === undefined ? s.to : lowest;
    return { error: s.error, ...(Number.isFinite(prefix) ? { cursor: isoOfSeconds(prefix) } : {}) };
  }

  /** True when this run's list pass reads objects created at `created` (an update to one of them is left to it). */
  private listReads(created: number): boolean {
    const r = this.resume;
    if (r === undefined) return this.from !== undefined && created >= this.from;
    return created >= r.to || r.windows.some((w) => (w.open === true || created >= w.a) && created < w.b);
  }

  /** One SDK call under the policy and limiter; errors name connector, object and request, never the key. */
  private async call(what: string, fn: () => Promise<StripePage>): Promise<StripePage> {
    const attempt = (): Promise<StripePage> => {
      if (this.closed || this.pool?.stopping === true) throw new DativoError('ABORTED', `stripe ${this.spec.name}: the read was closed`, { disposition: 'fatal', context: { connector: 'stripe', object: this.spec.name } });
      return fn();
    };
    return this.client.withPolicy(attempt, {
      mapError: (err) =>
        sdkError(err, 'stripe', {
          what: `${this.spec.name} (${what})`,
          credentialKey: 'source.connection.api_key',
          secrets: [...this.ctx.plan.secrets, this.settings.apiKey],
          context: { object: this.spec.name },
        }),
    });
  }

  /** The watermark from the first answer: Stripe's clock minus the lag; reports the window. */
  private settle(page: StripePage): void {
    if (this.watermark !== undefined) return;
    const now = dateHeaderSeconds(page) ?? Math.floor(this.ctx.runStartedAt.getTime() / 1000);
    this.watermark = now - this.lag;
    if (this.eventsFrom !== undefined && this.eventsFrom < now - EVENT_RETENTION_SECONDS + RETENTION_MARGIN_SECONDS) this.expireEvents();
    if (!this.incremental || this.windowReported) return;
    this.windowReported = true;
    const to = this.from === undefined || this.watermark > this.from ? isoOfSeconds(this.watermark) : undefined;
    const w: CursorWindow = {
      field: 'created',
      ...(this.from !== undefined ? { from: isoOfSeconds(this.from), fromInclusive: true } : {}),
      ...(to !== undefined ? { to } : {}),
      upper: 'exclusive',
      basis: `Stripe's clock (Date header) minus lag_seconds (${this.lag})`,
    };
    this.ctx.reportWindow?.(w);
  }

  /** The events cursor is past Stripe's retention (by Stripe's clock): this read is a full refresh of the object. */
  private expireEvents(): void {
    const from = this.eventsFrom ?? 0;
    this.ctx.log.warn(
      { event_type: 'stripe_events_expired', connector: 'stripe', object: this.spec.name, events_from: isoOfSeconds(from), retention_days: 30 },
      `stripe ${this.spec.name}: the last run read events up to ${isoOfSeconds(from)}, older than Stripe's 30-day event retention: updates and deletions since then cannot be read, so this run is a full refresh of ${this.spec.name} (its rows are replaced)`,
    );
    this.replaces = true;
    this.from = undefined;
    this.eventsFrom = undefined;
  }

  /** Parameters of one page; `upper`: the pass knew the watermark before its first page (a pass keeps one filter for all its pages). */
  private params(from: number | undefined, starting: string | undefined, upper: boolean): ListParams {
    const created: ListParams['created'] = {};
    if (from !== undefined) created.gte = from;
    if (upper && this.incremental && this.watermark !== undefined) created.lt = this.watermark;
    return { limit: PAGE_LIMIT, ...(Object.keys(created).length > 0 ? { created } : {}), ...(starting !== undefined ? { starting_after: starting } : {}) };
  }

  private pager(what: string): Paginator<StripePage> {
    return new Paginator<StripePage>({
      next: (p) => (p.has_more ? (p.data.at(-1)?.['id'] as string | undefined) : undefined),
      what: `stripe ${this.spec.name} (${what})`,
      context: { connector: 'stripe', object: this.spec.name },
    });
  }

  /**
   * Advance the paginator; a repeated page token is retryable SOURCE_ERROR
   * (exit 2): the server broke its own cursor, a later run may find it
   * mended, and nothing of this run is committed.
   */
  private advance(pager: Paginator<StripePage>, page: StripePage): void {
    try {
      pager.advance(page);
    } catch (err) {
      if (isDativoError(err) && err.code === 'SOURCE_ERROR') {
        throw new DativoError('SOURCE_ERROR', err.message, { disposition: 'retryable', context: { ...err.context, event_type: 'page_loop' } });
      }
      throw err;
    }
  }

  /** Before the watermark (or not comparable: a record without a numeric `created` goes on to validation, never dropped here). */
  private below(created: unknown): boolean {
    return this.watermark === undefined || !this.incremental || typeof created !== 'number' || created < this.watermark;
  }

  /** Every row of this read. */
  async *rows(): AsyncGenerator<Record<string, unknown>> {
    if (this.eventsFrom !== undefined) {
      for await (const row of this.eventRows(this.eventsFrom)) {
        this.emitted++;
        yield row;
      }
    }
    yield* this.listRows();
    const c = this.counts;
    const ignored = Object.fromEntries(this.ignoredTypes);
    this.ctx.log.info(
      { event_type: 'stripe_read', connector: 'stripe', object: this.spec.name, listed: c.listed, updated: c.updated, deleted: c.deleted, events_ignored: c.ignored, events_ignored_types: ignored, events_superseded: c.superseded, pages: c.pages },
      `stripe ${this.spec.name}: ${c.listed} listed, ${c.updated} updated and ${c.deleted} deleted from events${c.ignored > 0 ? `, ${c.ignored} event(s) of objects this job does not sync ignored` : ''}`,
    );
  }

  private listed(obj: Record<string, unknown>, page: number): Record<string, unknown> {
    this.counts.listed++;
    return withLocation({ ...obj, [DELETED_COLUMN]: false }, { object: this.spec.name, id: String(obj['id'] ?? ''), page });
  }

  private async *listRows(): AsyncGenerator<Record<string, unknown>> {
    if (this.settings.parallelWindows > 1 || this.resume !== undefined) {
      yield* this.parallelListRows(this.settings.parallelWindows);
      return;
    }
    const pager = this.pager(this.spec.path);
    const upper = this.watermark !== undefined;
    while (pager.hasMore) {
      const params = this.params(this.from, pager.token as string | undefined, upper);
      const page = await this.call(`GET ${this.spec.path}`, () => this.spec.list(this.stripe, params, {}));
      this.settle(page);
      this.counts.pages++;
      this.advance(pager, page);
      for (const obj of page.data) if (this.below(obj['created'])) yield this.listed(obj, pager.pages);
    }
  }

  /**
   * The list pass as `created` windows read at once through the window
   * pool (lib/window-pool.ts), all through the one limiter, so a
   * high-latency API still uses its whole budget. It starts as one window
   * over the whole range; a reader that would idle splits a window that
   * has read a page: the window keeps about {@link PAGES_PER_SPLIT} pages
   * below where it is (sized by the density it read), the rest of it goes
   * to new windows of that size, the oldest reaching down to the window's
   * start (split again when read). Data skewed to recent months is so split
   * where it is. The watermark must be known first: without an events
   * pass, one `limit=1` call reads Stripe's clock. A read from the
   * beginning starts at {@link STRIPE_EPOCH} (its oldest window has no
   * lower bound). Windows an earlier run left (`stripe_list`) are read
   * first, then the new range.
   */
  private async *parallelListRows(n: number): AsyncGenerator<Record<string, unknown>> {
    // Without an events pass the watermark is not known yet. A fresh read asks
    // for its first page without the upper bound and takes Stripe's clock
    // from that answer's Date header (one round trip before the windows go
    // out, instead of a clock call and then the first page); a resumed read
    // asks Stripe's clock with `limit=1`.
    let first: StripePage | undefined;
    if (this.watermark === undefined) {
      const params: ListParams = this.resume === undefined ? { limit: PAGE_LIMIT, ...(this.from !== undefined ? { created: { gte: this.from } } : {}) } : { limit: 1 };
      first = await this.call(`GET ${this.spec.path}`, () => this.spec.list(this.stripe, params, {}));
      this.settle(first);
      if (this.resume !== undefined) first = undefined;
    }
    const end = this.incremental ? this.watermark! : (this.watermark ?? 0) + 1;
    const pool = new WindowPool<CreatedWindow, WindowPage>(
      {
        read: (w) => this.readWindowPage(w),
        split: (w, parts) => this.splitWindow(w, parts),
        splitReading: (w, parts) => this.splitReadingWindow(w, parts),
        weight: (w) => (w.heldAt === undefined || w.read === 0 ? 0 : ((w.heldAt - w.a) * w.read) / Math.max(1, w.b - w.heldAt)),
      },
      { concurrency: n },
    );
    this.pool = pool;
    const r = this.resume;
    if (r !== undefined) {
      for (const w of r.windows) pool.add(this.window(w.a, w.b, w.open === true));
      if (r.to < end) pool.add(this.window(r.to, end, false));
    } else {
      const w = this.window(Math.min(this.from ?? STRIPE_EPOCH, end), end, this.from === undefined);
      // The first page read without `created[lt]` is the window's first page
      // when it reaches below the watermark (newest first: only the objects
      // at or past it are dropped, and every later page sends the bound);
      // otherwise the window starts over with the bound.
      const last = first?.data.at(-1)?.['created'];
      if (first !== undefined && (!this.incremental || !first.has_more || (typeof last === 'number' && last < end))) {
        this.counts.pages++;
        const page = this.absorbWindowPage(w, { ...first, data: first.data.filter((o) => this.below(o['created'])) } as StripePage);
        if (page.rows.length > 0) {
          this.emitted += page.rows.length;
          for (const obj of page.rows) yield this.listed(obj, page.index);
        }
        if (!page.done) pool.add(w);
      } else pool.add(w);
    }
    for await (const { page } of pool.pages()) {
      for (const obj of page.rows) {
        this.emitted++;
        yield this.listed(obj, page.index);
      }
    }
    this.ctx.log.info(
      { event_type: 'stripe_windows', connector: 'stripe', object: this.spec.name, windows: pool.splits + 1, windows_split_in_flight: pool.tailSplits, pages: pool.pagesRead, reader_waits_for_consumer: pool.heldFull },
      `stripe ${this.spec.name}: ${pool.pagesRead} page(s) in ${pool.splits + 1} window(s), ${n} at once`,
    );
    const f = pool.failure;
    if (f === undefined) return;
    // Nothing handed on: fail as a sequential read does (nothing to commit, state unchanged).
    if (this.emitted === 0) throw f.error;
    this.stopped = { error: f.error, pending: f.pending, to: end };
    this.ctx.log.warn(
      { event_type: 'stripe_windows_stopped', connector: 'stripe', object: this.spec.name, windows_left: f.pending.length, rows: this.emitted },
      `stripe ${this.spec.name}: a window failed; the ${this.emitted} row(s) read are kept and ${f.pending.length} window(s) are left for the next run`,
    );
  }

  private window(a: number, b: number, open: boolean): CreatedWindow {
    return { a, b, open, top: b, held: [], read: 0, pager: this.pager(`${this.spec.path} created ${a}..${b}`) };
  }

  /** One page of a window: the objects it completes (those of its oldest second wait for the next page). */
  private async readWindowPage(w: CreatedWindow): Promise<{ page: WindowPage; done: boolean }> {
    const upper = w.after !== undefined ? w.heldAt! + 1 : w.top;
    const params: ListParams = { limit: PAGE_LIMIT, created: { ...(w.open ? {} : { gte: w.a }), lt: upper }, ...(w.after !== undefined ? { starting_after: w.after } : {}) };
    const page = await this.call(`GET ${this.spec.path}`, () => this.spec.list(this.stripe, params, {}));
    this.counts.pages++;
    const { rows, index, done } = this.absorbWindowPage(w, page);
    return { page: { rows, index }, done };
  }

  /**
   * Take one page of `w` in: advance its pager, hand on the objects it
   * completes (those of its oldest second wait for the next page) and move
   * its resume point. A page that reaches below `w.a` (raised by a split
   * while the page was in flight) ends the window there: the objects below
   * belong to the window split off.
   */
  private absorbWindowPage(w: CreatedWindow, page: StripePage): WindowPage & { done: boolean } {
    this.advance(w.pager, page);
    if (!w.open) {
      const inside = page.data.filter((o) => typeof o['created'] !== 'number' || o['created'] >= w.a);
      if (inside.length < page.data.length) page = { ...page, data: inside, has_more: false } as StripePage;
    }
    w.read += page.data.length;
    const last = page.data.at(-1);
    const c = last?.['created'];
    if (!page.has_more || last === undefined) {
      const rows = [...w.held, ...page.data];
      w.held = [];
      w.top = w.a;
      return { rows, index: w.pager.pages, done: true };
    }
    let rows: Record<string, unknown>[];
    if (typeof c !== 'number') {
      // No second to hold by: hand everything on (the window then resumes, if it must, after its last id's second).
      rows = [...w.held, ...page.data];
      w.held = [];
    } else {
      const done = w.heldAt !== undefined && w.heldAt > c ? w.held : [];
      const keep = w.heldAt === c ? w.held : [];
      rows = [...done];
      for (const o of page.data) {
        if (o['created'] === c) keep.push(o);
        else rows.push(o);
      }
      w.held = keep;
      w.heldAt = c;
      w.top = c + 1;
    }
    w.after = String(last['id'] ?? '');
    return { rows, index: w.pager.pages, done: false };
  }

  /** Split the unread rest `[a, heldAt]` of a window that read a page (see {@link parallelListRows}). */
  private splitWindow(w: CreatedWindow, parts: number): CreatedWindow[] {
    if (w.heldAt === undefined || w.read === 0) return [];
    const perPage = Math.max(1, w.b - w.heldAt) / Math.max(1, w.read / PAGE_LIMIT);
    const span = Math.max(1, Math.ceil(PAGES_PER_SPLIT * perPage));
    const lo = Math.min(w.heldAt, Math.max(w.a, w.heldAt + 1 - span));
    if (lo <= w.a) return [];
    const out: CreatedWindow[] = [];
    let hi = lo;
    for (let k = 1; k <= parts && hi > w.a; k++) {
      const next = k === parts ? w.a : Math.max(w.a, hi - span);
      out.push(this.window(next, hi, w.open && next === w.a));
      hi = next;
    }
    w.a = lo;
    w.open = false;
    return out;
  }

  /**
   * Split a window whose page is in flight (the tail of the read): the page
   * in flight covers about one page's worth of seconds below `heldAt`; what
   * lies below two pages' worth goes to up to `parts` new windows of equal
   * seconds (at least {@link TAIL_MIN_PAGES} pages each by the density read;
   * a window from the beginning: pieces of that size, the oldest reaching
   * down without a lower bound), and the window ends there (a page reaching
   * below is cut, {@link absorbWindowPage}).
   */
  private splitReadingWindow(w: CreatedWindow, parts: number): CreatedWindow[] {
    if (w.heldAt === undefined || w.read === 0) return [];
    const perPage = Math.max(1, w.b - w.heldAt) / Math.max(1, w.read / PAGE_LIMIT);
    const lo = Math.floor(w.heldAt - 2 * perPage);
    const least = TAIL_MIN_PAGES * perPage;
    if (lo - w.a < least) return [];
    const span = Math.ceil(Math.max(least, w.open ? 0 : (lo - w.a) / parts));
    const out: CreatedWindow[] = [];
    let hi = lo;
    for (let k = 1; k <= parts && hi > w.a; k++) {
      const next = k === parts || hi - span - w.a < least ? w.a : hi - span;
      out.push(this.window(next, hi, w.open && next === w.a));
      hi = next;
    }
    w.a = lo;
    w.open = false;
    return out;
  }

  private async *eventRows(from: number): AsyncGenerator<Record<string, unknown>> {
    const pager = this.pager('GET /v1/events');
    const seen = new Set<string>();
    const upper = this.watermark !== undefined;
    while (pager.hasMore) {
      const params = this.params(from, pager.token as string | undefined, upper);
      const page = await this.call('GET /v1/events', () => listEvents(this.stripe, params, {}));
      this.settle(page);
      // Past the retention (by Stripe's clock): no events; the list pass reads everything.
      if (this.eventsFrom === undefined) return;
      this.counts.pages++;
      this.advance(pager, page);
      for (const evt of page.data) {
        if (!this.below(evt['created'])) continue;
        const data = evt['data'] as { object?: Record<string, unknown> } | undefined;
        const obj = data?.object;
        const type = typeof obj?.['object'] === 'string' ? (obj['object'] as string) : '';
        if (obj === undefined || type !== this.spec.type) {
          this.counts.ignored++;
          const t = String(evt['type'] ?? type);
          this.ignoredTypes.set(t, (this.ignoredTypes.get(t) ?? 0) + 1);
          continue;
        }
        const id = String(obj['id'] ?? '');
        // Newest first: the first event of an object is its latest version.
        if (seen.has(id)) {
          this.counts.superseded++;
          continue;
        }
        seen.add(id);
        const deleted = String(evt['type'] ?? '').endsWith('.deleted') || obj['deleted'] === true;
        const created = obj['created'];
        if (!deleted && typeof created === 'number' && this.listReads(created)) {
          // Created in this window: the list pass reads its current state.
          this.counts.superseded++;
          continue;
        }
        if (deleted) this.counts.deleted++;
        else this.counts.updated++;
        const { deleted: _flag, ...fields } = obj;
        yield withLocation({ ...fields, [DELETED_COLUMN]: deleted }, { object: this.spec.name, id, event: String(evt['id'] ?? '') });
      }
    }
  }
}

/** The record stream of one object. */
export function readStripe(ctx: ReadContext, settings: StripeSettings, spec: StripeObjectSpec): SourceStream {
  const agent = stripeAgent(settings);
  let r: StripeObjectRead;
  try {
    r = new StripeObjectRead(ctx, settings, spec, agent);
  } catch (err) {
    agent.destroy();
    throw err;
  }
  const stream = Readable.from(r.rows(), { objectMode: true, highWaterMark: PAGE_LIMIT }) as SourceStream;
  // The read's connections close with it: ended, failed or destroyed.
  stream.once('close', () => {
    r.closed = true;
    agent.destroy();
  });
  stream.checkpoint = () => r.checkpoint();
  stream.replacesTable = () => r.replaces;
  stream.incomplete = () => r.incomplete();
  return stream;
}
