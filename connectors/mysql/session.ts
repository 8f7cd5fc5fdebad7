/**
 * MySQL/MariaDB sessions and catalog look-ups shared by read, check and
 * discover: pool options, session settings, resolving a table entry into a
 * FROM clause with its column metadata, primary keys, column facts.
 */
import mysql from 'mysql2';
import type { Pool, PoolConnection, PoolOptions } from 'mysql2';
import { DativoError } from '../../lib/errors.js';
import type { SqlConnectionSettings, TableSpec } from '../sql/options.js';
import { sourceLabel } from '../sql/columns.js';
import type { ColumnInfo, MysqlField } from './types.js';

/** Quote a MySQL identifier: `` `…` `` with embedded backticks doubled. */
export function quoteIdent(name: string): string {
  return '`' + name.replace(/`/g, '``') + '`';
}

/** `` `db`.`table` `` or `` `table` ``. */
export function qualifiedName(t: TableSpec): string {
  return t.schema !== undefined ? `${quoteIdent(t.schema)}.${quoteIdent(t.table!)}` : quoteIdent(t.table!);
}

/** mysql2 pool options: exact values (no Date, no float for BIGINT/DECIMAL, JSON as text), utf8mb4. */
export function poolOptions(s: SqlConnectionSettings, max = 1): PoolOptions {
  const ssl: PoolOptions['ssl'] =
    s.ssl === false ? undefined : s.ssl === true ? { rejectUnauthorized: true } : { ...s.ssl, rejectUnauthorized: s.ssl.rejectUnauthorized ?? true };
  return {
    host: s.host,
    port: s.port,
    user: s.user,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(s.database !== '' ? { database: s.database } : {}),
    ...(ssl !== undefined ? { ssl } : {}),
    connectTimeout: s.connectTimeoutMs,
    connectionLimit: max,
    maxIdle: 0,
    idleTimeout: 1000,
    charset: 'UTF8MB4_GENERAL_CI',
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    dateStrings: true,
    jsonStrings: true,
    timezone: 'Z',
    connectAttributes: { program_name: s.applicationName },
  };
}

/** Run one statement on a connection. */
export function run<T = unknown>(conn: PoolConnection, sql: string, values: unknown[] = []): Promise<{ rows: T; fields: MysqlField[] }> {
  return new Promise((resolve, reject) => {
    conn.query({ sql, values }, (err, rows, fields) => {
      if (err) reject(err);
      else resolve({ rows: rows as T, fields: (fields ?? []) as unknown as MysqlField[] });
    });
  });
}

/** Take a connection from the pool. */
export function getConnection(pool: Pool): Promise<PoolConnection> {
  return new Promise((resolve, reject) => pool.getConnection((err, conn) => (err ? reject(err) : resolve(conn))));
}

/** Close a pool (waiting for its sockets to end). */
export function endPool(pool: Pool): Promise<void> {
  return new Promise((resolve) => pool.end(() => resolve()));
}

/** A new pool for these settings. */
export function createPool(s: SqlConnectionSettings, max = 1): Pool {
  return mysql.createPool(poolOptions(s, max));
}

/**
 * Session settings every read relies on: UTC, so TIMESTAMP values arrive in
 * UTC and bound cursor values compare in UTC; the statement timeout, if any
 * (MariaDB `max_statement_time` in seconds, MySQL `max_execution_time` in ms).
 */
export async function prepareSession(conn: PoolConnection, s: SqlConnectionSettings): Promise<void> {
  await run(conn, "SET time_zone = '+00:00'");
  if (s.statementTimeoutMs !== undefined) {
    try {
      await run(conn, 'SET SESSION max_statement_time = ?', [s.statementTimeoutMs / 1000]);
    } catch {
      await run(conn, 'SET SESSION max_execution_time = ?', [s.statementTimeoutMs]);
    }
  }
}

/** A resolved table entry. */
export interface ResolvedSource {
  /** SQL after FROM: `` `db`.`t` `` or `(<query>) q`. */
  from: string;
  fields: MysqlField[];
}

/**
 * Describe a table entry's columns with a `LIMIT 0` query (tables, views and
 * custom queries alike). A missing table fails with ER_NO_SUCH_TABLE, which
 * maps to SOURCE_NOT_FOUND naming it.
 */
export async function resolveSource(conn: PoolConnection, t: TableSpec): Promise<ResolvedSource> {
  const from = t.query !== undefined ? `(${t.query}) q` : qualifiedName(t);
  try {
    const r = await run(conn, `SELECT * FROM ${from} LIMIT 0`);
    return { from, fields: r.fields };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ER_NO_SUCH_TABLE' && t.table !== undefined) {
      throw new DativoError('SOURCE_NOT_FOUND', `mysql: table ${sourceLabel(t)} does not exist`, {
        cause: err,
        context: { connector: 'mysql', object: t.object, table: sourceLabel(t) },
      });
    }
    throw err;
  }
}

/** Primary key columns of a table in key order (empty when none). */
export async function primaryKeyOf(conn: PoolConnection, t: TableSpec): Promise<string[]> {
  if (t.table === undefined) return [];
  const r = await run<{ c: string }[]>(
    conn,
    `SELECT COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE
      WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY'
      ORDER BY ORDINAL_POSITION`,
    [t.schema ?? null, t.table],
  );
  return r.rows.map((row) => row.c);
}

/** Column facts of a table from information_schema.COLUMNS (empty for a query). */
export async function columnInfo(conn: PoolConnection, t: TableSpec): Promise<Map<string, ColumnInfo>> {
  const out = new Map<string, ColumnInfo>();
  if (t.table === undefined) return out;
  const r = await run<{ name: string; dataType: string; columnType: string; nullable: string; precision: number | string | null; scale: number | string | null }[]>(
    conn,
    `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType, IS_NULLABLE AS nullable,
            NUMERIC_PRECISION AS \`precision\`, NUMERIC_SCALE AS scale
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?
      ORDER BY ORDINAL_POSITION`,
    [t.schema ?? null, t.table],
  );
  for (const row of r.rows) {
    out.set(row.name, {
      name: row.name,
      dataType: row.dataType,
      columnType: row.columnType,
      nullable: row.nullable === 'YES',
      precision: row.precision === null ? null : Number(row.precision),
      scale: row.scale === null ? null : Number(row.scale),
    });
  }
  return out;
}
