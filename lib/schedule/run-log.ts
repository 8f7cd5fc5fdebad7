/**
 * The run log: one record per attempt of a scheduled run, written when it
 * starts and again when it ends, read by `dativo runs`. {@link RunLog} is
 * the seam; {@link fileRunLog} keeps it in a local NDJSON file (append only:
 * the later line of an attempt replaces the earlier), and a shared store
 * (Redis, Postgres) for many machines implements the same three methods.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import { makeDirs } from '../storage/local.js';

/** Where an attempt stands. */
export type RunStatus =
  /** Started, not ended. */
  | 'running'
  /** Exit 0. */
  | 'succeeded'
  /** Exit 1, not retried (no `retry_on_partial`, or its retries spent: see `error_code`). */
  | 'partial'
  /** Failed retryably; another attempt is due at `next_retry_at`. */
  | 'retrying'
  /** Exit 3, or retries exhausted: nothing more will happen until the next tick. */
  | 'failed'
  /** Stopped by a scheduler shutdown; not retried. */
  | 'stopped'
  /** Recorded as running by a scheduler on this host that is gone (read-time only). */
  | 'lost';

/** One attempt. Times are ISO 8601 UTC. */
export interface RunRecord {
  /** This attempt's id (unique). */
  id: string;
  schedule: string;
  /** Job name (its file name without `.yaml`). */
  job: string;
  tenant: string;
  /** Job file. */
  config: string;
  /** 1 for the first run of a tick, 2 for its first retry, ... */
  attempt: number;
  status: RunStatus;
  started_at: string;
  ended_at?: string;
  duration_ms?: number;
  /** The run's exit code; a timeout or a crash is recorded as 2. */
  exit_code?: number;
  /** How the attempt ended: its own exit code, killed at its timeout, or a crash (signal, OOM, no summary). */
  outcome?: 'exited' | 'timeout' | 'crashed';
  rows_written?: number;
  rows_rejected?: number;
  /** The run's error code (docs/errors.md), RUN_TIMEOUT or RUN_CRASHED. */
  error_code?: string;
  error_message?: string;
  /** The `run_id` of `dativo run` (in the table's snapshot summary, reject files and logs). */
  run_id?: string;
  /** When the next attempt is due (status `retrying`). */
  next_retry_at?: string;
  /** The child process. */
  pid?: number;
  /** The scheduler that ran it. */
  scheduler?: { pid: number; host: string };
}

/** Which records {@link RunLog.list} returns. */
export interface RunLogFilter {
  tenant?: string;
  /** A job name or a schedule name. */
  job?: string;
  /** Only the newest this many (default: all). */
  limit?: number;
}

export interface RunLog {
  /** Record an attempt; a record with the id of an earlier one replaces it. */
  write(record: RunRecord): Promise<void>;
  /** The current record of each attempt, oldest start first. */
  list(filter?: RunLogFilter): Promise<RunRecord[]>;
  close(): Promise<void>;
}

/** The default run log file: `$DATIVO_RUN_LOG`, else `<cwd>/.local/runs/runs.ndjson`. */
export function defaultRunLogPath(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string {
  const v = env['DATIVO_RUN_LOG'];
  return v !== undefined && v !== '' ? resolve(cwd, v) : resolve(cwd, '.local/runs/runs.ndjson');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Fold records (in write order) into the current one per attempt, oldest
 * start first; a `running` attempt of a scheduler on this host that no
 * longer exists becomes `lost`.
 */
export function foldRuns(records: Iterable<RunRecord>, filter: RunLogFilter = {}, host: string = hostname()): RunRecord[] {
  const byId = new Map<string, RunRecord>();
  for (const r of records) byId.set(r.id, r);
  let out = [...byId.values()].filter(
    (r) => (filter.tenant === undefined || r.tenant === filter.tenant) && (filter.job === undefined || r.job === filter.job || r.schedule === filter.job),
  );
  out.sort((a, b) => (a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : 0));
  if (filter.limit !== undefined && out.length > filter.limit) out = out.slice(out.length - filter.limit);
  return out.map((r) => (r.status === 'running' && r.scheduler?.host === host && r.scheduler.pid !== process.pid && !alive(r.scheduler.pid) ? { ...r, status: 'lost' } : r));
}

/**
 * A run log in an NDJSON file (folders created on first write). A line cut
 * short by a crash is skipped on reading; everything before and after it
 * stays readable.
 */
export function fileRunLog(path: string): RunLog {
  const file = resolve(path);
  let made = false;
  const ioError = (err: unknown): DativoError => {
    const code = (err as NodeJS.ErrnoException).code;
    return new DativoError(code === 'EACCES' || code === 'EROFS' || code === 'EPERM' ? 'STORAGE_NOT_WRITABLE' : 'STORAGE_IO', `run log ${file}: ${(err as Error).message}`, {
      cause: err,
      context: { file },
    });
  };
  return {
    async write(record) {
      try {
        if (!made) {
          await makeDirs(dirname(file));
          made = true;
        }
        await appendFile(file, `${JSON.stringify(record)}\n`, 'utf8');
      } catch (err) {
        throw ioError(err);
      }
    },
    async list(filter) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw ioError(err);
      }
      const records: RunRecord[] = [];
      for (const line of text.split('\n')) {
        if (line === '') continue;
        try {
          const r = JSON.parse(line) as RunRecord;
          if (typeof r.id === 'string' && typeof r.started_at === 'string') records.push(r);
        } catch {
          // a line torn by a crash
        }
      }
      return foldRuns(records, filter);
    },
    async close() {},
  };
}

/**
 * Run-log writes in order, each failure logged (`run_log_failed`), never
 * thrown: a run log that cannot be written never stops a scheduler.
 */
export function runLogWriter(runLog: RunLog, log: Logger): { write(rec: RunRecord): void; flushed(): Promise<void> } {
  let writes: Promise<void> = Promise.resolve();
  return {
    write(rec) {
      writes = writes.then(() =>
        runLog.write(rec).catch((err: unknown) => {
          log.error({ event_type: 'run_log_failed', err, id: rec.id }, `could not write the run log: ${(err as Error).message}`);
        }),
      );
    },
    flushed: () => writes,
  };
}
