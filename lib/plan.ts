/**
 * JobPlan: a job file, its connector recipes and its asset, loaded, merged,
 * expanded and validated. It is the only input `runJob()` needs, and what
 * `loadJob()` returns. Library users may also build one by hand.
 */
import type { RetryPolicy } from './retry.js';
import type { Asset } from './types.js';

export type ValidationMode = 'strict' | 'warn';
export type SyncMode = 'full_refresh' | 'incremental_append';

/**
 * Incremental strategies. `created`/`updated` use a timestamp cursor column,
 * `id` an increasing integer column, `file_modified` file size + mtime,
 * `source_state` the source's own state (a Singer tap's or Airbyte source's
 * STATE messages, committed with the data and handed back to it).
 * The Python tool's names (`updated_at`, `updated_after`, `file_modified_time`,
 * `spreadsheet_modified_time`, `incremental`) are mapped onto these on load.
 */
export type IncrementalStrategy = 'created' | 'updated' | 'id' | 'file_modified' | 'source_state';

/** Strategies that need no cursor column: the engine tracks no cursor for them. */
export const CURSORLESS_STRATEGIES: ReadonlySet<IncrementalStrategy> = new Set(['file_modified', 'source_state']);

export interface IncrementalSpec {
  strategy: IncrementalStrategy;
  /** Cursor column (cursor strategies only). */
  cursorField?: string;
  /** Start of the first run: now minus this many days. 0 = from the beginning. */
  lookbackDays: number;
  /**
   * The new cursor is capped at run start minus this lag, so rows committed
   * late at the source (long transactions, replica lag) are not skipped.
   * Default 60 s.
   */
  lagSeconds: number;
}

