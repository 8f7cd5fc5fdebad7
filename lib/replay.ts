/**
 * `dativo rejects replay`: the reject files are the dead-letter queue. A
 * replay re-validates the records of an object's reject files
 * (`<reject_dir>/<object>/<run_id>.ndjson`) against the job's CURRENT asset,
 * lands those that now pass in the job's table, and keeps those that still
 * fail in a new reject file of the replay run. The job's cursor is not
 * touched.
 *
 * Exactly once, with a catalog. The commit that lands a replay records the
 * reject files it replayed in its snapshot summary (`dativo.replayed`:
 * `[{file, lines}]`) and refuses, inside the same atomic swap as the
 * cursor's compare-and-set, if any of them is recorded already. Only after
 * the commit are the files moved: each replayed file is renamed
 * `<run_id>.ndjson.replayed`, and the still-failing rows, written meanwhile
 * to `<reject_dir>/.replay/<object>/<replay run>.ndjson`, move to
 * `<reject_dir>/<object>/<replay run>.ndjson`. A replay that crashes before
 * its commit leaves nothing in the table (its pending file is removed by
 * the next replay); one that crashes after it is finished by the next replay,
 * which finds the files in the table's record and only moves them. A second
 * replay of the same files finds nothing to do (or loses the commit).
 *
 * Without a catalog (plain Parquet) there is no atomic record: the files are
 * moved right after the data files are durable, and a crash in between can
 * land the replayed rows twice (docs/cli.md).
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DativoError, ExitCode, toDativoError, type ExitCode as Exit } from './errors.js';
import { parseJsonExact } from './json.js';
import { openJobLock, type HeldLock, type JobLock } from './lock.js';
import { silentLogger, type Logger } from './log.js';
import type { JobPlan } from './plan.js';
import { withLocation } from './records/location.js';
import { newRunId } from './run.js';
import { dataFileLayout, layoutSink, tableFields } from './run/layout.js';
import { tableHandle } from './run/table.js';
import { createRejectWriter, rejectFolderName, type RejectWriter } from './stages/rejects.js';
import { validate } from './stages/validate.js';
import { openStorage } from './storage/index.js';
import type { Storage } from './storage/types.js';
import type { ReplayMark, TableHandle } from './table-target.js';
import type { DataFile } from './types.js';

/** Options of {@link replayRejects}. */
export interface ReplayOptions {
  /** Replay only the reject file of this run (default: every reject file not yet replayed). */
  run?: string;
  /** Replay only this object (default: every object of the job). */
  object?: string;
  log?: Logger;
  /** Id of the replay run (default: a new run id). */
  runId?: string;
  /** The job's lock, held for the whole replay (default: the same file lock as `dativo run`); `false`: none. */
  lock?: JobLock | false;
  signal?: AbortSignal;
  now?: () => Date;
  /** Called after the data files are durable and before the commit (crash tests). */
  hooks?: { beforeCommit?: (object: string) => Promise<void>; beforeMove?: (object: string) => Promise<void> };
}

/** What a replay did for one object. */
export interface ReplayObjectSummary {
  name: string;
  /** Reject files replayed (paths as they were before the move). */
  reject_files: string[];
  /** Rows read from them. */
  rows_read: number;
  /** Rows that now pass and landed. */
  rows_written: number;
  /** Rows that still fail: in `reject_file`. */
  rows_rejected: number;
  /** Reject file of the replay run holding the rows that still fail. */
  reject_file?: string;
  files: string[];
  snapshot_id?: string;
  /** Reject files an earlier, interrupted replay had landed: only moved now. */
  finished?: string[];
  error?: { code: string; message: string };
}

/** What {@link replayRejects} returns. */
export interface ReplaySummary {
  run_id: string;
  exit_code: Exit;
  job: string;
  tenant: string;
  started_at: string;
  seconds: number;
  objects: ReplayObjectSummary[];
  error?: { code: string; message: string };
}

