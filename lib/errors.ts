/**
 * One error model for the whole engine. Every failure that reaches a user is a
 * {@link DativoError} with a stable `code` (listed in docs/errors.md), a
 * `disposition` that tells the retry layer and the scheduler what to do, and
 * context as fields rather than baked into the message.
 */

/** What the retry layer and the scheduler do with an error. */
export type Disposition = 'retryable' | 'fatal' | 'skippable';

/** Process exit codes, as in DESIGN.md. */
export const ExitCode = {
  OK: 0,
  PARTIAL: 1,
  RETRYABLE: 2,
  PERMANENT: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The closed set of error codes. The disposition here is the default; a
 * throw site may override it (e.g. an HTTP 5xx is retryable, a 4xx fatal).
 */
export const ERROR_CODES = {
  /** A job, recipe, asset or runner file is invalid (every problem listed). */
  CONFIG_INVALID: 'fatal',
  /** A `${VAR}` has no value in the environment or the secrets dir. */
  CONFIG_MISSING_VAR: 'fatal',
  /** The job names a connector that the registry does not know. */
  CONNECTOR_UNKNOWN: 'fatal',
  /** The connector cannot run in the requested mode (e.g. a database in cloud mode). */
  CONNECTOR_NOT_ALLOWED: 'fatal',
  /** The state file cannot be parsed or has a version we do not know. */
  STATE_CORRUPT: 'fatal',
  /** A record does not match the asset schema. */
  RECORD_INVALID: 'skippable',
  /** Strict mode met an invalid record: the run stops. */
  VALIDATION_FAILED: 'fatal',
  /** The warehouse or state location cannot be written (permissions, missing bucket). */
  STORAGE_NOT_WRITABLE: 'fatal',
  /** A transient storage failure (I/O error, S3 5xx, network). */
  STORAGE_IO: 'retryable',
  /** Credentials were refused by a source, S3 or a catalog. */
  AUTH_FAILED: 'fatal',
  /** The source cannot be reached (connection refused, reset, DNS, timeout). */
  SOURCE_UNAVAILABLE: 'retryable',
  /** A table, column, file, object or API resource does not exist. */
  SOURCE_NOT_FOUND: 'fatal',
  /** The source returned an error we cannot classify further. */
  SOURCE_ERROR: 'retryable',
  /** The source answered 429 (or equivalent) more times than the retry policy allows. */
  RATE_LIMITED: 'retryable',
  /** The source's data cannot be read as declared (bad CSV quoting, invalid UTF-8, ...). */
  SOURCE_FORMAT: 'skippable',
  /** The asset schema is incompatible with the existing table. */
  SCHEMA_INCOMPATIBLE: 'fatal',
  /** The catalog rejected the commit because the table moved on (lost race). */
  COMMIT_CONFLICT: 'retryable',
  /** The catalog or its database cannot be reached, or the outcome of a commit is unknown. */
  CATALOG_UNAVAILABLE: 'retryable',
  /** Table metadata we cannot read or must not modify. */
  CATALOG_INVALID: 'fatal',
  /** The run was aborted (signal). */
  ABORTED: 'retryable',
  /** A bug: something we did not expect. */
  INTERNAL: 'fatal',
} as const satisfies Record<string, Disposition>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Context fields that may accompany an error. All optional. */
export interface ErrorContext {
  file?: string;
  key?: string;
  connector?: string;
  object?: string;
  page?: string | number;
  partNumber?: number;
  snapshotId?: string;
  table?: string;
  line?: number;
  status?: number;
  retryAfterMs?: number;
  [field: string]: unknown;
}

export interface DativoErrorOptions {
  cause?: unknown;
  disposition?: Disposition;
  context?: ErrorContext;
  /** For CONFIG_INVALID: every problem found, each with file and key path. */
  problems?: ConfigProblem[];
}

/** One problem in a config file. */
export interface ConfigProblem {
  file: string;
  /** Dotted key path inside the file, e.g. `source.tables[0].name`. Empty for the whole file. */
  key: string;
  message: string;
}

export class DativoError extends Error {
  override readonly name = 'DativoError';
  readonly code: ErrorCode;
  readonly disposition: Disposition;
  readonly context: ErrorContext;
  readonly problems: ConfigProblem[];

  constructor(code: ErrorCode, message: string, options: DativoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.disposition = options.disposition ?? ERROR_CODES[code];
    this.context = options.context ?? {};
    this.problems = options.problems ?? [];
  }

  /** The process exit code this error maps to. */
  get exitCode(): ExitCode {
    return this.disposition === 'retryable' ? ExitCode.RETRYABLE : ExitCode.PERMANENT;
  }

  /** A JSON-safe view for logs and `--json` output. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      disposition: this.disposition,
      message: this.message,
      ...(Object.keys(this.context).length > 0 ? { context: this.context } : {}),
      ...(this.problems.length > 0 ? { problems: this.problems } : {}),
    };
  }
}

/** True when `err` is a DativoError (also across duplicated module copies). */
export function isDativoError(err: unknown): err is DativoError {
  return err instanceof DativoError || (err instanceof Error && err.name === 'DativoError' && 'code' in err);
}

/** Node system error codes that mean "try again later". */
export const TRANSIENT_SYSCALL_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Wrap anything thrown into a DativoError. Known Node system errors become
 * retryable; aborts become ABORTED; the rest INTERNAL (fatal), so that a bug
 * is never retried forever.
 */
export function toDativoError(err: unknown, context: ErrorContext = {}): DativoError {
  if (isDativoError(err)) {
    if (Object.keys(context).length > 0) Object.assign(err.context, { ...context, ...err.context });
    return err;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as NodeJS.ErrnoException).code;
  if (e.name === 'AbortError' || code === 'ABORT_ERR') {
    return new DativoError('ABORTED', e.message || 'aborted', { cause: e, context });
  }
  if (code !== undefined && TRANSIENT_SYSCALL_CODES.has(code)) {
    return new DativoError('SOURCE_UNAVAILABLE', e.message, { cause: e, context: { ...context, syscallCode: code } });
  }
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new DativoError('STORAGE_NOT_WRITABLE', e.message, { cause: e, context });
  }
  return new DativoError('INTERNAL', e.message, { cause: e, context });
}

/** Exit code for any thrown value. */
export function exitCodeOf(err: unknown): ExitCode {
  return toDativoError(err).exitCode;
}
