/**
 * Logging: pino JSON lines on stderr (or human lines on a terminal). Bound
 * fields: tenant, job, object, run_id.
 *
 * Redaction masks a secret where it appears *as a secret*, so that names,
 * paths and URIs that merely contain the same letters stay true:
 * - the value of a key that names a secret (password, token, secret, ...),
 *   in objects and in `key=value` / `key: value` / `"key":"value"` text;
 * - the password of a URI's userinfo (`scheme://user:PASSWORD@host`) and a
 *   `Bearer` credential, whatever their value;
 * - a known secret value (from the secrets folder or a secret-looking config
 *   key) after such a key in text (`password: ab`, `"token":"ab"`), whatever
 *   its length;
 * - a known secret of {@link LONG_SECRET} characters or more anywhere in a
 *   string: a long credential inside other text is a leak, not a coincidence.
 * Code that builds a message keeps secrets out of it in the first place (the
 * value goes into structured fields, connection strings are built without
 * it); this is the safety net.
 */
import { Writable } from 'node:stream';
import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

/** What a masked secret is replaced with. */
export const REDACTED = '[REDACTED]';

/** Known secrets this long or longer are masked wherever they appear. Default 16. */
export const LONG_SECRET = 16;

const SECRET_KEYS = [
  'password',
  'passwd',
  'secret',
  'secret_access_key',
  'secretAccessKey',
  'token',
  'api_key',
  'apiKey',
  'access_token',
  'refresh_token',
  'private_key',
  'authorization',
  'credentials',
];

const SECRET_KEY_SRC = 'passw(?:or)?d|pwd|secret|token|api[-_]?key|private[-_]?key|access[-_]?key|authorization|credentials';

/** A key whose value is a secret (`db_password`, `apiKey`, `client_secret`, `x-api-token`...). */
export const SECRET_KEY_RE = new RegExp(SECRET_KEY_SRC, 'i');

export interface LoggerConfig {
  /** pino level; default `info`. */
  level?: string;
  /** Secret values to mask (see the module comment for where). */
  secrets?: readonly string[];
  /** Destination; default stderr (fd 2). */
  destination?: NodeJS.WritableStream | number;
  /** Fields bound to every line. */
  bindings?: Record<string, unknown>;
  /**
   * `json` (default): one pino JSON object per line. `pretty`: one human line
   * per entry (`HH:MM:SS LEVEL message key=value ...`), for a terminal.
   */
  format?: 'json' | 'pretty';
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `scheme://user:password@` — the password part, whatever it is. */
const USERINFO_RE = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)([^\s/?#@]+)@/gi;
/** `Bearer <credential>`. */
const BEARER_RE = /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;
/** `password=…` (DSNs, query strings): the value up to a separator, whatever it is. */
const KV_EQ_RE = new RegExp(`([A-Za-z0-9_-]*(?:${SECRET_KEY_SRC})[A-Za-z0-9_-]*\\s*=\\s*)(["']?)([^\\s"'&;,]+)\\2`, 'gi');

/** `uri` with the password of its userinfo masked (`postgres://app:[REDACTED]@db/x`), for a message that names a location. */
export function displayUri(uri: string): string {
  return uri.replace(USERINFO_RE, `$1${REDACTED}@`);
}

/**
 * Mask secrets in one string (see the module comment). `secrets` are the
 * known secret values; an empty one is ignored.
 */
export function scrub(s: string, secrets: readonly string[]): string {
  if (s === '') return s;
  let out = displayUri(s).replace(BEARER_RE, `$1${REDACTED}`).replace(KV_EQ_RE, `$1$2${REDACTED}$2`);
  for (const v of secrets) {
    if (v === '' || !out.includes(v)) continue;
    if (v.length >= LONG_SECRET) {
      out = out.split(v).join(REDACTED);
      continue;
    }
    // Only as the value of a key that names a secret: `ties` in `parties` or `rt/ties/` is not the password.
    const afterKey = new RegExp(`([A-Za-z0-9_-]*(?:${SECRET_KEY_SRC})[A-Za-z0-9_-]*["']?\\s*[:=]\\s*["']?)${escapeRe(v)}(?![A-Za-z0-9_-])`, 'gi');
    out = out.replace(afterKey, `$1${REDACTED}`);
  }
  return out;
}

/**
 * `value` with secrets masked: strings as {@link scrub} does, and the whole
 * value of every key that names a secret. Records and arrays are copied;
 * errors, dates, buffers, maps and sets are returned as they are.
 */
export function redactDeep<T>(value: T, secrets: readonly string[], depth = 0): T {
  const walk = (v: unknown, d: number): unknown => {
    if (typeof v === 'string') return scrub(v, secrets);
    if (d > 8 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, d + 1));
    // Values with their own identity stay as they are; records (plain, or pino's serialized errors) are copied.
    if (v instanceof Error || v instanceof Date || ArrayBuffer.isView(v) || v instanceof Map || v instanceof Set) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = SECRET_KEY_RE.test(k) && (typeof x === 'string' || typeof x === 'number') ? REDACTED : walk(x, d + 1);
    }
    return out;
  };
  return walk(value, depth) as T;
}

