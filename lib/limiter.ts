/**
 * One rate limiter per (connector, account), on bottleneck, configured from
 * the recipe's `rate_limits` (a job's `source.rate_limits` overrides it key
 * by key). A 429 pauses the whole limiter until `Retry-After`: every request
 * passes a gate right before it is sent, so requests already released by
 * bottleneck and requests still queued wait alike. (Pausing bottleneck with
 * `updateSettings` stops its reservoir heartbeat for good, and a reservoir
 * of 0 does not hold jobs it already released: reference/sources-lab.md §5.)
 *
 * With `rate_limits.redis` the budget lives in Redis (bottleneck's own
 * `ioredis` datastore) so several processes share one rate, and the gate's
 * pause-until time is a Redis key, so a 429 seen by one process pauses all.
 */
import { createHash } from 'node:crypto';
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { DativoError } from './errors.js';
import type { Logger } from './log.js';
import { systemClock, type Clock } from './retry.js';

/** Normalised `rate_limits`. */
export interface RateLimits {
  /** Steady rate in requests per second. Default: none (no rate limit). */
  requestsPerSecond?: number;
  /** Steady rate in requests per minute; with `requestsPerSecond` too, the stricter wins. Default: none. */
  requestsPerMinute?: number;
  /** Requests that may start back to back before the steady rate applies (bucket size). Default 1. */
  burst: number;
  /** Requests in flight at once. Default {@link DEFAULT_CONCURRENCY}. */
  concurrency: number;
  /** Redis URL for a budget shared by every process with the same limiter id. Default: none (in-process). */
  redis?: string;
  /** Budget key inside the connector: jobs with the same account share one limiter. Default: a hash of `source.credentials`. */
  account?: string;
}

/** Requests in flight per limiter when `rate_limits.concurrency` is not set. */
export const DEFAULT_CONCURRENCY = 4;

const num = (v: unknown): number | undefined => {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};

/**
 * Normalise a (schema-validated) `rate_limits` block. Accepts our keys
 * (`requests_per_second`, `requests_per_minute`, `burst`, `concurrency`,
 * `redis`, `account`) and the Python recipe spellings (`rps_default`,
 * `burst_default`).
 */
export function rateLimitsFrom(raw: Record<string, unknown> | undefined): RateLimits {
  const r = raw ?? {};
  const out: RateLimits = {
    burst: num(r['burst']) ?? num(r['burst_default']) ?? 1,
    concurrency: num(r['concurrency']) ?? DEFAULT_CONCURRENCY,
  };
  const rps = num(r['requests_per_second']) ?? num(r['rps_default']);
  const rpm = num(r['requests_per_minute']);
  if (rps !== undefined) out.requestsPerSecond = rps;
  if (rpm !== undefined) out.requestsPerMinute = rpm;
  if (typeof r['redis'] === 'string' && r['redis'] !== '') out.redis = r['redis'];
  if (typeof r['account'] === 'string' && r['account'] !== '') out.account = r['account'];
  return out;
}

/** The ms between two requests at the steady rate (the stricter of per second and per minute), or undefined. */
export function intervalMs(limits: RateLimits): number | undefined {
  const a = limits.requestsPerSecond !== undefined ? 1000 / limits.requestsPerSecond : 0;
  const b = limits.requestsPerMinute !== undefined ? 60_000 / limits.requestsPerMinute : 0;
  const ms = Math.max(a, b);
  return ms > 0 ? ms : undefined;
}

/**
 * Headroom of the gate: it spaces requests this fraction longer than the
 * rate's interval (1 % at 25 requests/s: 40.4 ms instead of 40), so that
 * the few ms of jitter between leaving here and arriving at the server
 * cannot put one request more than the rate into one of the server's
 * fixed one-second windows (measured: docs/benchmarks.md, api-parquet).
 */
export const RATE_HEADROOM = 0.01;

