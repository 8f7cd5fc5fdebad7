/**
 * What the Postgres and MySQL record streams share: an object-mode Readable
 * of one table that opens its connection in `_construct`, fails with
 * ABORTED when the run's signal fires, and plans its cursor window the same
 * way (watermark from the database clock for timestamps and dates, MAX of
 * the cursor in the snapshot for the other kinds, NULL cursors counted and
 * reported). Each driver keeps its own fetch loop and backpressure.
 */
import { Readable } from 'node:stream';
import type { ReadContext } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import { sourceLabel } from './columns.js';
import { clockBound, filterKind, readWindow, windowCounts, windowCountSql, type CursorFilter, type DbClock, type ReadWindow, type WindowDialect } from './cursor.js';
import type { SqlConnectionSettings, TableSpec } from './options.js';
import { SOURCE_BUFFER_ROWS } from './rows.js';

/** Runs one query on the stream's connection, rows as objects. */
export type SqlRowsQuery = (sql: string, values: unknown[]) => Promise<Record<string, unknown>[]>;

/** How a driver plans its window: its dialect, how to query, and what it knows of the cursor column. */
export interface WindowPlan {
  dialect: WindowDialect;
  /** The table or `(query) AS q` the rows come from. */
  from: string;
  query: SqlRowsQuery;
  /** The cursor column holds wall-clock time (no zone): its bound is the clock in the database's zone. */
  naive: boolean;
  /** `MAX(col)` as the driver reads it back as text or a value `String()` renders exactly. */
  maxOf(column: string): string;
}

export abstract class SqlTableStream extends Readable {
  protected readonly ctx: ReadContext;
  protected readonly settings: SqlConnectionSettings;
  protected readonly table: TableSpec;
  private readonly onAbort = (): void => {
    this.destroy(new DativoError('ABORTED', 'read aborted', { context: this.errorContext() }));
  };

  constructor(ctx: ReadContext, settings: SqlConnectionSettings, table: TableSpec) {
    // Small on purpose (see SOURCE_BUFFER_ROWS); the drivers pause their
    // sockets or hold fetched batches, not the stream's buffer.
    super({ objectMode: true, highWaterMark: SOURCE_BUFFER_ROWS });
    this.ctx = ctx;
    this.settings = settings;
    this.table = table;
  }

  /** `postgres` or `mysql`, for error context. */
  protected abstract readonly connector: string;
  /** Connect, take the snapshot, plan the window and start the query. */
  protected abstract open(): Promise<void>;
  /** The driver's error as a DativoError with this stream's context. */
  protected abstract mapError(err: unknown): Error;

  protected errorContext(): Record<string, unknown> {
    return { connector: this.connector, object: this.table.object, table: sourceLabel(this.table) };
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.ctx.signal.aborted) {
      callback(new DativoError('ABORTED', 'read aborted before start', { context: this.errorContext() }));
      return;
    }
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    this.open().then(
      () => callback(),
      (err: unknown) => callback(this.mapError(err)),
    );
  }

  /** For `_destroy`: the run's signal no longer concerns this stream. */
  protected detachAbort(): void {
    this.ctx.signal.removeEventListener('abort', this.onAbort);
  }

  /** This read has a cursor window (an incremental run), so the database clock is read before the snapshot. */
  protected get incremental(): boolean {
    const { ctx } = this;
    const inc = ctx.plan.source.incremental;
    return !ctx.fullRefresh && ctx.plan.syncMode !== 'full_refresh' && inc !== undefined && inc.strategy !== 'file_modified';
  }

  /**
   * The window of this read, inside the snapshot: watermark from the
   * database clock (timestamps, dates) or MAX(cursor); then the rows in it
   * are counted, NULL cursors that an incremental read skips are logged, and
   * the window is reported to the run.
   */
  protected async planWindow(filter: CursorFilter, clock: DbClock, plan: WindowPlan): Promise<ReadWindow | undefined> {
    const { ctx, table } = this;
    const kind = filterKind(ctx, filter);
    if (kind === undefined || filter.field === undefined) return undefined;
    let window: ReadWindow | undefined;
    if (clockBound(kind)) {
      window = readWindow(filter, kind, { clock, naive: plan.naive, lagSeconds: ctx.plan.source.incremental?.lagSeconds ?? 0 });
    } else {
      const d = plan.dialect;
      const c = d.quote(filter.field);
      const from = filter.mode === 'from';
      const where = from ? ` WHERE ${c} ${filter.inclusive ? '>=' : '>'} ${d.param(1)}` : '';
      const rows = await plan.query(`SELECT ${plan.maxOf(c)} AS max FROM ${plan.from}${where}`, from ? [d.bind(kind, filter.value)] : []);
      const max = rows[0]?.max;
      window = readWindow(filter, kind, { max: max === null || max === undefined ? null : String(max) });
    }
    if (window === undefined) return undefined;
    const count = windowCountSql(window, plan.from, plan.dialect);
    const nulls = windowCounts(window, (await plan.query(count.sql, count.values))[0]);
    if (!window.includeNulls && nulls > 0) {
      ctx.log.warn(
        { event_type: 'cursor_nulls_skipped', count: nulls, cursor_field: window.field, table: sourceLabel(table) },
        `${nulls} row(s) of ${sourceLabel(table)} have a NULL ${window.field}: they were read by the first run only and are not re-read incrementally`,
      );
    }
    ctx.reportWindow?.(window.report);
    return window;
  }
}
