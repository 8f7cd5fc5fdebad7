/**
 * What the parts that keep their own data in Postgres share (the SQL catalog,
 * the Postgres state store, the advisory job lock): how a URL becomes a `pg`
 * connection string and which errors mean "the database could not be reached".
 */
import { transientCodeOf } from './errors.js';

/** `postgres+psycopg2://…` (SQLAlchemy spellings) → `postgresql://…`, which `pg` reads. */
export function pgConnectionString(uri: string): string {
  return uri.replace(/^postgres(ql)?\+[a-z0-9]+:/i, 'postgresql:');
}

/** Postgres error classes that mean the database could not be reached or the connection broke. */
export function isPgConnectionError(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (transientCodeOf(err) !== undefined) return true;
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
  const msg = e?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(msg);
}

/** Credentials refused (`28P01` wrong password, `28000` no such role / not allowed by pg_hba). */
export function isPgAuthError(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code;
  return code === '28P01' || code === '28000';
}
