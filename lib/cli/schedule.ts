/**
 * `dativo schedule <runner.yaml>` (the in-process scheduler), `dativo runs`
 * (the run log) and `dativo dagster export <runner.yaml> -o definitions.py`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DativoError, ExitCode, toDativoError } from '../errors.js';
import { stringifyJson } from '../json.js';
import { createLogger } from '../log.js';
import { dativoRunCommand } from '../schedule/child.js';
import { loadRunner, type RunnerConfig } from '../schedule/config.js';
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

/** `dativo schedule <runner.yaml>`: run until SIGTERM/SIGINT (graceful), a second one stops the runs now. */
export async function scheduleCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const runner = await load(args[0], o, io);
  const enabled = runner.schedules.filter((s) => s.enabled);
  if (enabled.length === 0) {
    throw new DativoError('CONFIG_INVALID', `${runner.file}: no schedule to run (${runner.skipped.length} skipped, ${runner.schedules.length} disabled)`, {
      context: { file: runner.file },
    });
  }
  const log = createLogger({ level: o.logLevel ?? 'info', destination: io.stderr === process.stderr ? 2 : io.stderr });
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

/** `dativo runs [<runner.yaml>] [--tenant T] [--job J] [--limit N] [--run-log FILE] [--json]`. */
export async function runsCommand(args: string[], o: CliOptions, io: CliIO): Promise<number> {
  const s = o.schedule ?? {};
  let limit: number | undefined;
  if (s.limit !== undefined) {
    limit = Number(s.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new DativoError('CONFIG_INVALID', `--limit must be a positive integer, got "${s.limit}"`);
  }
  let file = s.runLog;
  if (file === undefined && args[0] !== undefined) file = (await loadRunner(args[0], { mode: o.mode, ...(o.secretsDir !== undefined ? { secretsDir: o.secretsDir } : {}) })).runLog?.path;
  const runLogPath = path.resolve(file ?? defaultRunLogPath());
  const runs = await fileRunLog(runLogPath).list({
    ...(s.tenant !== undefined ? { tenant: s.tenant } : {}),
    ...(s.job !== undefined ? { job: s.job } : {}),
    ...(limit !== undefined ? { limit } : {}),
  });
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
