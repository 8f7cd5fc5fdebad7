/**
 * The Iceberg side of a job's target (lib/table-target.ts loads this module
 * only when the job has a catalog): open the catalog, create or evolve the
 * table, commit each object's files with its state in the snapshot summary,
 * and read that state back for reconciliation.
 */
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import type { Storage } from '../storage/types.js';
import {
  legacyStateSummaryKey,
  parseCommittedState,
  parseStateSummaryKey,
  REPLAYED_SUMMARY_KEY,
  type ReplayMark,
  STATE_KEY_PREFIX,
  stateSummaryKey,
  type StateOwner,
  type TableHandle,
} from '../table-target.js';
import type { AssetField, ObjectState } from '../types.js';
import type { TableIdent, TableMetadata } from './catalog.js';
import { openCatalog } from './index.js';
import { asLong } from './json.js';
import { ancestry, assetTableProperties, latestSummary, RUN_ID_SUMMARY_KEY, snapshotsOf } from './metadata.js';
import { partitionLayout } from './partition.js';
import { storageKey } from './paths.js';
import { commitFiles, ensureTable, identName } from './table.js';

/**
 * At most this many job states ride along in one snapshot summary: the
 * committing job's own plus the most recently updated others carried from
 * the newest dativo snapshot. A job pushed out of the carried set is still
 * found by walking back through the ancestry of `main` (see
 * {@link committedStateIn}).
 */
export const MAX_CARRIED_STATES = 32;

/** A job's committed state of one object as found in table metadata. */
export interface CommittedState {
  state: ObjectState;
  /** The snapshot whose summary holds it (carried forward or written by the commit itself). */
  snapshotId: bigint;
  /** Found under the pre-job key `dativo.cursor.<object>` of earlier versions. */
  legacy: boolean;
}

/**
 * This job's newest committed state of `object`: the first snapshot on
 * `main`, walking back from the current one, whose summary has the job's key
 * (other jobs' commits after it are passed over). Only when no snapshot has
 * it, the newest legacy `dativo.cursor.<object>` key (tables written by
 * earlier versions). Reads only the metadata already loaded: the cost is
 * one pass over the snapshot list, stopping at the first hit, which the
 * carried keys keep near the head.
 */
export function committedStateIn(metadata: TableMetadata, owner: StateOwner, object: string, where: string): CommittedState | undefined {
  const key = stateSummaryKey(owner, object);
  const legacyKey = legacyStateSummaryKey(object);
  let legacy: { text: string; snapshotId: bigint } | undefined;
  for (const s of ancestry(metadata)) {
    const text = s.summary?.[key];
    const id = asLong(s['snapshot-id']) ?? 0n;
    if (text !== undefined) return { state: parseCommittedState(text, `snapshot ${id} of ${where}`), snapshotId: id, legacy: false };
    if (legacy === undefined && s.summary?.[legacyKey] !== undefined) legacy = { text: s.summary[legacyKey]!, snapshotId: id };
  }
  if (!legacy) return undefined;
  return { state: parseCommittedState(legacy.text, `snapshot ${legacy.snapshotId} of ${where}`), snapshotId: legacy.snapshotId, legacy: true };
}

const splitNamespace = (ns: string): string[] => ns.split('.').filter((p) => p !== '');

/** Whether a snapshot of the table was committed by this job: one of its run ids, or one of its state keys. */
function writtenBy(metadata: TableMetadata, owner: StateOwner, runIds: readonly string[]): boolean {
  const ids = new Set(runIds);
  return snapshotsOf(metadata).some((s) => {
    const summary = s.summary ?? {};
    const run = summary[RUN_ID_SUMMARY_KEY];
    if (run !== undefined && ids.has(run)) return true;
    return Object.keys(summary).some((k) => {
      const o = parseStateSummaryKey(k);
      return o !== undefined && o.tenant === owner.tenant && o.job === owner.job;
    });
  });
}

/**
 * The other jobs' state keys to carry into the next snapshot: those of the
 * newest dativo snapshot, the most recently updated first, at most
 * `MAX_CARRIED_STATES - 1` (the committing job's own key is the last slot).
 * Legacy keys are not carried: a job migrates its own on its next commit.
 */
