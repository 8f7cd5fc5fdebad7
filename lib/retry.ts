/**
 * Retry policy as data (undici's `RetryHandler` is the model): which HTTP
 * statuses and which error codes are retried, exponential backoff with
 * jitter, a cap on attempts and on total time, `Retry-After` in both forms
 * (seconds and HTTP date), and an `AbortSignal`. Declared once; a layer or a
 * connector overrides fields ({@link definePolicy}), never the loop.
 *
 * Two ways to use it:
 * - {@link retry}: run an async function until it succeeds, fails for good or
 *   the policy is spent (the HTTP layer, SDK calls, catalog reloads);
 * - {@link RetryBudget}: for loops that do more than re-run one call between
 *   attempts (the Iceberg commit reloads the table and looks for its own
 *   snapshot), the budget decides whether another attempt is allowed and
 *   waits the backoff.
 *
 * Time comes from a {@link Clock}, so tests drive it with `node:test` mock
 * timers (the default clock reads `Date.now()` and the global `setTimeout`
 * at call time) or inject their own.
 *
 * Layers: this is the per-request policy of the network layer (HTTP, SDK
 * calls, S3 requests, catalog requests) and of the commit loop. A job's
 * `retry_config` tunes the per-request policy of its source (see
 * docs/network.md); re-running a whole failed job is the scheduler's.
 */
import { DativoError, errorChain, errorCodesOf, isDativoError, TRANSIENT_NETWORK_CODES } from './errors.js';
import type { Logger } from './log.js';

/** How the backoff is randomised. */
export type Jitter =
  /** Uniform in [0, delay] ("full jitter", AWS architecture blog): spreads clients best. The default. */
  | 'full'
  /** Exactly the exponential delay. */
  | 'none'
  /** delay × (1 + random × fraction), e.g. 0.1 as Iceberg's Java `Tasks` does. */
  | number;

/** A retry policy. Every field has a default in {@link DEFAULT_RETRY_POLICY}. */
export interface RetryPolicy {
  /** Attempts in total, the first included (1 = no retry). Default 5. */
  readonly maxAttempts: number;
  /** Backoff before the first retry, before jitter, in ms. Default 500. */
  readonly minDelayMs: number;
  /** Largest backoff between two attempts, in ms. Default 30 000. */
  readonly maxDelayMs: number;
  /** Growth of the backoff per retry. Default 2. */
  readonly factor: number;
  /** Randomisation of the backoff. Default `'full'`. */
  readonly jitter: Jitter;
  /**
   * Time budget from the start of the first attempt, in ms: no attempt starts
   * after it, and a wait that would end after it is not begun. Default 300 000.
   */
  readonly maxElapsedMs: number;
  /** HTTP statuses that are retried. Default 408, 429, 500, 502, 503, 504. */
  readonly statuses: readonly number[];
  /** Error codes retried when found anywhere along the `cause` chain. Default {@link TRANSIENT_NETWORK_CODES}. */
  readonly errorCodes: readonly string[];
  /** Wait what a `Retry-After` header asks (when longer than the backoff). Default true. */
  readonly retryAfter: boolean;
  /** A `Retry-After` longer than this is capped to it, and logged. Default 120 000. */
  readonly maxRetryAfterMs: number;
}

/** The defaults (undici's, with full jitter and a total-time cap). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  minDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 'full',
  maxElapsedMs: 300_000,
  statuses: Object.freeze([408, 429, 500, 502, 503, 504]),
  errorCodes: Object.freeze([...TRANSIENT_NETWORK_CODES]),
  retryAfter: true,
  maxRetryAfterMs: 120_000,
});

/**
 * A policy from `base` (default {@link DEFAULT_RETRY_POLICY}) with `overrides`
 * applied; `undefined` fields are ignored. Throws INTERNAL for impossible
 * values (config files are validated before this, with file and key).
 */