/**
 * Without a burst, the gate's bucket holds this fraction of a token more
 * than one: a request whose timer fired late (a busy event loop) passes, and
 * the next may follow up to half an interval sooner, so the turn lost is won
 * back instead of lowering the rate; the gate also keeps at most
 * `floor(1000 / interval)` requests in any that many intervals, so the rate
 * holds in every second (docs/network.md).
 */
export const CATCH_UP = 0.5;

/** The ms the gate's bucket takes to earn one token back: {@link intervalMs} plus {@link RATE_HEADROOM}. */
export function gateIntervalMs(limits: RateLimits): number | undefined {
  const ms = intervalMs(limits);
  return ms === undefined ? undefined : ms * (1 + RATE_HEADROOM);
}

/** The bottleneck options for `limits`: spacing (`minTime`) without burst, a token bucket with one. */
export function bottleneckOptions(limits: RateLimits): Bottleneck.ConstructorOptions & { heartbeatInterval?: number } {
  const opts: Bottleneck.ConstructorOptions & { heartbeatInterval?: number } = { maxConcurrent: limits.concurrency };
  const every = intervalMs(limits);
  if (every === undefined) return opts;
  if (limits.burst <= 1) return { ...opts, minTime: Math.ceil(every) };
  // Token bucket: starts full, one token back per interval, at most `burst`.
  // The heartbeat adds at most one increment per tick, so it ticks at the interval.
  const tick = Math.max(5, Math.round(every));
  return {
    ...opts,
    reservoir: limits.burst,
    reservoirIncreaseAmount: Math.max(1, Math.round(tick / every)),
    reservoirIncreaseInterval: tick,
    reservoirIncreaseMaximum: limits.burst,
    heartbeatInterval: tick,
  };
}

/** Options of {@link createLimiter}. */
export interface LimiterOptions {
  /**
   * Limiter id: the Redis key prefix when clustered, so every process that
   * must share a budget uses the same id. Default {@link defaultLimiterId}.
   */
  id?: string;
  /** Warn line on every pause. Default: none. */
  log?: Logger;
  /** Default the system clock (the gate's time and waits). */
  clock?: Clock;
  /** Called with the clock's time as each request passes the gate (tests and tracing). Default: none. */
  onPass?: (atMs: number) => void;
}

/** Options of one {@link Limiter.schedule} call. */
export interface ScheduleOptions {
  /** Stop waiting for a slot, a token or the gate: rejects with ABORTED. */
  signal?: AbortSignal;
  /** Tokens this request costs. Default 1. */
  weight?: number;
}

/**
 * A limiter for one (connector, account). Every request of a connector goes
 * through {@link schedule}; a 429 calls {@link pause}.
 */
export interface Limiter {
  /** `<connector>:<account>`. */
  readonly key: string;
  readonly limits: RateLimits;
  /** True when the budget and the gate live in Redis. */
  readonly clustered: boolean;
  /**
   * Run `fn` when the limiter allows: a concurrency slot and a rate token,
   * then the 429 gate (checked right before `fn`, after any pause set while
   * this request was queued).
   */
  schedule<T>(fn: () => Promise<T>, options?: ScheduleOptions): Promise<T>;
  /** Hold every request of this limiter (every process, when clustered) until `untilMs` (epoch ms). Never shortens a pause. */
  pause(untilMs: number): Promise<void>;
  /** The epoch ms until which requests are held (0 when not paused). */
  pausedUntil(): Promise<number>;
  /** Requests started so far through this limiter (in this process). */
  readonly started: number;
  /** Close bottleneck and, when clustered, the Redis connections. */
  close(): Promise<void>;
}

/**
 * `dativo:<key>:<hash of the rate settings>`. Bottleneck keeps a clustered
 * limiter's settings in Redis and does not overwrite them when a process
 * starts with others, so a changed `rate_limits` gets a budget of its own
 * instead of silently running on the old one.
 */
export function defaultLimiterId(key: string, limits: RateLimits): string {
  const settings = JSON.stringify([limits.requestsPerSecond ?? null, limits.requestsPerMinute ?? null, limits.burst, limits.concurrency]);
  return `dativo:${key}:${createHash('sha256').update(settings).digest('hex').slice(0, 8)}`;
}