export function carriedStates(metadata: TableMetadata, ownKey: string | undefined): Record<string, string> {
  const keys = Object.entries(latestSummary(metadata, STATE_KEY_PREFIX) ?? {}).filter(([k]) => k !== ownKey);
  const updated = (text: string): string => {
    try {
      const v = JSON.parse(text) as { updatedAt?: unknown };
      return typeof v.updatedAt === 'string' ? v.updatedAt : '';
    } catch {
      return '';
    }
  };
  keys.sort((a, b) => (updated(a[1]) < updated(b[1]) ? 1 : updated(a[1]) > updated(b[1]) ? -1 : 0));
  return Object.fromEntries(keys.slice(0, ownKey === undefined ? MAX_CARRIED_STATES : MAX_CARRIED_STATES - 1));
}

/**
 * Reject files replayed into the table (`dativo.replayed` of every snapshot
 * on `main`'s ancestry): file → the replay run that landed it.
 */
export function replayMarksIn(metadata: TableMetadata, where: string): Map<string, string> {
  const marks = new Map<string, string>();
  for (const s of ancestry(metadata)) {
    const text = s.summary?.[REPLAYED_SUMMARY_KEY];
    if (text === undefined) continue;
    let list: unknown;
    try {
      list = JSON.parse(text);
    } catch (err) {
      throw new DativoError('STATE_CORRUPT', `cannot parse ${REPLAYED_SUMMARY_KEY} of snapshot ${s['snapshot-id']} of ${where}: ${(err as Error).message}`, { cause: err, context: { table: where } });
    }
    const run = s.summary[RUN_ID_SUMMARY_KEY] ?? '';
    for (const m of Array.isArray(list) ? list : []) {
      const file = (m as Partial<ReplayMark> | null)?.file;
      if (typeof file === 'string' && !marks.has(file)) marks.set(file, run);
    }
  }
  return marks;
}

/** Summary key naming the object a snapshot was committed for. */
export const OBJECT_SUMMARY_KEY = 'dativo.object';

/**
 * A {@link TableHandle} on the job's Iceberg table. The handle's `fields`
 * carry the table's field ids (stamp them into the Parquet files) and its
 * `relativeLocation` is the table's real location (an existing table keeps
 * its own).
 */
