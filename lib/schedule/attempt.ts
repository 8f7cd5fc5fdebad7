/**
 * One attempt of a scheduled run, the same for every runner of schedules
 * (the in-process scheduler of lib/schedule/scheduler.ts and the BullMQ
 * worker of lib/schedule/worker.ts): start the child (lib/schedule/child.ts),
 * kill it at its timeout (SIGTERM, SIGKILL after `killGraceSeconds`), read
 * how it ended (lib/schedule/policy.ts `outcomeOf`, `decideRetry`), write
 * the run log's start and end records and the pino lines of its transitions
 * (`run started`, `run timed out`, `run stopping`, `run killed`, `run
 * finished`, `retry scheduled`, `run failed permanently` / `run retries
 * exhausted`). What happens next (a timer, a BullMQ retry) is the caller's.
 */
import { ExitCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Clock } from '../retry.js';
import { startChild, type ChildCommand, type ChildResult, type RunningChild } from './child.js';
import type { Schedule } from './config.js';
import { decideRetry, exitCodeOfOutcome, outcomeOf, type RunDecision, type RunOutcome } from './policy.js';
import type { RunRecord, RunStatus } from './run-log.js';

/** What an attempt needs to know of its schedule. */
export type AttemptSchedule = Pick<Schedule, 'name' | 'config' | 'retry' | 'timeoutSeconds'> & { job: Pick<Schedule['job'], 'name' | 'tenant'> };

/** One attempt to run. */
export interface AttemptSpec {
  /** Unique id of this attempt (the run log's record id). */
  readonly id: string;
  readonly schedule: AttemptSchedule;
  /** 1 = the first attempt of a run. */
  readonly attempt: number;
}

export interface AttemptOptions {
  clock: Clock;
  /** The line fields of the attempt (schedule, job, tenant, attempt, attempt_id) are added here. */
  log: Logger;
  command: ChildCommand;
  /** After SIGTERM (timeout, stop), how long before SIGKILL. */
  killGraceSeconds: number;
  /** Each stderr line of the child. */
  onChildLine?: ((line: string) => void) | undefined;
  /** Write a run-log record (the caller orders and guards the writes). */
  record: (rec: RunRecord) => void;
  /** Who runs it (the run log's `scheduler`). */
  runner: { pid: number; host: string };
  /** Asked when the attempt ended: true when the runner is shutting down (a retry is not carried out, giving up is not announced). */
  stopping: () => boolean;
}

/** How an attempt ended, and what should happen next. */
export interface AttemptEnd {
  readonly outcome: RunOutcome;
  readonly decision: RunDecision;
  /** The decision was a retry, and the runner is shutting down ({@link AttemptOptions.stopping}). */
  readonly cancelled: boolean;
  readonly status: RunStatus;
  readonly exitCode: 0 | 1 | 2 | 3;
  readonly durationMs: number;
  readonly rowsWritten: number;
  readonly errorCode?: string;
  readonly errorMessage?: string;
  /** When the next attempt is due (a retry that is not cancelled), ms since the epoch. */
  readonly nextRetryAt?: number;
}