/** The Redis key of a clustered limiter's gate. */
export function gateKey(id: string): string {
  return `${id}:gate`;
}

/**
 * Create a limiter for `key` (`<connector>:<account>`). With `limits.redis`
 * the limiter connects to Redis (bottleneck's `ioredis` datastore); when
 * Redis cannot be reached, {@link Limiter.schedule} rejects with retryable
 * SOURCE_UNAVAILABLE naming the limiter.
 */
export function createLimiter(key: string, limits: RateLimits, options: LimiterOptions = {}): Limiter {
  return new BottleneckLimiter(key, limits, options);
}

class BottleneckLimiter implements Limiter {
  readonly clustered: boolean;
  started = 0;
  private readonly bottleneck: Bottleneck;
  private readonly id: string;
  private readonly clock: Clock;
  private readonly redis: Redis | undefined;
  private readonly connection: Bottleneck.IORedisConnection | undefined;
  private localPause = 0;
  /** The gate's bucket: tokens as of `tokensAt` (epoch ms; 0: not started, full). */
  private tokens: number;
  private tokensAt = 0;
  /** Without a burst: when the last requests passed the gate (epoch ms, at most one second's worth). */
  private readonly passed: number[] = [];
  /** Resolves when the request before this one has passed the gate (one at a time, in order). */
  private gateTurn: Promise<void> = Promise.resolve();
  private readonly trace: ((atMs: number) => void) | undefined;
  private closed = false;

  constructor(
    readonly key: string,
    readonly limits: RateLimits,
    private readonly options: LimiterOptions,
  ) {
    this.id = options.id ?? defaultLimiterId(key, limits);
    this.clock = options.clock ?? systemClock;
    this.tokens = Math.max(1, limits.burst);
    this.trace = options.onPass;
    const base = { ...bottleneckOptions(limits), id: this.id };
    if (limits.redis !== undefined) {
      this.clustered = true;
      this.redis = new Redis(limits.redis, { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5000 });
      // Errors surface through the calls that fail; an unhandled 'error' event would crash the process.
      this.redis.on('error', () => undefined);
      const connection = new Bottleneck.IORedisConnection({ client: this.redis, Redis });
      connection.on('error', () => undefined);
      this.connection = connection;
      this.bottleneck = new Bottleneck({ ...base, datastore: 'ioredis', connection, clearDatastore: false, timeout: 3_600_000 } as Bottleneck.ConstructorOptions);
    } else {
      this.clustered = false;
      this.redis = undefined;
      this.connection = undefined;
      this.bottleneck = new Bottleneck(base as Bottleneck.ConstructorOptions);
    }
    this.bottleneck.on('error', () => undefined);
  }

