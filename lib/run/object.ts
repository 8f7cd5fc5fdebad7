/**
 * One object of a run, start to end: reconcile its state with the table,
 * assemble the stages (source → strict gate → validate → track → Parquet
 * sink), run them, commit the files with the object's new state, then save
 * the state. lib/run.ts calls this once per object (several at once with
 * `source.parallel_objects`) and turns the outcomes into the job's exit code.
 */
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import type { JobState, StateStore } from '../../state/index.js';
import type { Connector, CursorWindow, ReadContext } from '../connector.js';
import { DativoError, isDativoError } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import { createRejectWriter } from '../stages/rejects.js';
import { defaultCoerceWorkers } from '../stages/coerce-pool.js';
import { validate } from '../stages/validate.js';
import type { Storage } from '../storage/types.js';
import type { TableHandle } from '../table-target.js';
import type { DataFile, ObjectState, Row } from '../types.js';
import { cursorTracker, explainWindow, windowReported } from './cursor.js';
import { dataFileLayout, layoutSink } from './layout.js';
import type { RunNetwork } from './network.js';
import { strictGate } from './strict-gate.js';
import type { ObjectSummary, RunOptions } from './types.js';

export interface ObjectRun {
  plan: JobPlan;
  connector: Connector;
  storage: Storage;
  stateStore: StateStore;
  state: JobState;
  table: TableHandle;
  object: JobPlan['source']['objects'][number];
  obj: ObjectSummary;
  runId: string;
  started: Date;
  log: Logger;
  opts: RunOptions;
  network: RunNetwork;
  /** The run's commit step, shared by its objects. */
  checkpoints: RunCheckpoints;
}

/**
 * The commit-and-save step of a run's objects, one object at a time: objects
 * read concurrently (`source.parallel_objects`) still commit one after the
 * other, so two commits of one run never race for the table's head (each
 * would cost the other a conflict retry, and enough of them exhaust the
 * commit budget) and never write the state file over each other. It also
 * makes a full refresh of several objects replace the table's rows once:
 * the run's first commit overwrites, the others add to it.
 */
export class RunCheckpoints {
  /** A commit of this run replaced the table's rows (full refresh). */
  replaced = false;
  private tail: Promise<unknown> = Promise.resolve();

