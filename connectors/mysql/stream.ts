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
import type { Pool, PoolConnection } from 'mysql2';
import { formatTimestampMicros, parseTimestampMicros } from '../../lib/records/time.js';
import { selectColumns } from '../sql/columns.js';
import { SqlTableStream } from '../sql/stream.js';
import {
  clockMicros,
  cursorFilter,
  windowWhere,
  type CursorKind,
  type DbClock,
  type ReadWindow,
  type WindowDialect,
} from '../sql/cursor.js';
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
export class MysqlSourceStream extends SqlTableStream {
  protected readonly connector = 'mysql';
  private pool: Pool | undefined;
  private conn: PoolConnection | undefined;
  private paused = false;
  private done = false;
  private failed = false;

  protected mapError(err: unknown): Error {
    return mapMysqlError(err, this.errorContext());
  }

  /** Server thread id of the streaming connection (for tests and logs). */
  get threadId(): number | undefined {
    return this.conn?.threadId ?? undefined;
  }

  protected async open(): Promise<void> {
    const { ctx, table } = this;
    const log = ctx.log;
    this.pool = createPool(this.settings, 1);
    const conn = await getConnection(this.pool);
    this.conn = conn;
    conn.on('error', (err) => this.fail(err));
    await prepareSession(conn, this.settings);
    // The clock before the snapshot: every row committed before the instant is in it.
    const clock = this.incremental ? await databaseClock(conn) : undefined;
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

    const window = clock
      ? await this.planWindow(filter, clock, {
          dialect: MYSQL_WINDOW,
          from: src.from,
          query: async (sql, values) => (await run<Record<string, unknown>[]>(conn, sql, values)).rows,
          // TIMESTAMP is stored in UTC; DATETIME and DATE are wall-clock values.
          naive: src.fields.find((f) => f.name === filter.field)?.columnType !== T.TIMESTAMP,
          maxOf: (c) => `MAX(${c})`,
        })
      : undefined;

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

  private fail(err: unknown): void {
    if (this.failed || this.destroyed) return;
    this.failed = true;
    this.destroy(this.mapError(err));
  }

  override _read(): void {
    if (this.paused && this.conn) {
      this.paused = false;
      this.conn.resume();
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.detachAbort();
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
