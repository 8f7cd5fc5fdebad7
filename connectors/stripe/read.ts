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

/** One window of a parallel list pass: `a <= created < b` (`open`: no lower bound sent). */
interface CreatedWindow {
  a: number;
  b: number;
  open: boolean;
}

/**
 * Windows read by at most `size` tasks at once, their pages handed to one
 * consumer through a buffer of at most 2 × size pages (a task waits for
 * room). The first failure ends the pool and is thrown to the consumer.
 */
class WindowPool {
  stopped = false;
  private readonly queue: CreatedWindow[] = [];
  private running = 0;

  private readonly buffer: { page: StripePage; index: number }[] = [];
  private failure: { error: unknown } | undefined;
  private wakeConsumer: (() => void) | undefined;
  private readonly wakeProducers: (() => void)[] = [];

  constructor(
    readonly size: number,
    private readonly read: (w: CreatedWindow, pool: WindowPool) => Promise<void>,
  ) {}

  /** Read `w` now, or when a task is free. */
  launch(w: CreatedWindow): void {
    if (this.running >= this.size) {
      this.queue.push(w);
      return;
    }
    this.running++;
    this.read(w, this).then(
      () => this.finished(),
      (error: unknown) => {
        this.failure ??= { error };
        this.stopped = true;
        this.finished();
      },
    );
  }

  private finished(): void {
    this.running--;
    const next = this.stopped ? undefined : this.queue.shift();
    if (next) this.launch(next);
    this.wake();
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }

  /** Hand a page on; waits while the buffer is full. */
  async put(item: { page: StripePage; index: number }): Promise<void> {
    while (this.buffer.length >= 2 * this.size && !this.stopped) await new Promise<void>((r) => this.wakeProducers.push(r));
    if (this.stopped) return;
    this.buffer.push(item);
    this.wake();
  }

  /** Every page, as read; stops the tasks when the consumer stops. */
  async *pages(): AsyncGenerator<{ page: StripePage; index: number }> {
    try {
      for (;;) {
        if (this.failure) throw this.failure.error;
        const item = this.buffer.shift();
        if (item) {
          this.wakeProducers.shift()?.();
          yield item;
          continue;
        }
        if (this.running === 0 && this.queue.length === 0) return;
        await new Promise<void>((r) => (this.wakeConsumer = r));
      }
    } finally {
      this.stopped = true;
      for (const w of this.wakeProducers.splice(0)) w();
    }
  }
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
    } else if ((inc?.lookbackDays ?? 0) > 0) {
      this.from = runStart - this.lag - (inc?.lookbackDays ?? 0) * 86_400;
    }
  }

  /** State to merge after a successful read. */
  checkpoint(): Partial<ObjectState> {
    if (!this.incremental || this.watermark === undefined || !this.settings.events || !this.spec.events) return {};
    return { stripe_events: { from: Math.max(this.watermark, this.eventsFrom ?? 0) } };
  }

  /** One SDK call under the policy and limiter; errors name connector, object and request, never the key. */
  private async call(what: string, fn: () => Promise<StripePage>): Promise<StripePage> {
    const attempt = (): Promise<StripePage> => {
      if (this.closed) throw new DativoError('ABORTED', `stripe ${this.spec.name}: the read was closed`, { disposition: 'fatal', context: { connector: 'stripe', object: this.spec.name } });
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
    if (this.eventsFrom !== undefined) yield* this.eventRows(this.eventsFrom);
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
    if (this.settings.parallelWindows > 1) {
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
   * The list pass as `created` windows `[a, b)` read at once, at most `n`
   * in flight, all through the one limiter (a high-latency API still uses
   * its whole budget). Windows split themselves: a window whose first page
   * has more behind it keeps only the objects at that page's oldest
   * `created` second (`[c, b)`, continued after the page's last id) and
   * hands `[a, c)` on as new windows sized by that page's density (the next
   * 100 objects most likely lie within the span the first 100 took), so
   * data skewed to recent months is split where it is. At most 2 × n pages
   * are held. The watermark must be known first: without an events pass,
   * one `limit=1` call reads Stripe's clock. A read from the beginning starts
   * at {@link STRIPE_EPOCH} (its oldest window has no lower bound).
   */
  private async *parallelListRows(n: number): AsyncGenerator<Record<string, unknown>> {
    if (this.watermark === undefined) this.settle(await this.call(`GET ${this.spec.path}`, () => this.spec.list(this.stripe, { limit: 1 }, {})));
    const end = this.incremental ? this.watermark! : (this.watermark ?? 0) + 1;
    const start = Math.min(this.from ?? STRIPE_EPOCH, end);
    const pool = new WindowPool(n, (w, pool) => this.readWindow(w, pool));
    pool.launch({ a: start, b: end, open: this.from === undefined });
    for await (const { page, index } of pool.pages()) for (const obj of page.data) yield this.listed(obj, index);
  }

  /** Read one window into the pool, splitting it after its first page (see {@link parallelListRows}). */
  private async readWindow(w: CreatedWindow, pool: WindowPool): Promise<void> {
    const a = w.a;
    let lower: number | undefined = w.open ? undefined : w.a;
    let pager = this.pager(`${this.spec.path} created ${w.a}..${w.b}`);
    let split = false;
    let upper = w.b;
    while (pager.hasMore && !pool.stopped) {
      const params: ListParams = { limit: PAGE_LIMIT, created: { ...(lower !== undefined ? { gte: lower } : {}), lt: upper }, ...(pager.token !== undefined ? { starting_after: String(pager.token) } : {}) };
      const page = await this.call(`GET ${this.spec.path}`, () => this.spec.list(this.stripe, params, {}));
      this.counts.pages++;
      this.advance(pager, page);
      await pool.put({ page, index: pager.pages });
      const last = page.data.at(-1);
      const c = last?.['created'];
      // Split once, after the window's first page. Objects above second c were
      // all on it; this window goes on over [lo, c + 1) after the page's last
      // id (the rest of second c, then the next span), and hands on the rest.
      if (split) continue;
      split = true;
      if (!page.has_more || typeof c !== 'number' || c <= a) continue;
      const span = Math.max(1, w.b - c);
      const lo = Math.max(a, c - span);
      let hi = lo;
      for (let k = 2; k <= pool.size && hi > a; k++) {
        const next = Math.max(a, c - k * span);
        pool.launch({ a: next, b: hi, open: w.open && next === a });
        hi = next;
      }
      if (hi > a) pool.launch({ a, b: hi, open: w.open });
      lower = lo === a && w.open ? undefined : lo;
      upper = c + 1;
      pager = this.pager(`${this.spec.path} created ${lo}..${c + 1}`);
      pager.advance({ data: [{ id: String(last?.['id'] ?? '') }], has_more: true });
    }
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
        if (!deleted && typeof created === 'number' && this.from !== undefined && created >= this.from) {
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
  return stream;
}
