/**
 * The in-process scheduler behind `dativo schedule <runner.yaml>`.
 *
 * - Ticks: cron (croner, in the schedule's time zone) or intervals, computed
 *   from the {@link Clock} (tests inject a virtual one). A tick that finds its
 *   job busy (running, queued or waiting for a retry) is kept as one pending
 *   tick, run when the job is free; a timer that wakes late runs once, never
 *   once per missed tick.
 * - Runs: each attempt is a child process (lib/schedule/child.ts), so a crash
 *   or an out-of-memory abort never takes the scheduler down. Two runs of one
 *   job (same state file, even from two schedules) never overlap here; the
 *   job lock of lib/lock.ts guards against runs started elsewhere.
 * - Fairness: one FIFO per tenant served round-robin (lib/schedule/fair-queue.ts)
 *   under `concurrency_per_tenant` and `max_concurrent_runs`.
 * - Outcomes: lib/schedule/policy.ts maps the exit code to done, retry with
 *   backoff, or failed; a run past its `timeout_seconds` gets SIGTERM, then
 *   SIGKILL after `kill_grace_seconds`, and counts as retryable.
 * - Shutdown ({@link Scheduler.stop}): no new runs; running ones get
 *   `shutdown_grace_seconds` to finish, then SIGTERM/SIGKILL. A stopped run
 *   commits nothing (the commit is the checkpoint); the next run resumes.
 *
 * Every transition is one pino line (`msg` is the transition: "run queued",
 * "run started", "run finished", "retry scheduled", ...) and every attempt
 * one record in the run log (lib/schedule/run-log.ts).
 */
import { hostname } from 'node:os';
import { ExitCode } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import { newRunId } from '../run.js';
import { startChild, type ChildCommand, type ChildResult, type RunningChild } from './child.js';
import type { RunnerConfig, Schedule } from './config.js';
import { FairQueue } from './fair-queue.js';
import { decideRetry, exitCodeOfOutcome, outcomeOf, type RunDecision, type RunOutcome } from './policy.js';
import type { RunLog, RunRecord, RunStatus } from './run-log.js';
import { describeTrigger, nextFire } from './trigger.js';

/** A timer never sleeps longer than this at once (setTimeout overflows past 24.8 days; wall clocks jump). */
const MAX_SLEEP_MS = 3_600_000;

/** What the scheduler needs from a runner file. */
export type SchedulerConfig = Pick<RunnerConfig, 'schedules' | 'concurrencyPerTenant' | 'maxConcurrentRuns' | 'shutdownGraceSeconds' | 'killGraceSeconds'>;

export interface SchedulerOptions {
  log: Logger;
  runLog: RunLog;
  /** Default: the system clock. */
  clock?: Clock;
  /** The child of an attempt. The CLI passes `dativo run <job> --json` (lib/schedule/child.ts `dativoRunCommand`). */
  command: (schedule: Schedule, attempt: number) => ChildCommand;
  /** Each stderr line of a child (its own pino lines). Default: dropped. */
  onChildLine?: (line: string) => void;
}

interface Attempt {
  readonly id: string;
  readonly tenant: string;
  readonly schedule: Schedule;
  readonly attempt: number;
}

interface Running {
  readonly a: Attempt;
  readonly child: RunningChild;
  readonly requireSummary: boolean;
  readonly startedAt: number;
  readonly log: Logger;
  readonly timers: AbortController;
  timedOut: boolean;
  /** Stopped by a shutdown (SIGTERM from us). */
  stopped: boolean;
  terminating: boolean;
}

interface JobSlot {
  state: 'idle' | 'queued' | 'running' | 'waiting';
  /** A tick that came while the job was busy: run once when it is free. */
  pending?: Schedule;
}

const sleepSafe = (clock: Clock, ms: number, signal: AbortSignal): Promise<boolean> =>
  clock.sleep(Math.max(0, ms), signal).then(
    () => true,
    () => false,
  );

