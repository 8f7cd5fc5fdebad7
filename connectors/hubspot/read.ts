/**
 * Reading one HubSpot object through `@hubspot/api-client`, every call
 * under the job's retry policy and limiter (the SDK's own limiter and
 * retries off, see {@link hubspotApis}).
 *
 * - Full refresh: the objects list (`limit=100`, `after`), then, with
 *   `source.archived`, the list of archived objects as deletion rows.
 * - Incremental (CRM objects): the half-open window `from <= modified <
 *   watermark` through the search API (connectors/hubspot/keyset.ts: a new
 *   query per page, ties read by id, so the 10,000-results cap of a query is
 *   never reached), the watermark being HubSpot's clock (the `Date` header of
 *   the run's first answer) minus `lag_seconds`; with `source.archived`, the
 *   archived list filtered to `archivedAt` in the window. Updated objects
 *   come back as new row versions because their modified date moved into
 *   the window.
 * - Owners: the owners list; incremental runs keep the owners whose
 *   `updatedAt` is in the window (the API has no filter).
 * - `source.associations`: the ids of associated objects per type, from the
 *   list's `associations` parameter, or (search does not return them) one
 *   associations v4 batch read per page and type.
 */
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { Client } from '@hubspot/api-client';
import type { CursorWindow, ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import { sdkError, type HttpClient } from '../../lib/http.js';
import { Paginator } from '../../lib/paginate.js';
import { withLocation } from '../../lib/records/location.js';
import { formatTimestampMicros, parseTimestampMicros } from '../../lib/records/time.js';
import { networkOf } from '../../lib/run/network.js';
import { DELETED_COLUMN } from '../../lib/types.js';
import { WindowPool } from '../../lib/window-pool.js';
import type { ObjectState } from '../../lib/types.js';
import { ID_PROPERTY, ModifiedKeyset, SEARCH_LIMIT, type Hit, type KeysetState } from './keyset.js';
import { CRM_FIELDS, type HubSpotObjectSpec } from './objects.js';
import type { HubSpotSettings } from './options.js';

/** Page size of list calls (the objects list's maximum). */
export const LIST_LIMIT = 100;

/**
 * Characters of the `properties` query a list request may carry. HubSpot
 * answers 414 (URI Too Long) for request lines of about 8,000 characters or
 * more; a portal with hundreds of custom properties reaches that. Past this
 * figure a list page asks for ids only and the properties are read with one
 * batch read (`POST /crm/v3/objects/{type}/batch/read`, up to 100 ids and
 * any number of properties in the body) per page.
 */
export const LIST_PROPERTY_CHARS = 6000;

/** The characters `properties` adds to a list URL (encoded names, comma-separated). */
export function listPropertyChars(properties: readonly string[]): number {
  let n = 0;
  for (const p of properties) n += encodeURIComponent(p).length + 3;
  return n;
}

/** Pages of one modified-date window read together before a split hands the rest on. */
const PAGES_PER_SPLIT = 4;

/** One window of a parallel search: a keyset over `[from, to)` of the modified date. */
interface ModifiedWindow {
  keyset: ModifiedKeyset;
  /** The modified date of the first record read (the window's density, to size a split). */
  firstAt?: number;
  read: number;
  pager: Paginator<ModifiedKeyset>;
}

/** What a run stopped by a failure leaves for the next: the search windows not read (all below `to`, the run's watermark). */
export interface HubSpotWindowsState {
  to: number;
  windows: KeysetState[];
}

declare module '../../lib/types.js' {
  interface ObjectState {
    /** HubSpot: the search windows a run stopped by a failure did not read (connectors/hubspot); read first by the next run. */
    hubspot_windows?: HubSpotWindowsState | undefined;
  }
}

/** The keep-alive agent of one read (closed with the read's stream, which also ends its requests in flight). */
export function hubspotAgent(s: HubSpotSettings): http.Agent {
  return s.baseUrl?.startsWith('http:') ? new http.Agent({ keepAlive: true }) : new https.Agent({ keepAlive: true });
}

/**
 * The SDK's APIs on the job's settings. No `limiterOptions` (the SDK's
 * Bottleneck would be a second, process-wide limiter) and
 * `numberOfApiCallRetries: 0` (no second retry loop): limits and retries
 * are ours. The SDK decorates an API object when it is built, with the
 * decorators the most recent `Client` of the process set, so every API is
 * built here, right after our `Client`, before any other code can run.
 */
export function hubspotApis(s: HubSpotSettings, agent?: http.Agent) {
  const client = new Client({
    accessToken: s.accessToken,
    ...(s.baseUrl !== undefined ? { basePath: s.baseUrl } : {}),
    numberOfApiCallRetries: 0,
    ...(agent ? { httpAgent: agent } : {}),
  });
  return {
    objects: client.crm.objects.basicApi,
    batch: client.crm.objects.batchApi,
    search: client.crm.objects.searchApi,
    properties: client.crm.properties.coreApi,
    owners: client.crm.owners.ownersApi,
    associations: client.crm.associations.v4.batchApi,
  };
}
export type HubSpotApis = ReturnType<typeof hubspotApis>;

/**
 * The options every SDK call gets. @hubspot/api-client 13.5 runs the
 * configured middleware (its headers and the `httpAgent`) only when a call
 * passes middleware of its own: `append` with none runs exactly the
 * configured ones, so the read's own agent carries its requests (and
 * closing it ends them).
 */
export const SDK_CALL_OPTIONS = Object.freeze({ middleware: [], middlewareMergeStrategy: 'append' as const });

/** An answer of the SDK's `…WithHttpInfo` methods: data and response headers. */
interface Answer<T> {
  data: T;
  headers: Record<string, string>;
}

/** The CRM object shape the SDK deserializes (list and search results). */
interface SdkObject {
  id?: string;
  properties?: Record<string, string | null>;
  createdAt?: Date;
  updatedAt?: Date;
  archived?: boolean;
  archivedAt?: Date;
  associations?: Record<string, { results?: { id?: string }[] }>;
}

interface SdkPage<T> {
  results?: T[];
  paging?: { next?: { after?: string } };
}

/** Counts of one read, logged at the end. */
interface ReadCounts {
  rows: number;
  archived: number;
  pages: number;
  /** Search queries that read one modified date by id (more than a page of records shared it). */
  tieQueries: number;
  /** Search results already emitted by the page before (the last page's last modified millisecond). */
  repeated: number;
  /** Batch reads of the properties of list pages (a property list too long for a URL). */
  batchReads: number;
  /** Objects of a list page the batch read did not return (archived between the two calls; the archived pass lands them). */
  batchMissing: number;
}

function dateHeaderMs(headers: Record<string, string> | undefined): number | undefined {
  const d = headers?.['date'];
  const ms = d !== undefined ? Date.parse(d) : Number.NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

function isoOfMs(ms: number): string {
  return formatTimestampMicros(BigInt(ms) * 1000n);
}

/** A modified-date property value as epoch ms (ISO text, or digits of ms); undefined when missing or unreadable. */
function msOf(v: unknown): number | undefined {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.getTime();
  if (typeof v !== 'string' || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Unique associated ids per requested type, sorted numerically. */
function idsOf(list: Iterable<string>): string[] {
  return [...new Set(list)].sort((a, b) => (a.length - b.length) || (a < b ? -1 : a > b ? 1 : 0));
}

/** One object's read; `rows()` is its generator. */
export class HubSpotObjectRead {
  readonly counts: ReadCounts = { rows: 0, archived: 0, pages: 0, tieQueries: 0, repeated: 0, batchReads: 0, batchMissing: 0 };
  /** Set when the read's stream closed: no attempt (no retry) starts after it. */
  closed = false;
  private readonly apis: HubSpotApis;
  private readonly client: HttpClient;
  private readonly incremental: boolean;
  /** Lower bound of the cursor (epoch ms, inclusive); undefined: from the beginning. */
  private readonly from: number | undefined;
  private watermark: number | undefined;
  private readonly lag: number;
  private readonly field: string;
  /** Properties asked for: the asset's columns that are not top-level fields. */
  private readonly properties: string[];
  /** What a search asks for: the properties and `hs_object_id` (the tie breaker). */
  private readonly searchProperties: string[];
  /** The windows an earlier run stopped by a failure left (read before the new range). */
  private readonly resume: HubSpotWindowsState | undefined;
  private pool: WindowPool<ModifiedWindow, Record<string, unknown>[]> | undefined;
  private emitted = 0;
  private stopped: { error: unknown; pending: ModifiedWindow[]; to: number } | undefined;

  constructor(
    private readonly ctx: ReadContext,
    private readonly settings: HubSpotSettings,
    private readonly spec: HubSpotObjectSpec,
    agent?: http.Agent,
  ) {
    this.apis = hubspotApis(settings, agent);
    this.client = networkOf(ctx, 'hubspot').http({ credentialKey: 'source.connection.access_token' });
    const inc = ctx.plan.source.incremental;
    this.incremental = !ctx.fullRefresh && ctx.plan.syncMode === 'incremental_append' && inc !== undefined && inc.strategy !== 'file_modified' && ctx.reportWindow !== undefined;
    this.lag = Math.max(0, inc?.lagSeconds ?? 0);
    this.field = spec.modified;
    const top = new Set(CRM_FIELDS);
    this.properties = ctx.plan.asset.fields.map((f) => f.name).filter((n) => !top.has(n));
    if (spec.kind === 'crm' && !this.properties.includes(spec.modified) && this.incremental) this.properties.push(spec.modified);
    this.searchProperties = this.properties.includes(ID_PROPERTY) ? this.properties : [...this.properties, ID_PROPERTY];
    let from: number | undefined;
    if (this.incremental) {
      const field = inc?.cursorField;
      if (field !== spec.modified) {
        const key = 'source.incremental.cursor_field';
        const why = spec.name === 'contacts' ? ' (HubSpot’s contacts search ignores filters on hs_lastmodifieddate)' : '';
        throw new DativoError('CONFIG_INVALID', `hubspot ${spec.name}: incremental reads follow ${spec.modified}, not ${JSON.stringify(field)}${why}`, {
          problems: [{ file: ctx.plan.file, key, message: `the HubSpot source reads ${spec.name} incrementally on ${spec.modified}${why}` }],
          context: { connector: 'hubspot', object: spec.name, key, file: ctx.plan.file },
        });
      }
      const saved = ctx.state?.cursor;
      if (saved !== undefined && saved.field === field) {
        const us = parseTimestampMicros(saved.value);
        if (typeof us === 'string') throw new DativoError('STATE_CORRUPT', `hubspot ${spec.name}: saved cursor ${JSON.stringify(saved.value.slice(0, 40))} is not a timestamp`, { context: { connector: 'hubspot', object: spec.name } });
        // Whole ms when saved by this connector; a fraction rounds up (`>=`), an inclusive cursor starts after it.
        from = saved.upper === 'inclusive' ? Number(us / 1000n) + 1 : Number((us + 999n) / 1000n);
      } else if ((inc?.lookbackDays ?? 0) > 0) {
        from = ctx.runStartedAt.getTime() - Math.round(this.lag * 1000) - (inc?.lookbackDays ?? 0) * 86_400_000;
      }
    }
    this.from = from;
    this.resume = this.incremental ? resumeOf(ctx.state?.hubspot_windows, from, spec.name) : undefined;
  }

  /** State to merge after the read (the windows left when it stopped early). */
  checkpoint(): Partial<ObjectState> {
    if (!this.incremental || this.spec.kind !== 'crm' || this.watermark === undefined) return {};
    return { hubspot_windows: this.stopped ? { to: this.stopped.to, windows: this.stopped.pending.map((w) => w.keyset.snapshot()) } : undefined };
  }

  /**
   * Set when the parallel search stopped on a failure after rows were
   * handed on: those rows are committed, the cursor goes to the oldest
   * position of the windows left (the contiguous prefix read; with
   * `source.archived` it stays, since the archived pass did not run), and
   * the windows left are in `hubspot_windows` for the next run.
   */
  incomplete(): { error: unknown; cursor?: string } | undefined {
    const s = this.stopped;
    if (!s) return undefined;
    // The archived pass did not run: the cursor stays where this run started.
    if (this.settings.archived) return { error: s.error, ...(this.from !== undefined ? { cursor: isoOfMs(this.from) } : {}) };
    let lowest: number | undefined = s.to;
    for (const w of s.pending) {
      const at = w.keyset.position;
      if (at === undefined) {
        lowest = undefined;
        break;
      }
      lowest = Math.min(lowest ?? at, at);
    }
    return { error: s.error, ...(lowest !== undefined ? { cursor: isoOfMs(lowest) } : {}) };
  }

  private fail(code: 'ABORTED', message: string): DativoError {
    return new DativoError(code, message, { disposition: 'fatal', context: { connector: 'hubspot', object: this.spec.name } });
  }

  /** One SDK call under the policy and limiter, with a timeout; errors name connector, object and request, never the token. */
  private async call<T>(what: string, fn: () => Promise<Answer<T>>): Promise<Answer<T>> {
    const timeoutMs = this.settings.timeoutMs;
    const attempt = async (): Promise<Answer<T>> => {
      if (this.closed || this.pool?.stopping === true) throw this.fail('ABORTED', `hubspot ${this.spec.name}: the read was closed`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DativoError('SOURCE_UNAVAILABLE', `hubspot ${this.spec.name} (${what}): no answer within ${timeoutMs} ms`, { context: { connector: 'hubspot', object: this.spec.name, timeoutMs } })), timeoutMs);
      });
      const answer = fn();
      // A timed-out call may still fail later: that failure is already answered.
      answer.catch(() => undefined);
      try {
        return await Promise.race([answer, timeout]);
      } finally {
        clearTimeout(timer);
      }
    };
    const answer = await this.client.withPolicy(attempt, {
      mapError: (err) =>
        sdkError(err, 'hubspot', {
          what: `${this.spec.name} (${what})`,
          credentialKey: 'source.connection.access_token',
          secrets: [...this.ctx.plan.secrets, this.settings.accessToken],
          context: { object: this.spec.name },
        }),
    });
    this.counts.pages++;
    this.settle(answer.headers);
    return answer;
  }

  /** The watermark from the first answer: HubSpot's clock minus the lag; reports the window. */
  private settle(headers: Record<string, string>): void {
    if (this.watermark !== undefined) return;
    const now = dateHeaderMs(headers) ?? this.ctx.runStartedAt.getTime();
    this.watermark = now - Math.round(this.lag * 1000);
    if (!this.incremental) return;
    const to = this.from === undefined || this.watermark > this.from ? isoOfMs(this.watermark) : undefined;
    const w: CursorWindow = {
      field: this.field,
      ...(this.from !== undefined ? { from: isoOfMs(this.from), fromInclusive: true } : {}),
      ...(to !== undefined ? { to } : {}),
      upper: 'exclusive',
      basis: `HubSpot's clock (Date header) minus lag_seconds (${this.lag})`,
    };
    this.ctx.reportWindow?.(w);
  }

  /** In the window `[from, watermark)` (a value that cannot be read goes on to validation, never dropped here). */
  private inWindow(ms: number | undefined): boolean {
    if (!this.incremental || ms === undefined) return true;
    return (this.from === undefined || ms >= this.from) && (this.watermark === undefined || ms < this.watermark);
  }

  /**
   * A paginator whose repeated token is retryable SOURCE_ERROR (exit 2):
   * the server broke its own cursor, a later run may find it mended, and
   * nothing of this run is committed.
   */
  private pager<Page>(what: string, next: (page: Page) => string | undefined): Paginator<Page> {
    return new Paginator<Page>({ next, what: `hubspot ${this.spec.name} (${what})`, disposition: 'retryable', context: { connector: 'hubspot', object: this.spec.name } });
  }

  /** Every row of this read. */
  async *rows(): AsyncGenerator<Record<string, unknown>> {
    if (this.spec.kind === 'owners') yield* this.ownerRows();
    else if (this.incremental) {
      if (this.settings.parallelWindows > 1 || this.resume !== undefined) yield* this.parallelSearchRows(this.settings.parallelWindows);
      else yield* this.searchRows();
      if (this.settings.archived && !this.stopped) yield* this.listRows(true);
    } else {
      yield* this.listRows(false);
      if (this.settings.archived) yield* this.listRows(true);
    }
    const c = this.counts;
    this.ctx.log.info(
      { event_type: 'hubspot_read', connector: 'hubspot', object: this.spec.name, rows: c.rows, archived: c.archived, api_pages: c.pages, tie_queries: c.tieQueries, repeated: c.repeated, batch_reads: c.batchReads, batch_missing: c.batchMissing },
      `hubspot ${this.spec.name}: ${c.rows} row(s)${c.archived > 0 ? `, ${c.archived} of them archived` : ''} in ${c.pages} request(s)`,
    );
  }

  private crmRow(o: SdkObject, deleted: boolean, where: Record<string, unknown>, associated?: Map<string, string[]>): Record<string, unknown> {
    const row: Record<string, unknown> = { ...(o.properties ?? {}), id: o.id, createdAt: o.createdAt, updatedAt: o.updatedAt, archived: o.archived ?? false, archivedAt: o.archivedAt ?? null, [DELETED_COLUMN]: deleted };
    if (this.settings.associations.length > 0) {
      const a: Record<string, string[]> = {};
      for (const t of this.settings.associations) {
        a[t] = associated ? (associated.get(`${t}:${o.id ?? ''}`) ?? []) : idsOf((o.associations?.[t]?.results ?? []).map((r) => String(r.id ?? '')).filter((x) => x !== ''));
      }
      row['associations'] = a;
    }
    this.counts.rows++;
    if (deleted) this.counts.archived++;
    return withLocation(row, { object: this.spec.name, id: String(o.id ?? ''), ...where });
  }

  /** The objects list (`archived`: only archived objects, as deletion rows; in an incremental run those archived in the window). */
  private async *listRows(archived: boolean): AsyncGenerator<Record<string, unknown>> {
    const what = `GET ${this.spec.path}${archived ? '?archived=true' : ''}`;
    const pager = this.pager<Answer<SdkPage<SdkObject>>>(what, (a) => a.data.paging?.next?.after);
    const assoc = this.settings.associations.length > 0 ? this.settings.associations : undefined;
    const wide = listPropertyChars(this.properties) > LIST_PROPERTY_CHARS;
    const listed = wide ? [ID_PROPERTY] : this.properties;
    while (pager.hasMore) {
      const after = pager.token as string | undefined;
      const page = await this.call(what, () => this.apis.objects.getPageWithHttpInfo(this.spec.name, LIST_LIMIT, after, listed, undefined, assoc, archived, SDK_CALL_OPTIONS) as Promise<Answer<SdkPage<SdkObject>>>);
      pager.advance(page);
      const results = page.data.results ?? [];
      for (const o of wide ? await this.withProperties(results, archived) : results) {
        if (archived && this.incremental && !this.inWindow(msOf(o.archivedAt))) continue;
        yield this.crmRow(o, archived, { page: pager.pages, ...(archived ? { archived: true } : {}) });
      }
    }
  }

  /**
   * A list page's objects with their properties from one batch read (the
   * list asked for ids only: see {@link LIST_PROPERTY_CHARS}); associations
   * stay those of the list. An object the batch read does not return was
   * archived in between: it is counted and logged, and the archived pass
   * (or the next run's) lands it as a deletion.
   */
  private async withProperties(objects: readonly SdkObject[], archived: boolean): Promise<SdkObject[]> {
    if (objects.length === 0) return [];
    const what = `POST ${this.spec.path}/batch/read`;
    const inputs = objects.map((o) => ({ id: String(o.id ?? '') }));
    const answer = await this.call(what, () =>
      this.apis.batch.readWithHttpInfo(this.spec.name, { inputs, properties: this.properties, propertiesWithHistory: [] }, archived, SDK_CALL_OPTIONS) as unknown as Promise<Answer<{ results?: SdkObject[] }>>,
    );
    this.counts.batchReads++;
    const byId = new Map((answer.data.results ?? []).map((o) => [String(o.id ?? ''), o]));
    const out: SdkObject[] = [];
    const missing: string[] = [];
    for (const o of objects) {
      const full = byId.get(String(o.id ?? ''));
      if (full === undefined) missing.push(String(o.id ?? ''));
      else out.push({ ...full, ...(o.associations !== undefined ? { associations: o.associations } : {}) });
    }
    if (missing.length > 0) {
      this.counts.batchMissing += missing.length;
      this.ctx.log.warn(
        { event_type: 'hubspot_batch_missing', connector: 'hubspot', object: this.spec.name, ids: missing.slice(0, 20), count: missing.length },
        `${missing.length} ${this.spec.name} listed but not returned by the batch read (archived in between; the archived pass lands them)`,
      );
    }
    return out;
  }

  /** One search query: the next page of `keyset`, with {@link searchProperties}. */
  private search(keyset: ModifiedKeyset): Promise<Answer<SdkPage<SdkObject>>> {
    const body = { ...keyset.request(), properties: this.searchProperties };
    return this.call(`POST ${this.spec.path}/search`, () => this.apis.search.doSearchWithHttpInfo(this.spec.name, body as never, SDK_CALL_OPTIONS) as Promise<Answer<SdkPage<SdkObject>>>);
  }

  /** A search page's records by id, and its hits (id and modified date, in answer order) for the keyset. */
  private hitsOf(results: readonly SdkObject[]): { byId: Map<string, SdkObject>; hits: Hit[] } {
    const byId = new Map<string, SdkObject>();
    const hits: Hit[] = results.map((o) => {
      const id = String(o.id ?? o.properties?.[ID_PROPERTY] ?? '');
      byId.set(id, o);
      return { id, modified: msOf(o.properties?.[this.field]) };
    });
    return { byId, hits };
  }

  /** The window through search (see keyset.ts). */
  private async *searchRows(): AsyncGenerator<Record<string, unknown>> {
    const keyset = new ModifiedKeyset(this.field, this.from, this.watermark);
    // The same query twice means the server ignores it (it would answer the same page for ever).
    const pager = this.pager<ModifiedKeyset>(`POST ${this.spec.path}/search`, (k) => (k.done ? undefined : k.token));
    while (!keyset.done) {
      const answer = await this.search(keyset);
      if (this.watermark !== undefined) keyset.setUpper(this.watermark);
      if (keyset.done) return;
      const results = answer.data.results ?? [];
      const { byId, hits } = this.hitsOf(results);
      const emit = keyset.advance(hits);
      this.counts.repeated += results.length - emit.length;
      this.counts.tieQueries = keyset.tieQueries;
      pager.advance(keyset);
      const associated = this.settings.associations.length > 0 ? await this.associatedIds(emit.map((h) => h.id)) : undefined;
      for (const h of emit) yield this.crmRow(byId.get(h.id)!, false, { page: keyset.pages, search: true }, associated);
    }
  }

  /**
   * The window through search in modified-date windows read at once
   * through the window pool (lib/window-pool.ts), every request through the
   * one limiter: it starts as one keyset over the whole window; a reader
   * that would idle splits a window that has read a page (its keyset keeps
   * about {@link PAGES_PER_SPLIT} pages above its position, sized by the
   * density it read, and the rest of its range goes to new keysets of that
   * size, the newest reaching up to its end). A window in tie mode does not
   * split. Windows an earlier run left (`hubspot_windows`) are read first,
   * then the new range.
   */
  private async *parallelSearchRows(n: number): AsyncGenerator<Record<string, unknown>> {
    const pool = new WindowPool<ModifiedWindow, Record<string, unknown>[]>(
      {
        read: (w) => this.readWindowPage(w),
        split: (w, parts) => this.splitWindow(w, parts),
        weight: (w) => {
          const at = w.keyset.position;
          const to = w.keyset.upper;
          if (at === undefined || to === undefined || w.firstAt === undefined || w.read === 0) return 0;
          return ((to - at) * w.read) / Math.max(1, at - w.firstAt);
        },
      },
      { concurrency: n },
    );
    this.pool = pool;
    const r = this.resume;
    if (r !== undefined) {
      for (const k of r.windows) pool.add(this.window(ModifiedKeyset.restore(this.field, k)));
      // The new range starts at the stopped run's watermark once this run's is known (its first answer).
      pool.add(this.window(new ModifiedKeyset(this.field, r.to, this.watermark)));
    } else {
      pool.add(this.window(new ModifiedKeyset(this.field, this.from, this.watermark)));
    }
    for await (const { page } of pool.pages()) {
      for (const row of page) {
        this.emitted++;
        yield row;
      }
    }
    this.ctx.log.info(
      { event_type: 'hubspot_windows', connector: 'hubspot', object: this.spec.name, windows: pool.splits + 1 + (r?.windows.length ?? 0), pages: pool.pagesRead, reader_waits_for_consumer: pool.heldFull },
      `hubspot ${this.spec.name}: ${pool.pagesRead} search page(s) in ${pool.splits + 1 + (r?.windows.length ?? 0)} window(s), ${n} at once`,
    );
    const f = pool.failure;
    if (f === undefined) return;
    if (this.emitted === 0) throw f.error;
    this.stopped = { error: f.error, pending: f.pending, to: this.watermark ?? r?.to ?? 0 };
    this.ctx.log.warn(
      { event_type: 'hubspot_windows_stopped', connector: 'hubspot', object: this.spec.name, windows_left: f.pending.length, rows: this.emitted },
      `hubspot ${this.spec.name}: a window failed; the ${this.emitted} row(s) read are kept and ${f.pending.length} window(s) are left for the next run`,
    );
  }

  private window(keyset: ModifiedKeyset): ModifiedWindow {
    return { keyset, read: 0, pager: this.pager<ModifiedKeyset>(`POST ${this.spec.path}/search`, (k) => (k.done ? undefined : k.token)) };
  }

  /** One search page of a window, as rows; a failure leaves the window's keyset where it was. */
  private async readWindowPage(w: ModifiedWindow): Promise<{ page: Record<string, unknown>[]; done: boolean }> {
    const before = w.keyset.snapshot();
    const fresh = w.keyset.upper === undefined;
    const answer = await this.search(w.keyset);
    // The first query of the run carries no upper bound yet: HubSpot's clock (its answer) sets it.
    if (fresh && this.watermark !== undefined) w.keyset.setUpper(this.watermark);
    if (w.keyset.done) return { page: [], done: true };
    const results = answer.data.results ?? [];
    const { byId, hits } = this.hitsOf(results);
    const emit = w.keyset.advance(hits);
    try {
      this.counts.repeated += results.length - emit.length;
      w.pager.advance(w.keyset);
      const associated = this.settings.associations.length > 0 ? await this.associatedIds(emit.map((h) => h.id)) : undefined;
      w.read += emit.length;
      if (w.firstAt === undefined) w.firstAt = emit.find((h) => h.modified !== undefined)?.modified;
      return { page: emit.map((h) => this.crmRow(byId.get(h.id)!, false, { page: w.keyset.pages, search: true }, associated)), done: w.keyset.done };
    } catch (err) {
      w.keyset = ModifiedKeyset.restore(this.field, before);
      throw err;
    }
  }

  /** Split the unread rest `[position, upper)` of a window that read a page (see {@link parallelSearchRows}). */
  private splitWindow(w: ModifiedWindow, parts: number): ModifiedWindow[] {
    const k = w.keyset;
    const at = k.position;
    const to = k.upper;
    if (at === undefined || to === undefined || k.tying || k.done || w.read === 0 || w.firstAt === undefined) return [];
    const perPage = Math.max(1, at - w.firstAt) / Math.max(1, w.read / SEARCH_LIMIT);
    const span = Math.max(1, Math.ceil(PAGES_PER_SPLIT * perPage));
    const hi = Math.max(at + 1, Math.min(to, at + span));
    if (hi >= to || !k.narrow(hi)) return [];
    const out: ModifiedWindow[] = [];
    let lo = hi;
    for (let i = 1; i <= parts && lo < to; i++) {
      const next = i === parts ? to : Math.min(to, lo + span);
      out.push(this.window(new ModifiedKeyset(this.field, lo, next)));
      lo = next;
    }
    return out;
  }

  /** `type:id` → associated ids, one v4 batch read per association type (search answers carry none). */
  private async associatedIds(ids: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (ids.length === 0) return out;
    for (const t of this.settings.associations) {
      const what = `POST /crm/v4/associations/${this.spec.name}/${t}/batch/read`;
      const answer = await this.call(what, () => this.apis.associations.getPageWithHttpInfo(this.spec.name, t, { inputs: ids.map((id) => ({ id })) }, SDK_CALL_OPTIONS) as unknown as Promise<Answer<{ results?: { _from?: { id?: string }; to?: { toObjectId?: unknown }[] }[] }>>);
      for (const r of answer.data.results ?? []) {
        const from = String(r._from?.id ?? '');
        out.set(`${t}:${from}`, idsOf((r.to ?? []).map((x) => String(x.toObjectId ?? '')).filter((x) => x !== '')));
      }
    }
    return out;
  }

  /** Owners: the whole list (and archived owners with `source.archived`); incremental keeps those updated in the window. */
  private async *ownerRows(): AsyncGenerator<Record<string, unknown>> {
    for (const archived of this.settings.archived ? [false, true] : [false]) {
      const what = `GET ${this.spec.path}${archived ? '?archived=true' : ''}`;
      const pager = this.pager<Answer<SdkPage<Record<string, unknown>>>>(what, (a) => a.data.paging?.next?.after);
      while (pager.hasMore) {
        const after = pager.token as string | undefined;
        const page = await this.call(what, () => this.apis.owners.getPageWithHttpInfo(undefined, after, LIST_LIMIT, archived, SDK_CALL_OPTIONS) as unknown as Promise<Answer<SdkPage<Record<string, unknown>>>>);
        pager.advance(page);
        for (const o of page.data.results ?? []) {
          if (!this.inWindow(msOf(o['updatedAt']))) continue;
          this.counts.rows++;
          if (archived) this.counts.archived++;
          yield withLocation({ ...o, archived: o['archived'] ?? archived, [DELETED_COLUMN]: archived }, { object: this.spec.name, id: String(o['id'] ?? ''), page: pager.pages });
        }
      }
    }
  }
}

/** The record stream of one object. */
export function readHubSpot(ctx: ReadContext, settings: HubSpotSettings, spec: HubSpotObjectSpec): SourceStream {
  const agent = hubspotAgent(settings);
  let r: HubSpotObjectRead;
  try {
    r = new HubSpotObjectRead(ctx, settings, spec, agent);
  } catch (err) {
    agent.destroy();
    throw err;
  }
  const stream = Readable.from(r.rows(), { objectMode: true, highWaterMark: LIST_LIMIT }) as SourceStream;
  // The read's connections close with it: ended, failed or destroyed.
  stream.once('close', () => {
    r.closed = true;
    agent.destroy();
  });
  stream.checkpoint = () => r.checkpoint();
  stream.incomplete = () => r.incomplete();
  return stream;
}

/** The windows a stopped run left, if they continue from `from` (the saved cursor; undefined: from the beginning). */
function resumeOf(s: HubSpotWindowsState | undefined, from: number | undefined, object: string): HubSpotWindowsState | undefined {
  if (s === undefined || !Array.isArray(s.windows) || typeof s.to !== 'number') return undefined;
  if (from !== undefined && s.windows.some((w) => w.at === undefined || w.at < from)) {
    throw new DativoError('STATE_CORRUPT', `hubspot ${object}: the saved search windows start before the saved cursor (${isoOfMs(from)}); the state was edited or mixed up`, { context: { connector: 'hubspot', object } });
  }
  return s;
}