/** Reject files landed by one commit at most (keeps `dativo.replayed` small). */
const FILES_PER_COMMIT = 50;

/** Folder of a replay's pending reject files, beside the objects' folders (an object folder never starts with a dot). */
const PENDING_DIR = '.replay';

/**
 * Replay the reject files of a job (see module doc). Never throws for a
 * failed replay: the summary carries the exit code (0 every replayed row
 * landed, 1 some still fail, 2/3 an error) and the error.
 */
export async function replayRejects(plan: JobPlan, opts: ReplayOptions = {}): Promise<ReplaySummary> {
  const now = opts.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const runId = opts.runId ?? newRunId(started);
  const log = (opts.log ?? silentLogger()).child({ tenant: plan.tenantId, job: plan.name, run_id: runId, replay: true });
  const summary: ReplaySummary = { run_id: runId, exit_code: ExitCode.OK, job: plan.name, tenant: plan.tenantId, started_at: started.toISOString(), seconds: 0, objects: [] };
  let table: TableHandle | undefined;
  let held: HeldLock | undefined;
  try {
    const objects = plan.source.objects.filter((o) => opts.object === undefined || o.name === opts.object);
    if (objects.length === 0) {
      throw new DativoError('CONFIG_INVALID', `job ${plan.name} has no object "${opts.object}" (objects: ${plan.source.objects.map((o) => o.name).join(', ')})`, {
        context: { file: plan.file, object: opts.object },
      });
    }
    const lock = opts.lock === false ? undefined : (opts.lock ?? openJobLock(plan, log));
    held = await lock?.acquire({ runId });
    const storage = await openStorage(plan.target.warehouse, plan.target.s3);
    table = await tableHandle(plan, storage, tableFields(plan.asset.fields), log);
    let firstError: DativoError | undefined;
    let matched = 0;
    for (const object of objects) {
      const obj: ReplayObjectSummary = { name: object.name, reject_files: [], rows_read: 0, rows_written: 0, rows_rejected: 0, files: [] };
      try {
        matched += await replayObject({ plan, storage, table, object: object.name, obj, runId, started, log: log.child({ object: object.name }), opts });
      } catch (err) {
        const e = toDativoError(err, { object: object.name });
        firstError ??= e;
        obj.error = { code: e.code, message: e.message };
        log.error({ event_type: 'replay_failed', object: object.name, err: e, code: e.code }, `replay of ${object.name} failed: ${e.message}`);
      }
      if (obj.reject_files.length > 0 || obj.finished || obj.error) summary.objects.push(obj);
    }
    if (opts.run !== undefined && matched === 0 && !firstError) {
      throw new DativoError('SOURCE_NOT_FOUND', `no reject file of run ${opts.run} to replay under ${plan.rejectDir}`, { context: { file: plan.rejectDir } });
    }
    if (firstError) {
      summary.error = { code: firstError.code, message: firstError.message };
      summary.exit_code = firstError.exitCode;
    } else if (summary.objects.some((o) => o.rows_rejected > 0)) {
      summary.exit_code = ExitCode.PARTIAL;
    }
    log.info(
      {
        event_type: 'replay_finished',
        exit_code: summary.exit_code,
        rows_written: summary.objects.reduce((n, o) => n + o.rows_written, 0),
        rows_rejected: summary.objects.reduce((n, o) => n + o.rows_rejected, 0),
      },
      'replay finished',
    );
  } catch (err) {
    const e = toDativoError(err);
    summary.exit_code = e.exitCode;
    summary.error = { code: e.code, message: e.message };
    log.error({ event_type: 'job_error', err: e, code: e.code }, e.message);
  } finally {
    await table?.close().catch(() => undefined);
    await held?.release().catch(() => undefined);
  }
  summary.seconds = Math.round(performance.now() - t0) / 1000;
  return summary;
}

interface ObjectReplay {
  plan: JobPlan;
  storage: Storage;
  table: TableHandle;
  object: string;
  obj: ReplayObjectSummary;
  runId: string;
  started: Date;
  log: Logger;
  opts: ReplayOptions;
}

