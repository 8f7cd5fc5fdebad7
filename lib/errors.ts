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
  /** A source file changed other than by appending after rows were taken from it: continuing would write them twice. */
  SOURCE_REWRITTEN: 'fatal',
  /** A Singer tap / Airbyte source process exited non-zero, was killed, or ran past its timeout. */
  TAP_FAILED: 'retryable',
  /** A tap printed a line that is not a protocol message (not JSON, a STATE that is not JSON, an unknown message). */
  TAP_PROTOCOL: 'retryable',
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
  /** Another run of the same job holds the job's lock (pid, host, since in the context): retry later. */
  JOB_LOCKED: 'retryable',
  /** A scheduled run passed its `timeout_seconds` and was killed (run log and scheduler logs). */
  RUN_TIMEOUT: 'retryable',
  /** A scheduled run's process died without a run summary: a signal, an out-of-memory abort, an uncaught error. */
  RUN_CRASHED: 'retryable',
  /** The queue of the distributed scheduler (Redis, for BullMQ) cannot be reached: at start after `--redis-wait-seconds`, or mid-operation. */
  QUEUE_UNAVAILABLE: 'retryable',
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

/**
 * The one list of network error codes that mean "try again later": Node
 * system errors (`ECONNRESET`, ...) and undici's (`UND_ERR_SOCKET`, ...).
 * Every layer that classifies a network failure (HTTP, S3, catalogs, SQL
 * drivers) uses this set, looked up along the whole `cause` chain with
 * {@link transientCodeOf}.
 */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * `err` and every error below it: `cause` chains and the `errors` of an
 * `AggregateError` (undici's happy-eyeballs connect fails with one per
 * address), depth first, each object once, at most 32.
 */
export function errorChain(err: unknown): unknown[] {
  const out: unknown[] = [];
  const seen = new Set<unknown>();
  const stack: unknown[] = [err];
  while (stack.length > 0 && out.length < 32) {
    const e = stack.shift();
    if (e === null || e === undefined || seen.has(e)) continue;
    seen.add(e);
    out.push(e);
    if (typeof e !== 'object') continue;
    const below: unknown[] = [];
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) below.push(cause);
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) below.push(...errors);
    stack.unshift(...below);
  }
  return out;
}

/** Every string `code` found along {@link errorChain}, outermost first. */
export function errorCodesOf(err: unknown): string[] {
  const codes: string[] = [];
  for (const e of errorChain(err)) {
    const code = e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && !codes.includes(code)) codes.push(code);
  }
  return codes;
}

/** The first code of `codes` (default {@link TRANSIENT_NETWORK_CODES}) anywhere along the cause chain. */
export function transientCodeOf(err: unknown, codes: ReadonlySet<string> = TRANSIENT_NETWORK_CODES): string | undefined {
  return errorCodesOf(err).find((c) => codes.has(c));
}

/**
 * Wrap anything thrown into a DativoError. An abort becomes ABORTED; a
 * network failure (a {@link TRANSIENT_NETWORK_CODES} code anywhere along the
 * `cause` chain, as in `fetch failed` → `ECONNRESET`) becomes retryable
 * SOURCE_UNAVAILABLE; a permission error STORAGE_NOT_WRITABLE; the rest
 * INTERNAL (fatal), so that a bug is never retried forever.
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
  const transient = transientCodeOf(e);
  if (transient !== undefined) {
    const inner = errorChain(e).find((x) => (x as { code?: unknown }).code === transient) as Error | undefined;
    const message = inner !== undefined && inner !== e && inner.message ? `${e.message}: ${inner.message}` : e.message;
    return new DativoError('SOURCE_UNAVAILABLE', message, { cause: e, context: { ...context, syscallCode: transient } });
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
