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
import { cursorFilter, type CursorFilter } from '../sql/cursor.js';
import type { SqlConnectionSettings, TableSpec } from '../sql/options.js';
import { isoToSqlDateTime } from '../sql/time.js';
import { mapMysqlError } from './errors.js';
import { createPool, endPool, getConnection, prepareSession, quoteIdent, resolveSource, run } from './session.js';
import { compileRowBuilder, converterFor, type MysqlField } from './types.js';

/** The SELECT of one read and its parameters. */
export interface MysqlReadSql {
  sql: string;
  values: unknown[];
}

/**
 * The cursor bound as MySQL compares it exactly: timestamps as
 * `YYYY-MM-DD HH:MM:SS.ffffff` (UTC session), integers as bigint (a string
 * would be compared as a double and lose digits beyond 2^53).
 */
export function boundValue(filter: Extract<CursorFilter, { mode: 'from' }>): unknown {
  switch (filter.kind) {
    case 'timestamp': {
      const us = parseTimestampMicros(filter.value);
      return typeof us === 'string' ? filter.value : isoToSqlDateTime(formatTimestampMicros(us));
    }
    case 'integer':
      return /^-?\d+$/.test(filter.value) ? BigInt(filter.value) : filter.value;
    default:
      return filter.value;
  }
}

/** Build the SELECT of one read (see {@link boundValue}). */
export function buildSelect(from: string, columns: readonly string[], filter: CursorFilter): MysqlReadSql {
  const base = `SELECT ${columns.map(quoteIdent).join(', ')} FROM ${from}`;
  if (filter.mode === 'all') return { sql: base, values: [] };
  const c = quoteIdent(filter.field);
  const cond = filter.includeNulls ? `(${c} >= ? OR ${c} IS NULL)` : `${c} >= ?`;
  return { sql: `${base} WHERE ${cond}`, values: [boundValue(filter)] };
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
    // One snapshot for the whole table: a row updated during the scan is read
    // as it was at the start and picked up by the next run, never missed.
    await run(conn, 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await run(conn, 'START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');

    const filter = cursorFilter(ctx, table);
    const cursorField = filter.field;
    const src = await resolveSource(conn, table);
    const columns = selectColumns(ctx.plan.asset, src.fields.map((f) => f.name), table, {
      connector: 'mysql',
      ...(cursorField !== undefined ? { cursorField } : {}),
      ...(table.primaryKey ? { primaryKey: table.primaryKey } : {}),
      log,
    });

    if (filter.mode === 'from' && !filter.includeNulls) {
      const r = await run<{ n: string | number }[]>(conn, `SELECT COUNT(*) AS n FROM ${src.from} WHERE ${quoteIdent(filter.field)} IS NULL`);
      const n = Number(r.rows[0]?.n ?? 0);
      if (n > 0) {
        log.warn(
          { event_type: 'cursor_nulls_skipped', count: n, cursor_field: filter.field, table: sourceLabel(table) },
          `${n} row(s) of ${sourceLabel(table)} have a NULL ${filter.field}: they were read by the first run only and are not re-read incrementally`,
        );
      }
    }

    const q = buildSelect(src.from, columns, filter);
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