export interface S3Settings {
  bucket: string;
  /** Key prefix inside the bucket (no leading or trailing slash). */
  prefix?: string;
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

export type CatalogSpec =
  | { type: 'none' }
  /** Iceberg JDBC/SqlCatalog layout. `uri`: `sqlite:<path>` or `postgres://…`. */
  | { type: 'sql'; name: string; uri: string }
  /** Iceberg REST catalog. `prefix` e.g. Nessie's branch. */
  | { type: 'rest'; name: string; uri: string; prefix?: string; warehouse?: string; token?: string; headers?: Record<string, string> };

export interface TargetPlan {
  /** Target recipe type, e.g. `iceberg`, `s3`, `local`. */
  type: string;
  /** Warehouse root as a URI: `file:///abs/warehouse` or `s3://bucket/prefix`. */
  warehouse: string;
  s3?: S3Settings;
  catalog: CatalogSpec;
  /** Iceberg namespace (default: `<tenant>.<asset domain or default>`, see {@link TargetPlan.tenantScope}). */
  namespace: string;
  /**
   * Set when the namespace is the tenant-scoped default (the job did not name
   * one): the table is the tenant's own, its location starts with the
   * tenant's folder. `legacyNamespace` is what earlier versions defaulted to
   * (asset domain or `default`, no tenant): an existing table there that this
   * job wrote keeps being used (see lib/table-target.ts).
   */
  tenantScope?: { tenant: string; legacyNamespace: string };
  /** Table name (default: asset name, lower-cased, `-`/space → `_`). */
  table: string;
  /**
   * Partitioning of a new table (an existing table keeps its own spec):
   * `['ingest_date']` (the default) = `day(_dativo_ingested_at)`, `[]` =
   * unpartitioned. The data file folders follow the table's actual spec.
   */
  partitioning: string[];
  /** Roll files at about this many bytes (default 128 MiB). */
  targetFileSizeBytes: number;
  /** Row-group bound in rows (default 100,000). */
  rowGroupRows: number;
  /** Rows per Arrow batch handed to the Parquet encoder (default 10,000; a row group is one or more batches). */
  batchRows?: number;
  /**
   * Threads that coerce records and build their Arrow columns, for sources
   * that hand over packed text records (CSV): 0 = on the main thread. Default
   * 1 with 2+ cores (lib/stages/coerce-pool.ts: defaultCoerceWorkers).
   */
  workers?: number;
  compression: 'zstd' | 'snappy' | 'gzip' | 'uncompressed';
}

/**
 * `retry_config`. `maxRetries`, delays and `retryableExitCodes` are the
 * run-level values a scheduler reads; `request` holds only the keys the job
 * gave, as overrides of the network layer's per-request policy
 * (docs/network.md).
 */
export interface RetryConfig {
  maxRetries: number;
  initialDelaySeconds: number;
  maxDelaySeconds: number;
  backoffMultiplier: number;
  retryableExitCodes: number[];
  /** The keys the job set, as per-request policy overrides (lib/retry.ts `retryOverrides`). Default `{}`. */
  request?: Partial<RetryPolicy>;
}

/** One object (stream/table/file set) of the source that this job reads. */
export interface SourceObjectSpec {
  /** Object name: state key, reject folder, log field. Explicit, never derived from a class name. */
  name: string;
  /** Connector-specific settings of this object (table name, query, file paths, sheet id, ...). */
  config: Record<string, unknown>;
}

export interface SourcePlan {
  /** Connector type from the recipe (`csv`, `postgres`, `stripe`, ...), or a path to a third-party module. */
  type: string;
  /** The merged `source` block (recipe defaults + job), `${VAR}`s expanded. Connectors validate their part. */
  options: Record<string, unknown>;
  objects: SourceObjectSpec[];
  /** Undefined: incremental is off (every run reads everything). */
  incremental?: IncrementalSpec;
  /** Recipe `rate_limits`, if any. */
  rateLimits?: Record<string, unknown>;
  /**
   * `source.parallel_objects`: how many of `objects` a run reads and commits
   * at once, all through the run's one limiter. Default 1 (one after the other).
   */
  parallelObjects?: number;
}

/** Where a job's state lives: a JSON file, or a row of a Postgres table that many machines share. */
export type StateSpec = FileStateSpec | PostgresStateSpec;

export interface FileStateSpec {
  kind: 'file';
  /** Absolute path of the state file. */
  path: string;
}

export interface PostgresStateSpec {
  kind: 'postgres';
  /** Connection URL (`postgres://user:password@host:5432/db`); never logged unredacted. */
  url: string;
  /** Table holding one row per (tenant, job), created on first use. Default `dativo_state`. */
  table: string;
}

/**
 * The per-job run lock (lib/lock.ts). Default: a file next to a file state,
 * a Postgres advisory lock on the state's database for a Postgres state.
 */
export type LockSpec = { kind: 'file'; path: string } | { kind: 'postgres'; url: string };

export interface JobPlan {
  /** Absolute path of the job file ('' when built by hand). */
  file: string;
  /** Job name: the job file's stem, used for state and logs. */
  name: string;
  tenantId: string;
  environment?: string;
  mode: 'self_hosted' | 'cloud';
  source: SourcePlan;
  target: TargetPlan;
  asset: Asset;
  syncMode: SyncMode;
  validationMode: ValidationMode;
  /** Absolute directory for reject files: `<rejectDir>/<object>/<run_id>.ndjson`. */
  rejectDir: string;
  state: StateSpec;
  /** The run lock; undefined: the default for {@link state} (see {@link LockSpec}). */
  lock?: LockSpec;
  retry: RetryConfig;
  logging: { level: string; redaction: boolean };
  /** Secret values found while expanding config, redacted from every log line. */
  secrets: string[];
  /**
   * Absolute root of the secrets folder the job was loaded with (`--secrets-dir`),
   * whose `<tenantId>/` the `${VAR}`s came from. Connectors that read a key file
   * there (Google: `<tenant>/gdrive.json`) resolve it against this. Absent: none given.
   */
  secretsDir?: string;
}