  async schedule<T>(fn: () => Promise<T>, options: ScheduleOptions = {}): Promise<T> {
    if (this.closed) throw new DativoError('INTERNAL', `limiter ${this.key} is closed`);
    const signal = options.signal;
    if (signal?.aborted) throw aborted(signal, this.key);
    // The request's own outcome travels as a value, so that only the
    // limiter's failures (Redis down) are wrapped.
    const job = async (): Promise<Outcome<T>> => {
      try {
        if (signal?.aborted) throw aborted(signal, this.key);
        await this.passGate(signal, options.weight ?? 1);
        this.started++;
        return { ok: true, value: await fn() };
      } catch (error) {
        return { ok: false, error };
      }
    };
    const scheduled = this.bottleneck.schedule({ weight: options.weight ?? 1 }, job).then(
      (o) => {
        if (o.ok) return o.value;
        throw o.error;
      },
      (err: unknown) => {
        throw this.wrap(err);
      },
    );
    if (!signal) return scheduled;
    // Bottleneck cannot drop a queued job: answer the abort at once; the job,
    // when its turn comes, sees the signal and returns without a request.
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(aborted(signal, this.key));
      signal.addEventListener('abort', onAbort, { once: true });
      scheduled.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  /**
   * The last step before a request is sent: wait while paused (re-read
   * after each wait, since another 429 may extend the pause), then take a
   * token of the gate's own bucket (`burst` tokens, one back every
   * {@link gateIntervalMs}), counted on the times requests actually pass
   * here, not on the turns they were given. Bottleneck's spacing or
   * reservoir runs on its timers, which fire late behind a busy event loop
   * and then release several requests together; turns handed out ahead
   * (a slot per request) go out together the same way when their sleeps
   * wake late. Here every request waits, one at a time in arrival order,
   * until the bucket holds a token at the moment it passes, so whatever the
   * concurrency and however late the timers, at most `burst` + rate × T
   * requests pass in any T. Without a burst the bucket holds
   * {@link CATCH_UP} of a token more, so a turn a late timer lost is won back,
   * and at most `floor(1000 / interval)` requests pass in any that many
   * intervals: at most the rate in any second. A pause empties the bucket: the requests it held go out one steady
   * interval after its end and apart, never in a burst that earns the next
   * 429.
   */
  private async passGate(signal: AbortSignal | undefined, weight: number): Promise<void> {
    const prev = this.gateTurn;
    let done!: () => void;
    this.gateTurn = new Promise<void>((r) => (done = r));
    try {
      await prev;
      if (signal?.aborted) throw aborted(signal, this.key);
      const every = gateIntervalMs(this.limits);
      const burst = Math.max(1, this.limits.burst);
      // Without a burst: half a token of slack wins back a turn a late timer lost, and the window below keeps the rate.
      const cap = burst <= 1 ? 1 + CATCH_UP : burst;
      const window = burst <= 1 && every !== undefined ? Math.max(1, Math.floor(1000 / (intervalMs(this.limits) ?? 1000))) : 0;
      for (let i = 0; i < 100_000; i++) {
        const until = await this.pausedUntil();
        let now = this.clock.now();
        if (until > now) {
          this.tokens = 0;
          this.tokensAt = until;
          await this.sleep(until - now, signal);
          continue;
        }
        if (every === undefined) return;
        if (this.tokensAt === 0) this.tokensAt = now;
        now = Math.max(now, this.tokensAt);
        this.tokens = Math.min(cap, this.tokens + (now - this.tokensAt) / every);
        this.tokensAt = now;
        const cost = Math.min(weight, burst);
        if (this.tokens >= cost) {
          // At most `window` requests in any `window` intervals (with the headroom: at most the rate in any second).
          const oldest = this.passed.length >= window && window > 0 ? this.passed[this.passed.length - window]! : undefined;
          const wait = oldest === undefined ? 0 : oldest + window * every - now;
          if (wait <= 0) {
            this.tokens -= cost;
            if (window > 0) {
              this.passed.push(now);
              if (this.passed.length > window) this.passed.splice(0, this.passed.length - window);
            }
            this.trace?.(this.clock.now());
            return;
          }
          await this.sleep(Math.max(1, Math.ceil(wait)), signal);
          continue;
        }
        if (signal?.aborted) throw aborted(signal, this.key);
        await this.sleep(Math.max(1, Math.ceil((cost - this.tokens) * every)), signal);
      }
    } finally {
      done();
    }
  }

  private async sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
    await this.clock.sleep(ms, signal).catch((err: unknown) => {
      throw signal?.aborted ? aborted(signal, this.key) : err;
    });
  }

  async pause(untilMs: number): Promise<void> {
    if (untilMs <= this.localPause) return;
    this.localPause = untilMs;
    this.options.log?.warn({ limiter: this.key, pausedForMs: Math.max(0, untilMs - this.clock.now()) }, `rate limited: pausing every request of ${this.key}`);
    if (this.redis) {
      const ttl = Math.max(1, Math.ceil(untilMs - this.clock.now()) + 1000);
      // Keep the later of two pauses (another process may have set a longer one).
      await this.redis
        .eval(
          "local cur = tonumber(redis.call('get', KEYS[1]) or '0') if tonumber(ARGV[1]) > cur then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 1",
          1,
          gateKey(this.id),
          String(untilMs),
          String(ttl),
        )
        .catch((err: unknown) => {
          throw this.wrap(err);
        });
    }
  }