/**
 * A pino JSON line → `HH:MM:SS LEVEL message key=value ...`. The bound
 * tenant/job/run_id (the summary names them) and `event_type` (the message
 * says it) are left out; anything that is not a JSON line is passed through.
 */
export function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, tenant: _t, job: _j, run_id: _r, event_type: _e, ...rest } = o;
  const hhmmss = typeof time === 'string' ? time.slice(11, 19) : '';
  const fields = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      if (k === 'err' && v !== null && typeof v === 'object') {
        return `err=${JSON.stringify(prettyError(v as Record<string, unknown>))}`;
      }
      if (typeof v !== 'string') return `${k}=${JSON.stringify(v)}`;
      return `${k}=${/[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v}`;
    });
  return [hhmmss, String(level ?? '').toUpperCase().padEnd(5), String(msg ?? ''), ...fields].filter((x) => x !== '').join(' ');
}

/**
 * `CODE: message`, then the first cause's message in parentheses unless the
 * message already contains it.
 */
function prettyError(e: Record<string, unknown>): string {
  const message = String(e['message'] ?? '');
  const cause = e['cause'];
  const causeMessage = cause !== null && typeof cause === 'object' ? String((cause as Record<string, unknown>)['message'] ?? '') : '';
  const tail = causeMessage !== '' && !message.includes(causeMessage) ? ` (cause: ${causeMessage})` : '';
  return `${String(e['code'] ?? e['type'] ?? 'Error')}: ${message}${tail}`;
}

/** A writable that turns each pino JSON line into a {@link prettyLine} on `out`. */
function prettyStream(out: { write(s: string): unknown }): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line !== '') out.write(`${prettyLine(line)}\n`);
      }
      cb();
    },
  });
}

/**
 * pino's error serializer, but with the error's own message: pino appends
 * every cause's message to it, which repeats the cause when the message
 * already says it (ours often do). The first cause is kept as `cause`, its
 * type, message and code only: a cause's other properties (an SDK's request
 * config, say) may hold credentials, and are not for the log.
 */
function serializeError(e: unknown): Record<string, unknown> {
  const out = pino.stdSerializers.err(e as Error) as unknown as Record<string, unknown>;
  if (!(e instanceof Error)) return out;
  out['message'] = e.message;
  const cause: unknown = e.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    out['cause'] = { type: cause.name, message: cause.message, ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}) };
  } else if (typeof cause === 'string') {
    out['cause'] = { message: cause };
  }
  return out;
}

/** Create the engine's logger. */
export function createLogger(config: LoggerConfig = {}): Logger {
  const secrets = (config.secrets ?? []).filter((s) => s !== '');
  const options: LoggerOptions = {
    level: (config.level ?? 'info').toLowerCase(),
    base: config.bindings ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: REDACTED },
    formatters: {
      level: (label) => ({ level: label }),
      log: (obj: Record<string, unknown>) => redactDeep(obj, secrets),
    },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrub(a, secrets) : a));
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    serializers: {
      err: (e: unknown) => redactDeep(serializeError(e), secrets),
    },
  };
  const dest = config.destination ?? 2;
  if (config.format === 'pretty') {
    const out = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
    return pino(options, prettyStream(out));
  }
  return pino(options, typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest);
}

/** A logger that drops everything (library default). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
