/**
 * Open the table a job's rows land in: an Iceberg table when the job has a
 * catalog (lib/iceberg/target.ts, loaded only then), else a plain Parquet
 * dataset. Both are a {@link TableHandle} (lib/table-target.ts).
 */
import { INGEST_DATE_PARTITION } from '../iceberg/partition.js';
import type { Logger } from '../log.js';
import type { JobPlan } from '../plan.js';
import type { Storage } from '../storage/types.js';
import { legacyTableRelativeLocation, tableRelativeLocation, type TableHandle } from '../table-target.js';
import type { AssetField } from '../types.js';

/**
 * `knownRunIds`: the run ids in the job's state file. A tenant-scoped job
 * whose own table does not exist yet but whose runs wrote the table at the
 * pre-tenant default place (an earlier version) keeps writing that one.
 */
export async function tableHandle(plan: JobPlan, storage: Storage, fields: AssetField[], log: Logger, knownRunIds: readonly string[] = []): Promise<TableHandle> {
  let relativeLocation = tableRelativeLocation(plan);
  if (plan.target.catalog.type === 'none') {
    if (plan.target.tenantScope && knownRunIds.length > 0 && (await storage.list(`${relativeLocation}/data/`)).length === 0) {
      const legacy = legacyTableRelativeLocation(plan);
      const names = (await storage.list(`${legacy}/data/`)).map((k) => k.slice(k.lastIndexOf('/') + 1));
      if (names.some((n) => knownRunIds.some((id) => n.startsWith(`part-${id}-`)))) {
        log.warn(
          { event_type: 'legacy_table', location: legacy, tenant_location: relativeLocation },
          `keeps writing ${legacy}, which this job wrote before datasets were tenant-scoped (the new default would be ${relativeLocation})`,
        );
        relativeLocation = legacy;
      }
    }
    return plainDataset(storage, fields, relativeLocation, plan.target.partitioning, log);
  }
  const { icebergTable } = await import('../iceberg/target.js');
  return icebergTable(plan, storage, fields, relativeLocation, log, knownRunIds);
}

/**
 * A plain Parquet dataset (the Python tool's default). Files are durable when
 * the sink reports them; an overwrite (full refresh) removes the previous
 * runs' files only after the new ones are durable.
 */
function plainDataset(storage: Storage, fields: AssetField[], relativeLocation: string, partitioning: readonly string[], log: Logger): TableHandle {
  return {
    fields,
    relativeLocation,
    partitionLayout: partitioning.includes(INGEST_DATE_PARTITION) ? { kind: 'ingest_day', name: INGEST_DATE_PARTITION } : { kind: 'none' },
    committedState: async () => undefined,
    replayMarks: async () => new Map(),
    // A plain dataset has no snapshots to tell a killed run's files from committed ones: nothing is removed.
    beginRun: async () => ({ end: async () => undefined }),
    async commit(input) {
      if (input.mode === 'overwrite') {
        const keep = new Set(input.files.map((f) => `${relativeLocation}/${f.relativePath}`));
        const existing = await storage.list(`${relativeLocation}/data/`);
        const stale = existing.filter((p) => p.endsWith('.parquet') && !keep.has(p));
        for (const p of stale) await storage.delete(p);
        if (stale.length > 0) log.info({ event_type: 'overwrite', removed_files: stale.length }, `full refresh removed ${stale.length} old file(s)`);
      }
      return {};
    },
    close: async () => undefined,
  };
}
