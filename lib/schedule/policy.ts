/**
 * What a scheduler does after a run: the exit code (DESIGN.md) decides, the
 * schedule's retry policy says how often and how long to wait. Every way of
 * running schedules (in-process, BullMQ workers, the Dagster export) asks
 * this module, so an exit code means the same thing everywhere:
 *
 * | outcome | decision |
 * |---|---|
 * | exit 0 | done |
 * | exit 1 (partial) | retried only with `retry_on_partial`, else done with a warning |
 * | exit 2 (retryable) | retried with backoff |
 * | exit 3 (permanent) | failed, never retried |
 * | timeout (killed) | retried with backoff |
 * | crash (signal, OOM, no summary) | retried with backoff |
 *
 * The backoff is the one of lib/retry.ts (`backoffDelay`, no jitter):
 * `delay_seconds × backoff_factor^(n-1)` before retry n, capped at
 * `max_delay_seconds`.
 */
import { backoffDelay, definePolicy, type RetryPolicy } from '../retry.js';

/** A schedule's run-level retry policy (`retry_policy` in runner.yaml), in seconds as written. */
export interface RunRetryPolicy {
  /** Retries after the first attempt. Default 3. */
  readonly maxRetries: number;
  /** Wait before the first retry, in seconds. Default 5. */
  readonly delaySeconds: number;
  /** Growth of the wait per retry (>= 1). Default 2. */
  readonly backoffFactor: number;
  /** Largest wait, in seconds (>= delaySeconds). Default 300. */
  readonly maxDelaySeconds: number;
  /** Retry a partial run (exit 1). Default false. */
  readonly retryOnPartial: boolean;
}

/** The defaults: those of the Python tool's `RetryConfig`, and partial runs not retried (DESIGN.md). */
export const DEFAULT_RUN_RETRY: RunRetryPolicy = Object.freeze({
  maxRetries: 3,
  delaySeconds: 5,
  backoffFactor: 2,
  maxDelaySeconds: 300,
  retryOnPartial: false,
});

/** How one attempt ended. */
export type RunOutcome =
  /** The child exited with one of our exit codes (and, for `dativo run`, its summary agreed). */
  | { kind: 'exited'; exitCode: 0 | 1 | 2 | 3 }
  /** Killed by the scheduler at its `timeout_seconds`. */
  | { kind: 'timeout' }
  /** Died some other way: a signal, an out-of-memory abort, an exit code outside 0..3, no summary. */
  | { kind: 'crashed'; detail?: string };

/** Why a run chain ended or goes on. */
export type DecisionReason = 'succeeded' | 'partial' | 'partial_retried' | 'retryable' | 'timeout' | 'crashed' | 'permanent' | 'retries_exhausted';

/** What to do after attempt `attempt` of a run. */
export type RunDecision =
  | { action: 'done'; reason: 'succeeded' | 'partial' }
  | { action: 'retry'; reason: 'partial_retried' | 'retryable' | 'timeout' | 'crashed'; delayMs: number; nextAttempt: number }
  | { action: 'failed'; reason: 'permanent' | 'retries_exhausted' };

/** The lib/retry.ts policy behind a run retry policy (no jitter: the delays are the ones the file states). */
export function toRetryPolicy(p: RunRetryPolicy): RetryPolicy {
  return definePolicy({
    maxAttempts: p.maxRetries + 1,
    // A first delay above the cap is capped too (the config loader reports it).
    minDelayMs: Math.min(p.delaySeconds, p.maxDelaySeconds) * 1000,
    maxDelayMs: p.maxDelaySeconds * 1000,
    factor: p.backoffFactor,
    jitter: 'none',
  });
}

/** The wait before retry `retry` (1 = the first retry), in ms. */
export function retryDelayMs(p: RunRetryPolicy, retry: number): number {
  return backoffDelay(toRetryPolicy(p), retry);
}

/** Whether an outcome is worth another attempt at all (before counting attempts). */
export function isRetryable(p: RunRetryPolicy, outcome: RunOutcome): boolean {
  if (outcome.kind !== 'exited') return true;
  return outcome.exitCode === 2 || (outcome.exitCode === 1 && p.retryOnPartial);
}

/**
 * The decision after attempt `attempt` (1 = the first run) ended with
 * `outcome`. A retry is allowed while `attempt <= maxRetries`; its delay is
 * {@link retryDelayMs} of retry number `attempt`.
 */
export function decideRetry(p: RunRetryPolicy, outcome: RunOutcome, attempt: number): RunDecision {
  if (outcome.kind === 'exited') {
    if (outcome.exitCode === 0) return { action: 'done', reason: 'succeeded' };
    if (outcome.exitCode === 3) return { action: 'failed', reason: 'permanent' };
    if (outcome.exitCode === 1 && !p.retryOnPartial) return { action: 'done', reason: 'partial' };
  }
  if (attempt > p.maxRetries) return { action: 'failed', reason: 'retries_exhausted' };
  const reason = outcome.kind === 'timeout' ? 'timeout' : outcome.kind === 'crashed' ? 'crashed' : outcome.exitCode === 1 ? 'partial_retried' : 'retryable';
  return { action: 'retry', reason, delayMs: retryDelayMs(p, attempt), nextAttempt: attempt + 1 };
}

/**
 * The outcome of a child that ended with `code`/`signal`. `summaryExit` is
 * the `exit_code` of the JSON summary it printed (undefined: none could be
 * read); when `requireSummary` is set (a `dativo run --json` child), an exit
 * code without a matching summary is a crash: Node exits 1 on an uncaught
 * exception, which must not read as "partial".
 */
export function outcomeOf(code: number | null, signal: NodeJS.Signals | null, summaryExit: number | undefined, requireSummary: boolean): RunOutcome {
  if (signal !== null) return { kind: 'crashed', detail: `killed by ${signal}` };
  if (code === 0 || code === 1 || code === 2 || code === 3) {
    if (!requireSummary || summaryExit === code) return { kind: 'exited', exitCode: code };
    return { kind: 'crashed', detail: summaryExit === undefined ? `exit code ${code} without a run summary` : `exit code ${code} but the summary says ${summaryExit}` };
  }
  return { kind: 'crashed', detail: `exit code ${String(code)}` };
}

/** The exit code a run log records for an outcome: a timeout or crash counts as 2 (retryable). */
export function exitCodeOfOutcome(outcome: RunOutcome): 0 | 1 | 2 | 3 {
  return outcome.kind === 'exited' ? outcome.exitCode : 2;
}
