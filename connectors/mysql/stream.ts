/**
 * The MySQL/MariaDB record stream: one table (or custom query) streamed
 * row by row (text protocol, unbuffered) inside one consistent-snapshot
 * read-only transaction.
 *
 * Backpressure: when the buffer is full (SOURCE_BUFFER_ROWS) the
 * connection's socket is paused (the server blocks on its send buffer) and
 * resumed from `_read`. The rows come as arrays and a compiled builder turns
 * them into records.
 */
import { Readable } from 'node:stream';
import type { Pool, PoolConnection } from 'mysql2';
import { DativoError } from '../../lib/errors.js';
import type { ReadContext } from '../../lib/connector.js';
import { formatTimestampMicros, parseTimestampMicros } from '../../lib/records/time.js';
import { selectColumns, sourceLabel } from '../sql/columns.js';
import { SOURCE_BUFFER_ROWS } from '../sql/rows.js';
import {
  clockBound,
  clockMicros,
  cursorFilter,
  filterKind,
  readWindow,
  windowCounts,
  windowCountSql,
  windowWhere,
  type CursorFilter,
  type CursorKind,
  type DbClock,
  type ReadWindow,
  type WindowDialect,
} from '../sql/cursor.js';
import type { SqlConnectionSettings, TableSpec } from '../sql/options.js';
import { isoToSqlDateTime } from '../sql/time.js';
import { mapMysqlError } from './errors.js';
import { createPool, endPool, getConnection, prepareSession, quoteIdent, resolveSource, run } from './session.js';
import { compileRowBuilder, converterFor, T, type MysqlField } from './types.js';

/** The SELECT of one read and its parameters. */
export interface MysqlReadSql {
  sql: string;
  values: unknown[];
}

/**
 * A cursor bound as MySQL compares it exactly: timestamps as
 * `YYYY-MM-DD HH:MM:SS.ffffff` (UTC session), integers as bigint (a string
 * would be compared as a double and lose digits beyond 2^53).
 */
export function boundValue(kind: CursorKind, value: string): unknown {
  switch (kind) {
    case 'timestamp': {
      const us = parseTimestampMicros(value);
      return typeof us === 'string' ? value : isoToSqlDateTime(formatTimestampMicros(us));
    }
    case 'integer':
      return /^-?\d+$/.test(value) ? BigInt(value) : value;
    default:
      return value;
  }
}

/** Window SQL for MySQL/MariaDB: `?` parameters bound by {@link boundValue}. */
export const MYSQL_WINDOW: WindowDialect = {
  quote: quoteIdent,
  param: () => '?',
  bind: boundValue,
  countIf: (cond) => `COALESCE(SUM(${cond}), 0)`,
};

const CANONICAL_TS = `'%Y-%m-%dT%H:%i:%s.%fZ'`;

/**
 * The database clock: UTC_TIMESTAMP(6) and the same instant in the server's
 * default time zone (`@@global.time_zone`, what a writer's session gets
 * unless it sets its own; NULL when the zone is not known to the server).
 * Read before the snapshot is taken.
 */
async function databaseClock(conn: PoolConnection): Promise<DbClock> {
  const r = await run<DbClock[]>(
    conn,
    `SELECT DATE_FORMAT(UTC_TIMESTAMP(6), ${CANONICAL_TS}) AS utc, DATE_FORMAT(CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone), ${CANONICAL_TS}) AS local`,
  );
  return r.rows[0]!;
}

/** Build the SELECT of one read, filtered by the cursor window (everything without one). */
export function buildSelect(from: string, columns: readonly string[], window: ReadWindow | undefined): MysqlReadSql {
  const base = `SELECT ${columns.map(quoteIdent).join(', ')} FROM ${from}`;
  if (window === undefined) return { sql: base, values: [] };
  const w = windowWhere(window, MYSQL_WINDOW);
  return { sql: `${base} WHERE ${w.cond}`, values: w.values };
}

/** Object-mode Readable of one MySQL table; see the module comment. */
export class MysqlSourceStream extends Readable {
  private readonly ctx: ReadContext;
  private readonly settings: SqlConnectionSettings;
  private readonly table: TableSpec;
  private pool: Pool | undefined;
  private conn: PoolConnection | undefined;
  private paused = false;
  private done = false;
  private failed = false;
  private readonly onAbort = (): void => {
    this.destroy(new DativoError('ABORTED', 'read aborted', { context: this.errorContext() }));
  };

  constructor(ctx: ReadContext, settings: SqlConnectionSettings, table: TableSpec) {
    super({ objectMode: true, highWaterMark: SOURCE_BUFFER_ROWS });
    this.ctx = ctx;
    this.settings = settings;
    this.table = table;
  }

  private errorContext(): Record<string, unknown> {
    return { connector: 'mysql', object: this.table.object, table: sourceLabel(this.table) };
  }

  /** Server thread id of the streaming connection (for tests and logs). */
  get threadId(): number | undefined {
    return this.conn?.threadId ?? undefined;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    if (this.ctx.signal.aborted) {
      callback(new DativoError('ABORTED', 'read aborted before start', { context: this.errorContext() }));
      return;
    }
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    this.open().then(
      () => callback(),
      (err: unknown) => callback(mapMysqlError(err, this.errorContext())),
    );
  }

