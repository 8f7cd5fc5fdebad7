/**
 * runJob: the one composition of the stages that the CLI, library users and
 * the benchmarks all call.
 *
 *   source.read → validate → track (cursor) → parquetSink (rows go straight
 *   into Arrow column buffers, batched there)
 *   → commit (Iceberg snapshot carrying the cursor) → state.save
 *
 * The commit is the checkpoint: the object's new state goes into the
 * snapshot summary of the same commit as its data (`dativo.cursor.<object>`,
 * `dativo.run-id`), and the state store is written only afterwards. At start
 * the job reconciles its state with the table's newest dativo snapshot, so a
 * crash between commit and state save neither loses nor duplicates rows.
 * Without a catalog the state is saved once every file of the object is durable.
 */
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { getConnector } from '../connectors/index.js';
import { openStateStore, type JobState, type StateStore } from '../state/index.js';
import type { Connector, ReadContext, RejectSink } from './connector.js';
import { DativoError, ExitCode, toDativoError, type ExitCode as Exit } from './errors.js';
import { silentLogger, type Logger } from './log.js';
import type { JobPlan } from './plan.js';
import { parquetSink } from './stages/parquet-sink.js';
import { createRejectWriter } from './stages/rejects.js';
import { track } from './stages/track.js';
import { validate, whereText } from './stages/validate.js';
import { locationOf } from './records/location.js';
import { openStorage } from './storage/index.js';
import type { Storage } from './storage/types.js';
import {
  INGESTED_AT_COLUMN,
  RUN_ID_COLUMN,
  type AssetField,
  type CursorState,
  type DataFile,
  type ObjectState,
} from './types.js';
import { tableHandle, type TableHandle } from './table-target.js';

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
  error?: { code: string; message: string };
}

export interface RunSummary {
  run_id: string;
  exit_code: Exit;
  job: string;
  tenant: string;
  started_at: string;
  seconds: number;
  objects: ObjectSummary[];
  error?: { code: string; message: string; problems?: unknown[] };
}