export class Scheduler {
  private readonly clock: Clock;
  private readonly queue: FairQueue<Attempt>;
  private readonly slots = new Map<string, JobSlot>();
  private readonly running = new Set<Running>();
  /** Aborted on stop: tick and retry timers. */
  private readonly lifetime = new AbortController();
  private stopping = false;
  private stopLogged = false;
  private stopped!: () => void;
  private readonly whenStopped = new Promise<void>((r) => (this.stopped = r));
  private readonly me = { pid: process.pid, host: hostname() };
  /** Run-log writes in order; a failing write is logged, it never stops the scheduler. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: SchedulerConfig,
    private readonly opts: SchedulerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.queue = new FairQueue(config.concurrencyPerTenant, config.maxConcurrentRuns);
  }

  /** Arm the timers of every enabled schedule. */
  start(): void {
    const { log } = this.opts;
    const enabled = this.config.schedules.filter((s) => s.enabled);
    log.info(
      {
        event_type: 'scheduler_started',
        schedules: enabled.length,
        disabled: this.config.schedules.length - enabled.length,
        concurrency_per_tenant: this.config.concurrencyPerTenant,
        max_concurrent_runs: this.config.maxConcurrentRuns,
      },
      'scheduler started',
    );
    for (const s of this.config.schedules) {
      if (!s.enabled) {
        log.info({ event_type: 'schedule_disabled', schedule: s.name, job: s.job.name, tenant: s.job.tenant }, 'schedule disabled');
        continue;
      }
      void this.arm(s);
    }
  }

  /** Resolves once {@link stop} has finished (every run ended). */
  get done(): Promise<void> {
    return this.whenStopped;
  }

  /** What is going on now. */
  snapshot(): { running: number; queued: number; waiting: number } {
    let waiting = 0;
    for (const slot of this.slots.values()) if (slot.state === 'waiting') waiting++;
    return { running: this.running.size, queued: this.queue.size, waiting };
  }

  /** Fire `name` now, as if its tick had come. */
  trigger(name: string): void {
    const s = this.config.schedules.find((x) => x.name === name);
    if (s === undefined) throw new Error(`no schedule named "${name}"`);
    this.tick(s, this.clock.now());
  }

  /**
   * Stop: no new runs, queued runs dropped, retries cancelled; running runs
   * get `graceMs` (default `shutdown_grace_seconds`) to finish, then SIGTERM
   * and after `kill_grace_seconds` SIGKILL. Resolves when every run ended.
   */
  stop(graceMs: number = this.config.shutdownGraceSeconds * 1000): Promise<void> {
    if (this.stopping) return this.whenStopped;
    this.stopping = true;
    this.lifetime.abort();
    const { log } = this.opts;
    log.info({ event_type: 'scheduler_stopping', running: this.running.size, queued: this.queue.size, grace_ms: graceMs }, 'scheduler stopping');
    for (const a of this.queue.drain()) {
      this.slot(a).state = 'idle';
      log.info({ event_type: 'run_dropped', schedule: a.schedule.name, job: a.schedule.job.name, tenant: a.tenant, attempt: a.attempt }, 'run dropped');
    }
    if (this.running.size > 0) {
      const grace = new AbortController();
      void this.whenStopped.then(() => grace.abort());
      void sleepSafe(this.clock, graceMs, grace.signal).then((elapsed) => {
        if (elapsed) this.stopNow('grace period over');
      });
    }
    this.checkStopped();
    return this.whenStopped;
  }

  /** Stop every running run now (a second SIGTERM): SIGTERM, then SIGKILL after `kill_grace_seconds`. */
  stopNow(why = 'stopped now'): void {
    if (!this.stopping) void this.stop(0);
    for (const r of this.running) this.terminate(r, why, true);
  }

  private slot(a: { schedule: Schedule } | Schedule): JobSlot {
    const key = 'schedule' in a ? a.schedule.job.key : a.job.key;
    let s = this.slots.get(key);
    if (s === undefined) {
      s = { state: 'idle' };
      this.slots.set(key, s);
    }
    return s;
  }

  /** Sleep until `at` in steps of at most {@link MAX_SLEEP_MS}; false when the scheduler stopped first. */
  private async sleepUntil(at: number): Promise<boolean> {
    for (;;) {
      const left = at - this.clock.now();
      if (left <= 0) return !this.lifetime.signal.aborted;
      if (!(await sleepSafe(this.clock, Math.min(left, MAX_SLEEP_MS), this.lifetime.signal))) return false;
    }
  }

  private async arm(s: Schedule): Promise<void> {
    const { log } = this.opts;
    let from = this.clock.now();
    for (;;) {
      const at = nextFire(s.trigger, from);
      if (at === undefined) {
        log.info({ event_type: 'schedule_ended', schedule: s.name, job: s.job.name, tenant: s.job.tenant }, 'schedule has no next tick');
        return;
      }
      log.info(
        { event_type: 'tick_armed', schedule: s.name, job: s.job.name, tenant: s.job.tenant, trigger: describeTrigger(s.trigger), next_at: new Date(at).toISOString() },
        'next tick',
      );
      if (!(await this.sleepUntil(at))) return;
      const now = this.clock.now();
      // Ticks the timer slept through (a blocked loop, a suspended machine): run once, say how many.
      let missed = 0;
      for (let t = nextFire(s.trigger, at); t !== undefined && t <= now && missed < 1000; t = nextFire(s.trigger, t)) missed++;
      this.tick(s, at, missed);
      from = Math.max(now, at);
    }
  }

