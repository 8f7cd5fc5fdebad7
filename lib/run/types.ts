/**
 * The shapes a run takes and gives back: its options, its progress reports
 * and its summary. `lib/run.ts` re-exports them.
 */
import type { Connector } from '../connector.js';
import type { ExitCode as Exit } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobLock } from '../lock.js';
import type { CursorState } from '../types.js';

/** Progress of one object, reported about twice a second while it runs. */
export interface Progress {
  object: string;
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  /** Parquet bytes written so far (files finished plus the one in progress). */
  bytesWritten?: number;
  elapsedMs: number;
}

export interface RunOptions {
  /** Default: a silent logger. The CLI passes its pino logger. */
  log?: Logger;
  /** Aborting destroys the pipeline: DB cursors close, uploads abort, nothing is committed. */
  signal?: AbortSignal;
  /** Default: `<UTC yyyymmddThhmmss>-<6 hex>`, unique and sortable. */
  runId?: string;
  /** Clock (tests). Default `() => new Date()`. */
  now?: () => Date;
  /** Use this connector instead of looking `plan.source.type` up in the registry. */
  connector?: Connector;
  /** Called while objects run. */
  onProgress?: (p: Progress) => void;
  /** Rows per batch handed to the Parquet sink (default 10,000) and its byte bound (default 32 MiB). */
  batchRows?: number;
  batchBytes?: number;
  /**
   * Called at the two moments a crash matters most: data files durable but
   * not committed, and commit done but state not saved. Used by crash tests
   * (the CLI maps `DATIVO_PAUSE_AT=before_commit|before_state_save` to a pause).
   */
  hooks?: { beforeCommit?: (object: string) => Promise<void>; beforeStateSave?: (object: string) => Promise<void> };
  /**
   * The per-job lock held for the whole run. Default: a file lock next to
   * the job's state file (`<state dir>/<tenant>/<job>.lock`, see lib/lock.ts).
   * `false` runs without one (the commit's compare-and-set still keeps two
   * runs from both landing).
   */
  lock?: JobLock | false;
}

export interface ObjectSummary {
  name: string;
  rows_read: number;
  rows_written: number;
  rows_rejected: number;
  /** URIs of the data files this run added. */
  files: string[];
  cursor?: CursorState;
  /** Snapshot id of the commit (catalog targets). */
  snapshot_id?: string;
  reject_file?: string;
  /** API calls (HTTP attempts, retries included) made for this object; absent when it made none. */
  api_calls?: number;
  error?: { code: string; message: string };
}

export interface RunSummary {
  /** The run's id; empty when the job never started because it did not load (see `runJobFile`). */
  run_id: string;
  exit_code: Exit;
  job: string;
  tenant: string;
  started_at: string;
  seconds: number;
  objects: ObjectSummary[];
  error?: { code: string; message: string; problems?: unknown[] };
}
