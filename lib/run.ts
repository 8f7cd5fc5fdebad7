/**
 * runJob: the one run of a job that the CLI, library users and the
 * benchmarks all call. This file holds the object loop and the exit code;
 * each object's stages are assembled in lib/run/object.ts:
 *
 *   source.read → validate → track (cursor) → parquetSink (rows go straight
 *   into Arrow column buffers, batched there)
 *   → commit (Iceberg snapshot carrying the cursor) → state.save
 *
 * The commit is the checkpoint: the object's new state goes into the
 * snapshot summary of the same commit as its data
 * (`dativo.state/<tenant>/<job>/<object>`, `dativo.run-id`), and the state
 * store is written only afterwards. At start the job reconciles its state
 * with this job's newest committed state in the table, so a crash between
 * commit and state save neither loses nor duplicates rows; the commit lands
 * only if the table still holds that state (compare-and-set), and the run
 * holds the job's lock (lib/lock.ts) throughout.
 * Without a catalog the state is saved once every file of the object is durable.
 */
import { randomBytes } from 'node:crypto';
import { getConnector } from '../connectors/index.js';
import { openStateStore } from '../state/index.js';
import { DativoError, ExitCode, toDativoError, type ExitCode as Exit } from './errors.js';
import { silentLogger } from './log.js';
import type { JobPlan } from './plan.js';
import { tableFields } from './run/layout.js';
import { openNetwork, withConnectorLimits, type RunNetwork } from './run/network.js';
import { RunCheckpoints, runObject } from './run/object.js';
import { tableHandle } from './run/table.js';
import type { ObjectSummary, RunOptions, RunSummary } from './run/types.js';
import { openStorage } from './storage/index.js';
import type { TableHandle } from './table-target.js';
import { openJobLock, type HeldLock } from './lock.js';

export type { ObjectSummary, Progress, RunOptions, RunSummary } from './run/types.js';
export { tableFields } from './run/layout.js';

/** A new run id: sortable by time, unique across processes. */
export function newRunId(now: Date = new Date()): string {
  const ts = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${ts}-${randomBytes(3).toString('hex')}`;
}

/**
 * The exit code of a job whose objects all ran: the first failure's own code
 * when every object failed, 1 (partial) when some failed or rows were
 * rejected, else 0.
 */
export function jobExitCode(o: { objects: number; failures: number; firstError: DativoError | undefined; rejected: number }): Exit {
  if (o.failures > 0 && o.firstError) return o.failures < o.objects ? ExitCode.PARTIAL : o.firstError.exitCode;
  return o.rejected > 0 ? ExitCode.PARTIAL : ExitCode.OK;
}

/**
 * Run one job. Never throws for a job failure: the returned summary carries
 * the exit code (0 ok, 1 partial, 2 retryable, 3 permanent) and the error.
 */
export async function runJob(plan: JobPlan, options: RunOptions = {}): Promise<RunSummary> {
  let opts = options;
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
  let held: HeldLock | undefined;
  let network: RunNetwork | undefined;
  let inFlight: { end(): Promise<void> } | undefined;
  try {
    // A job refused for its config (unknown connector, --mode cloud) never takes the lock.
    const connector = opts.connector ?? (await getConnector(plan.source.type, { cwd: plan.file ? undefined : process.cwd() }));
    if (plan.mode === 'cloud' && !connector.descriptor.allowedInCloud) {
      throw new DativoError(
        'CONNECTOR_NOT_ALLOWED',
        `connector "${connector.descriptor.name}" reads self-hosted systems and is not allowed in --mode cloud`,
        { context: { connector: connector.descriptor.name } },
      );
    }
    const lock = opts.lock === false ? undefined : (opts.lock ?? openJobLock(plan, log));
    held = await lock?.acquire({ runId });
    // A distributed lock lost mid-run aborts the run like a cancel: nothing more is committed.
    if (held?.signal) opts = { ...opts, signal: opts.signal ? AbortSignal.any([opts.signal, held.signal]) : held.signal };
    const storage = await openStorage(plan.target.warehouse, plan.target.s3);
    await storage.checkWritable();
    const stateStore = openStateStore(plan.state, { tenant: plan.tenantId, job: plan.name });
    const state = await stateStore.load();
    // A state that cannot be saved must stop the run before it writes data, not after.
    if (plan.syncMode === 'incremental_append') await stateStore.checkWritable();

    const knownRunIds = Object.values(state.objects).flatMap((o) => (o.runId ? [o.runId] : []));
    table = await tableHandle(plan, storage, tableFields(plan.asset.fields), log, knownRunIds);
    network = openNetwork(withConnectorLimits(plan, connector), connector.descriptor.name, log);
    inFlight = await table.beginRun(runId);
    log.info({ event_type: 'job_started', objects: plan.source.objects.map((o) => o.name), sync_mode: plan.syncMode }, 'job started');

    let failures = 0;
    let firstError: DativoError | undefined;
    const checkpoints = new RunCheckpoints();
    const [tbl, net] = [table, network];
    const runOne = async (object: JobPlan['source']['objects'][number]): Promise<void> => {
      const objLog = log.child({ object: object.name });
      const obj: ObjectSummary = { name: object.name, rows_read: 0, rows_written: 0, rows_rejected: 0, files: [] };
      summary.objects.push(obj);
      try {
        try {
          await runObject({ plan, connector, storage, stateStore, state, table: tbl, object, obj, runId, started, log: objLog, opts, network: net, checkpoints });
        } finally {
          const calls = net.calls.count(object.name);
          if (calls > 0) obj.api_calls = calls;
        }
      } catch (err) {
        const e = toDativoError(err, { object: object.name });
        failures++;
        firstError ??= e;
        obj.error = { code: e.code, message: e.message };
        objLog.error({ event_type: 'object_failed', err: e, code: e.code }, `object ${object.name} failed: ${e.message}`);
      }
    };
    // `source.parallel_objects` objects at once (default one after the
    // other), in the order listed; a failed object does not stop the others,
    // an abort ends the whole run (no object starts after it).
    const objects = plan.source.objects;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < objects.length && !opts.signal?.aborted) await runOne(objects[next++]!);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(plan.source.parallelObjects ?? 1, objects.length)) }, worker));

    const rejected = summary.objects.reduce((n, o) => n + o.rows_rejected, 0);
    if (firstError) summary.error = { code: firstError.code, message: firstError.message };
    summary.exit_code = jobExitCode({ objects: plan.source.objects.length, failures, firstError, rejected });
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
    await inFlight?.end().catch(() => undefined);
    await table?.close().catch(() => undefined);
    await held?.release().catch(() => undefined);
    await network?.close().catch(() => undefined);
  }
  return finish();
}
