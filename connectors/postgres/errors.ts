/**
 * pg driver errors → DativoError. SQLSTATE classes decide: authentication
 * (28xxx) is permanent, a missing table/column/schema/database is
 * SOURCE_NOT_FOUND, anything that means "the server or the connection went
 * away" (57P01 admin shutdown from `pg_terminate_backend`, 08xxx, resets) is
 * SOURCE_UNAVAILABLE and retryable.
 */
import { DativoError, isDativoError, transientCodeOf, type ErrorContext } from '../../lib/errors.js';

/** Map anything the pg driver throws to a DativoError carrying `context` and the SQLSTATE. */
export function mapPgError(err: unknown, context: ErrorContext): DativoError {
  if (isDativoError(err)) {
    Object.assign(err.context, { ...context, ...err.context });
    return err;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  // Server errors (pg DatabaseError) carry a severity; socket errors such as
  // EPIPE also have five-letter codes, so the code alone does not tell.
  const sqlstate = typeof code === 'string' && 'severity' in e && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  const ctx: ErrorContext = { connector: 'postgres', ...context, ...(sqlstate ? { sqlstate } : {}) };
  const opts = { cause: e, context: ctx };
  if (e.name === 'AbortError') return new DativoError('ABORTED', e.message || 'aborted', opts);
  if (sqlstate !== undefined) {
    if (sqlstate === '28P01' || sqlstate === '28000') return new DativoError('AUTH_FAILED', `postgres refused the credentials: ${e.message}`, opts);
    if (sqlstate === '42501') return new DativoError('AUTH_FAILED', `postgres: permission denied: ${e.message}`, opts);
    if (sqlstate === '42P01' || sqlstate === '42703' || sqlstate === '3F000' || sqlstate === '3D000' || sqlstate === '42883') {
      return new DativoError('SOURCE_NOT_FOUND', `postgres: ${e.message}`, opts);
    }
    const cls = sqlstate.slice(0, 2);
    // 08 connection exception, 57 operator intervention (admin shutdown,
    // query canceled by statement_timeout), 53 insufficient resources,
    // 40 serialization failure/deadlock: the next attempt may well succeed.
    if (cls === '08' || cls === '57' || cls === '53' || cls === '40' || sqlstate === '55P03') {
      return new DativoError('SOURCE_UNAVAILABLE', `postgres: ${e.message}`, opts);
    }
    // Syntax errors and the like in a custom query, bad parameter values: retrying cannot help.
    if (cls === '42' || cls === '22' || cls === '0A') return new DativoError('SOURCE_ERROR', `postgres: ${e.message}`, { ...opts, disposition: 'fatal' });
    return new DativoError('SOURCE_ERROR', `postgres: ${e.message}`, opts);
  }
  const network = transientCodeOf(e);
  if (network !== undefined) {
    return new DativoError('SOURCE_UNAVAILABLE', `postgres unreachable: ${e.message}`, { ...opts, context: { ...ctx, syscallCode: network } });
  }
  // pg reports a dropped socket and a connect timeout without a code.
  if (/Connection terminated|connection timeout|timeout expired|Client has encountered a connection error|Connection ended/i.test(e.message)) {
    return new DativoError('SOURCE_UNAVAILABLE', `postgres connection lost: ${e.message}`, opts);
  }
  return new DativoError('SOURCE_ERROR', `postgres: ${e.message}`, opts);
}
