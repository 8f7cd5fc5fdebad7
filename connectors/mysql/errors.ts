/**
 * mysql2 driver errors → DativoError: access denied is AUTH_FAILED, unknown
 * database/table/column SOURCE_NOT_FOUND, a lost or killed connection and
 * an interrupted query SOURCE_UNAVAILABLE (retryable).
 */
import { DativoError, isDativoError, transientCodeOf, type ErrorContext } from '../../lib/errors.js';

const AUTH = new Set(['ER_ACCESS_DENIED_ERROR', 'ER_DBACCESS_DENIED_ERROR', 'ER_TABLEACCESS_DENIED_ERROR', 'ER_COLUMNACCESS_DENIED_ERROR', 'ER_SPECIFIC_ACCESS_DENIED_ERROR', 'ER_NOT_SUPPORTED_AUTH_MODE', 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR']);
const NOT_FOUND = new Set(['ER_BAD_DB_ERROR', 'ER_NO_SUCH_TABLE', 'ER_BAD_FIELD_ERROR', 'ER_BAD_TABLE_ERROR', 'ER_UNKNOWN_TABLE']);
const UNAVAILABLE = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_QUERY_INTERRUPTED',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_NORMAL_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
  'ER_TOO_MANY_USER_CONNECTIONS',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  'ER_QUERY_TIMEOUT',
  'ER_STATEMENT_TIMEOUT',
  'ER_NET_READ_ERROR',
  'ER_NET_READ_INTERRUPTED',
  'ER_NET_WRITE_INTERRUPTED',
  'ER_NET_ERROR_ON_WRITE',
]);
// MariaDB's "Connection was killed" (1927) and "Query execution was interrupted" (1317/3024).
const UNAVAILABLE_ERRNO = new Set([1927, 1317, 3024, 1053, 1040, 1205, 1213, 2013, 2006]);

/** Map anything mysql2 throws to a DativoError carrying `context` and the MySQL error code. */
export function mapMysqlError(err: unknown, context: ErrorContext): DativoError {
  if (isDativoError(err)) {
    Object.assign(err.context, { ...context, ...err.context });
    return err;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const raw = e as Error & { code?: unknown; errno?: unknown };
  const code = typeof raw.code === 'string' ? raw.code : undefined;
  const errno = typeof raw.errno === 'number' ? raw.errno : undefined;
  const ctx: ErrorContext = { connector: 'mysql', ...context, ...(code ? { mysqlCode: code } : {}), ...(errno ? { errno } : {}) };
  const opts = { cause: e, context: ctx };
  if (e.name === 'AbortError') return new DativoError('ABORTED', e.message || 'aborted', opts);
  if (code !== undefined && AUTH.has(code)) return new DativoError('AUTH_FAILED', `mysql refused the credentials: ${e.message}`, opts);
  if (code !== undefined && NOT_FOUND.has(code)) return new DativoError('SOURCE_NOT_FOUND', `mysql: ${e.message}`, opts);
  if ((code !== undefined && UNAVAILABLE.has(code)) || (errno !== undefined && UNAVAILABLE_ERRNO.has(errno)) || transientCodeOf(e) !== undefined) {
    return new DativoError('SOURCE_UNAVAILABLE', `mysql: ${e.message}`, opts);
  }
  if (/Connection lost|connection is in closed state|Can't add new command when connection is in closed state|read ECONNRESET/i.test(e.message)) {
    return new DativoError('SOURCE_UNAVAILABLE', `mysql connection lost: ${e.message}`, opts);
  }
  // SQL errors in a custom query (syntax, wrong types): retrying cannot help.
  if ((e as { sqlState?: unknown }).sqlState !== undefined && code !== undefined && code.startsWith('ER_')) {
    return new DativoError('SOURCE_ERROR', `mysql: ${e.message}`, { ...opts, disposition: 'fatal' });
  }
  return new DativoError('SOURCE_ERROR', `mysql: ${e.message}`, opts);
}