export function definePolicy(overrides: Partial<RetryPolicy> = {}, base: RetryPolicy = DEFAULT_RETRY_POLICY): RetryPolicy {
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  const p = merged as unknown as RetryPolicy;
  const bad = (field: string, why: string): never => {
    throw new DativoError('INTERNAL', `retry policy: ${field} ${why}`, { context: { field, value: (p as unknown as Record<string, unknown>)[field] } });
  };
  if (!Number.isInteger(p.maxAttempts) || p.maxAttempts < 1) bad('maxAttempts', 'must be an integer >= 1');
  if (!(p.minDelayMs >= 0)) bad('minDelayMs', 'must be >= 0');
  if (!(p.maxDelayMs >= p.minDelayMs)) bad('maxDelayMs', 'must be >= minDelayMs');
  if (!(p.factor >= 1)) bad('factor', 'must be >= 1');
  if (!(p.maxElapsedMs > 0)) bad('maxElapsedMs', 'must be > 0');
  if (!(p.maxRetryAfterMs >= 0)) bad('maxRetryAfterMs', 'must be >= 0');
  if (typeof p.jitter === 'number' && !(p.jitter >= 0)) bad('jitter', 'must be >= 0');
  return Object.freeze({ ...p, statuses: Object.freeze([...p.statuses]), errorCodes: Object.freeze([...p.errorCodes]) });
}

/**
 * The backoff before retry number `retry` (1 = the wait after the first
 * attempt): `minDelayMs × factor^(retry-1)`, capped at `maxDelayMs`, then
 * jittered. `random` returns [0, 1); default `Math.random`.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.minDelayMs * policy.factor ** Math.max(0, retry - 1));
  if (policy.jitter === 'none') return Math.round(exp);
  if (policy.jitter === 'full') return Math.round(exp * random());
  return Math.round(exp * (1 + random() * policy.jitter));
}

/** A parsed `Retry-After` header. */
export type RetryAfter =
  | { kind: 'none' }
  /** Wait this long (never negative; a date in the past is 0). */
  | { kind: 'delay'; ms: number }
  /** Present but neither delta-seconds nor an HTTP date. */
  | { kind: 'invalid'; raw: string };

/**
 * Parse `Retry-After` (RFC 9110 §10.2.3): delta-seconds (`120`) or an HTTP
 * date (`Wed, 21 Oct 2026 07:28:00 GMT`), relative to `nowMs`.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): RetryAfter {
  if (value === null || value === undefined) return { kind: 'none' };
  const raw = value.trim();
  if (raw === '') return { kind: 'none' };
  if (/^\d+(\.\d+)?$/.test(raw)) return { kind: 'delay', ms: Math.round(Number(raw) * 1000) };
  // Only the three HTTP-date forms start with a day name; Date.parse alone accepts "1" or "2026".
  if (/^[A-Za-z]{3,9},? /.test(raw)) {
    const at = Date.parse(raw);
    if (Number.isFinite(at)) return { kind: 'delay', ms: Math.max(0, at - nowMs) };
  }
  return { kind: 'invalid', raw: raw.slice(0, 100) };
}

/** Reads one response header (case-insensitive): the shape of `Headers`, a plain object or an SDK's map. */
export type HeaderLookup = (name: string) => string | undefined;

/** What the retry layer can tell about a failure, from our errors and from SDK errors alike. */
export interface FailureInfo {
  /** HTTP status, when the failure was an HTTP answer. */
  status?: number;
  /** Response headers, when known. */
  header?: HeaderLookup;
  /** Every `code` string along the cause chain (outermost first). */
  codes: string[];
  /** The failure is an abort (ours or the caller's). */
  aborted: boolean;
}

/**
 * Status, headers and codes of anything thrown: a {@link DativoError}
 * (`context.status`, `context.retryAfterMs`), an SDK error
 * (`status`/`statusCode`/`code: 429` (HubSpot), `response.status` (gaxios),
 * `$metadata.httpStatusCode` (AWS); headers on `headers`, `response.headers`
 * or `$response.headers`), or a plain network error.
 */
export function failureInfo(err: unknown): FailureInfo {
  const info: FailureInfo = { codes: errorCodesOf(err), aborted: false };
  for (const e of errorChain(err)) {
    if (e === null || typeof e !== 'object') continue;
    const name = (e as { name?: unknown }).name;
    if (name === 'AbortError' || (e as { code?: unknown }).code === 'ABORT_ERR' || (isDativoError(e) && e.code === 'ABORTED')) info.aborted = true;
    if (info.status === undefined) {
      const status = statusOf(e);
      if (status !== undefined) info.status = status;
    }
    if (info.header === undefined) {
      const header = headersOf(e);
      if (header !== undefined) info.header = header;
    }
  }
  return info;
}

