/**
 * Redis for the distributed scheduler (BullMQ): connecting with a bounded
 * wait at start (QUEUE_UNAVAILABLE, exit 2, if it never comes), the key
 * layout under one prefix, and the run log kept in Redis so `dativo runs
 * --redis` shows the runs of every worker.
 *
 * Keys (all under `<prefix>:`, default prefix `dativo`):
 * - `t.<tenant>:*`: BullMQ's keys of the tenant's queue `t.<tenant>` (tenant
 *   URI-encoded: BullMQ queue names must not hold `:`);
 * - `_dativo:tenants` (set) and `_dativo:schedules` (hash schedule → tenant):
 *   what the scheduler registered, for the workers and for removing
 *   schedules dropped from runner.yaml;
 * - `_dativo:busy:<job key>`, `_dativo:pending:<job key>`: the job-level
 *   exclusion of lib/schedule/worker.ts;
 * - `_dativo:runs` (hash id → record) and `_dativo:runs:by-start` (sorted
 *   set): the run log.
 */
import { Redis } from 'ioredis';
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import { foldRuns, type RunLog, type RunRecord } from './run-log.js';

/** Key prefix when `--prefix` is not given. */
export const DEFAULT_PREFIX = 'dativo';
/** How long a command waits for Redis at start when `--redis-wait-seconds` is not given. */
export const DEFAULT_REDIS_WAIT_SECONDS = 30;
/** Records the Redis run log keeps (the oldest are trimmed). */
export const RUN_LOG_KEEP = 10_000;

/** The BullMQ queue of a tenant. */
export function queueName(tenant: string): string {
  return `t.${encodeURIComponent(tenant)}`;
}

/** The tenant of a queue name of {@link queueName}. */
export function tenantOfQueue(name: string): string | undefined {
  return name.startsWith('t.') ? decodeURIComponent(name.slice(2)) : undefined;
}

/** Our own keys (not BullMQ's) under `prefix`. */
export function dativoKeys(prefix: string) {
  const k = `${prefix}:_dativo`;
  return {
    tenants: `${k}:tenants`,
    schedules: `${k}:schedules`,
    busy: (jobKey: string) => `${k}:busy:${jobKey}`,
    pending: (jobKey: string) => `${k}:pending:${jobKey}`,
    runs: `${k}:runs`,
    runsByStart: `${k}:runs:by-start`,
  };
}

/** `url` with its password (and a user name beside it) replaced: for messages and logs. */
export function safeRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(an invalid Redis URL)';
  }
}

export interface ConnectOptions {
  /** How long to wait for the first connection, in seconds. */
  waitSeconds: number;
  log?: Logger;
}

/**
 * A connection to `url` for BullMQ (`maxRetriesPerRequest: null`: commands
 * wait for a reconnect instead of failing; a lost connection is retried for
 * ever, every 0.2-2 s). Resolves once it is ready; while it is not, every
 * failure is logged (`redis_unreachable`), and after `waitSeconds` the
 * connection is closed and QUEUE_UNAVAILABLE (exit 2) thrown.
 */
export async function connectRedis(url: string, opts: ConnectOptions): Promise<Redis> {
  const where = safeRedisUrl(url);
  let redis: Redis;
  try {
    redis = new Redis(url, {
      maxRetriesPerRequest: null,
      enableReadyCheck: true,
      connectTimeout: 5000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
      lazyConnect: true,
    });
  } catch (err) {
    throw new DativoError('QUEUE_UNAVAILABLE', `Redis URL ${where}: ${(err as Error).message}`, { disposition: 'fatal', cause: err });
  }
  let last = '';
  let lastLogged = 0;
  const onError = (err: Error): void => {
    last = err.message;
    if (Date.now() - lastLogged < 5000) return;
    lastLogged = Date.now();
    opts.log?.warn({ event_type: 'redis_unreachable', redis: where, err: err.message }, 'Redis unreachable, retrying');
  };
  redis.on('error', onError);
  const ready = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), opts.waitSeconds * 1000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  redis.connect().catch(() => undefined);
  if (!(await ready)) {
    redis.disconnect();
    throw new DativoError('QUEUE_UNAVAILABLE', `Redis at ${where} unreachable after ${opts.waitSeconds} s${last !== '' ? `: ${last}` : ''}`, {
      context: { redis: where, waitSeconds: opts.waitSeconds },
    });
  }
  // From now on a lost connection is logged once per outage, and ioredis reconnects.
  redis.off('error', onError);
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    opts.log?.warn({ event_type: 'redis_connection_lost', redis: where, err: err.message }, 'Redis connection lost, reconnecting');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    opts.log?.info({ event_type: 'redis_reconnected', redis: where }, 'Redis reconnected');
  });
  return redis;
}

/**
 * The run log in Redis: a hash of the current record of each attempt and a
 * sorted set by start time, trimmed to the newest {@link RUN_LOG_KEEP}.
 * Written by every worker, read by `dativo runs --redis`.
 */
export function redisRunLog(redis: Redis, prefix: string): RunLog {
  const k = dativoKeys(prefix);
  return {
    async write(record) {
      const at = Date.parse(record.started_at);
      await redis
        .multi()
        .hset(k.runs, record.id, JSON.stringify(record))
        .zadd(k.runsByStart, Number.isFinite(at) ? at : Date.now(), record.id)
        .exec();
      const n = await redis.zcard(k.runsByStart);
      if (n > RUN_LOG_KEEP) {
        const old = await redis.zrange(k.runsByStart, 0, n - RUN_LOG_KEEP - 1);
        if (old.length > 0) await redis.multi().zrem(k.runsByStart, ...old).hdel(k.runs, ...old).exec();
      }
    },
    async list(filter) {
      const ids = await redis.zrange(k.runsByStart, 0, -1);
      if (ids.length === 0) return [];
      const values = await redis.hmget(k.runs, ...ids);
      const records: RunRecord[] = [];
      for (const v of values) {
        if (v === null) continue;
        try {
          records.push(JSON.parse(v) as RunRecord);
        } catch {
          // not ours
        }
      }
      return foldRuns(records, filter);
    },
    async close() {},
  };
}
