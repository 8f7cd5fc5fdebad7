/**
 * `dativo schedule <runner.yaml> --redis URL`: the schedules of a runner file
 * as BullMQ job schedulers, one queue per tenant (lib/schedule/redis.ts
 * `queueName`), run by `dativo worker` (lib/schedule/worker.ts).
 *
 * - Registering is idempotent: each enabled schedule is `upsertJobScheduler`
 *   under its name, so a second scheduler, a restart or two instances at
 *   once leave one scheduler per schedule (BullMQ's job ids
 *   `repeat:<name>:<millis>` make one job per tick). Schedules that left
 *   runner.yaml (or were disabled) are removed: the names registered are kept
 *   in `_dativo:schedules`.
 * - A tenant's queue gets BullMQ's global concurrency
 *   `concurrency_per_tenant`: the cap holds across every worker.
 * - Redis keeps nothing on disk here: after a reconnect everything is
 *   registered again, and every `checkSeconds` a missing scheduler is put
 *   back (`schedule_restored`). BullMQ makes a scheduler's next job when its
 *   current one starts, so ticks missed while no worker ran (or Redis was
 *   gone) run once, not once per missed tick.
 */
import { Queue, type JobsOptions, type RepeatOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { RunnerConfig, Schedule, Trigger } from './config.js';
import type { RunRetryPolicy } from './policy.js';
import { dativoKeys, queueName } from './redis.js';
import { describeTrigger } from './trigger.js';

/** The backoff type of our jobs: the worker's `backoffStrategy` computes it from the schedule's retry policy. */
export const BACKOFF_TYPE = 'dativo';

/** What a queued run carries: all a worker needs, so workers do not read runner.yaml. */
export interface RunJobData {
  v: 1;
  schedule: string;
  /** Absolute path of the job file (the same on every worker machine). */
  config: string;
  tenant: string;
  job: string;
  /** The job's state location (lib/schedule/config.ts `ScheduleJob.key`): runs with one key never overlap. */
  key: string;
  retry: RunRetryPolicy;
  timeoutSeconds: number;
  killGraceSeconds: number;
}

export function runJobData(s: Schedule, runner: Pick<RunnerConfig, 'killGraceSeconds'>): RunJobData {
  return {
    v: 1,
    schedule: s.name,
    config: s.config,
    tenant: s.job.tenant,
    job: s.job.name,
    key: s.job.key,
    retry: s.retry,
    timeoutSeconds: s.timeoutSeconds,
    killGraceSeconds: runner.killGraceSeconds,
  };
}

/** BullMQ options of a run: attempts from the retry policy (the worker decides, BullMQ carries the delay). */
export function runJobOptions(retry: RunRetryPolicy): JobsOptions {
  return {
    attempts: retry.maxRetries + 1,
    backoff: { type: BACKOFF_TYPE },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 1000 },
  };
}

/** The BullMQ repeat options of a trigger: a cron pattern in its time zone, or `every` ms. */
export function repeatOf(t: Trigger): Omit<RepeatOptions, 'key'> {
  return t.kind === 'cron' ? { pattern: t.cron, tz: t.timezone } : { every: Math.round(t.seconds * 1000) };
}

export interface DistributedSchedulerOptions {
  redis: Redis;
  prefix: string;
  log: Logger;
  /** How often to check that every scheduler is still in Redis. Default 30 s. */
  checkSeconds?: number;
}

export class DistributedScheduler {
  private readonly queues = new Map<string, Queue>();
  private timer: NodeJS.Timeout | undefined;
  private registering: Promise<void> | undefined;
  private closed = false;
  private readonly onReady = (): void => void this.registerLogged('reconnected');
  private readonly enabled: Schedule[];

  constructor(
    private readonly runner: Pick<RunnerConfig, 'schedules' | 'concurrencyPerTenant' | 'killGraceSeconds'>,
    private readonly opts: DistributedSchedulerOptions,
  ) {
    this.enabled = runner.schedules.filter((s) => s.enabled);
  }

