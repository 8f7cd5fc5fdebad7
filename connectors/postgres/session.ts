/**
 * Postgres sessions and catalog look-ups shared by read, check and discover:
 * pool configuration, session settings, resolving a table entry into a FROM
 * clause with its column list, user types, primary keys and NOT NULL flags.
 */
import pg from 'pg';
import { DativoError } from '../../lib/errors.js';
import type { SqlConnectionSettings } from '../sql/options.js';
import type { TableSpec } from '../sql/options.js';
import { sourceLabel } from '../sql/columns.js';
import { isKnownOid, type UserType } from './types.js';

/** Quote a Postgres identifier: `"…"` with embedded quotes doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `"schema"."table"` or `"table"`. */
export function qualifiedName(t: TableSpec): string {
  return t.schema !== undefined ? `${quoteIdent(t.schema)}.${quoteIdent(t.table!)}` : quoteIdent(t.table!);
}

/** pg Pool settings for one connector use: at most `max` connections, never idle-kept. */
export function poolConfig(s: SqlConnectionSettings, max = 1): pg.PoolConfig {
  const ssl: pg.PoolConfig['ssl'] =
    s.ssl === false ? false : s.ssl === true ? { rejectUnauthorized: true } : { ...s.ssl, rejectUnauthorized: s.ssl.rejectUnauthorized ?? true };
  return {
    host: s.host,
    port: s.port,
    database: s.database,
    user: s.user,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ssl,
    application_name: s.applicationName,
    connectionTimeoutMillis: s.connectTimeoutMs,
    ...(s.statementTimeoutMs !== undefined ? { statement_timeout: s.statementTimeoutMs } : {}),
    max,
    idleTimeoutMillis: 1000,
    allowExitOnIdle: true,
  };
}

/**
 * Session settings every read relies on: UTC so that `timestamptz` text
 * carries `+00` and `timestamp` comparisons with bound UTC values are
 * exact; ISO dates; hex bytea. One round trip.
 */
export const SESSION_SQL = "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET bytea_output = 'hex'; SET IntervalStyle = 'postgres'";

/** A resolved table entry. */
export interface ResolvedSource {
  /** SQL after FROM: `"s"."t"` or `(<query>) q`. */
  from: string;
  /** Columns as the server describes them, in order. */
  fields: pg.FieldDef[];
  /** pg_class oid of the table (undefined for a query). */
  tableOid?: number;
}

/**
 * Resolve a table entry: check the table exists (SOURCE_NOT_FOUND naming it)
 * and describe its columns with a `LIMIT 0` query, which works the same for
 * tables, views and custom queries.
 */
export async function resolveSource(client: pg.ClientBase, t: TableSpec): Promise<ResolvedSource> {
  if (t.query !== undefined) {
    const from = `(${t.query}) q`;
    const r = await client.query({ text: `SELECT * FROM ${from} LIMIT 0`, rowMode: 'array' });
    return { from, fields: r.fields };
  }
  const name = qualifiedName(t);
  const found = await client.query<{ oid: number | null }>('SELECT to_regclass($1)::oid::int AS oid', [name]);
  const oid = found.rows[0]?.oid ?? null;
  if (oid === null) {
    throw new DativoError('SOURCE_NOT_FOUND', `postgres: table ${sourceLabel(t)} does not exist (or is not visible to this user)`, {
      context: { connector: 'postgres', object: t.object, table: sourceLabel(t) },
    });
  }
  const r = await client.query({ text: `SELECT * FROM ${name} LIMIT 0`, rowMode: 'array' });
  return { from: name, fields: r.fields, tableOid: oid };
}

/** pg_type facts of the non-built-in types among `oids` (enums, user arrays, extension types). */
export async function lookupUserTypes(client: pg.ClientBase, oids: readonly number[]): Promise<Map<number, UserType>> {
  const unknown = [...new Set(oids.filter((o) => !isKnownOid(o)))];
  const out = new Map<number, UserType>();
  if (unknown.length === 0) return out;
  const r = await client.query<{ oid: number; typtype: string; typcategory: string; typelem: number }>(
    'SELECT oid::int AS oid, typtype, typcategory, typelem::int AS typelem FROM pg_type WHERE oid = ANY($1::oid[])',
    [unknown],
  );
  for (const row of r.rows) out.set(row.oid, row);
  return out;
}

/** Primary key columns of a table, in key order (empty when it has none). */
export async function primaryKeyOf(client: pg.ClientBase, tableOid: number): Promise<string[]> {
  const r = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::oid AND i.indisprimary
      ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [tableOid],
  );
  return r.rows.map((row) => row.attname);
}

/** Columns (by `tableID:columnID`) declared NOT NULL, for the fields that come straight from a table. */
export async function notNullColumns(client: pg.ClientBase, fields: readonly pg.FieldDef[]): Promise<Set<string>> {
  const rels = [...new Set(fields.filter((f) => f.tableID > 0).map((f) => f.tableID))];
  const out = new Set<string>();
  if (rels.length === 0) return out;
  const r = await client.query<{ rel: number; num: number }>(
    'SELECT attrelid::int AS rel, attnum::int AS num FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND attnotnull',
    [rels],
  );
  for (const row of r.rows) out.add(`${row.rel}:${row.num}`);
  return out;
}
