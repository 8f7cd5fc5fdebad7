import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideRetry, DEFAULT_RUN_RETRY, outcomeOf, retryDelayMs, type RunRetryPolicy } from '../../../lib/schedule/policy.js';

const policy = (p: Partial<RunRetryPolicy> = {}): RunRetryPolicy => ({ ...DEFAULT_RUN_RETRY, ...p });

describe('run retry policy: exit code → decision', () => {
  it('exit 0 is done', () => {
    assert.deepEqual(decideRetry(policy(), { kind: 'exited', exitCode: 0 }, 1), { action: 'done', reason: 'succeeded' });
  });

  it('exit 3 is never retried, whatever the budget', () => {
    assert.deepEqual(decideRetry(policy({ maxRetries: 10 }), { kind: 'exited', exitCode: 3 }, 1), { action: 'failed', reason: 'permanent' });
  });

  it('exit 1 is done (partial) unless retry_on_partial', () => {
    assert.deepEqual(decideRetry(policy(), { kind: 'exited', exitCode: 1 }, 1), { action: 'done', reason: 'partial' });
    assert.deepEqual(decideRetry(policy({ retryOnPartial: true, delaySeconds: 7 }), { kind: 'exited', exitCode: 1 }, 1), {
      action: 'retry',
      reason: 'partial_retried',
      delayMs: 7000,
      nextAttempt: 2,
    });
  });

  it('exit 2, a timeout and a crash are retried with backoff until max_retries', () => {
    const p = policy({ maxRetries: 2, delaySeconds: 10, backoffFactor: 3, maxDelaySeconds: 1000 });
    assert.deepEqual(decideRetry(p, { kind: 'exited', exitCode: 2 }, 1), { action: 'retry', reason: 'retryable', delayMs: 10_000, nextAttempt: 2 });
    assert.deepEqual(decideRetry(p, { kind: 'timeout' }, 2), { action: 'retry', reason: 'timeout', delayMs: 30_000, nextAttempt: 3 });
    assert.deepEqual(decideRetry(p, { kind: 'crashed' }, 3), { action: 'failed', reason: 'retries_exhausted' });
    assert.deepEqual(decideRetry(policy({ maxRetries: 0 }), { kind: 'exited', exitCode: 2 }, 1), { action: 'failed', reason: 'retries_exhausted' });
  });
});

describe('run retry policy: backoff', () => {
  it('delay_seconds × backoff_factor^(n-1), capped at max_delay_seconds', () => {
    const p = policy({ delaySeconds: 5, backoffFactor: 2, maxDelaySeconds: 30 });
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => retryDelayMs(p, n)), [5000, 10_000, 20_000, 30_000, 30_000]);
  });

  it('factor 1 is a constant delay; a first delay above the cap is capped', () => {
    assert.deepEqual([1, 2, 3].map((n) => retryDelayMs(policy({ delaySeconds: 2, backoffFactor: 1 }), n)), [2000, 2000, 2000]);
    assert.equal(retryDelayMs(policy({ delaySeconds: 50, maxDelaySeconds: 20 }), 1), 20_000);
  });

  it('fractional seconds stay exact to the millisecond', () => {
    assert.deepEqual([1, 2, 3].map((n) => retryDelayMs(policy({ delaySeconds: 0.05, backoffFactor: 2 }), n)), [50, 100, 200]);
  });
});

describe('outcome of a child process', () => {
  it('an exit code with a matching summary counts as that code', () => {
    assert.deepEqual(outcomeOf(1, null, 1, true), { kind: 'exited', exitCode: 1 });
    assert.deepEqual(outcomeOf(2, null, undefined, false), { kind: 'exited', exitCode: 2 });
  });

  it('exit 1 without a summary is a crash (an uncaught exception), not a partial run', () => {
    assert.equal(outcomeOf(1, null, undefined, true).kind, 'crashed');
    assert.equal(outcomeOf(0, null, 3, true).kind, 'crashed');
  });

  it('a signal or an exit code outside 0..3 is a crash (OOM aborts with 134)', () => {
    assert.deepEqual(outcomeOf(null, 'SIGKILL', undefined, true), { kind: 'crashed', detail: 'killed by SIGKILL' });
    assert.deepEqual(outcomeOf(134, null, undefined, false), { kind: 'crashed', detail: 'exit code 134' });
  });
});
