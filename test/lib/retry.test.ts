import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DativoError, errorCodesOf, toDativoError, transientCodeOf } from '../../lib/errors.js';
import {
  backoffDelay,
  classifyFailure,
  DEFAULT_RETRY_POLICY,
  definePolicy,
  failureInfo,
  parseRetryAfter,
  retry,
  RetryBudget,
  type Clock,
} from '../../lib/retry.js';

/** A clock whose sleeps complete instantly and advance its time; records every wait. */
function fakeClock(start = 1_000_000): Clock & { waits: number[]; t: number } {
  const c = {
    t: start,
    waits: [] as number[],
    now: () => c.t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      c.waits.push(ms);
      c.t += ms;
    },
  };
  return c;
}

const fetchFailed = (code: string): Error => {
  const inner = Object.assign(new Error(`read ${code}`), { code, syscall: 'read' });
  return new TypeError('fetch failed', { cause: inner });
};

test('toDativoError: ECONNRESET on `cause` (fetch failed) is retryable SOURCE_UNAVAILABLE, not INTERNAL', () => {
  const e = toDativoError(fetchFailed('ECONNRESET'));
  assert.equal(e.code, 'SOURCE_UNAVAILABLE');
  assert.equal(e.disposition, 'retryable');
  assert.equal(e.exitCode, 2);
  assert.equal(e.context.syscallCode, 'ECONNRESET');
  assert.match(e.message, /fetch failed: read ECONNRESET/);
  // A plain bug stays fatal.
  assert.equal(toDativoError(new TypeError('x is undefined')).code, 'INTERNAL');
});

test('cause chain: AggregateError members and nested causes are walked; cycles do not hang', () => {
  const agg = new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1'), { code: 'ECONNREFUSED' }), Object.assign(new Error('x'), { code: 'ENETUNREACH' })], 'all failed');
  const top = new TypeError('fetch failed', { cause: agg });
  assert.deepEqual(errorCodesOf(top), ['ECONNREFUSED', 'ENETUNREACH']);
  assert.equal(transientCodeOf(top), 'ECONNREFUSED');
  assert.equal(toDativoError(top).code, 'SOURCE_UNAVAILABLE');
  const a: Error & { cause?: unknown } = new Error('a');
  const b = new Error('b', { cause: a });
  a.cause = b;
  assert.deepEqual(errorCodesOf(a), []);
});

test('backoff: exponential, capped, full jitter in [0, d], Iceberg-style fractional jitter', () => {
  const p = definePolicy({ minDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 'none' });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((r) => backoffDelay(p, r)), [100, 200, 400, 800, 1000, 1000]);
  const full = definePolicy({ minDelayMs: 100, maxDelayMs: 1000 });
  assert.equal(backoffDelay(full, 3, () => 0), 0);
  assert.equal(backoffDelay(full, 3, () => 0.5), 200);
  assert.equal(backoffDelay(full, 3, () => 0.999), 400);
  const iceberg = definePolicy({ minDelayMs: 100, maxDelayMs: 60_000, jitter: 0.1 });
  assert.equal(backoffDelay(iceberg, 2, () => 0.5), 210);
});

test('definePolicy: impossible values are refused', () => {
  assert.throws(() => definePolicy({ maxAttempts: 0 }), /maxAttempts/);
  assert.throws(() => definePolicy({ minDelayMs: 10, maxDelayMs: 5 }), /maxDelayMs/);
  assert.throws(() => definePolicy({ factor: 0.5 }), /factor/);
  assert.equal(definePolicy({ maxAttempts: undefined }).maxAttempts, DEFAULT_RETRY_POLICY.maxAttempts);
});