  /** Run `step` after every step queued before it (whatever their outcome). */
  serial<T>(step: () => Promise<T>): Promise<T> {
    const run = this.tail.then(step);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/**
 * The state to start from: the table is the source of truth for what was
 * committed, so if a run committed and then died before saving state, take
 * the state from the table (and say so, except for a full refresh, which
 * never saves state).
 */
async function startState(r: ObjectRun, fullRefresh: boolean): Promise<{ saved: ObjectState | undefined; committedRunId: string | null }> {
  const saved: ObjectState | undefined = r.state.objects[r.object.name];
  const committed = await r.table.committedState(r.object.name);
  // What the commit's compare-and-set expects the table still to hold.
  const committedRunId = committed?.runId ?? null;
  if (committed && committed.runId !== saved?.runId) {
    // A full refresh saves no state, so the store is always "behind" the table
    // there: that is how it works, not a crash to recover from.
    if (!fullRefresh) r.log.warn({ event_type: 'state_reconciled', table_run_id: committed.runId, state_run_id: saved?.runId }, 'state store is behind the table: using the state committed with the data');
    return { saved: committed, committedRunId };
  }
  return { saved, committedRunId };
}

/** Remove data files that belong to no table or state (a failed or losing run). */
async function removeFiles(r: ObjectRun, files: readonly DataFile[]): Promise<void> {
  await Promise.all(files.map((f) => r.storage.delete(`${r.table.relativeLocation}/${f.relativePath}`).catch(() => undefined)));
}

/**
 * Whether a text source may hand its records over as bytes and offsets (the
 * columnar path: lib/records/columnar.ts, lib/stages/columnar.ts): only
 * when nothing between it and the Parquet sink needs records. A cursor
 * tracker does (it reads canonical rows and decides which rejects count,
 * `admitReject`). Coercion threads asked for (`threads` > 0: the job's
 * `target.workers` or `DATIVO_COERCE_WORKERS`) keep the packed path. The
 * sink is always Parquet here. `DATIVO_COLUMNAR=0` turns it off (the record
 * path, to compare). Sources that do not split
 * UTF-8 text ignore the request and emit records.
 */
export function columnarPlanned(o: { tracker: boolean; threads?: number }): boolean {
  return !o.tracker && (o.threads ?? 0) === 0 && process.env['DATIVO_COLUMNAR'] !== '0';
}

/** Run one object; fills `r.obj`. Throws on failure (the caller records it). */
export async function runObject(r: ObjectRun): Promise<void> {
  const { plan, object, obj, log, opts } = r;
  const fullRefresh = plan.syncMode === 'full_refresh';
  const { saved, committedRunId } = await startState(r, fullRefresh);

  const rejects = createRejectWriter({ dir: plan.rejectDir, object: object.name, runId: r.runId });
  const strict = plan.validationMode === 'strict' ? strictGate(rejects, object.name) : undefined;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const savedCursor = fullRefresh ? undefined : saved?.cursor;
  const tracker = cursorTracker(plan, r.connector, object, savedCursor, r.started, log);
  const layout = await dataFileLayout(plan, r.table.relativeLocation, r.table.partitionLayout, object.name, r.runId, r.started);
  // Text may go from the bytes straight into the table's Arrow columns, or
  // text records be coerced in worker threads; neither under a cursor
  // tracker, which reads canonical rows.
  // Coercion threads asked for (the job's target.workers or DATIVO_COERCE_WORKERS) keep the packed path.
  const asked = plan.target.workers ?? (process.env['DATIVO_COERCE_WORKERS'] !== undefined ? defaultCoerceWorkers() : 0);
  const columnar = columnarPlanned({ tracker: tracker !== undefined, threads: asked });
  const threads = tracker || columnar ? 0 : (plan.target.workers ?? defaultCoerceWorkers());
  const batchRows = opts.batchRows ?? plan.target.batchRows ?? 10_000;
  const ctx: ReadContext = {
    plan,
    object,
    state: fullRefresh ? undefined : saved,
    fullRefresh,
    runId: r.runId,
    runStartedAt: r.started,
    signal: controller.signal,
    log,
    rejects: strict?.sourceRejects ?? rejects,
    limiter: r.network.limiter,
    http: r.network.http(object.name, controller.signal, log),
    ...(tracker ? { reportWindow: (w: CursorWindow) => windowReported(tracker.tracker, w, savedCursor, log) } : {}),
    ...(threads > 0 ? { packedRecords: { batchRows } } : {}),
    ...(columnar ? { columnarText: true } : {}),
  };

  const source = r.connector.read(ctx);
  const validator = validate(plan.asset, {
    mode: plan.validationMode,
    rejects,
    log,
    object: object.name,
    // Rejected rows move the cursor too: what an earlier run rejected is not rejected again.
    ...(tracker ? { admitReject: (raw: Row) => tracker.tracker.acceptRejected(raw) } : {}),
    ...(threads > 0 ? { offload: { threads, fields: r.table.fields, constants: layout.constants, batchRows } } : {}),
    // Batches no larger than a row group: the sink rolls files between batches, as it does for rows.
    ...(columnar ? { columnar: { fields: r.table.fields, constants: layout.constants, batchRows: Math.min(batchRows, plan.target.rowGroupRows ?? batchRows) } } : {}),
    ...(strict ? { gate: strict.gate } : {}),
  });
  const stages: Transform[] = [validator];
  if (tracker) stages.push(tracker);

  const sink = layoutSink(plan, r.storage, r.table.fields, layout, {
    ...(opts.batchRows !== undefined ? { batchRows: opts.batchRows } : {}),
    ...(opts.batchBytes !== undefined ? { batchBytes: opts.batchBytes } : {}),
    // Whole Arrow batches arrive from the coercion threads: two may wait, not 16.
    ...(threads > 0 || columnar ? { highWaterMark: 2 } : {}),
    signal: controller.signal,
  });

  const t0 = performance.now();
  const progress = opts.onProgress
    ? setInterval(() => {
        opts.onProgress?.({
          object: object.name,
          rowsRead: validator.rowsIn,
          rowsWritten: validator.rowsOut - (tracker?.dropped ?? 0),
          rowsRejected: rejects.count,
          bytesWritten: sink.bytesWritten,
          elapsedMs: performance.now() - t0,
        });
      }, 500)
    : undefined;
  let files: DataFile[] = [];
  try {
    // text_path: how a text source may hand over its records (columnar batches, packed for threads, or records).
    log.info(
      { event_type: 'object_started', full_refresh: fullRefresh, cursor: ctx.state?.cursor?.value, text_path: columnar ? 'columnar' : threads > 0 ? 'packed' : 'records' },
      `reading ${object.name}`,
    );
    await pipeline([source, ...stages, sink], { signal: controller.signal });
    const strictFailure = strict?.failure();
    if (strictFailure) throw strictFailure;
    files = sink.files;
  } catch (err) {
    // Finished files are not part of any table or state: remove them so a
    // plain Parquet dataset never shows rows of a failed run.
    await removeFiles(r, sink.files);
    throw err;
  } finally {
    if (progress) clearInterval(progress);
    opts.signal?.removeEventListener('abort', onAbort);
    await rejects.close();
    // Records the source refused never reach validate but were read.
    obj.rows_read = validator.rowsIn + (rejects.count - validator.rejected);
    obj.rows_rejected = rejects.count;
    if (rejects.path) obj.reject_file = rejects.path;
  }

  const rowsWritten = files.reduce((n, f) => n + f.recordCount, 0);
  const checkpoint = source.checkpoint?.() ?? {};
  const stopped = source.incomplete?.();
  let cursor = tracker?.result();
  if (stopped && cursor) {
    // Only the contiguous prefix of the window is complete: the cursor goes that far, no further.
    cursor = stopped.cursor !== undefined ? { field: cursor.field, value: stopped.cursor, written: [], upper: 'exclusive' } : savedCursor;
  }
  if (tracker && !stopped) explainWindow(tracker.tracker, savedCursor, cursor, obj.rows_read, plan, log);
  await r.checkpoints.serial(() => commitAndSave(r, { files, checkpoint, cursor, saved, committedRunId, fullRefresh, replaces: source.replacesTable?.() === true }));
  if (stopped) {
    log.warn(
      { event_type: 'object_incomplete', rows_written: rowsWritten, files: files.length, cursor: cursor?.value },
      `${object.name}: stopped early; the ${rowsWritten} row(s) read before the failure are committed, the cursor stays at ${cursor?.value ?? 'its previous value'} and the next run reads the rest`,
    );
    throw stopped.error;
  }
  log.info(
    { event_type: 'object_finished', rows_read: obj.rows_read, rows_written: rowsWritten, rows_rejected: obj.rows_rejected, files: files.length, cursor: cursor?.value },
    `${object.name}: ${rowsWritten} rows written in ${files.length} file(s)`,
  );
}

/** What an object's read leaves for its commit. */
interface ReadOutcome {
  files: DataFile[];
  checkpoint: Partial<ObjectState>;
  cursor: ObjectState['cursor'];
  saved: ObjectState | undefined;
  committedRunId: string | null;
  fullRefresh: boolean;
  /** The source read the object's whole content again (e.g. Stripe past its event retention). */
  replaces: boolean;
}

/** Commit the object's files with its new state, then save the state (one object of the run at a time: {@link RunCheckpoints}). */
async function commitAndSave(r: ObjectRun, o: ReadOutcome): Promise<void> {
  const { plan, object, obj, opts } = r;
  // A source that read the object's whole content again replaces the table's
  // rows; in a full refresh only the run's first commit does, so the objects
  // of one run all stay.
  const overwrite = o.fullRefresh ? !r.checkpoints.replaced : o.replaces;
  // `runId` names the last run whose data was committed: a run that commits
  // nothing keeps the previous one, so reconciliation (above) can tell a
  // state store that is behind the table from one that is merely newer.
  const commits = o.files.length > 0 || overwrite;
  const next: ObjectState = {
    ...(o.saved ?? {}),
    ...o.checkpoint,
    ...(o.cursor ? { cursor: o.cursor } : {}),
    ...(commits ? { runId: r.runId } : {}),
    updatedAt: new Date().toISOString(),
  };

  if (commits) {
    await opts.hooks?.beforeCommit?.(object.name);
    let committedInfo: { snapshotId?: string };
    try {
      committedInfo = await r.table.commit({
        object: object.name,
        files: o.files,
        mode: overwrite ? 'overwrite' : 'append',
        runId: r.runId,
        state: next,
        // Compare-and-set: lands only if the table still holds the state this run started from.
        expectedRunId: o.committedRunId,
      });
    } catch (err) {
      // Definitely not committed (lost the compare-and-set, or conflicts
      // exhausted): our data files belong to nothing, remove them. After an
      // unknown outcome they stay: the commit may yet be live.
      if (isDativoError(err) && err.context.committed === false) {
        await removeFiles(r, o.files);
        r.log.warn({ event_type: 'commit_abandoned', code: err.code, reason: err.context['reason'], files: o.files.length }, `not committed: removed this run's ${o.files.length} data file(s)`);
      }
      throw err;
    }
    if (o.fullRefresh && overwrite) r.checkpoints.replaced = true;
    if (committedInfo.snapshotId) obj.snapshot_id = committedInfo.snapshotId;
  }
  // Landed: the summary says so even if the state save below fails.
  obj.rows_written = o.files.reduce((n, f) => n + f.recordCount, 0);
  obj.files = o.files.map((f) => f.uri);
  if (o.cursor) obj.cursor = o.cursor;

  if (plan.source.incremental && !o.fullRefresh) {
    await opts.hooks?.beforeStateSave?.(object.name);
    r.state.objects[object.name] = next;
    await r.stateStore.save(r.state);
  }
}