  private queue(tenant: string): Queue {
    let q = this.queues.get(tenant);
    if (q === undefined) {
      q = new Queue(queueName(tenant), { connection: this.opts.redis, prefix: this.opts.prefix });
      q.on('error', (err) => this.opts.log.warn({ event_type: 'queue_error', tenant, err: err.message }, 'queue error'));
      this.queues.set(tenant, q);
    }
    return q;
  }

  /** Register every enabled schedule, set the tenant caps, remove schedules no longer in the file. */
  async register(): Promise<void> {
    const { redis, prefix, log } = this.opts;
    const k = dativoKeys(prefix);
    const tenants = [...new Set(this.enabled.map((s) => s.job.tenant))];
    for (const t of tenants) await this.queue(t).setGlobalConcurrency(this.runner.concurrencyPerTenant);
    if (tenants.length > 0) await redis.sadd(k.tenants, ...tenants);
    for (const s of this.enabled) {
      await this.upsert(s);
      await redis.hset(k.schedules, s.name, s.job.tenant);
    }
    const wanted = new Map(this.enabled.map((s) => [s.name, s.job.tenant]));
    const registered = await redis.hgetall(k.schedules);
    for (const [name, tenant] of Object.entries(registered)) {
      if (wanted.get(name) === tenant) continue;
      await this.queue(tenant).removeJobScheduler(name);
      if (!wanted.has(name)) await redis.hdel(k.schedules, name);
      log.info({ event_type: 'schedule_removed', schedule: name, tenant }, 'schedule removed (no longer in the runner file)');
    }
  }

  private async upsert(s: Schedule): Promise<void> {
    await this.queue(s.job.tenant).upsertJobScheduler(s.name, repeatOf(s.trigger), {
      name: s.name,
      data: runJobData(s, this.runner),
      opts: runJobOptions(s.retry),
    });
  }

  private registerLogged(why: 'started' | 'reconnected'): Promise<void> {
    this.registering ??= this.register()
      .then(() => {
        this.opts.log.info(
          { event_type: 'schedules_registered', reason: why, schedules: this.enabled.map((s) => ({ schedule: s.name, tenant: s.job.tenant, trigger: describeTrigger(s.trigger) })) },
          `${this.enabled.length} schedule(s) registered`,
        );
      })
      .catch((err: unknown) => {
        this.opts.log.error({ event_type: 'register_failed', reason: why, err: (err as Error).message }, 'could not register the schedules; retrying');
      })
      .finally(() => {
        this.registering = undefined;
      });
    return this.registering;
  }

  /** Put back a scheduler Redis no longer has (Redis restarted without its data, or someone removed it). */
  async check(): Promise<number> {
    let restored = 0;
    for (const s of this.enabled) {
      if ((await this.queue(s.job.tenant).getJobScheduler(s.name)) !== undefined) continue;
      await this.upsert(s);
      await this.opts.redis.sadd(dativoKeys(this.opts.prefix).tenants, s.job.tenant);
      await this.queue(s.job.tenant).setGlobalConcurrency(this.runner.concurrencyPerTenant);
      restored++;
      this.opts.log.warn({ event_type: 'schedule_restored', schedule: s.name, tenant: s.job.tenant }, 'schedule was missing in Redis; registered again');
    }
    return restored;
  }

  /** Register now, again after every reconnect, and check every `checkSeconds`. */
  async start(): Promise<void> {
    await this.register();
    this.opts.log.info(
      {
        event_type: 'schedules_registered',
        reason: 'started',
        concurrency_per_tenant: this.runner.concurrencyPerTenant,
        schedules: this.enabled.map((s) => ({ schedule: s.name, tenant: s.job.tenant, trigger: describeTrigger(s.trigger) })),
      },
      `${this.enabled.length} schedule(s) registered`,
    );
    this.opts.redis.on('ready', this.onReady);
    const every = (this.opts.checkSeconds ?? 30) * 1000;
    const loop = (): void => {
      this.timer = setTimeout(() => {
        void this.check()
          .catch((err: unknown) => this.opts.log.warn({ event_type: 'check_failed', err: (err as Error).message }, 'could not check the schedules'))
          .finally(() => {
            if (!this.closed) loop();
          });
      }, every);
    };
    loop();
  }

  /** Stop checking; the schedules stay registered (workers go on running them). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.opts.redis.off('ready', this.onReady);
    await this.registering;
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
