/**
 * The catalog contract. The Iceberg writer (lib/iceberg/table.ts) builds the
 * new table metadata and the commit's requirements/updates; a catalog only
 * stores, swaps and answers. SQL catalogs write the metadata file themselves
 * and swap the pointer conditionally; a REST catalog sends the
 * requirements/updates and the server writes the metadata file.
 *
 * Metadata objects are plain JSON with `bigint` for every Iceberg `long`
 * (snapshot ids, sequence numbers, sizes, timestamps stay exact). Serialise
 * them with lib/iceberg/json.ts (lossless), never with JSON.stringify.
 */

/** Parsed table metadata (format v2). Longs are bigint. Unknown keys are preserved. */
export type TableMetadata = Record<string, unknown> & {
  'format-version': number;
  'table-uuid': string;
  location: string;
};

export interface TableIdent {
  namespace: string[];
  name: string;
}

export interface LoadedTable {
  ident: TableIdent;
  metadata: TableMetadata;
  /** URI of the current metadata file. */
  metadataLocation: string;
}

/** REST-spec commit requirement, e.g. `{type:'assert-ref-snapshot-id', ref:'main', 'snapshot-id': 123n | null}`. */
export type TableRequirement = { type: string } & Record<string, unknown>;
/** REST-spec metadata update, e.g. `{action:'add-snapshot', snapshot:{...}}`. */
export type TableUpdate = { action: string } & Record<string, unknown>;

export interface CommitRequest {
  requirements: TableRequirement[];
  updates: TableUpdate[];
  /**
   * The complete new metadata the writer computed from `base` (catalogs that
   * write metadata files themselves — SQL — persist exactly this; REST sends
   * requirements + updates and lets the server compute it).
   */
  newMetadata: TableMetadata;
}

export interface CreateTableRequest {
  location: string;
  /** Initial metadata (no snapshot) computed by the writer. */
  metadata: TableMetadata;
}

export interface Catalog {
  readonly name: string;
  /** `'sql' | 'rest'` */
  readonly type: string;
  createNamespaceIfMissing(namespace: string[]): Promise<void>;
  listTables(namespace?: string[]): Promise<TableIdent[]>;
  /** Undefined when the table does not exist. Throws CATALOG_UNAVAILABLE when the catalog cannot be reached. */
  loadTable(ident: TableIdent): Promise<LoadedTable | undefined>;
  /** Create; throws COMMIT_CONFLICT (context.exists) if it already exists. */
  createTable(ident: TableIdent, request: CreateTableRequest): Promise<LoadedTable>;
  /**
   * Atomically replace `base` by the change. Throws COMMIT_CONFLICT when the
   * table moved on (definitely not committed: reload, re-apply, retry), and
   * CATALOG_UNAVAILABLE when the outcome is unknown (5xx, timeout, connection
   * lost mid-commit): the caller must reload and check whether its snapshot
   * landed before retrying.
   */
  commit(base: LoadedTable, change: CommitRequest): Promise<LoadedTable>;
  close(): Promise<void>;
}