  async pausedUntil(): Promise<number> {
    if (!this.redis) return this.localPause;
    const shared = await this.redis.get(gateKey(this.id)).catch((err: unknown) => {
      throw this.wrap(err);
    });
    return Math.max(this.localPause, Number(shared ?? 0) || 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.bottleneck.stop({ dropWaitingJobs: true }).catch(() => undefined);
    // A limiter on a passed-in connection leaves it open: close ours (client and subscriber).
    await Promise.resolve(this.connection?.disconnect(false)).catch(() => undefined);
    this.redis?.disconnect();
  }

  private wrap(err: unknown): unknown {
    if (err instanceof Error) {
      return new DativoError('SOURCE_UNAVAILABLE', `rate limiter ${this.key}${this.clustered ? ' (Redis)' : ''}: ${(err as Error).message}`, {
        cause: err,
        context: { limiter: this.key },
      });
    }
    return err;
  }
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

function aborted(signal: AbortSignal, key: string): DativoError {
  const reason: unknown = signal.reason;
  return new DativoError('ABORTED', `request aborted while waiting for rate limiter ${key}`, { cause: reason, context: { limiter: key } });
}

/**
 * The account part of a limiter key when `rate_limits.account` is not set:
 * a short hash of the credentials (the same key shares a budget; the value
 * never appears), else the tenant.
 */
export function accountOf(tenantId: string, credentials: unknown, limits: RateLimits): string {
  if (limits.account !== undefined) return limits.account;
  if (credentials === undefined || credentials === null) return tenantId;
  return credentialAccount(tenantId, JSON.stringify(credentials));
}

/** `<tenant>.<first 12 hex of sha256(credentials)>`: one budget per credential, the value never shown. */
function credentialAccount(tenantId: string, credentials: string): string {
  return `${tenantId}.${createHash('sha256').update(credentials).digest('hex').slice(0, 12)}`;
}

/**
 * An API connector's `rate_limits` block from the job's merged one (`base`):
 * `requests_per_second` capped at `cap` when given (with `burst` when
 * given), and `account` defaulted to the tenant plus a short hash of
 * `credentials` (the same credentials share one budget; the value never
 * appears), then suffixed with `.<accountSuffix>` when given (a separate
 * budget of the same account, e.g. HubSpot's search).
 */
export function connectorRateLimits(
  base: Record<string, unknown> | undefined,
  tenantId: string,
  credentials: string,
  opts: { cap?: number; burst?: number; accountSuffix?: string } = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(base ?? {}) };
  if (opts.cap !== undefined) {
    const rps = typeof out['requests_per_second'] === 'number' ? (out['requests_per_second'] as number) : Number.POSITIVE_INFINITY;
    out['requests_per_second'] = Math.min(rps, opts.cap);
  }
  if (opts.burst !== undefined) out['burst'] = opts.burst;
  const account = typeof out['account'] === 'string' && out['account'] !== '' ? out['account'] : credentialAccount(tenantId, credentials);
  out['account'] = opts.accountSuffix === undefined ? account : `${account}.${opts.accountSuffix}`;
  return out;
}

interface Shared {
  limiter: Limiter;
  refs: number;
}
const registry = new Map<string, Shared>();

/**
 * The process-wide limiter of `key`, created on first use with `limits`
 * (later callers share it, whatever limits they pass: one budget per
 * account). `release()` closes it when the last user is done.
 */
export function acquireLimiter(key: string, limits: RateLimits, options: LimiterOptions = {}): { limiter: Limiter; release: () => Promise<void> } {
  let shared = registry.get(key);
  if (!shared) {
    shared = { limiter: createLimiter(key, limits, options), refs: 0 };
    registry.set(key, shared);
  }
  shared.refs++;
  const s = shared;
  let released = false;
  return {
    limiter: s.limiter,
    release: async () => {
      if (released) return;
      released = true;
      if (--s.refs === 0) {
        registry.delete(key);
        await s.limiter.close();
      }
    },
  };
}
