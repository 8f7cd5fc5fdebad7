/**
 * The shared vocabulary of the engine: assets (data contracts), canonical
 * record values, data-file descriptors, object state. Every stage and every
 * connector speaks these types; nothing here depends on a particular source.
 */

/** A record as it flows between stages: column name → value. */
export type Row = Record<string, unknown>;

/**
 * The logical type of a column, parsed from the asset's `type` string.
 *
 * Canonical JS values after `validate()` (what every later stage can rely on):
 * | kind      | value                                     |
 * |-----------|-------------------------------------------|
 * | string    | string                                    |
 * | long      | bigint (always, exact beyond 2^53)        |
 * | int       | number (32-bit integer)                   |
 * | float     | number                                    |
 * | double    | number                                    |
 * | decimal   | string of exact digits at the column scale, e.g. "-12.50" |
 * | boolean   | boolean                                   |
 * | date      | number: days since 1970-01-01             |
 * | timestamp | bigint: microseconds since epoch, UTC     |
 * | json      | string: JSON text                         |
 * | binary    | Uint8Array                                |
 * NULL is `null`; a missing optional value becomes `null`.
 */
export type FieldType =
  | { kind: 'string' }
  | { kind: 'long' }
  | { kind: 'int' }
  | { kind: 'float' }
  | { kind: 'double' }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'boolean' }
  | { kind: 'date' }
  | { kind: 'timestamp' }
  | { kind: 'json' }
  | { kind: 'binary' };

export type FieldKind = FieldType['kind'];

/** One column of an asset. */
export interface AssetField {
  name: string;
  type: FieldType;
  /** The type string as written in the asset file (for messages). */
  typeName: string;
  required: boolean;
  classification?: string;
  description?: string;
  /**
   * Iceberg field id. Assigned 1..n in schema order for a new table; the
   * Iceberg layer may remap to an existing table's ids by name.
   */
  fieldId: number;
}

/** A data contract (asset definition), normalised from the ODCS-style YAML. */
export interface Asset {
  name: string;
  version: string;
  domain?: string;
  dataProduct?: string;
  tenant?: string;
  sourceType?: string;
  object?: string;
  fields: AssetField[];
  /** Primary key columns (may be empty: tie handling then uses whole-row identity). */
  primaryKey: string[];
  /** Cursor column declared by the asset, if any. */
  cursorField?: string;
  /** Path of the file it was loaded from. */
  file: string;
  /** The parsed YAML, for governance/finops properties. */
  raw: Record<string, unknown>;
}

/** Columns that every written row gets in addition to the asset's. */
export const INGESTED_AT_COLUMN = '_dativo_ingested_at';
export const RUN_ID_COLUMN = '_dativo_run_id';
/**
 * The one reserved name an asset may declare itself (a boolean): the
 * soft-delete marker that sources with deletions fill (Stripe's `*.deleted`
 * events): true on the row of a deleted object. Not added to tables whose
 * asset does not declare it.
 */
export const DELETED_COLUMN = '_dativo_deleted';

/** Per-column statistics of one written data file, keyed by column name. */
export interface ColumnStats {
  fieldId: number;
  valueCount: number;
  nullCount: number;
  /** Canonical values (see FieldType); absent when all values are null or the type has no order. */
  min?: unknown;
  max?: unknown;
  /** NaN count for float/double columns. */
  nanCount?: number;
  /** Compressed bytes of this column in the file, if known. */
  sizeBytes?: number;
}

/** Descriptor of one finished, durable Parquet file: the input of the Iceberg commit. */
export interface DataFile {
  /** Full URI: `file:///abs/path.parquet` or `s3://bucket/key.parquet`. */
  uri: string;
  /** Path relative to the table location, e.g. `data/ingest_date=2026-11-27/part-<run>-00001.parquet`. */
  relativePath: string;
  fileSizeBytes: number;
  recordCount: number;
  /** Partition values, e.g. `{ ingest_date: 20419 }` (days since epoch). */
  partition: Record<string, unknown>;
  columns: Record<string, ColumnStats>;
  /** Byte offsets of row groups, if known. */
  splitOffsets?: number[];
}

/** A file seen by a file-based connector (CSV, Google Drive). */
export interface FileMark {
  /**
   * Bytes taken: every record in them was written or rejected. At most the
   * size stat'ed before reading (bytes appended meanwhile are left for the
   * next run), less when the last record was not finished yet.
   */
  size?: number;
  /** ISO-8601 UTC modification time. */
  modifiedAt: string;
  /**
   * sha256 (hex) of the first `size` bytes. With it a grown file can be
   * resumed at `size` once its first `size` bytes still hash the same;
   * without it (older state) a changed file is read again whole.
   */
  sha256?: string;
  /** Line breaks (`\n`, `\r\n` or a lone `\r`) in the first `size` bytes: the next line is `lines + 1`. */
  lines?: number;
  /** The first `size` bytes end with a line break (`\n`, or a `\r` a `\n` may follow); false: a last line taken without one. */
  endsWithNewline?: boolean;
  /** The read ended inside a quoted field (an unclosed quote, rejected once the file had settled): never continued. */
  endsInQuote?: boolean;
}

/**
 * The saved cursor of one object. `value` is the canonical value serialised
 * as a string: ISO-8601 with microseconds and `Z` for timestamps, decimal
 * digits for integers.
 *
 * Two shapes (docs/configuration.md "Incremental sync"):
 * - a window (`upper` set, `written` empty): the source read every row up to
 *   its high watermark `value`; the next run reads `cursor >= value`
 *   (`upper: 'exclusive'`) or `cursor > value` (`'inclusive'`). Constant size.
 * - tie keys (`upper` absent): the next run reads `cursor >= value` and drops
 *   the rows whose identity is in `written` (at most a fixed number, see
 *   lib/records/cursor.ts; past it, `overflow` or a settled `upper`).
 *   State files of earlier versions have this shape with any number of
 *   keys: a window source reads them once, drops those rows, and saves a
 *   window.
 */
export interface CursorState {
  field: string;
  value: string;
  /**
   * Identities of rows already written whose cursor is >= `value`
   * (`<cursor value>\u0000<key json>` or a whole-row hash). On the next run
   * rows read at or after `value` with an identity in this list are dropped:
   * no misses at ties, no duplicates.
   */
  written: string[];
  /** Set when `value` is a high watermark that bounded the read: whether rows AT it were read (`inclusive`) or not (`exclusive`). */
  upper?: 'exclusive' | 'inclusive';
  /**
   * More rows shared `value` than tie keys are kept for (see
   * lib/records/cursor.ts), and the value could not be settled: their
   * number. The next run reads the rows at `value` again and writes them
   * again (never a lost row; duplicates are warned with this count).
   */
  overflow?: number;
  /**
   * Rows whose cursor was below the watermark (at or below it for `inclusive`)
   * in the snapshot of that read, when the source counted them: a later run
   * that counts more rows behind `value` warns that rows moved backwards.
   */
  below?: number;
}

/** Everything saved for one object between runs. */
export interface ObjectState {
  cursor?: CursorState;
  /** File-based incremental: file id → what we saw when we last read it. */
  files?: Record<string, FileMark>;
  /**
   * A Singer tap's or Airbyte source's own state (connectors/tap): the JSON
   * text it is handed back as `--state`, exactly as it emitted it (big
   * numbers included). Committed with the records that came before it.
   */
  tap?: { state: string };
  /** Id of the run that produced this state. */
  runId?: string;
  /** ISO time the state was saved. */
  updatedAt?: string;
}
