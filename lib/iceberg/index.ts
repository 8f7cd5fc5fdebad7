/**
 * Iceberg: catalogs and the table writer. `openCatalog` maps a job's
 * `target.catalog` to a {@link Catalog}; `ensureTable` / `commitFiles` write.
 */
import type { CatalogSpec } from '../plan.js';
import type { Storage } from '../storage/types.js';
import type { Catalog } from './catalog.js';
import { openSqlCatalog } from './sql-catalog.js';

export type { Catalog, CommitRequest, CreateTableRequest, LoadedTable, TableIdent, TableMetadata } from './catalog.js';
export { SqlCatalog, openSqlCatalog } from './sql-catalog.js';
export { commitFiles, ensureTable, identName, type CommitFilesOptions, type CommitResult, type EnsureTableOptions, type EnsuredTable } from './table.js';
export { expireSnapshots, findOrphans, liveDataFiles, reachableFiles, type ExpireOptions, type ExpireResult, type LiveDataFile, type OrphanOptions } from './maintenance.js';
export {
  assetTableProperties,
  findDativoSnapshot,
  latestSummary,
  newSnapshotId,
  RUN_ID_SUMMARY_KEY,
  type GovernanceOverrides,
  type Snapshot,
} from './metadata.js';
export { buildSchema, icebergTypeOf, planSchema, type IcebergField, type IcebergSchema, type SchemaPlan } from './schema.js';
export { parseJson, stringifyJson } from './json.js';

/** The REST catalog module's factory (lib/iceberg/rest.ts), loaded only when a job uses it. */
type RestFactory = (spec: Extract<CatalogSpec, { type: 'rest' }>, storage?: Storage) => Promise<Catalog>;

/**
 * Open the catalog a job names: undefined for `none` (plain Parquet target),
 * a {@link SqlCatalog} for `sql`, the REST client for `rest`. Throws
 * CATALOG_UNAVAILABLE when the catalog cannot be reached.
 */
export async function openCatalog(spec: CatalogSpec, storage: Storage): Promise<Catalog | undefined> {
  switch (spec.type) {
    case 'none':
      return undefined;
    case 'sql':
      return openSqlCatalog(spec, storage);
    case 'rest': {
      const mod = (await import('./rest.js')) as { createRestCatalog: RestFactory };
      return mod.createRestCatalog(spec, storage);
    }
  }
}