  private async open(): Promise<void> {
    const { ctx, table } = this;
    const log = ctx.log;
    this.pool = createPool(this.settings, 1);
    const conn = await getConnection(this.pool);
    this.conn = conn;
    conn.on('error', (err) => this.fail(err));
    await prepareSession(conn, this.settings);
    const incremental = !ctx.fullRefresh && ctx.plan.syncMode !== 'full_refresh' && ctx.plan.source.incremental !== undefined && ctx.plan.source.incremental.strategy !== 'file_modified';
    // The clock before the snapshot: every row committed before the instant is in it.
    const clock = incremental ? await databaseClock(conn) : undefined;
    // One snapshot for the whole table: a row updated during the scan is read
    // as it was at the start and picked up by the next run, never missed.
    await run(conn, 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await run(conn, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');

    const filter = cursorFilter(ctx, table, clock ? clockMicros(clock, false) : undefined);
    const cursorField = filter.field;
    const src = await resolveSource(conn, table);
    const columns = selectColumns(ctx.plan.asset, src.fields.map((f) => f.name), table, {
      connector: 'mysql',
      ...(cursorField !== undefined ? { cursorField } : {}),
      ...(table.primaryKey ? { primaryKey: table.primaryKey } : {}),
      log,
    });

    const window = clock ? await this.window(conn, src.from, src.fields, filter, clock) : undefined;
    if (window) {
      const count = windowCountSql(window, src.from, MYSQL_WINDOW);
      const r = await run<Record<string, unknown>[]>(conn, count.sql, count.values);
      const nulls = windowCounts(window, r.rows[0]);
      if (!window.includeNulls && nulls > 0) {
        log.warn(
          { event_type: 'cursor_nulls_skipped', count: nulls, cursor_field: window.field, table: sourceLabel(table) },
          `${nulls} row(s) of ${sourceLabel(table)} have a NULL ${window.field}: they were read by the first run only and are not re-read incrementally`,
        );
      }
      ctx.reportWindow?.(window.report);
    }

    const q = buildSelect(src.from, columns, window);
    log.debug({ event_type: 'source_query', sql: q.sql, params: q.values.map(String) }, 'mysql query');
    const kinds = new Map(ctx.plan.asset.fields.map((f) => [f.name, f.type.kind]));
    let build: ((a: unknown[]) => Record<string, unknown>) | undefined;
    const query = conn.query({ sql: q.sql, values: q.values, rowsAsArray: true });
    query.on('fields', (fields: MysqlField[]) => {
      build = compileRowBuilder(
        fields.map((f) => f.name),
        fields.map((f) => converterFor(f, kinds.get(f.name))),
      );
    });
    query.on('result', (row: unknown) => {
      if (this.failed || this.destroyed) return;
      if (!this.push(build!(row as unknown[]))) {
        this.paused = true;
        conn.pause();
      }
    });
    query.on('error', (err: Error) => this.fail(err));
    query.on('end', () => {
      if (this.failed || this.destroyed) return;
      this.done = true;
      run(conn, 'COMMIT').then(
        () => this.push(null),
        (err: unknown) => this.fail(err),
      );
    });
  }

  /** The window of this read: watermark from the database clock (timestamps, dates) or MAX(cursor) in the snapshot. */
  private async window(conn: PoolConnection, from: string, fields: MysqlField[], filter: CursorFilter, clock: DbClock): Promise<ReadWindow | undefined> {
    const kind = filterKind(this.ctx, filter);
    if (kind === undefined || filter.field === undefined) return undefined;
    if (clockBound(kind)) {
      // TIMESTAMP is stored in UTC; DATETIME and DATE are wall-clock values.
      const type = fields.find((f) => f.name === filter.field)?.columnType;
      return readWindow(filter, kind, { clock, naive: type !== T.TIMESTAMP, lagSeconds: this.ctx.plan.source.incremental?.lagSeconds ?? 0 });
    }
    const c = quoteIdent(filter.field);
    const where = filter.mode === 'from' ? ` WHERE ${c} ${filter.inclusive ? '>=' : '>'} ?` : '';
    const r = await run<{ max: unknown }[]>(conn, `SELECT MAX(${c}) AS max FROM ${from}${where}`, filter.mode === 'from' ? [boundValue(kind, filter.value)] : []);
    const max = r.rows[0]?.max;
    return readWindow(filter, kind, { max: max === null || max === undefined ? null : String(max) });
  }

  private fail(err: unknown): void {
    if (this.failed || this.destroyed) return;
    this.failed = true;
    this.destroy(mapMysqlError(err, this.errorContext()));
  }

  override _read(): void {
    if (this.paused && this.conn) {
      this.paused = false;
      this.conn.resume();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    const conn = this.conn;
    const pool = this.pool;
    this.conn = undefined;
    this.pool = undefined;
    if (conn) {
      // A clean end returns the connection; otherwise the socket is closed,
      // which is what stops the server streaming the rest of the result.
      if (error === null && this.done) conn.release();
      else conn.destroy();
    }
    const end = pool ? endPool(pool) : Promise.resolve();
    end.then(() => callback(error));
  }
}