  private tick(s: Schedule, at: number, missed = 0): void {
    if (this.stopping) return;
    const { log } = this.opts;
    const fields = { schedule: s.name, job: s.job.name, tenant: s.job.tenant, tick_at: new Date(at).toISOString(), ...(missed > 0 ? { missed_ticks: missed } : {}) };
    const slot = this.slot(s);
    if (slot.state !== 'idle') {
      const coalesced = slot.pending !== undefined;
      slot.pending ??= s;
      log.info({ event_type: coalesced ? 'tick_coalesced' : 'tick_deferred', ...fields, job_state: slot.state }, coalesced ? 'tick coalesced' : 'tick deferred');
      return;
    }
    log.info({ event_type: 'tick', ...fields }, 'tick');
    this.enqueue(s, 1);
  }

  private enqueue(s: Schedule, attempt: number): void {
    const a: Attempt = { id: newRunId(new Date(this.clock.now())), tenant: s.job.tenant, schedule: s, attempt };
    this.slot(s).state = 'queued';
    this.queue.push(a);
    this.opts.log.info(
      { event_type: 'run_queued', schedule: s.name, job: s.job.name, tenant: a.tenant, attempt, queued: this.queue.size, tenant_running: this.queue.runningOf(a.tenant) },
      'run queued',
    );
    this.dispatch();
  }

  private dispatch(): void {
    if (this.stopping) return;
    for (const a of this.queue.takeAll()) this.launch(a);
  }

  private launch(a: Attempt): void {
    const s = a.schedule;
    const log = this.opts.log.child({ schedule: s.name, job: s.job.name, tenant: a.tenant, attempt: a.attempt, attempt_id: a.id });
    this.slot(a).state = 'running';
    const startedAt = this.clock.now();
    const cmd = this.opts.command(s, a.attempt);
    const child = startChild(cmd, this.opts.onChildLine);
    const r: Running = { a, child, requireSummary: cmd.requireSummary, startedAt, log, timers: new AbortController(), timedOut: false, stopped: false, terminating: false };
    this.running.add(r);
    log.info({ event_type: 'run_started', pid: child.pid, timeout_seconds: s.timeoutSeconds }, 'run started');
    this.record({
      id: a.id,
      schedule: s.name,
      job: s.job.name,
      tenant: a.tenant,
      config: s.config,
      attempt: a.attempt,
      status: 'running',
      started_at: new Date(startedAt).toISOString(),
      ...(child.pid !== undefined ? { pid: child.pid } : {}),
      scheduler: this.me,
    });
    void sleepSafe(this.clock, s.timeoutSeconds * 1000, r.timers.signal).then((elapsed) => {
      if (!elapsed) return;
      r.timedOut = true;
      this.terminate(r, `timeout of ${s.timeoutSeconds} s`, false);
    });
    void child.done.then((res) => this.finish(r, res));
  }

  /** SIGTERM now, SIGKILL after `kill_grace_seconds` if it is still there. */
  private terminate(r: Running, why: string, shutdown: boolean): void {
    if (shutdown) r.stopped = true;
    if (r.terminating) return;
    r.terminating = true;
    const killGraceMs = this.config.killGraceSeconds * 1000;
    r.log.warn({ event_type: r.timedOut ? 'run_timed_out' : 'run_stopping', pid: r.child.pid, reason: why, kill_grace_ms: killGraceMs }, r.timedOut ? 'run timed out' : 'run stopping');
    r.child.signal('SIGTERM');
    void sleepSafe(this.clock, killGraceMs, r.timers.signal).then((elapsed) => {
      if (!elapsed) return;
      r.log.warn({ event_type: 'run_killed', pid: r.child.pid }, 'run killed');
      r.child.signal('SIGKILL');
    });
  }