/** `.ndjson` file names in `dir` (none when it does not exist), oldest run first. */
async function ndjsonFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.endsWith('.ndjson')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(err, dir);
  }
}

function ioError(err: unknown, file: string): DativoError {
  const code = (err as NodeJS.ErrnoException).code;
  const writable = code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
  return new DativoError(writable ? 'STORAGE_NOT_WRITABLE' : 'STORAGE_IO', `reject file ${file}: ${(err as Error).message}`, { cause: err, context: { file } });
}

async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // moved by an earlier, interrupted replay
    throw ioError(err, from);
  }
}

/** Replay one object's reject files; returns how many files matched `opts.run`. */
async function replayObject(r: ObjectReplay): Promise<number> {
  const { plan, object, obj, log } = r;
  const folder = rejectFolderName(object);
  const dir = join(plan.rejectDir, folder);
  const pendingDir = join(plan.rejectDir, PENDING_DIR, folder);
  const fileId = (name: string): string => `${encodeURIComponent(plan.tenantId)}/${encodeURIComponent(plan.name)}/${folder}/${name}`;

  // 1. Finish what an interrupted replay left: its commit landed (its run id
  //    is in the table's record) → move its files; it did not → its pending
  //    file is garbage.
  const marks = await r.table.replayMarks();
  const landedRuns = new Set(marks.values());
  for (const name of await ndjsonFiles(pendingDir)) {
    const pending = join(pendingDir, name);
    if (landedRuns.has(basename(name, '.ndjson'))) {
      await mkdir(dir, { recursive: true });
      await move(pending, join(dir, name));
    } else {
      await rm(pending, { force: true });
    }
  }
  const candidates: string[] = [];
  for (const name of await ndjsonFiles(dir)) {
    if (r.opts.run !== undefined && name !== `${r.opts.run}.ndjson`) continue;
    if (marks.has(fileId(name))) {
      await move(join(dir, name), join(dir, `${name}.replayed`));
      (obj.finished ??= []).push(join(dir, name));
      log.info({ event_type: 'replay_finished_moving', file: join(dir, name), replay_run_id: marks.get(fileId(name)) }, `${name} was already replayed; moved it`);
      continue;
    }
    candidates.push(name);
  }
  const matched = candidates.length + (obj.finished?.length ?? 0);

  // 2. Replay the rest, a bounded number of files per commit.
  for (let i = 0; i < candidates.length; i += FILES_PER_COMMIT) {
    await replayBatch(r, dir, pendingDir, candidates.slice(i, i + FILES_PER_COMMIT), fileId, i / FILES_PER_COMMIT);
  }
  return matched;
}

/** One reject line as the writer wrote it (lib/stages/rejects.ts). */
interface RejectLine {
  code?: string;
  reason?: string;
  fields?: string[];
  location?: Record<string, unknown> | null;
  record?: unknown;
}

/** The records of `files`, each with its location (original, plus where it was rejected); raw lines that never parsed go straight to `still`. */
async function* rejectedRecords(dir: string, files: string[], still: RejectWriter, counts: { read: number; lines: Map<string, number> }): AsyncGenerator<object> {
  for (const name of files) {
    const path = join(dir, name);
    const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    try {
      for await (const text of lines) {
        if (text.trim() === '') continue;
        n++;
        counts.read++;
        let line: RejectLine;
        try {
          line = parseJsonExact(text) as RejectLine;
        } catch (err) {
          throw new DativoError('STATE_CORRUPT', `reject file ${path} line ${n} is not JSON: ${(err as Error).message}`, { cause: err, context: { file: path, line: n } });
        }
        const location = { ...(line.location ?? {}), rejected_in: `${name}:${n}` };
        const rec = line.record;
        if (rec !== null && typeof rec === 'object' && !Array.isArray(rec)) {
          yield withLocation({ ...(rec as Record<string, unknown>) }, location);
        } else {
          // A line the source could not parse (raw text): nothing to re-validate.
          still.reject({ code: line.code ?? 'type', reason: line.reason ?? 'unparsed record', fields: line.fields ?? [], record: rec, location });
        }
      }
    } catch (err) {
      throw err instanceof DativoError ? err : ioError(err, path);
    } finally {
      lines.close();
    }
    counts.lines.set(name, n);
  }
}