/** Sleep on `clock`; false when `signal` aborted it first. */
export const sleepSafe = (clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> =>
  clock.sleep(Math.max(0, ms), signal).then(
    () => true,
    () => false,
  );

/** A started attempt. */
export class RunningAttempt<S extends AttemptSpec = AttemptSpec> {
  readonly startedAt: number;
  readonly log: Logger;
  readonly done: Promise<AttemptEnd>;
  private readonly child: RunningChild;
  private readonly timers = new AbortController();
  private timedOut = false;
  /** Stopped by a shutdown (SIGTERM from us). */
  private stopped = false;
  private terminating = false;

  constructor(
    readonly spec: S,
    private readonly opts: AttemptOptions,
  ) {
    const s = spec.schedule;
    this.log = opts.log.child({ schedule: s.name, job: s.job.name, tenant: s.job.tenant, attempt: spec.attempt, attempt_id: spec.id });
    this.startedAt = opts.clock.now();
    this.child = startChild(opts.command, opts.onChildLine);
    this.log.info({ event_type: 'run_started', pid: this.child.pid, timeout_seconds: s.timeoutSeconds }, 'run started');
    opts.record({
      ...this.base(),
      status: 'running',
      started_at: new Date(this.startedAt).toISOString(),
      ...(this.child.pid !== undefined ? { pid: this.child.pid } : {}),
      scheduler: opts.runner,
    });
    void sleepSafe(opts.clock, s.timeoutSeconds * 1000, this.timers.signal).then((elapsed) => {
      if (!elapsed) return;
      this.timedOut = true;
      this.terminate(`timeout of ${s.timeoutSeconds} s`, false);
    });
    this.done = this.child.done.then((res) => this.finish(res));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGTERM now, SIGKILL after `killGraceSeconds` if it is still there; `shutdown`: the runner stops it (status `stopped`). */
  terminate(why: string, shutdown: boolean): void {
    if (shutdown) this.stopped = true;
    if (this.terminating) return;
    this.terminating = true;
    const killGraceMs = this.opts.killGraceSeconds * 1000;
    this.log.warn(
      { event_type: this.timedOut ? 'run_timed_out' : 'run_stopping', pid: this.child.pid, reason: why, kill_grace_ms: killGraceMs },
      this.timedOut ? 'run timed out' : 'run stopping',
    );
    this.child.signal('SIGTERM');
    void sleepSafe(this.opts.clock, killGraceMs, this.timers.signal).then((elapsed) => {
      if (!elapsed) return;
      this.log.warn({ event_type: 'run_killed', pid: this.child.pid }, 'run killed');
      this.child.signal('SIGKILL');
    });
  }

  private base(): Pick<RunRecord, 'id' | 'schedule' | 'job' | 'tenant' | 'config' | 'attempt'> {
    const s = this.spec.schedule;
    return { id: this.spec.id, schedule: s.name, job: s.job.name, tenant: s.job.tenant, config: s.config, attempt: this.spec.attempt };
  }

  private finish(res: ChildResult): AttemptEnd {
    this.timers.abort();
    const { log, spec } = this;
    const s = spec.schedule;
    const endedAt = this.opts.clock.now();
    const outcome: RunOutcome = this.timedOut
      ? { kind: 'timeout' }
      : res.spawnError !== undefined
        ? { kind: 'crashed', detail: `could not start: ${res.spawnError}` }
        : outcomeOf(res.code, res.signal, res.summary?.exit_code, this.opts.command.requireSummary);
    const decision: RunDecision = decideRetry(s.retry, outcome, spec.attempt);
    const stopping = this.opts.stopping();
    const cancelled = decision.action === 'retry' && stopping;
    const status: RunStatus = this.stopped || cancelled ? 'stopped' : statusOf(decision);
    const objects = res.summary?.objects ?? [];
    const rowsWritten = objects.reduce((n, o) => n + (o.rows_written ?? 0), 0);
    const rowsRejected = objects.reduce((n, o) => n + (o.rows_rejected ?? 0), 0);
    const exitCode = exitCodeOfOutcome(outcome);
    // A run we stopped that died of our signal before it could say so (still starting up) was aborted, not crashed.
    const aborted = this.stopped && outcome.kind === 'crashed';
    const errorCode = outcome.kind === 'timeout' ? 'RUN_TIMEOUT' : aborted ? 'ABORTED' : outcome.kind === 'crashed' ? 'RUN_CRASHED' : res.summary?.error?.code;
    const errorMessage =
      outcome.kind === 'timeout'
        ? `killed after its timeout of ${s.timeoutSeconds} s`
        : aborted
          ? `stopped by the scheduler (${outcome.detail ?? 'no summary'})`
          : outcome.kind === 'crashed'
            ? `${outcome.detail ?? 'crashed'}${crashLine(res.stderrTail)}`
            : res.summary?.error?.message;
    const nextRetryAt = decision.action === 'retry' && !cancelled ? endedAt + decision.delayMs : undefined;
    const durationMs = endedAt - this.startedAt;
    const fields = {
      ...(errorCode !== undefined ? { error_code: errorCode } : {}),
      ...(errorMessage !== undefined ? { error_message: errorMessage } : {}),
      ...(res.summary?.run_id ? { run_id: res.summary.run_id } : {}),
      ...(nextRetryAt !== undefined ? { next_retry_at: new Date(nextRetryAt).toISOString() } : {}),
    };

    const line = {
      event_type: 'run_finished',
      exit_code: exitCode,
      outcome: outcome.kind,
      status,
      decision: decision.reason,
      duration_ms: durationMs,
      rows_written: rowsWritten,
      rows_rejected: rowsRejected,
      ...fields,
    };
    if (exitCode === ExitCode.OK) log.info(line, 'run finished');
    else if (status === 'failed') log.error(line, 'run finished');
    else log.warn(line, 'run finished');
    this.opts.record({
      ...this.base(),
      status,
      started_at: new Date(this.startedAt).toISOString(),
      ended_at: new Date(endedAt).toISOString(),
      duration_ms: durationMs,
      exit_code: exitCode,
      outcome: outcome.kind,
      rows_written: rowsWritten,
      rows_rejected: rowsRejected,
      ...fields,
      ...(this.child.pid !== undefined ? { pid: this.child.pid } : {}),
      scheduler: this.opts.runner,
    });
    if (decision.action === 'retry' && nextRetryAt !== undefined) {
      log.info({ event_type: 'retry_scheduled', next_attempt: decision.nextAttempt, delay_ms: decision.delayMs, next_retry_at: new Date(nextRetryAt).toISOString() }, 'retry scheduled');
    } else if (decision.action === 'failed' && !stopping) {
      log.error({ event_type: 'run_gave_up', reason: decision.reason, exit_code: exitCode }, decision.reason === 'permanent' ? 'run failed permanently' : 'run retries exhausted');
    }
    return {
      outcome,
      decision,
      cancelled,
      status,
      exitCode,
      durationMs,
      rowsWritten,
      ...(errorCode !== undefined ? { errorCode } : {}),
      ...(errorMessage !== undefined ? { errorMessage } : {}),
      ...(nextRetryAt !== undefined ? { nextRetryAt } : {}),
    };
  }
}

/** Start one attempt. */
export function startAttempt<S extends AttemptSpec>(spec: S, opts: AttemptOptions): RunningAttempt<S> {
  return new RunningAttempt(spec, opts);
}

/** The stderr line that says why a process died (`Error: …`, V8's `FATAL ERROR: … heap out of memory`), else its last. */
function crashLine(tail: readonly string[]): string {
  const why = [...tail].reverse().find((l) => /^(\w*Error\b|FATAL ERROR|.*out of memory)/.test(l)) ?? tail[tail.length - 1];
  return why === undefined ? '' : `; last stderr: ${why.slice(0, 500)}`;
}

function statusOf(d: RunDecision): RunStatus {
  if (d.action === 'retry') return 'retrying';
  if (d.action === 'failed') return 'failed';
  return d.reason === 'succeeded' ? 'succeeded' : 'partial';
}
