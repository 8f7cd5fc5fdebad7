/**
 * `dativo schedule <runner.yaml>` (the in-process scheduler, or with
 * `--redis` the BullMQ schedulers), `dativo worker --redis` (BullMQ runs),
 * `dativo runs` (the run log) and `dativo dagster export <runner.yaml> -o
 * definitions.py`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DativoError, ExitCode, toDativoError } from '../errors.js';
import { stringifyJson } from '../json.js';
import { createLogger, type Logger } from '../log.js';
import { dativoRunCommand } from '../schedule/child.js';
import { loadRunner, RUNNER_DEFAULTS, type RunnerConfig } from '../schedule/config.js';
import { DistributedScheduler } from '../schedule/distributed.js';
import { connectRedis, DEFAULT_PREFIX, DEFAULT_REDIS_WAIT_SECONDS, redisRunLog, safeRedisUrl } from '../schedule/redis.js';
import { QueueWorker } from '../schedule/worker.js';
import { renderDefinitions } from '../schedule/dagster.js';
import { defaultRunLogPath, fileRunLog, type RunRecord } from '../schedule/run-log.js';
import { Scheduler } from '../schedule/scheduler.js';
import type { CliIO, CliOptions } from './io.js';

async function load(file: string | undefined, o: CliOptions, io: CliIO): Promise<RunnerConfig> {
  if (file === undefined) throw new DativoError('CONFIG_INVALID', 'missing argument: <runner.yaml>');
  const runner = await loadRunner(file, { mode: o.mode, ...(o.secretsDir !== undefined ? { secretsDir: o.secretsDir } : {}) });
  for (const w of runner.warnings) io.stderr.write(`warning: ${w.file}: ${w.key}: ${w.message}\n`);
  for (const s of runner.skipped) {
    io.stderr.write(`skipped schedule "${s.name}" (${s.at}): its job file does not load\n  [${s.code}] ${s.message.split('\n').join('\n  ')}\n`);
  }
  return runner;
}

/** A number flag: undefined when not given; CONFIG_INVALID (exit 3) when it is not a number in range. */
function numberFlag(raw: string | undefined, flag: string, { integer = false, min = 0, above = false } = {}): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || (above && n <= min)) {
    const what = integer ? (min >= 1 ? 'a positive integer' : 'a whole number') : above ? `a number above ${min}` : `a number >= ${min}`;
    throw new DativoError('CONFIG_INVALID', `${flag} must be ${what}, got "${raw}"`);
  }
  return n;
}

function cliLogger(o: CliOptions, io: CliIO): Logger {
  return createLogger({ level: o.logLevel ?? 'info', destination: io.stderr === process.stderr ? 2 : io.stderr });
}

/** The `--redis` options every command shares. */
function redisTarget(o: CliOptions): { url: string; prefix: string; waitSeconds: number } | undefined {
  const s = o.schedule ?? {};
  if (s.redis === undefined) {
    for (const [v, f] of [[s.prefix, '--prefix'], [s.redisWaitSeconds, '--redis-wait-seconds']] as const) {
      if (v !== undefined) throw new DativoError('CONFIG_INVALID', `${f} needs --redis URL`);
    }
    return undefined;
  }
  const prefix = s.prefix ?? DEFAULT_PREFIX;
  if (prefix === '' || prefix.includes(' ')) throw new DativoError('CONFIG_INVALID', `--prefix must be a non-empty key prefix without spaces, got "${prefix}"`);
  return { url: s.redis, prefix, waitSeconds: numberFlag(s.redisWaitSeconds, '--redis-wait-seconds') ?? DEFAULT_REDIS_WAIT_SECONDS };
}