test('Retry-After: seconds, HTTP date (three forms), past date, garbage', () => {
  const now = Date.parse('2026-12-02T07:00:00Z');
  assert.deepEqual(parseRetryAfter('3', now), { kind: 'delay', ms: 3000 });
  assert.deepEqual(parseRetryAfter(' 0 ', now), { kind: 'delay', ms: 0 });
  assert.deepEqual(parseRetryAfter('Wed, 02 Dec 2026 07:00:05 GMT', now), { kind: 'delay', ms: 5000 });
  assert.deepEqual(parseRetryAfter('Wednesday, 02-Dec-26 07:00:05 GMT', now), { kind: 'delay', ms: 5000 });
  assert.deepEqual(parseRetryAfter('Wed Dec  2 07:00:05 2026', now).kind, 'delay');
  assert.deepEqual(parseRetryAfter('Tue, 01 Dec 2026 07:00:00 GMT', now), { kind: 'delay', ms: 0 });
  assert.deepEqual(parseRetryAfter('soon', now), { kind: 'invalid', raw: 'soon' });
  assert.deepEqual(parseRetryAfter('-5', now), { kind: 'invalid', raw: '-5' });
  assert.deepEqual(parseRetryAfter('12:00', now), { kind: 'invalid', raw: '12:00' });
  assert.deepEqual(parseRetryAfter('2026', now), { kind: 'delay', ms: 2_026_000 });
  assert.deepEqual(parseRetryAfter(null, now), { kind: 'none' });
});

test('failureInfo / classifyFailure understand SDK errors: Stripe, HubSpot, gaxios, AWS', () => {
  const p = DEFAULT_RETRY_POLICY;
  const stripe = Object.assign(new Error('Rate limited'), { type: 'StripeRateLimitError', statusCode: 429, headers: { 'retry-after': '2' } });
  assert.deepEqual(classifyFailure(p, stripe), { retry: true, retryAfterMs: 2000, reason: 'status 429' });
  assert.equal(classifyFailure(p, Object.assign(new Error('x'), { statusCode: 429, headers: { 'retry-after': 'soon' } })).retryAfterInvalid, 'soon');
  const hubspot = Object.assign(new Error('HTTP-Code: 429'), { code: 429, headers: { 'Retry-After': '1' } });
  assert.equal(classifyFailure(p, hubspot).retryAfterMs, 1000);
  const gaxios = Object.assign(new Error('quota'), { status: 403, response: { status: 403, headers: new Headers({ 'retry-after': '5' }) } });
  assert.equal(failureInfo(gaxios).status, 403);
  assert.equal(classifyFailure(p, gaxios).retry, false);
  assert.equal(classifyFailure(definePolicy({ statuses: [403] }), gaxios).retryAfterMs, 5000);
  const aws = Object.assign(new Error('SlowDown'), { $metadata: { httpStatusCode: 503 } });
  assert.equal(classifyFailure(p, aws).retry, true);
  const abort = new DOMException('This operation was aborted', 'AbortError');
  assert.equal(classifyFailure(p, abort).retry, false);
  assert.equal(classifyFailure(p, fetchFailed('ECONNRESET')).reason, 'ECONNRESET');
  assert.equal(classifyFailure(p, new DativoError('AUTH_FAILED', 'no')).retry, false);
  assert.equal(classifyFailure(p, new DativoError('RATE_LIMITED', 'slow', { context: { status: 429, retryAfterMs: 700 } })).retryAfterMs, 700);
  const garbage = Object.assign(new Error('429'), { statusCode: 429, headers: { 'retry-after': 'later please' } });
  const d = classifyFailure(p, garbage);
  assert.equal(d.retry, true);
  assert.equal(d.retryAfterMs, undefined);
  assert.match(d.reason, /Retry-After "later please" ignored/);
});

test('retry(): backs off exponentially between attempts and returns the first success', async () => {
  const clock = fakeClock();
  const policy = definePolicy({ minDelayMs: 100, maxDelayMs: 10_000, jitter: 'none' });
  let calls = 0;
  const out = await retry(
    async (attempt) => {
      calls++;
      assert.equal(attempt, calls);
      if (attempt < 4) throw fetchFailed('ECONNRESET');
      return 'ok';
    },
    policy,
    { clock },
  );
  assert.equal(out, 'ok');
  assert.deepEqual(clock.waits, [100, 200, 400]);
});

