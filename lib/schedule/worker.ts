/**
 * `dativo worker --redis URL`: runs the queued runs of lib/schedule/distributed.ts.
 *
 * - Each run is one attempt of lib/schedule/attempt.ts, the same code as the
 *   in-process scheduler: a child process (`dativo run <job> --json`), killed
 *   at its timeout, its exit code mapped by lib/schedule/policy.ts. The
 *   outcome goes back to BullMQ: done → completed; a retry → failed with
 *   attempts left, BullMQ delays it by our `backoffStrategy`, which is
 *   `retryDelayMs` of the schedule's policy (the same delay the decision
 *   says); failed (exit 3, retries spent) → `UnrecoverableError`, so BullMQ
 *   never retries on its own.
 * - Fairness: jobs are fetched by hand (`getNextJob`), one tenant queue after
 *   the other round-robin, one job per free slot: a tenant with a thousand
 *   queued runs takes one turn like any other. The per-tenant cap is BullMQ's
 *   global concurrency of the tenant's queue (set by the scheduler), which
 *   holds across all workers; `--concurrency` caps this process.
 * - Locks: the child is a separate process, so this event loop stays free and
 *   renews each job's lock every third of `lockSeconds`. A worker that dies
 *   (SIGKILL, machine lost) stops renewing; once the lock expired, BullMQ's
 *   stalled check (every `lockSeconds` in every worker) puts the job back and
 *   another worker runs it. Its data stays exactly once: the commit is the
 *   checkpoint, and `dativo run`'s job lock refuses to overlap a child the
 *   dead worker left running (JOB_LOCKED, exit 2, retried).
 * - Never two runs of one job at once, also at the queue level: a run holds
 *   `_dativo:busy:<job key>` (renewed with its lock, kept while a retry
 *   waits). A tick that finds it held is put back (`tick deferred`, retried
 *   every `deferSeconds`), and further ticks meanwhile are dropped (`tick
 *   coalesced`): one pending run, as in-process.
 * - Shutdown: no new runs; running ones get the grace period, then SIGTERM
 *   (SIGKILL after the schedule's `kill_grace_seconds`). A run stopped that
 *   way is put back in its queue unchanged (its attempt not counted) for
 *   another worker.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job, type MinimalJob } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import { sleepSafe, startAttempt, type RunningAttempt } from './attempt.js';
import type { ChildCommand } from './child.js';
import { BACKOFF_TYPE, type RunJobData } from './distributed.js';
import { retryDelayMs } from './policy.js';
import { dativoKeys, queueName } from './redis.js';
import { runLogWriter, type RunLog } from './run-log.js';

/** Take `key` for `owner` (or renew it when `owner` has it) for `ms`: 1 when it is ours. */
const ACQUIRE = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`;
/** Delete `key` when `owner` has it. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface QueueWorkerOptions {
  redis: Redis;
  prefix: string;
  /** Serve only these tenants. Default: every tenant the scheduler registered (re-read every 5 s). */
  tenants?: readonly string[] | undefined;
  /** Runs at a time in this process. */
  concurrency: number;
  /** BullMQ lock of a running job; a dead worker's jobs run again this long after it died. */
  lockSeconds: number;
  /** On stop, how long running runs may go on. */
  shutdownGraceSeconds: number;
  log: Logger;
  runLog: RunLog;
  /** The child of a run: `dativo run <job> --json` (lib/schedule/child.ts `dativoRunCommand`). */
  command: (data: RunJobData, attempt: number) => ChildCommand;
  onChildLine?: (line: string) => void;
  /** How long to wait when no queue had a job. Default 500 ms. */
  pollMs?: number;
  /** How long a tick that found its job running waits before it looks again. Default 2 s. */
  deferSeconds?: number;
  clock?: Clock;
}

interface Active {
  readonly job: Job<RunJobData>;
  readonly token: string;
  attempt?: RunningAttempt;
}

export class QueueWorker {
  private readonly workers = new Map<string, Worker<RunJobData>>();
  private tenants: string[] = [];
  private last = -1;
  private readonly active = new Set<Active>();
  private stopping = false;
  private readonly lifetime = new AbortController();
  private readonly waiters = new Set<() => void>();
  private loopDone: Promise<void> = Promise.resolve();
  private finished!: () => void;
  private readonly whenDone = new Promise<void>((r) => (this.finished = r));
  private readonly me = { pid: process.pid, host: hostname() };
  private readonly id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly clock: Clock;
  private readonly keys: ReturnType<typeof dativoKeys>;
  private lastError = 0;
  private readonly writer: ReturnType<typeof runLogWriter>;

  constructor(private readonly opts: QueueWorkerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.keys = dativoKeys(opts.prefix);
    this.writer = runLogWriter(opts.runLog, opts.log);
  }

  get done(): Promise<void> {
    return this.whenDone;
  }

  /** Runs going on now. */
  get running(): number {
    return this.active.size;
  }

  start(): void {
    this.opts.log.info(
      { event_type: 'worker_started', worker: this.id, tenants: this.opts.tenants ?? 'all', concurrency: this.opts.concurrency, lock_seconds: this.opts.lockSeconds },
      'worker started',
    );
    this.loopDone = this.loop();
  }

  /** No new runs; running runs get `graceMs`, then SIGTERM. Resolves when every run ended and the queues are closed. */
  stop(graceMs: number = this.opts.shutdownGraceSeconds * 1000): Promise<void> {
    if (this.stopping) return this.whenDone;
    this.stopping = true;
    this.lifetime.abort();
    this.notify();
    this.opts.log.info({ event_type: 'worker_stopping', running: this.active.size, grace_ms: graceMs }, 'worker stopping');
    const grace = new AbortController();
    void sleepSafe(this.clock, graceMs, grace.signal).then((elapsed) => {
      if (elapsed) this.stopNow('grace period over');
    });
    void (async () => {
      await this.loopDone;
      while (this.active.size > 0) await new Promise<void>((r) => this.waiters.add(r));
      grace.abort();
      await this.writer.flushed();
      await Promise.all([...this.workers.values()].map((w) => w.close(true).catch(() => undefined)));
      this.opts.log.info({ event_type: 'worker_stopped' }, 'worker stopped');
      this.finished();
    })();
    return this.whenDone;
  }

  /** Stop the running runs now (SIGTERM, then SIGKILL after their kill grace). */
  stopNow(why = 'stopped now'): void {
    if (!this.stopping) void this.stop(0);
    for (const a of this.active) a.attempt?.terminate(why, true);
  }

  private redisError(what: string, err: unknown): void {
    if (Date.now() - this.lastError < 5000) return;
    this.lastError = Date.now();
    this.opts.log.warn({ event_type: 'queue_error', what, err: (err as Error).message }, `queue: ${what} failed`);
  }

  private workerOf(tenant: string): Worker<RunJobData> {
    let w = this.workers.get(tenant);
    if (w === undefined) {
      const lockMs = this.opts.lockSeconds * 1000;
      w = new Worker<RunJobData>(queueName(tenant), null, {
        connection: this.opts.redis,
        prefix: this.opts.prefix,
        autorun: false,
        lockDuration: lockMs,
        stalledInterval: lockMs,
        maxStalledCount: 3,
        settings: {
          // The delay decideRetry stated: retry n waits retryDelayMs(policy, n); attemptsMade is n here.
          backoffStrategy: (attemptsMade: number, type?: string, _err?: Error, job?: MinimalJob) =>
            type === BACKOFF_TYPE && job !== undefined ? retryDelayMs((job.data as RunJobData).retry, attemptsMade) : 0,
        },
      });
      w.on('error', (err) => this.redisError(`queue ${tenant}`, err));
      void w.startStalledCheckTimer().catch((err: unknown) => this.redisError('stalled check', err));
      this.workers.set(tenant, w);
    }
    return w;
  }

  private async refreshTenants(): Promise<void> {
    const list = this.opts.tenants !== undefined ? [...this.opts.tenants] : (await this.opts.redis.smembers(this.keys.tenants)).sort();
    for (const t of list) this.workerOf(t);
    if (list.join('\u0000') !== this.tenants.join('\u0000')) {
      this.tenants = list;
      this.opts.log.info({ event_type: 'worker_tenants', tenants: list }, 'serving tenants');
    }
  }

  /** Wake every {@link sleep} and the shutdown's wait. */
  private notify(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }

  /** Wait `ms`, or until {@link notify}. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private async loop(): Promise<void> {
    const poll = this.opts.pollMs ?? 500;
    let refreshedAt = 0;
    while (!this.stopping) {
      try {
        if (Date.now() - refreshedAt > 5000 || this.tenants.length === 0) {
          await this.refreshTenants();
          refreshedAt = Date.now();
        }
        if (this.active.size >= this.opts.concurrency) {
          await this.sleep(poll);
          continue;
        }
        if (!(await this.takeOne())) await this.sleep(poll);
      } catch (err) {
        this.redisError('fetching a job', err);
        await this.sleep(Math.max(poll, 1000));
      }
    }
  }

  /** The next job of the next tenant in turn that has one; false when none had. */
  private async takeOne(): Promise<boolean> {
    const n = this.tenants.length;
    for (let step = 1; step <= n && !this.stopping; step++) {
      const i = (this.last + step) % n;
      const tenant = this.tenants[i]!;
      const token = `${this.id}:${randomUUID()}`;
      const job = (await this.workerOf(tenant).getNextJob(token, { block: false })) as Job<RunJobData> | undefined;
      if (job === undefined) continue;
      this.last = i;
      const a: Active = { job, token };
      this.active.add(a);
      void this.handle(a)
        .catch((err: unknown) => this.opts.log.error({ event_type: 'job_handling_failed', job_id: job.id, err: (err as Error).message }, 'could not hand a run back to the queue'))
        .finally(() => {
          this.active.delete(a);
          this.notify();
        });
      return true;
    }
    return false;
  }

  private async handle(a: Active): Promise<void> {
    const { job, token } = a;
    const data = job.data;
    const { redis, log } = this.opts;
    const lockMs = this.opts.lockSeconds * 1000;
    const busy = this.keys.busy(data.key);
    const pending = this.keys.pending(data.key);
    // BullMQ job ids are per queue: with the tenant they are unique in the prefix.
    const jobId = `${data.tenant}/${job.id!}`;
    const fields = { schedule: data.schedule, job: data.job, tenant: data.tenant, job_id: job.id };

    if ((await redis.eval(ACQUIRE, 1, busy, jobId, String(lockMs * 2))) !== 1) {
      const deferMs = (this.opts.deferSeconds ?? 2) * 1000;
      if ((await redis.eval(ACQUIRE, 1, pending, jobId, String(deferMs + lockMs * 2))) === 1) {
        log.info({ event_type: 'tick_deferred', ...fields, job_state: 'busy' }, 'tick deferred');
        await job.moveToDelayed(Date.now() + deferMs, token);
      } else {
        log.info({ event_type: 'tick_coalesced', ...fields }, 'tick coalesced');
        await job.moveToCompleted({ coalesced: true }, token, false);
      }
      return;
    }
    await redis.eval(RELEASE, 1, pending, jobId);

    const renew = setInterval(() => {
      job.extendLock(token, lockMs).catch((err: unknown) => this.redisError('renewing a lock', err));
      redis.eval(ACQUIRE, 1, busy, jobId, String(lockMs * 2)).catch((err: unknown) => this.redisError('renewing a busy mark', err));
    }, Math.max(100, Math.floor(lockMs / 3)));
    try {
      const attempt = job.attemptsMade + 1;
      a.attempt = startAttempt(
        {
          id: `${jobId}#${job.attemptsStarted}`,
          schedule: { name: data.schedule, config: data.config, retry: data.retry, timeoutSeconds: data.timeoutSeconds, job: { name: data.job, tenant: data.tenant } },
          attempt,
        },
        {
          clock: this.clock,
          log: log.child({ job_id: job.id, worker: this.id }),
          command: this.opts.command(data, attempt),
          killGraceSeconds: data.killGraceSeconds,
          onChildLine: this.opts.onChildLine,
          record: (rec) => this.writer.write(rec),
          runner: this.me,
          stopping: () => this.stopping,
        },
      );
      const end = await a.attempt.done;
      clearInterval(renew);
      const d = end.decision;
      if (end.status === 'stopped') {
        // Stopped by our shutdown: back in the queue as it was, for another worker.
        await redis.eval(RELEASE, 1, busy, jobId);
        await job.moveToDelayed(Date.now(), token);
        a.attempt.log.info({ event_type: 'run_requeued' }, 'run put back in its queue');
      } else if (d.action === 'retry') {
        await redis.eval(ACQUIRE, 1, busy, jobId, String(d.delayMs + lockMs * 2));
        await job.moveToFailed(new Error(`${end.errorCode ?? 'exit ' + end.exitCode}: ${end.errorMessage ?? d.reason}`), token, false);
      } else {
        await redis.eval(RELEASE, 1, busy, jobId);
        const result = { exit_code: end.exitCode, status: end.status, rows_written: end.rowsWritten, ...(end.errorCode !== undefined ? { error_code: end.errorCode } : {}) };
        if (d.action === 'done') await job.moveToCompleted(result, token, false);
        else await job.moveToFailed(new UnrecoverableError(`${d.reason}: ${end.errorCode ?? 'exit ' + end.exitCode}${end.errorMessage ? `: ${end.errorMessage}` : ''}`), token, false);
      }
    } finally {
      clearInterval(renew);
    }
  }
}