function statusOf(e: object): number | undefined {
  const o = e as Record<string, unknown>;
  const response = o.response as Record<string, unknown> | undefined;
  const meta = o.$metadata as Record<string, unknown> | undefined;
  const ctx = isDativoError(e) ? e.context : undefined;
  const candidates = [ctx?.status, o.status, o.statusCode, typeof o.code === 'number' ? o.code : undefined, response?.status, response?.statusCode, meta?.httpStatusCode];
  for (const c of candidates) if (typeof c === 'number' && Number.isInteger(c) && c >= 100 && c <= 599) return c;
  return undefined;
}

/** A lookup over `Headers`, a `Map`, or a plain object of headers. */
export function headerLookup(h: unknown): HeaderLookup | undefined {
  if (h === null || typeof h !== 'object') return undefined;
  const get = (h as { get?: unknown }).get;
  if (typeof get === 'function') {
    return (name) => {
      const v: unknown = (get as (n: string) => unknown).call(h, name);
      return typeof v === 'string' ? v : undefined;
    };
  }
  const lower = new Map<string, string>();
  for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
    if (typeof v === 'string') lower.set(k.toLowerCase(), v);
    else if (Array.isArray(v) && typeof v[0] === 'string') lower.set(k.toLowerCase(), v[0]);
  }
  return (name) => lower.get(name.toLowerCase());
}

function headersOf(e: object): HeaderLookup | undefined {
  const o = e as Record<string, unknown>;
  const response = o.response as Record<string, unknown> | undefined;
  const raw = o.$response as Record<string, unknown> | undefined;
  for (const h of [o.headers, response?.headers, raw?.headers]) {
    const lookup = headerLookup(h);
    if (lookup) return lookup;
  }
  return undefined;
}

/** What to do with one failure. */
export interface RetryDecision {
  retry: boolean;
  /** Wait at least this long before the next attempt (a server's `Retry-After`), in ms. */
  retryAfterMs?: number;
  /** Why, for logs: `status 429`, `ECONNRESET`, `fatal AUTH_FAILED`, ... */
  reason: string;
  /** A `Retry-After` that was neither seconds nor an HTTP date (ignored; the backoff applies). */
  retryAfterInvalid?: string;
}

/**
 * The default classification under `policy`: aborts are never retried; a
 * {@link DativoError} is retried when its status is in `statuses`, or (with
 * no status) when its disposition is `retryable` or a listed code sits on its
 * cause chain; an SDK or network error when its status is in `statuses` or a
 * listed code sits on its cause chain. `Retry-After` (header, or
 * `context.retryAfterMs`) is read when `policy.retryAfter`; a garbage or
 * too-long value is reported in `reason` and capped by the caller.
 */
export function classifyFailure(policy: RetryPolicy, err: unknown, nowMs: number = Date.now()): RetryDecision {
  const info = failureInfo(err);
  if (info.aborted) return { retry: false, reason: 'aborted' };
  const decision = ((): RetryDecision => {
    if (isDativoError(err) && err.disposition !== 'retryable') return { retry: false, reason: `${err.disposition} ${err.code}` };
    // Whatever the status (Google sends quota exhaustion as 403): a rate limit is waited out.
    if (isDativoError(err) && err.code === 'RATE_LIMITED') return { retry: true, reason: `rate limited${info.status !== undefined ? ` (status ${info.status})` : ''}` };
    if (info.status !== undefined) {
      return policy.statuses.includes(info.status) ? { retry: true, reason: `status ${info.status}` } : { retry: false, reason: `status ${info.status}` };
    }
    const code = info.codes.find((c) => policy.errorCodes.includes(c));
    if (code !== undefined) return { retry: true, reason: code };
    if (isDativoError(err)) return { retry: true, reason: `retryable ${err.code}` };
    return { retry: false, reason: info.codes[0] ?? 'not retryable' };
  })();
  if (decision.retry && policy.retryAfter) {
    const ctxMs = isDativoError(err) ? err.context.retryAfterMs : undefined;
    if (typeof ctxMs === 'number' && Number.isFinite(ctxMs)) decision.retryAfterMs = Math.max(0, ctxMs);
    else {
      const ra = parseRetryAfter(info.header?.('retry-after'), nowMs);
      if (ra.kind === 'delay') decision.retryAfterMs = ra.ms;
      else if (ra.kind === 'invalid') {
        decision.reason += ` (Retry-After "${ra.raw}" ignored: not seconds or an HTTP date)`;
        decision.retryAfterInvalid = ra.raw;
      }
    }
  }
  return decision;
}

