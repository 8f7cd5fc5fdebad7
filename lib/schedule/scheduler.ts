/**
 * The in-process scheduler behind `dativo schedule <runner.yaml>`.
 *
 * - Ticks: cron (croner, in the schedule's time zone) or intervals, computed
 *   from the {@link Clock} (tests inject a virtual one). A tick that finds its
 *   job busy (running, queued or waiting for a retry) is kept as one pending
 *   tick, run when the job is free; a timer that wakes late runs once, never
 *   once per missed tick.
 * - Runs: each attempt is a child process (lib/schedule/attempt.ts, shared
 *   with the BullMQ worker; lib/schedule/child.ts), so a crash
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
import type { Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import { newRunId } from '../run.js';
import { sleepSafe, startAttempt, type AttemptEnd, type RunningAttempt } from './attempt.js';
import type { ChildCommand } from './child.js';
import type { RunnerConfig, Schedule } from './config.js';
import { FairQueue } from './fair-queue.js';
import { runLogWriter, type RunLog } from './run-log.js';
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

interface JobSlot {
  state: 'idle' | 'queued' | 'running' | 'waiting';
  /** A tick that came while the job was busy: run once when it is free. */
  pending?: Schedule;
}

export class Scheduler {
  private readonly clock: Clock;
  private readonly queue: FairQueue<Attempt>;
  private readonly slots = new Map<string, JobSlot>();
  private readonly running = new Set<RunningAttempt<Attempt>>();
  /** Aborted on stop: tick and retry timers. */
  private readonly lifetime = new AbortController();
  private stopping = false;
  private stopLogged = false;
  private stopped!: () => void;
  private readonly whenStopped = new Promise<void>((r) => (this.stopped = r));
  private readonly me = { pid: process.pid, host: hostname() };
  /** Run-log writes in order; a failing write is logged, it never stops the scheduler. */
  private readonly writer: ReturnType<typeof runLogWriter>;

  constructor(
    private readonly config: SchedulerConfig,
    private readonly opts: SchedulerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.queue = new FairQueue(config.concurrencyPerTenant, config.maxConcurrentRuns);
    this.writer = runLogWriter(opts.runLog, opts.log);
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
    for (const r of this.running) r.terminate(why, true);
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
    this.slot(a).state = 'running';
    const r = startAttempt(a, {
      clock: this.clock,
      log: this.opts.log,
      command: this.opts.command(s, a.attempt),
      killGraceSeconds: this.config.killGraceSeconds,
      onChildLine: this.opts.onChildLine,
      record: (rec) => this.writer.write(rec),
      runner: this.me,
      stopping: () => this.stopping,
    });
    this.running.add(r);
    void r.done.then((end) => this.finish(r, end));
  }

  private finish(r: RunningAttempt<Attempt>, end: AttemptEnd): void {
    this.running.delete(r);
    const a = r.spec;
    this.queue.done(a);
    const { decision } = end;
    const slot = this.slot(a);
    if (decision.action === 'retry' && end.nextRetryAt !== undefined) {
      slot.state = 'waiting';
      void this.sleepUntil(end.nextRetryAt).then((due) => {
        if (!due) {
          slot.state = 'idle';
          return;
        }
        this.enqueue(a.schedule, decision.nextAttempt);
      });
    } else {
      slot.state = 'idle';
      const pending = slot.pending;
      slot.pending = undefined;
      if (pending !== undefined && !this.stopping) {
        r.log.info({ event_type: 'pending_tick', schedule: pending.name }, 'pending tick runs');
        this.enqueue(pending, 1);
      }
    }
    this.dispatch();
    this.checkStopped();
  }

  private checkStopped(): void {
    if (!this.stopping || this.running.size > 0 || this.stopLogged) return;
    this.stopLogged = true;
    void this.writer.flushed().then(() => {
      this.opts.log.info({ event_type: 'scheduler_stopped' }, 'scheduler stopped');
      this.stopped();
    });
  }
}