/** Resolve when the first stop signal comes. */
function stopSignal(io: CliIO): Promise<void> {
  return new Promise<void>((resolve) => {
    if (io.signal?.aborted) resolve();
    io.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** `dativo schedule <runner.yaml> --redis URL`: register the schedules in BullMQ, keep them there until SIGTERM/SIGINT. */
async function distributedSchedule(runner: RunnerConfig, target: NonNullable<ReturnType<typeof redisTarget>>, o: CliOptions, io: CliIO): Promise<number> {
  const log = cliLogger(o, io).child({ runner: runner.file, redis: safeRedisUrl(target.url), prefix: target.prefix });
  for (const s of runner.skipped) {
    log.error({ event_type: 'schedule_skipped', schedule: s.name, config: s.config, code: s.code, problems: s.problems }, 'schedule skipped');
  }
  const redis = await connectRedis(target.url, { waitSeconds: target.waitSeconds, log });
  const scheduler = new DistributedScheduler(runner, { redis, prefix: target.prefix, log });
  try {
    await scheduler.start();
    await stopSignal(io);
    log.info({ event_type: 'scheduler_stopping' }, 'scheduler stopping (the schedules stay registered)');
  } finally {
    await scheduler.close().catch(() => undefined);
    redis.disconnect();
  }
  log.info({ event_type: 'scheduler_stopped' }, 'scheduler stopped');
  return ExitCode.OK;
}

/** `dativo schedule <runner.yaml>`: run until SIGTERM/SIGINT (graceful), a second one stops the runs now. */
export async function scheduleCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const target = redisTarget(o);
  const runner = await load(args[0], o, io);
  const enabled = runner.schedules.filter((s) => s.enabled);
  if (enabled.length === 0) {
    throw new DativoError('CONFIG_INVALID', `${runner.file}: no schedule to run (${runner.skipped.length} skipped, ${runner.schedules.length} disabled)`, {
      context: { file: runner.file },
    });
  }
  if (target !== undefined) return distributedSchedule(runner, target, o, io);
  const log = cliLogger(o, io);
  const runLogPath = runner.runLog?.path ?? defaultRunLogPath();
  const runLog = fileRunLog(runLogPath);
  for (const s of runner.skipped) {
    log.error({ event_type: 'schedule_skipped', schedule: s.name, config: s.config, code: s.code, problems: s.problems }, 'schedule skipped');
  }
  const child = { secretsDir: o.secretsDir, mode: o.mode, logLevel: o.logLevel };
  const scheduler = new Scheduler(runner, {
    log: log.child({ runner: runner.file }),
    runLog,
    command: (s) => dativoRunCommand(s.config, child),
    onChildLine: (line) => io.stderr.write(`${line}\n`),
  });
  log.info({ event_type: 'run_log', file: runLogPath }, 'run log');
  scheduler.start();
  const stop = (): void => void scheduler.stop();
  if (io.signal?.aborted) stop();
  io.signal?.addEventListener('abort', stop, { once: true });
  io.onForce?.(() => scheduler.stopNow('second signal'));
  await scheduler.done;
  await runLog.close();
  return ExitCode.OK;
}

/** `dativo worker --redis URL [--tenants a,b] [--concurrency N] [--lock-seconds N] [--grace-seconds N]`: run queued runs until SIGTERM/SIGINT. */
export async function workerCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  if (args.length > 0) throw new DativoError('CONFIG_INVALID', `dativo worker takes no file (the runs carry their job files), got "${args[0]}"`);
  const target = redisTarget(o);
  if (target === undefined) throw new DativoError('CONFIG_INVALID', 'dativo worker needs --redis URL');
  const s = o.schedule ?? {};
  const concurrency = numberFlag(s.concurrency, '--concurrency', { integer: true, min: 1 }) ?? RUNNER_DEFAULTS.maxConcurrentRuns;
  const lockSeconds = numberFlag(s.lockSeconds, '--lock-seconds', { above: true }) ?? 30;
  const graceSeconds = numberFlag(s.graceSeconds, '--grace-seconds') ?? RUNNER_DEFAULTS.shutdownGraceSeconds;
  let tenants: string[] | undefined;
  if (s.tenants !== undefined) {
    tenants = [...new Set(s.tenants.split(',').map((t) => t.trim()).filter((t) => t !== ''))];
    if (tenants.length === 0) throw new DativoError('CONFIG_INVALID', `--tenants must name at least one tenant, got "${s.tenants}"`);
  }
  const log = cliLogger(o, io).child({ redis: safeRedisUrl(target.url), prefix: target.prefix });
  const redis = await connectRedis(target.url, { waitSeconds: target.waitSeconds, log });
  const child = { secretsDir: o.secretsDir, mode: o.mode, logLevel: o.logLevel };
  const worker = new QueueWorker({
    redis,
    prefix: target.prefix,
    tenants,
    concurrency,
    lockSeconds,
    shutdownGraceSeconds: graceSeconds,
    log,
    runLog: redisRunLog(redis, target.prefix),
    command: (d) => dativoRunCommand(d.config, child),
    onChildLine: (line) => io.stderr.write(`${line}\n`),
  });
  worker.start();
  void stopSignal(io).then(() => worker.stop());
  io.onForce?.(() => worker.stopNow('second signal'));
  await worker.done;
  redis.disconnect();
  return ExitCode.OK;
}

const COLUMNS = ['started', 'schedule', 'tenant', 'attempt', 'status', 'exit', 'rows', 'duration', 'error', 'next retry'] as const;

function cells(r: RunRecord): string[] {
  return [
    r.started_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    r.schedule === r.job ? r.job : `${r.schedule} (${r.job})`,
    r.tenant,
    String(r.attempt),
    r.status,
    r.exit_code === undefined ? '' : String(r.exit_code),
    r.rows_written === undefined ? '' : `${r.rows_written}${r.rows_rejected ? ` (${r.rows_rejected} rejected)` : ''}`,
    r.duration_ms === undefined ? '' : `${(r.duration_ms / 1000).toFixed(1)} s`,
    r.error_code ?? '',
    r.next_retry_at?.replace('T', ' ').replace(/\.\d+Z$/, 'Z') ?? '',
  ];
}

/** An aligned text table of runs. */
export function formatRuns(runs: RunRecord[]): string {
  if (runs.length === 0) return 'no runs\n';
  const rows = [COLUMNS.map((c) => c.toUpperCase()), ...runs.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** `dativo runs [<runner.yaml>] [--tenant T] [--job J] [--limit N] [--run-log FILE | --redis URL] [--json]`. */
export async function runsCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const s = o.schedule ?? {};
  let limit: number | undefined;
  if (s.limit !== undefined) {
    limit = Number(s.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new DativoError('CONFIG_INVALID', `--limit must be a positive integer, got "${s.limit}"`);
  }
  const filter = {
    ...(s.tenant !== undefined ? { tenant: s.tenant } : {}),
    ...(s.job !== undefined ? { job: s.job } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
  const target = redisTarget(o);
  if (target !== undefined) {
    if (s.runLog !== undefined) throw new DativoError('CONFIG_INVALID', 'give --run-log FILE or --redis URL, not both');
    const redis = await connectRedis(target.url, { waitSeconds: target.waitSeconds, log: cliLogger(o, io) });
    try {
      const runs = await redisRunLog(redis, target.prefix).list(filter);
      io.stdout.write(o.json ? `${stringifyJson({ run_log: `${safeRedisUrl(target.url)} (prefix ${target.prefix})`, runs })}\n` : formatRuns(runs));
    } finally {
      redis.disconnect();
    }
    return ExitCode.OK;
  }
  let file = s.runLog;
  if (file === undefined && args[0] !== undefined) file = (await loadRunner(args[0], { mode: o.mode, ...(o.secretsDir !== undefined ? { secretsDir: o.secretsDir } : {}) })).runLog?.path;
  const runLogPath = path.resolve(file ?? defaultRunLogPath());
  const runs = await fileRunLog(runLogPath).list(filter);
  io.stdout.write(o.json ? `${stringifyJson({ run_log: runLogPath, runs })}\n` : formatRuns(runs));
  return ExitCode.OK;
}

/** `dativo dagster export <runner.yaml> -o definitions.py`: exit 1 when a schedule was left out (its job does not load). */
export async function dagsterCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const [sub, file] = args;
  if (sub !== 'export') throw new DativoError('CONFIG_INVALID', 'usage: dativo dagster export <runner.yaml> -o definitions.py');
  const runner = await load(file, o, io);
  const { python, warnings } = renderDefinitions(runner);
  for (const w of warnings) io.stderr.write(`note: ${w}\n`);
  const out = o.schedule?.output;
  if (out === undefined || out === '-') io.stdout.write(python);
  else {
    try {
      await writeFile(out, python, 'utf8');
    } catch (err) {
      throw toDativoError(err, { file: out });
    }
    io.stderr.write(`wrote ${path.resolve(out)} (${runner.schedules.length} schedule(s)); load it with: dagster dev -f ${out}\n`);
  }
  return runner.skipped.length > 0 ? ExitCode.PARTIAL : ExitCode.OK;
}