/** Time for the retry layer; tests inject one or use `node:test` mock timers with the default. */
export interface Clock {
  now(): number;
  /** Resolve after `ms`; reject with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** `Date.now()` and the global `setTimeout`, looked up at each call (so mock timers apply). */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        globalThis.clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = globalThis.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** Options of {@link RetryBudget} and {@link retry}. */
export interface RetryRunOptions {
  /** Stops waiting and attempting: the wait rejects with ABORTED. Default: none. */
  signal?: AbortSignal;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** [0, 1) source for the jitter. Default `Math.random`. */
  random?: () => number;
  /** Debug line per retry, warn line for a capped or garbage `Retry-After`. Default: none. */
  log?: Logger;
  /** What the log lines say this is about, e.g. `{connector: 'stripe', object: 'customers'}`. */
  logContext?: Record<string, unknown>;
}

/** Why a budget allows no further attempt. */
export type Exhausted = 'attempts' | 'time';

/**
 * The attempts and time left under a policy, for loops that do their own
 * work between attempts. Create it before the first attempt (the time budget
 * starts then); after a failure call {@link RetryBudget.backoff}: it waits and
 * returns true when another attempt may start, false when the policy is spent.
 */
export class RetryBudget {
  /** Attempts started so far (the first one included). */
  attempts = 1;
  /** Why the last {@link backoff} refused, if it did. */
  exhausted: Exhausted | undefined;
  /** Total time waited, in ms. */
  waitedMs = 0;
  readonly startedAt: number;
  private readonly clock: Clock;

  constructor(
    readonly policy: RetryPolicy,
    private readonly options: RetryRunOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.startedAt = this.clock.now();
  }

  /**
   * The wait before the next attempt, or undefined when none is allowed. A
   * server's `retryAfterMs` is honoured (capped at `maxRetryAfterMs`, logged)
   * when longer than the backoff.
   */
  nextDelay(retryAfterMs?: number): number | undefined {
    const p = this.policy;
    if (this.attempts >= p.maxAttempts) {
      this.exhausted = 'attempts';
      return undefined;
    }
    let delay = backoffDelay(p, this.attempts, this.options.random);
    if (retryAfterMs !== undefined && p.retryAfter) {
      let asked = retryAfterMs;
      if (asked > p.maxRetryAfterMs) {
        this.options.log?.warn(
          { ...this.options.logContext, retryAfterMs: asked, cappedMs: p.maxRetryAfterMs },
          `Retry-After of ${Math.round(asked / 1000)} s is longer than the policy allows; waiting ${Math.round(p.maxRetryAfterMs / 1000)} s`,
        );
        asked = p.maxRetryAfterMs;
      }
      delay = Math.max(delay, asked);
    }
    if (this.clock.now() + delay - this.startedAt > p.maxElapsedMs) {
      this.exhausted = 'time';
      return undefined;
    }
    return delay;
  }

  /**
   * Wait before the next attempt. False (without waiting) when the policy
   * allows no more; rejects with ABORTED when the signal fires.
   */
  async backoff(retryAfterMs?: number): Promise<boolean> {
    const delay = this.nextDelay(retryAfterMs);
    if (delay === undefined) return false;
    await this.wait(delay);
    this.attempts++;
    return true;
  }