/** A new run id: sortable by time, unique across processes. */
export function newRunId(now: Date = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${randomBytes(3).toString('hex')}`;
}

/** System columns appended to the asset's, with field ids after the asset's. */
export function tableFields(assetFields: readonly AssetField[]): AssetField[] {
  const maxId = assetFields.reduce((m, f) => Math.max(m, f.fieldId), 0);
  return [
    ...assetFields,
    { name: INGESTED_AT_COLUMN, type: { kind: 'timestamp' }, typeName: 'timestamp', required: true, fieldId: maxId + 1 },
    { name: RUN_ID_COLUMN, type: { kind: 'string' }, typeName: 'string', required: true, fieldId: maxId + 2 },
  ];
}

function utcDay(d: Date): { days: number; iso: string } {
  const iso = d.toISOString().slice(0, 10);
  return { days: Math.floor(Date.parse(`${iso}T00:00:00Z`) / 86_400_000), iso };
}

/**
 * Run one job. Never throws for a job failure: the returned summary carries
 * the exit code (0 ok, 1 partial, 2 retryable, 3 permanent) and the error.
 */
export async function runJob(plan: JobPlan, opts: RunOptions = {}): Promise<RunSummary> {
  const now = opts.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const runId = opts.runId ?? newRunId(started);
  const log = (opts.log ?? silentLogger()).child({ tenant: plan.tenantId, job: plan.name, run_id: runId });
  const summary: RunSummary = {
    run_id: runId,
    exit_code: ExitCode.OK,
    job: plan.name,
    tenant: plan.tenantId,
    started_at: started.toISOString(),
    seconds: 0,
    objects: [],
  };
  const finish = (): RunSummary => {
    summary.seconds = Math.round(performance.now() - t0) / 1000;
    return summary;
  };

  let table: TableHandle | undefined;
  try {
    const connector = opts.connector ?? (await getConnector(plan.source.type, { cwd: plan.file ? undefined : process.cwd() }));
    if (plan.mode === 'cloud' && !connector.descriptor.allowedInCloud) {
      throw new DativoError(
        'CONNECTOR_NOT_ALLOWED',
        `connector "${connector.descriptor.name}" reads self-hosted systems and is not allowed in --mode cloud`,
        { context: { connector: connector.descriptor.name } },
      );
    }
    const storage = await openStorage(plan.target.warehouse, plan.target.s3);
    await storage.checkWritable();
    const stateStore = openStateStore(plan.state, { tenant: plan.tenantId, job: plan.name });
    const state = await stateStore.load();

    table = await tableHandle(plan, storage, tableFields(plan.asset.fields), log);
    log.info({ event_type: 'job_started', objects: plan.source.objects.map((o) => o.name), sync_mode: plan.syncMode }, 'job started');

    let failures = 0;
    let firstError: DativoError | undefined;
    for (const object of plan.source.objects) {
      const objLog = log.child({ object: object.name });
      const obj: ObjectSummary = { name: object.name, rows_read: 0, rows_written: 0, rows_rejected: 0, files: [] };
      summary.objects.push(obj);
      try {
        await runObject({ plan, connector, storage, stateStore, state, table, object, obj, runId, started, log: objLog, opts });
      } catch (err) {
        const e = toDativoError(err, { object: object.name });
        failures++;
        firstError ??= e;
        obj.error = { code: e.code, message: e.message };
        objLog.error({ event_type: 'object_failed', err: e, code: e.code }, `object ${object.name} failed: ${e.message}`);
        // An abort ends the whole run.
        if (opts.signal?.aborted) break;
      }
    }

    const rejected = summary.objects.reduce((n, o) => n + o.rows_rejected, 0);
    if (failures > 0 && firstError) {
      summary.error = { code: firstError.code, message: firstError.message };
      summary.exit_code = failures < plan.source.objects.length ? ExitCode.PARTIAL : firstError.exitCode;
    } else if (rejected > 0) {
      summary.exit_code = ExitCode.PARTIAL;
    }
    log.info(
      { event_type: 'job_finished', exit_code: summary.exit_code, rows_written: summary.objects.reduce((n, o) => n + o.rows_written, 0), rows_rejected: rejected },
      'job finished',
    );
  } catch (err) {
    const e = toDativoError(err);
    summary.exit_code = e.exitCode;
    summary.error = { code: e.code, message: e.message, ...(e.problems.length > 0 ? { problems: e.problems } : {}) };
    log.error({ event_type: 'job_error', err: e, code: e.code }, e.message);
  } finally {
    await table?.close().catch(() => undefined);
  }
  return finish();
}

/** Object-mode pass-through that fails on the first record (or at the end) for which `check` returns an error. */
class PassThroughGate extends Transform {
  constructor(
    private readonly check: (rec: unknown) => Error | undefined,
    private readonly atEnd: () => Error | undefined,
  ) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  override _transform(rec: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(this.check(rec) ?? null, rec);
  }

  override _flush(cb: TransformCallback): void {
    cb(this.atEnd() ?? null);
  }
}

interface ObjectRun {
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
}

async function runObject(r: ObjectRun): Promise<void> {
  const { plan, object, obj, log, opts } = r;
  const fullRefresh = plan.syncMode === 'full_refresh';
  const incremental = plan.source.incremental;

  // The table is the source of truth for what was committed: if a run
  // committed and then died before saving state, take the state from the table.
  let saved: ObjectState | undefined = r.state.objects[object.name];
  const committed = await r.table.committedState(object.name);
  if (committed && committed.runId !== saved?.runId) {
    log.warn({ event_type: 'state_reconciled', table_run_id: committed.runId, state_run_id: saved?.runId }, 'state store is behind the table: using the state committed with the data');
    saved = committed;
  }

  const rejects = createRejectWriter({ dir: plan.rejectDir, object: object.name, runId: r.runId });
  // In strict mode a record the source itself could not parse (wrong column
  // count, bad quoting, invalid UTF-8) fails the run like one validate refuses.
  // The source parses ahead of validate, so the failure waits in `strictGate`
  // until the records before the bad line went through validate: the error
  // then names the first bad line of the file, whichever stage found it.
  let strictFailure: DativoError | undefined;
  let strictAt: Record<string, unknown> | undefined;
  const sourceRejects: RejectSink = plan.validationMode === 'strict'
    ? {
        reject(rej) {
          rejects.reject(rej);
          if (strictFailure) return;
          strictAt = rej.location;
          strictFailure = new DativoError('VALIDATION_FAILED', `invalid record in strict mode${whereText(rej.location)}: ${rej.reason}`, {
            context: { ...(rej.location ?? {}), object: object.name, rejectCode: rej.code, ...(rej.location ? { location: rej.location } : {}) },
          });
        },
        get count() {
          return rejects.count;
        },
      }
    : rejects;
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const ctx: ReadContext = {
    plan,
    object,
    state: fullRefresh ? undefined : saved,
    fullRefresh,
    runId: r.runId,
    runStartedAt: r.started,
    signal: controller.signal,
    log,
    rejects: sourceRejects,
  };

  const fields = r.table.fields;
  const source = r.connector.read(ctx);
  const validator = validate(plan.asset, { mode: plan.validationMode, rejects, log, object: object.name });

  const stages: Transform[] = [validator];
  if (plan.validationMode === 'strict') {
    // Records come in file order: one past the refused line (or the end) means everything before it was seen.
    const past = (rec: unknown): boolean => {
      const at = locationOf(rec);
      const line = Number(strictAt?.['line']);
      return at === undefined || strictAt === undefined || !Number.isFinite(line) || at['file'] !== strictAt['file'] || Number(at['line']) > line;
    };
    stages.unshift(
      new PassThroughGate(
        (rec) => (strictFailure !== undefined && past(rec) ? strictFailure : undefined),
        () => strictFailure,
      ),
    );
  }
  const cursorField = incremental?.cursorField;
  let tracker: ReturnType<typeof track> | undefined;
  if (incremental && cursorField && incremental.strategy !== 'file_modified') {
    const field = plan.asset.fields.find((f) => f.name === cursorField);
    if (!field) {
      throw new DativoError('CONFIG_INVALID', `cursor field "${cursorField}" is not a column of asset ${plan.asset.name}`, {
        context: { file: plan.file, key: 'source.incremental.cursor_field', object: object.name },
      });
    }
    const lagMicros = BigInt(Math.round(incremental.lagSeconds * 1e6));
    const startMicros = BigInt(r.started.getTime()) * 1000n;
    tracker = track({
      field: cursorField,
      kind: field.type.kind,
      primaryKey: r.connector.primaryKey?.(object, plan) ?? plan.asset.primaryKey,
      ...(fullRefresh || !saved?.cursor ? {} : { saved: saved.cursor }),
      ...(field.type.kind === 'timestamp' ? { cap: startMicros - lagMicros } : {}),
    });
    stages.push(tracker);
  }

  const day = utcDay(r.started);
  // S3 object metadata as the Python tool wrote it (loaded on demand: the AWS SDK only when the warehouse is S3).
  const objectMetadata = plan.target.warehouse.startsWith('s3')
    ? (await import('./storage/s3.js')).s3ObjectMetadata({
        asset: plan.asset,
        tenantId: plan.tenantId,
        runId: r.runId,
        partition: `ingest_date=${day.iso}`,
        compression: plan.target.compression,
        now: r.started,
      })
    : undefined;
  const sink = parquetSink({
    storage: r.storage,
    fields,
    constants: { [INGESTED_AT_COLUMN]: BigInt(r.started.getTime()) * 1000n, [RUN_ID_COLUMN]: r.runId },
    directory: `${r.table.relativeLocation}/data/ingest_date=${day.iso}`,
    relativeTo: r.table.relativeLocation,
    filePrefix: `part-${r.runId}-${object.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`,
    partition: { ingest_date: day.days },
    targetFileSizeBytes: plan.target.targetFileSizeBytes,
    rowGroupRows: plan.target.rowGroupRows,
    compression: plan.target.compression,
    // Single rows: the sink appends each into column buffers, so no Row[] batch is held.
    batchRows: opts.batchRows ?? 10_000,
    batchBytes: opts.batchBytes ?? 32 * 1024 * 1024,
    highWaterMark: 16,
    ...(objectMetadata ? { metadata: objectMetadata } : {}),
    footerMetadata: { 'dativo.asset': `${plan.asset.name}:${plan.asset.version}`, 'dativo.object': object.name },
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
    log.info({ event_type: 'object_started', full_refresh: fullRefresh, cursor: ctx.state?.cursor?.value }, `reading ${object.name}`);
    await pipeline([source, ...stages, sink], { signal: controller.signal });
    if (strictFailure) throw strictFailure;
    files = sink.files;
  } catch (err) {
    // Finished files are not part of any table or state: remove them so a
    // plain Parquet dataset never shows rows of a failed run.
    await Promise.all(sink.files.map((f) => r.storage.delete(`${r.table.relativeLocation}/${f.relativePath}`).catch(() => undefined)));
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
  const cursor = tracker?.result();
  // `runId` names the last run whose data was committed: a run that commits
  // nothing keeps the previous one, so reconciliation (above) can tell a
  // state store that is behind the table from one that is merely newer.
  const commits = files.length > 0 || fullRefresh;
  const next: ObjectState = {
    ...(saved ?? {}),
    ...checkpoint,
    ...(cursor ? { cursor } : {}),
    ...(commits ? { runId: r.runId } : {}),
    updatedAt: new Date().toISOString(),
  };

  if (commits) {
    await opts.hooks?.beforeCommit?.(object.name);
    const committedInfo = await r.table.commit({
      object: object.name,
      files,
      mode: fullRefresh ? 'overwrite' : 'append',
      runId: r.runId,
      state: next,
    });
    if (committedInfo.snapshotId) obj.snapshot_id = committedInfo.snapshotId;
  }

  obj.rows_written = rowsWritten;
  obj.files = files.map((f) => f.uri);
  if (cursor) obj.cursor = cursor;

  if (incremental && !fullRefresh) {
    await opts.hooks?.beforeStateSave?.(object.name);
    r.state.objects[object.name] = next;
    await r.stateStore.save(r.state);
  }
  log.info(
    { event_type: 'object_finished', rows_read: obj.rows_read, rows_written: rowsWritten, rows_rejected: obj.rows_rejected, files: files.length, cursor: cursor?.value },
    `${object.name}: ${rowsWritten} rows written in ${files.length} file(s)`,
  );
}