test('retry(): gives up at maxAttempts and rethrows the last error with the attempt count', async () => {
  const clock = fakeClock();
  const policy = definePolicy({ maxAttempts: 3, minDelayMs: 10, jitter: 'none' });
  let calls = 0;
  await assert.rejects(
    retry(
      async () => {
        calls++;
        throw new DativoError('SOURCE_UNAVAILABLE', 'down', { context: { status: 503 } });
      },
      policy,
      { clock },
    ),
    (e: DativoError) => e.code === 'SOURCE_UNAVAILABLE' && e.context.attempts === 3 && e.context.retriesExhausted === 'attempts',
  );
  assert.equal(calls, 3);
  assert.deepEqual(clock.waits, [10, 20]);
});

test('retry(): a fatal error is not retried', async () => {
  const clock = fakeClock();
  let calls = 0;
  await assert.rejects(
    retry(async () => {
      calls++;
      throw new DativoError('AUTH_FAILED', 'bad key');
    }, DEFAULT_RETRY_POLICY, { clock }),
    /bad key/,
  );
  assert.equal(calls, 1);
  assert.deepEqual(clock.waits, []);
});

test('retry(): the total-time cap stops before a wait that would pass it', async () => {
  const clock = fakeClock();
  const policy = definePolicy({ maxAttempts: 100, minDelayMs: 1000, maxDelayMs: 1000, jitter: 'none', maxElapsedMs: 3500 });
  let calls = 0;
  await assert.rejects(
    retry(async () => {
      calls++;
      throw fetchFailed('ETIMEDOUT');
    }, policy, { clock }),
    /fetch failed/,
  );
  assert.equal(calls, 4);
  assert.deepEqual(clock.waits, [1000, 1000, 1000]);
});

test('retry(): Retry-After longer than the backoff is honoured; absurd values are capped and logged', async () => {
  const clock = fakeClock();
  const warnings: unknown[] = [];
  const log = { warn: (o: unknown) => warnings.push(o), debug: () => undefined } as unknown as import('../../lib/log.js').Logger;
  const policy = definePolicy({ minDelayMs: 10, jitter: 'none', maxRetryAfterMs: 60_000, maxElapsedMs: 10_000_000 });
  const answers = ['2', '86400', 'tomorrow'];
  await retry(
    async () => {
      const ra = answers.shift();
      if (ra !== undefined) throw Object.assign(new Error('429'), { statusCode: 429, headers: { 'retry-after': ra } });
      return 1;
    },
    policy,
    { clock, log },
  );
  assert.deepEqual(clock.waits, [2000, 60_000, 40]);
  assert.equal(warnings.length, 2);
  assert.deepEqual(warnings[0], { retryAfterMs: 86_400_000, cappedMs: 60_000 });
  assert.deepEqual(warnings[1], { retryAfter: 'tomorrow' });
});

test('retry(): an abort during the wait rejects with ABORTED at once (mock timers)', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const ac = new AbortController();
  const policy = definePolicy({ minDelayMs: 60_000, maxDelayMs: 60_000, jitter: 'none' });
  let calls = 0;
  const p = retry(async () => {
    calls++;
    throw fetchFailed('ECONNRESET');
  }, policy, { signal: ac.signal });
  // Let the first attempt fail and the wait begin.
  await new Promise((r) => setImmediate(r));
  t.mock.timers.tick(30_000);
  ac.abort();
  await assert.rejects(p, (e: DativoError) => e.code === 'ABORTED');
  assert.equal(calls, 1);
});

test('retry(): with mock timers the default clock waits exactly the backoff', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const policy = definePolicy({ minDelayMs: 1000, jitter: 'none' });
  const starts: number[] = [];
  const p = retry(async (attempt) => {
    starts.push(Date.now());
    if (attempt < 3) throw fetchFailed('ECONNRESET');
    return 'done';
  }, policy);
  for (let i = 0; i < 10 && starts.length < 3; i++) {
    await new Promise((r) => setImmediate(r));
    t.mock.timers.tick(500);
  }
  assert.equal(await p, 'done');
  assert.deepEqual(starts, [0, 1000, 3000]);
});

