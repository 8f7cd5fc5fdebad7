/**
 * Logging: pino JSON lines on stderr. Bound fields: tenant, job, object,
 * run_id. Secrets are redacted twice: by key (password, token, secret, ...)
 * and by value (every secret string the config loader saw).
 */
import { pino, type Logger as PinoLogger, type LoggerOptions } from 'pino';

export type Logger = PinoLogger;

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

export interface LoggerConfig {
  /** pino level; default `info`. */
  level?: string;
  /** Secret values to scrub from every string in every log line. */
  secrets?: readonly string[];
  /** Destination; default stderr (fd 2). */
  destination?: NodeJS.WritableStream | number;
  /** Fields bound to every line. */
  bindings?: Record<string, unknown>;
}

/** Replace every occurrence of a secret value in `s`. */
export function scrub(s: string, secrets: readonly string[]): string {
  let out = s;
  for (const v of secrets) if (v.length >= 4 && out.includes(v)) out = out.split(v).join('[REDACTED]');
  return out;
}

function scrubDeep(value: unknown, secrets: readonly string[], depth = 0): unknown {
  if (typeof value === 'string') return scrub(value, secrets);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, secrets, depth + 1));
  if (value instanceof Error) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v, secrets, depth + 1);
  return out;
}

/** Create the engine's logger. */
export function createLogger(config: LoggerConfig = {}): Logger {
  const secrets = (config.secrets ?? []).filter((s) => s.length >= 4);
  const options: LoggerOptions = {
    level: (config.level ?? 'info').toLowerCase(),
    base: config.bindings ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]), censor: '[REDACTED]' },
    formatters: {
      level: (label) => ({ level: label }),
      ...(secrets.length > 0 ? { log: (obj: Record<string, unknown>) => scrubDeep(obj, secrets) as Record<string, unknown> } : {}),
    },
    ...(secrets.length > 0
      ? {
          hooks: {
            logMethod(args, method) {
              const scrubbed = args.map((a) => (typeof a === 'string' ? scrub(a, secrets) : a));
              method.apply(this, scrubbed as Parameters<typeof method>);
            },
          },
        }
      : {}),
    serializers: {
      err: (e: unknown) => {
        const s = pino.stdSerializers.err(e as Error) as unknown as Record<string, unknown>;
        return secrets.length > 0 ? (scrubDeep(s, secrets) as Record<string, unknown>) : s;
      },
    },
  };
  const dest = config.destination ?? 2;
  return pino(options, typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest);
}

/** A logger that drops everything (library default). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
