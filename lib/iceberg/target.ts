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
import { parseCommittedState, stateSummaryKey, type TableHandle } from '../table-target.js';
import type { AssetField, ObjectState } from '../types.js';
import type { TableIdent } from './catalog.js';
import { openCatalog } from './index.js';
import { ancestry, assetTableProperties, latestSummary, RUN_ID_SUMMARY_KEY } from './metadata.js';
import { storageKey } from './paths.js';
import { commitFiles, ensureTable, identName } from './table.js';

/** Prefix of the summary keys holding each object's committed state. */
const STATE_KEY_PREFIX = stateSummaryKey('');

/** Summary key naming the object a snapshot was committed for. */
export const OBJECT_SUMMARY_KEY = 'dativo.object';

/**
 * A {@link TableHandle} on the job's Iceberg table. The handle's `fields`
 * carry the table's field ids (stamp them into the Parquet files) and its
 * `relativeLocation` is the table's real location (an existing table keeps
 * its own).
 */
export async function icebergTable(plan: JobPlan, storage: Storage, fields: AssetField[], relativeLocation: string, log: Logger): Promise<TableHandle> {
  const catalog = await openCatalog(plan.target.catalog, storage);
  if (!catalog) throw new DativoError('INTERNAL', 'icebergTable called for a target without a catalog');
  try {
    const ident: TableIdent = { namespace: plan.target.namespace.split('.').filter((p) => p !== ''), name: plan.target.table };
    const name = identName(ident);
    const properties = assetTableProperties(plan.asset);
    const location = storage.uri(relativeLocation);
    const ensured = await ensureTable(catalog, ident, { fields, location, properties });
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
      async committedState(object: string): Promise<ObjectState | undefined> {
        const t = await catalog.loadTable(ident);
        if (!t) return undefined;
        const key = stateSummaryKey(object);
        // Every commit carries the state keys of all objects (see commit), so
        // the newest snapshot that has the key is enough, even on catalogs
        // that do not expose history (Nessie). Walking the ancestry finds it
        // first where history is kept, and also finds tables written before
        // the keys were carried forward.
        const snap = ancestry(t.metadata).find((s) => s.summary?.[key] !== undefined);
        if (!snap) return undefined;
        return parseCommittedState(snap.summary[key]!, `snapshot ${snap['snapshot-id']} of ${name}`);
      },
      async commit(input) {
        const res = await commitFiles(catalog, ident, {
          files: input.files,
          mode: input.mode,
          summary: {
            [RUN_ID_SUMMARY_KEY]: input.runId,
            [OBJECT_SUMMARY_KEY]: input.object,
            [stateSummaryKey(input.object)]: JSON.stringify(input.state),
          },
          // Carry the other objects' committed states forward, re-read from the
          // table on every attempt, so the newest dativo snapshot alone holds
          // every object's checkpoint (Nessie shows no ancestry).
          summaryFrom: (md) => latestSummary(md, STATE_KEY_PREFIX) ?? {},
          fields: ensured.fields,
          location: tableLocation,
          storage,
          properties,
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
      close: () => catalog.close(),
    };
  } catch (err) {
    await catalog.close().catch(() => undefined);
    throw err;
  }
}