export async function icebergTable(
  plan: JobPlan,
  storage: Storage,
  fields: AssetField[],
  relativeLocation: string,
  log: Logger,
  knownRunIds: readonly string[] = [],
): Promise<TableHandle> {
  const catalog = await openCatalog(plan.target.catalog, storage);
  if (!catalog) throw new DativoError('INTERNAL', 'icebergTable called for a target without a catalog');
  const owner: StateOwner = { tenant: plan.tenantId, job: plan.name };
  try {
    let ident: TableIdent = { namespace: splitNamespace(plan.target.namespace), name: plan.target.table };
    const scope = plan.target.tenantScope;
    if (scope && !(await catalog.loadTable(ident))) {
      // First run into the tenant's own table: a table at the pre-tenant
      // default ident that this job wrote (an earlier version) is kept.
      const legacyIdent: TableIdent = { namespace: splitNamespace(scope.legacyNamespace), name: plan.target.table };
      const legacy = await catalog.loadTable(legacyIdent);
      if (legacy && writtenBy(legacy.metadata, owner, knownRunIds)) {
        log.warn(
          { event_type: 'legacy_table', table: identName(legacyIdent), tenant_table: identName(ident) },
          `keeps writing ${identName(legacyIdent)}, which this job wrote before tables were tenant-scoped (the new default would be ${identName(ident)}); set target.namespace: ${scope.legacyNamespace} to say so`,
        );
        ident = legacyIdent;
      }
    }
    const name = identName(ident);
    const properties = assetTableProperties(plan.asset);
    const location = storage.uri(relativeLocation);
    const ensured = await ensureTable(catalog, ident, { fields, location, properties, partitioning: plan.target.partitioning });
    const layout = partitionLayout(ensured.table.metadata, name);
    const ev = ensured.evolution;
    if (ensured.created) log.info({ event_type: 'table_created', table: name, location: ensured.table.metadata.location }, `created Iceberg table ${name}`);
    if (ev.added.length + ev.promoted.length + ev.relaxed.length > 0) {
      log.info({ event_type: 'schema_evolved', table: name, added: ev.added, promoted: ev.promoted, relaxed: ev.relaxed }, `evolved the schema of ${name}`);
    }
    if (ev.absent.length > 0) log.warn({ event_type: 'columns_absent', table: name, columns: ev.absent }, `table columns not in the asset are written as null`);
    const tableLocation = String(ensured.table.metadata.location);
    return {
      fields: ensured.fields,
      relativeLocation: storageKey(storage, tableLocation),
      partitionLayout: layout,
      async committedState(object: string): Promise<ObjectState | undefined> {
        const t = await catalog.loadTable(ident);
        if (!t) return undefined;
        const found = committedStateIn(t.metadata, owner, object, name);
        if (found?.legacy) {
          log.info(
            { event_type: 'state_key_migrated', table: name, snapshot_id: found.snapshotId.toString(), key: legacyStateSummaryKey(object) },
            `read ${object}'s state from the legacy key ${legacyStateSummaryKey(object)}; the next commit stores it under this job's key`,
          );
        }
        return found?.state;
      },
      async replayMarks(): Promise<Map<string, string>> {
        const t = await catalog.loadTable(ident);
        return t ? replayMarksIn(t.metadata, name) : new Map();
      },
      async commit(input) {
        const ownKey = stateSummaryKey(owner, input.object);
        const expected = input.expectedRunId;
        const replays = input.replays ?? [];
        const res = await commitFiles(catalog, ident, {
          files: input.files,
          mode: input.mode,
          summary: {
            [RUN_ID_SUMMARY_KEY]: input.runId,
            [OBJECT_SUMMARY_KEY]: input.object,
            ...(input.state ? { [ownKey]: JSON.stringify(input.state) } : {}),
            ...(replays.length > 0 ? { [REPLAYED_SUMMARY_KEY]: JSON.stringify(replays) } : {}),
          },
          // Carry other jobs' (and this job's other objects') committed states
          // forward, re-read from the table on every attempt, so the newest
          // dativo snapshot holds the recent checkpoints even where history is
          // not shown (Nessie) or old snapshots were expired.
          summaryFrom: (md) => carriedStates(md, input.state ? ownKey : undefined),
          // Compare-and-set on the metadata this attempt swaps from: the
          // catalog's assert-ref-snapshot-id makes check and swap one step.
          precondition: (md: TableMetadata) => {
            if (expected !== undefined) {
              const now = committedStateIn(md, owner, input.object, name)?.state.runId ?? null;
              if (now !== expected) {
                throw new DativoError(
                  'COMMIT_CONFLICT',
                  `another run of job ${owner.job} (tenant ${owner.tenant}) committed ${input.object} to ${name} since this run started ` +
                    `(committed state is now from run ${now ?? 'none'}, this run started from ${expected ?? 'none'}); nothing was committed`,
                  { context: { table: name, object: input.object, reason: 'state_moved', expectedRunId: expected, foundRunId: now } },
                );
              }
            }
            if (replays.length > 0) {
              const marks = replayMarksIn(md, name);
              const done = replays.filter((r) => marks.has(r.file));
              if (done.length > 0) {
                throw new DativoError(
                  'COMMIT_CONFLICT',
                  `reject file ${done[0]!.file} was already replayed into ${name} by run ${marks.get(done[0]!.file)}; nothing was committed`,
                  { context: { table: name, object: input.object, reason: 'already_replayed', files: done.map((d) => d.file) } },
                );
              }
            }
          },
          fields: ensured.fields,
          location: tableLocation,
          storage,
          properties,
          partitioning: plan.target.partitioning,
        });
        log.info(
          {
            event_type: 'commit_success',
            table: name,
            snapshot_id: res.snapshotId.toString(),
            sequence_number: res.sequenceNumber.toString(),
            attempts: res.attempts,
            already_committed: res.alreadyCommitted,
            files: input.files.length,
          },
          res.alreadyCommitted ? `commit to ${name} had already landed` : `committed snapshot ${res.snapshotId} to ${name}`,
        );
        return { snapshotId: res.snapshotId.toString() };
      },
      async beginRun(runId: string) {
        const { beginRun } = await import('./maintenance.js');
        return beginRun({ storage, tableRel: storageKey(storage, tableLocation), tenant: plan.tenantId, job: plan.name, runId, load: () => catalog.loadTable(ident), log });
      },
      close: () => catalog.close(),
    };
  } catch (err) {
    await catalog.close().catch(() => undefined);
    throw err;
  }
}