test('RetryBudget: counts attempts, refuses when spent, reports why', async () => {
  const clock = fakeClock();
  const budget = new RetryBudget(definePolicy({ maxAttempts: 3, minDelayMs: 5, jitter: 'none' }), { clock });
  assert.equal(budget.attempts, 1);
  assert.equal(await budget.backoff(), true);
  assert.equal(await budget.backoff(), true);
  assert.equal(budget.attempts, 3);
  assert.equal(await budget.backoff(), false);
  assert.equal(budget.exhausted, 'attempts');
  assert.deepEqual(clock.waits, [5, 10]);
});

test('commitRetryPolicy: Iceberg commit.retry.* table properties, 10 % jitter', async () => {
  const { commitRetryPolicy } = await import('../../lib/iceberg/table.js');
  const d = commitRetryPolicy({ properties: {} } as never, 5);
  assert.deepEqual([d.maxAttempts, d.minDelayMs, d.maxDelayMs, d.maxElapsedMs, d.jitter], [5, 100, 60_000, 1_800_000, 0.1]);
  const p = commitRetryPolicy({ properties: { 'commit.retry.min-wait-ms': '10', 'commit.retry.max-wait-ms': '40', 'commit.retry.total-timeout-ms': '1000' } } as never, 7);
  assert.deepEqual([p.maxAttempts, p.minDelayMs, p.maxDelayMs, p.maxElapsedMs], [7, 10, 40, 1000]);
  assert.deepEqual([1, 2, 3, 4].map((r) => backoffDelay(p, r, () => 0)), [10, 20, 40, 40]);
  // Garbage properties fall back to the defaults instead of NaN waits.
  assert.equal(commitRetryPolicy({ properties: { 'commit.retry.min-wait-ms': 'soon' } } as never, 5).minDelayMs, 100);
});

test('s3RetryStrategy: the SDK asks our policy; 3 attempts; Retry-After hint honoured; 4xx refused', async () => {
  const { s3RetryStrategy } = await import('../../lib/storage/s3.js');
  const strategy = s3RetryStrategy(definePolicy({ maxAttempts: 3, minDelayMs: 100, maxDelayMs: 100, jitter: 'none' }));
  const t0 = await strategy.acquireInitialRetryToken('');
  assert.equal(t0.getRetryCount(), 0);
  const e503 = Object.assign(new Error('SlowDown'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } });
  const t1 = await strategy.refreshRetryTokenForRetry(t0, { error: e503 as never, errorType: 'SERVER_ERROR' });
  assert.deepEqual([t1.getRetryCount(), t1.getRetryDelay()], [1, 100]);
  const t2 = await strategy.refreshRetryTokenForRetry(t1, { error: e503 as never, errorType: 'THROTTLING', retryAfterHint: new Date(Date.now() + 2000) });
  assert.equal(t2.getRetryCount(), 2);
  assert.ok(t2.getRetryDelay() >= 1900 && t2.getRetryDelay() <= 2000, String(t2.getRetryDelay()));
  await assert.rejects(strategy.refreshRetryTokenForRetry(t2, { error: e503 as never, errorType: 'SERVER_ERROR' }), /spent/);
  const reset = Object.assign(new Error('socket hang up'), { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
  const n1 = await strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), { error: reset as never, errorType: 'CLIENT_ERROR' });
  assert.equal(n1.getRetryCount(), 1, 'ECONNRESET on the cause chain is retried even when the SDK calls it a client error');
  const denied = Object.assign(new Error('AccessDenied'), { $metadata: { httpStatusCode: 403 } });
  await assert.rejects(strategy.refreshRetryTokenForRetry(await strategy.acquireInitialRetryToken(''), { error: denied as never, errorType: 'CLIENT_ERROR' }), /not retryable/);
});
