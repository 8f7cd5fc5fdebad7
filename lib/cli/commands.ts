/**
 * CLI commands. Each is a small function over the library API; the CLI adds
 * argument parsing, output formatting and exit codes, nothing else.
 */
import { Writable } from 'node:stream';
import { loadJob, type LoadOptions } from '../config/index.js';
import { getConnector } from '../../connectors/index.js';
import { openStateStore } from '../../state/index.js';
import { DativoError, ExitCode, toDativoError, type ExitCode as Exit } from '../errors.js';
import { stringifyJson } from '../json.js';
import { createLogger, redactDeep, type Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import type { Progress, RunOptions, RunSummary } from '../run.js';
import { runJobFile } from '../run/file.js';
import { formatProgress, formatReplay, formatSummary } from './format.js';
import type { CliIO, CliOptions } from './io.js';

export type { CliIO, CliOptions } from './io.js';

type Command = (args: string[], o: CliOptions, io: CliIO) => Promise<number>;

/** A status line rewritten in place on a terminal (`\r`), which log lines step around. */
class ProgressLine {
  private text = '';

  constructor(private readonly out: NodeJS.WritableStream) {}

  draw(line: string): void {
    this.out.write(`\r${line}${' '.repeat(Math.max(0, this.text.length - line.length))}`);
    this.text = line;
  }

  /** Blank the line and forget it. */
  clear(): void {
    if (this.text === '') return;
    this.out.write(`\r${' '.repeat(this.text.length)}\r`);
    this.text = '';
  }

  /** A stream for log lines: each is written on a line of its own, then the progress line is drawn again. */
  logStream(): Writable {
    return new Writable({
      write: (chunk: Buffer | string, _enc, cb) => {
        const shown = this.text;
        this.clear();
        this.out.write(chunk);
        if (shown !== '') this.draw(shown);
        cb();
      },
    });
  }
}

function worst(a: Exit, b: Exit): Exit {
  return (Math.max(a, b) as Exit);
}

/** Print a config or other error the way every command does: message, then each problem. */
function reportError(err: unknown, io: CliIO): Exit {
  const e = toDativoError(err);
  io.stderr.write(`error [${e.code}]: ${e.message}\n`);
  return e.exitCode;
}

function loadOptions(o: CliOptions): LoadOptions {
  return { mode: o.mode, ...(o.secretsDir ? { secretsDir: o.secretsDir } : {}) };
}

async function load(file: string, o: CliOptions): Promise<JobPlan> {
  return loadJob(file, loadOptions(o));
}

function needArgs(args: string[], n: number, what: string): void {
  if (args.length < n) throw new DativoError('CONFIG_INVALID', `missing argument: ${what}`);
}

/** How long a `DATIVO_PAUSE_AT` pause lasts unless `DATIVO_PAUSE_MS` says otherwise. */
export const DEFAULT_PAUSE_MS = 30_000;

/**
 * Fault injection for crash tests: `DATIVO_PAUSE_AT=before_commit|before_state_save`
 * makes the run print `dativo: paused at <point> (<object>) for <n> ms` on
 * stderr and wait there, so a test can SIGKILL the process at exactly that
 * moment. The wait is bounded (`DATIVO_PAUSE_MS`, default 30 s; a stop signal
 * ends it with ABORTED): a variable left set by mistake delays a production run,
 * it never hangs it.
 */
function pauseHooks(io: CliIO): RunOptions['hooks'] | undefined {
  const at = process.env['DATIVO_PAUSE_AT'];
  if (at !== 'before_commit' && at !== 'before_state_save') return undefined;
  const raw = Number(process.env['DATIVO_PAUSE_MS']);
  const ms = Number.isFinite(raw) && raw >= 0 ? Math.min(raw, DEFAULT_PAUSE_MS * 10) : DEFAULT_PAUSE_MS;
  const pause = (object: string): Promise<void> => {
    io.stderr.write(`dativo: paused at ${at} (${object}) for ${ms} ms\n`);
    return new Promise<void>((resolve, reject) => {
      const stop = (): void => {
        clearTimeout(timer);
        reject(new DativoError('ABORTED', `stopped while paused at ${at}`, { context: { object } }));
      };
      const timer = setTimeout(() => {
        io.signal?.removeEventListener('abort', stop);
        resolve();
      }, ms);
      io.signal?.addEventListener('abort', stop, { once: true });
    });
  };
  return at === 'before_commit' ? { beforeCommit: pause } : { beforeStateSave: pause };
}

const run: Command = async (args, o, io) => {
  try {
    needArgs(args, 1, '<job.yaml>');
  } catch (err) {
    return reportError(err, io);
  }
  const summaries: RunSummary[] = [];
  let exit: Exit = ExitCode.OK;
  for (const file of args) {
    const progress = io.isTTY && !o.json ? new ProgressLine(io.stderr) : undefined;
    const log = (plan: JobPlan): Logger =>
      createLogger({
        level: o.logLevel ?? plan.logging.level,
        secrets: plan.logging.redaction === false ? [] : plan.secrets,
        // With a progress line on the terminal, a log line first takes it off
        // and puts it back after, so the two never share a line; and a person
        // reads it there, so it is a human line, not JSON.
        destination: progress ? progress.logStream() : io.stderr === process.stderr ? 2 : io.stderr,
        format: progress ? 'pretty' : 'json',
      });
    const onProgress = progress ? (p: Progress): void => progress.draw(formatProgress(p)) : undefined;
    const hooks = pauseHooks(io);
    const summary = await runJobFile(file, {
      ...loadOptions(o),
      log,
      ...(io.signal ? { signal: io.signal } : {}),
      ...(onProgress ? { onProgress } : {}),
      ...(hooks ? { hooks } : {}),
    });
    progress?.clear();
    summaries.push(summary);
    exit = worst(exit, summary.exit_code);
    if (o.json) continue;
    // A job that did not load has no run to summarize: its error goes where errors go.
    if (summary.run_id === '' && summary.error) io.stderr.write(`error [${summary.error.code}]: ${summary.error.message}\n`);
    else io.stdout.write(formatSummary(summary));
  }
  if (o.json) {
    // Every object carries `cursor`: null when the object has none (file-incremental, no incremental).
    const shaped = summaries.map((s) => ({ ...s, objects: s.objects.map((x) => ({ ...x, cursor: x.cursor ?? null })) }));
    const out = shaped.length === 1 ? shaped[0] : { exit_code: exit, runs: shaped };
    io.stdout.write(`${stringifyJson(out)}\n`);
  }
  return exit;
};

const validateCmd: Command = async (args, o, io) => {
  try {
    needArgs(args, 1, '<job.yaml>');
  } catch (err) {
    return reportError(err, io);
  }
  let exit: Exit = ExitCode.OK;
  const results: { file: string; ok: boolean; error?: unknown }[] = [];
  for (const file of args) {
    try {
      const plan = await load(file, o);
      const connector = await getConnector(plan.source.type);
      if (plan.mode === 'cloud' && !connector.descriptor.allowedInCloud) {
        throw new DativoError('CONNECTOR_NOT_ALLOWED', `connector "${connector.descriptor.name}" is not allowed in --mode cloud`, { context: { file } });
      }
      results.push({ file, ok: true });
      if (!o.json) io.stdout.write(`ok: ${file} (${plan.source.type} → ${plan.target.catalog.type === 'none' ? 'parquet' : `iceberg/${plan.target.catalog.type}`}, ${plan.source.objects.length} object(s), ${plan.syncMode})\n`);
    } catch (err) {
      const e = toDativoError(err, { file });
      exit = worst(exit, e.exitCode);
      results.push({ file, ok: false, error: e.toJSON() });
      if (!o.json) io.stderr.write(`invalid: ${file}\n  [${e.code}] ${e.message.split('\n').join('\n  ')}\n`);
    }
  }
  if (o.json) io.stdout.write(`${stringifyJson({ exit_code: exit, results })}\n`);
  return exit;
};

const discover: Command = async (args, o, io) => {
  try {
    needArgs(args, 1, '<job.yaml>');
    const file = args[0] as string;
    // Only the source part of the job is needed: the asset is what discover makes.
    const plan = await loadJob(file, { ...loadOptions(o), purpose: 'discover' });
    const connector = await getConnector(plan.source.type);
    const mod = (await import('../discover.js')) as typeof import('../discover.js');
    const found = await mod.discoverAssets(plan, connector, io.signal ?? new AbortController().signal);
    const yaml = mod.renderAssetYaml(plan, connector.descriptor.name, found);
    io.stdout.write(yaml);
    if (o.write) {
      const target = plan.asset.file;
      if (target === '') throw new DativoError('CONFIG_INVALID', `${file}: --write needs the job's asset_path (or asset: <name>) to know where to write`, { context: { file } });
      if (found.length !== 1) {
        throw new DativoError('CONFIG_INVALID', `${file}: --write writes one asset and the job has ${found.length} objects (${found.map((x) => x.name).join(', ')}); redirect stdout instead`, { context: { file } });
      }
      await mod.writeNewAsset(target, yaml);
      io.stderr.write(`wrote ${target}\n`);
    }
    return ExitCode.OK;
  } catch (err) {
    return reportError(err, io);
  }
};

const state: Command = async (args, o, io) => {
  try {
    const [sub, file] = args;
    if (sub !== 'show' && sub !== 'reset') throw new DativoError('CONFIG_INVALID', 'usage: dativo state show|reset <job.yaml> [--object NAME]');
    needArgs(args, 2, '<job.yaml>');
    const plan = await load(file as string, o);
    const store = openStateStore(plan.state, { tenant: plan.tenantId, job: plan.name });
    if (sub === 'show') {
      const s = await store.load();
      io.stdout.write(`${stringifyJson({ file: store.path, ...s }, 2)}\n`);
      return ExitCode.OK;
    }
    if (o.object !== undefined) {
      const known = plan.source.objects.map((x) => x.name);
      // An object no longer in the job may still have state worth clearing.
      if (!known.includes(o.object) && !(o.object in (await store.load()).objects)) {
        throw new DativoError('CONFIG_INVALID', `object "${o.object}" is neither an object of ${file as string} nor in its state (objects: ${known.join(', ')})`, {
          context: { file: file as string, object: o.object },
        });
      }
    }
    await store.reset(o.object);
    io.stdout.write(`state reset: ${store.path}${o.object ? ` (object ${o.object})` : ''}\n`);
    return ExitCode.OK;
  } catch (err) {
    return reportError(err, io);
  }
};

const tables: Command = async (args, o, io) => {
  try {
    const mod = (await import('./tables.js')) as typeof import('./tables.js');
    return await mod.tablesCommand(args, o, io);
  } catch (err) {
    return reportError(err, io);
  }
};

const rejects: Command = async (args, o, io) => {
  try {
    const [sub, file] = args;
    if (sub !== 'replay') throw new DativoError('CONFIG_INVALID', 'usage: dativo rejects replay <job.yaml> [--run ID] [--object NAME]');
    needArgs(args, 2, '<job.yaml>');
    const plan = await load(file as string, o);
    const log = createLogger({
      level: o.logLevel ?? plan.logging.level,
      secrets: plan.logging.redaction === false ? [] : plan.secrets,
      destination: io.stderr === process.stderr ? 2 : io.stderr,
    });
    const { replayRejects } = await import('../replay.js');
    const ran = await replayRejects(plan, {
      log,
      ...(o.run !== undefined ? { run: o.run } : {}),
      ...(o.object !== undefined ? { object: o.object } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
    });
    const summary = plan.logging.redaction === false ? ran : redactDeep(ran, plan.secrets);
    io.stdout.write(o.json ? `${stringifyJson(summary)}\n` : formatReplay(summary));
    return summary.exit_code;
  } catch (err) {
    return reportError(err, io);
  }
};

/** The scheduling commands live in lib/cli/schedule.ts, loaded when used. */
const scheduling =
  (name: 'scheduleCommand' | 'workerCommand' | 'runsCommand' | 'dagsterCommand'): Command =>
  async (args, o, io) => {
    try {
      const mod = (await import('./schedule.js')) as typeof import('./schedule.js');
      return await mod[name](args, o, io);
    } catch (err) {
      return reportError(err, io);
    }
  };

export const commands: Record<string, Command> = {
  run,
  validate: validateCmd,
  discover,
  state,
  tables,
  rejects,
  schedule: scheduling('scheduleCommand'),
  worker: scheduling('workerCommand'),
  runs: scheduling('runsCommand'),
  dagster: scheduling('dagsterCommand'),
};