  private finish(r: Running, res: ChildResult): void {
    r.timers.abort();
    this.running.delete(r);
    this.queue.done(r.a);
    const { a, log } = r;
    const s = a.schedule;
    const endedAt = this.clock.now();
    const outcome: RunOutcome = r.timedOut
      ? { kind: 'timeout' }
      : res.spawnError !== undefined
        ? { kind: 'crashed', detail: `could not start: ${res.spawnError}` }
        : outcomeOf(res.code, res.signal, res.summary?.exit_code, r.requireSummary);
    const decision: RunDecision = decideRetry(s.retry, outcome, a.attempt);
    const cancelled = this.stopping && decision.action === 'retry';
    const status: RunStatus = r.stopped || cancelled ? 'stopped' : statusOf(decision);
    const objects = res.summary?.objects ?? [];
    const rowsWritten = objects.reduce((n, o) => n + (o.rows_written ?? 0), 0);
    const rowsRejected = objects.reduce((n, o) => n + (o.rows_rejected ?? 0), 0);
    const exitCode = exitCodeOfOutcome(outcome);
    // A run we stopped that died of our signal before it could say so (still starting up) was aborted, not crashed.
    const aborted = r.stopped && outcome.kind === 'crashed';
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
    const durationMs = endedAt - r.startedAt;

    const line = {
      event_type: 'run_finished',
      exit_code: exitCode,
      outcome: outcome.kind,
      status,
      decision: decision.reason,
      duration_ms: durationMs,
      rows_written: rowsWritten,
      rows_rejected: rowsRejected,
      ...(res.summary?.run_id ? { run_id: res.summary.run_id } : {}),
      ...(errorCode !== undefined ? { error_code: errorCode } : {}),
      ...(errorMessage !== undefined ? { error_message: errorMessage } : {}),
      ...(nextRetryAt !== undefined ? { next_retry_at: new Date(nextRetryAt).toISOString() } : {}),
    };
    if (exitCode === ExitCode.OK) log.info(line, 'run finished');
    else if (status === 'failed') log.error(line, 'run finished');
    else log.warn(line, 'run finished');
    this.record({
      id: a.id,
      schedule: s.name,
      job: s.job.name,
      tenant: a.tenant,
      config: s.config,
      attempt: a.attempt,
      status,
      started_at: new Date(r.startedAt).toISOString(),
      ended_at: new Date(endedAt).toISOString(),
      duration_ms: durationMs,
      exit_code: exitCode,
      outcome: outcome.kind,
      rows_written: rowsWritten,
      rows_rejected: rowsRejected,
      ...(errorCode !== undefined ? { error_code: errorCode } : {}),
      ...(errorMessage !== undefined ? { error_message: errorMessage } : {}),
      ...(res.summary?.run_id ? { run_id: res.summary.run_id } : {}),
      ...(nextRetryAt !== undefined ? { next_retry_at: new Date(nextRetryAt).toISOString() } : {}),
      ...(r.child.pid !== undefined ? { pid: r.child.pid } : {}),
      scheduler: this.me,
    });

    const slot = this.slot(a);
    if (decision.action === 'retry' && nextRetryAt !== undefined) {
      slot.state = 'waiting';
      log.info({ event_type: 'retry_scheduled', next_attempt: decision.nextAttempt, delay_ms: decision.delayMs, next_retry_at: new Date(nextRetryAt).toISOString() }, 'retry scheduled');
      void this.sleepUntil(nextRetryAt).then((due) => {
        if (!due) {
          slot.state = 'idle';
          return;
        }
        this.enqueue(s, decision.nextAttempt);
      });
    } else {
      slot.state = 'idle';
      if (decision.action === 'failed' && !this.stopping) {
        log.error({ event_type: 'run_gave_up', reason: decision.reason, exit_code: exitCode }, decision.reason === 'permanent' ? 'run failed permanently' : 'run retries exhausted');
      }
      const pending = slot.pending;
      slot.pending = undefined;
      if (pending !== undefined && !this.stopping) {
        log.info({ event_type: 'pending_tick', schedule: pending.name }, 'pending tick runs');
        this.enqueue(pending, 1);
      }
    }
    this.dispatch();
    this.checkStopped();
  }

  private record(rec: RunRecord): void {
    this.writes = this.writes.then(() =>
      this.opts.runLog.write(rec).catch((err: unknown) => {
        this.opts.log.error({ event_type: 'run_log_failed', err, id: rec.id }, `could not write the run log: ${(err as Error).message}`);
      }),
    );
  }

  private checkStopped(): void {
    if (!this.stopping || this.running.size > 0 || this.stopLogged) return;
    this.stopLogged = true;
    void this.writes.then(() => {
      this.opts.log.info({ event_type: 'scheduler_stopped' }, 'scheduler stopped');
      this.stopped();
    });
  }
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