async function replayBatch(r: ObjectReplay, dir: string, pendingDir: string, names: string[], fileId: (name: string) => string, batch: number): Promise<void> {
  const { plan, object, obj, log, opts } = r;
  // Batches after the first get their own run id suffix: one reject file per commit.
  const replayRun = batch === 0 ? r.runId : `${r.runId}.${batch}`;
  const still = createRejectWriter({ dir: join(plan.rejectDir, PENDING_DIR), object, runId: replayRun });
  const counts = { read: 0, lines: new Map<string, number>() };
  const validator = validate(plan.asset, { mode: 'warn', rejects: still, log, object });
  const layout = await dataFileLayout(plan, r.table.relativeLocation, r.table.partitionLayout, object, replayRun, r.started);
  const sink = layoutSink(plan, r.storage, r.table.fields, layout, opts.signal ? { signal: opts.signal } : {});
  const removeData = (files: readonly DataFile[]): Promise<unknown> =>
    Promise.all(files.map((f) => r.storage.delete(`${r.table.relativeLocation}/${f.relativePath}`).catch(() => undefined)));
  let files: DataFile[];
  try {
    await pipeline([Readable.from(rejectedRecords(dir, names, still, counts)), validator as Transform, sink], opts.signal ? { signal: opts.signal } : {});
    files = sink.files;
  } catch (err) {
    await removeData(sink.files);
    await still.close().catch(() => undefined);
    if (still.path) await rm(still.path, { force: true });
    throw err;
  }
  await still.close();
  const rowsWritten = files.reduce((n, f) => n + f.recordCount, 0);
  obj.rows_read += counts.read;

  if (rowsWritten === 0) {
    // Nothing passes yet: the files stay as they are, still the dead-letter queue.
    if (still.path) await rm(still.path, { force: true });
    obj.rows_rejected += counts.read;
    obj.reject_files.push(...names.map((n) => join(dir, n)));
    log.info({ event_type: 'replay_nothing_passes', files: names.length, rows: counts.read }, `none of the ${counts.read} rejected row(s) passes the current asset yet`);
    return;
  }

  const replays: ReplayMark[] = names.map((n) => ({ file: fileId(n), lines: `1-${counts.lines.get(n) ?? 0}` }));
  await opts.hooks?.beforeCommit?.(object);
  try {
    const res = await r.table.commit({ object, files, mode: 'append', runId: replayRun, replays });
    if (res.snapshotId) obj.snapshot_id = res.snapshotId;
  } catch (err) {
    if (err instanceof DativoError && err.context.committed === false) {
      await removeData(files);
      if (still.path) await rm(still.path, { force: true });
    }
    throw err;
  }
  await opts.hooks?.beforeMove?.(object);

  // 3. Committed: move the files (an interruption here is finished by the next replay).
  for (const n of names) await move(join(dir, n), join(dir, `${n}.replayed`));
  if (still.path) {
    await mkdir(dir, { recursive: true });
    const final = join(dir, basename(still.path));
    await move(still.path, final);
    obj.reject_file = final;
  }
  obj.reject_files.push(...names.map((n) => join(dir, n)));
  obj.rows_written += rowsWritten;
  obj.rows_rejected += still.count;
  obj.files.push(...files.map((f) => f.uri));
  log.info(
    { event_type: 'replay_committed', files: names.length, rows_written: rowsWritten, rows_rejected: still.count, snapshot_id: obj.snapshot_id },
    `${object}: ${rowsWritten} replayed row(s) landed, ${still.count} still rejected`,
  );
}