  /** Sleep `ms` on the budget's clock, honouring the signal. */
  async wait(ms: number): Promise<void> {
    const signal = this.options.signal;
    if (signal?.aborted) throw abortedError(signal);
    try {
      if (ms > 0) await this.clock.sleep(ms, signal);
    } catch (err) {
      if (signal?.aborted) throw abortedError(signal);
      throw err;
    }
    this.waitedMs += ms;
  }
}

function abortedError(signal: AbortSignal): DativoError {
  const reason: unknown = signal.reason;
  if (isDativoError(reason)) return reason;
  const msg = reason instanceof Error && reason.message ? reason.message : 'aborted';
  return new DativoError('ABORTED', `aborted while waiting to retry: ${msg}`, { cause: reason });
}

/** Options of {@link retry}. */
export interface RetryOptions extends RetryRunOptions {
  /** Decide per failure. Default {@link classifyFailure} under the policy. */
  classify?: (err: unknown, attempt: number) => RetryDecision;
  /** Called (and awaited) before each wait: e.g. to pause a shared limiter, or count retries. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown; decision: RetryDecision }) => void | Promise<void>;
}

/**
 * Run `fn(attempt)` (attempt counts from 1) under `policy` until it resolves;
 * a failure the classifier does not retry, or the last one when the policy is
 * spent, is rethrown as it was (a {@link DativoError} gets `attempts` and,
 * when spent, `retriesExhausted` in its context). An abort while waiting
 * rejects with ABORTED.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY_POLICY, options: RetryOptions = {}): Promise<T> {
  const budget = new RetryBudget(policy, options);
  const clock = options.clock ?? systemClock;
  for (;;) {
    if (options.signal?.aborted) throw abortedError(options.signal);
    try {
      return await fn(budget.attempts);
    } catch (err) {
      const decision = options.classify ? options.classify(err, budget.attempts) : classifyFailure(policy, err, clock.now());
      if (!decision.retry || options.signal?.aborted) throw annotate(err, budget, false);
      if (decision.retryAfterInvalid !== undefined) {
        options.log?.warn({ ...options.logContext, retryAfter: decision.retryAfterInvalid }, `Retry-After "${decision.retryAfterInvalid}" is not seconds or an HTTP date; backing off instead`);
      }
      const delay = budget.nextDelay(decision.retryAfterMs);
      if (delay === undefined) throw annotate(err, budget, true);
      options.log?.debug(
        { ...options.logContext, attempt: budget.attempts, delayMs: delay, reason: decision.reason },
        `attempt ${budget.attempts} failed (${decision.reason}); retrying in ${delay} ms`,
      );
      await options.onRetry?.({ attempt: budget.attempts, delayMs: delay, error: err, decision });
      await budget.wait(delay);
      budget.attempts++;
    }
  }
}

function annotate(err: unknown, budget: RetryBudget, spent: boolean): unknown {
  if (isDativoError(err)) {
    err.context.attempts = budget.attempts;
    if (spent && budget.exhausted) err.context.retriesExhausted = budget.exhausted;
  }
  return err;
}

/**
 * Per-request policy overrides from config keys, as in `retry_config` and
 * `rate_limits.retry`: `max_retries` (or `max_attempts`), `initial_delay_seconds`
 * (or `retry_delay_seconds`), `max_delay_seconds` (or `max_backoff_seconds`),
 * `backoff_multiplier`, `backoff: constant` (factor 1), `max_elapsed_seconds`,
 * `max_retry_after_seconds`. Keys not given stay the policy's; values are
 * assumed schema-validated.
 */
export function retryOverrides(raw: Record<string, unknown> | null | undefined): Partial<RetryPolicy> {
  const r = raw ?? {};
  const n = (k: string): number | undefined => {
    const v = r[k];
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
    return undefined;
  };
  const out: { -readonly [K in keyof RetryPolicy]?: RetryPolicy[K] } = {};
  const retries = n('max_retries');
  const attempts = n('max_attempts');
  if (retries !== undefined) out.maxAttempts = retries + 1;
  else if (attempts !== undefined) out.maxAttempts = attempts;
  const initial = n('initial_delay_seconds') ?? n('retry_delay_seconds');
  if (initial !== undefined) out.minDelayMs = initial * 1000;
  const max = n('max_delay_seconds') ?? n('max_backoff_seconds');
  if (max !== undefined) out.maxDelayMs = max * 1000;
  const factor = n('backoff_multiplier');
  if (factor !== undefined) out.factor = factor;
  if (r['backoff'] === 'constant') out.factor = 1;
  const elapsed = n('max_elapsed_seconds');
  if (elapsed !== undefined) out.maxElapsedMs = elapsed * 1000;
  const ra = n('max_retry_after_seconds');
  if (ra !== undefined) out.maxRetryAfterMs = ra * 1000;
  return out;
}
