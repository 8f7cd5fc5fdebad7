/**
 * zod schemas of the job file. The top level, `target`, `target.connection.s3`,
 * `target.catalog`, `source.incremental`, `retry_config`, `logging` and `state`
 * are closed (unknown keys are problems, so typos surface); the rest of
 * `source` and `target.connection` belongs to the connector and stays open.
 */
import { z } from 'zod';
import { anyRecord, boolLike, intLike, numLike, stringLike } from './zod-util.js';

const toNumber = (v: unknown) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v);
/** Integer >= 0 (numeric strings accepted). */
export const nonNegInt = z.preprocess(toNumber, z.number().int().min(0));
/** Integer >= 1 (numeric strings accepted). */
export const posInt = z.preprocess(toNumber, z.number().int().min(1));
/** Number > 0 (numeric strings accepted). */
export const posNumber = z.preprocess(toNumber, z.number().positive());
/** Number >= 0 (numeric strings accepted). */
export const nonNegNumber = z.preprocess(toNumber, z.number().min(0));

export const CATALOG_TYPES = ['none', 'sql', 'sqlite', 'rest', 'nessie'] as const;

/** `target.catalog` / recipe `catalog`: a type name or `{type, uri, name, prefix, warehouse, token, headers}`. */
export const CatalogSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { type: v } : v),
  z.strictObject({
    type: z.enum(CATALOG_TYPES),
    uri: z.string().optional(),
    name: z.string().optional(),
    prefix: z.string().optional(),
    branch: z.string().optional(),
    warehouse: z.string().optional(),
    token: z.string().optional(),
    headers: z.record(z.string(), stringLike).optional(),
  }),
);
export type CatalogInput = z.infer<typeof CatalogSchema>;

/** `source.incremental` in a job. `null` or `{}` switches incremental off. */
export const IncrementalSchema = z.strictObject({
  enabled: boolLike.optional(),
  strategy: z.string().optional(),
  cursor_field: z.string().nullable().optional(),
  lookback_days: nonNegInt.nullable().optional(),
  // Recipe spellings copied into jobs (they were merged verbatim in the Python tool).
  cursor_field_default: z.string().nullable().optional(),
  lookback_days_default: nonNegInt.nullable().optional(),
  lag_seconds: nonNegNumber.optional(),
  state_path: z.string().nullable().optional(),
});

const objectEntry = z.preprocess((v) => (typeof v === 'string' ? { name: v } : v), z.looseObject({ name: stringLike }));

/** Per-request retry overrides (`rate_limits.retry`, Python recipes: `max_retries`, `backoff`, `max_backoff_seconds`). */
export const RequestRetrySchema = z.strictObject({
  max_retries: nonNegInt.optional(),
  max_attempts: posInt.optional(),
  initial_delay_seconds: nonNegNumber.optional(),
  max_delay_seconds: posNumber.optional(),
  max_backoff_seconds: posNumber.optional(),
  backoff: z.enum(['exponential', 'constant']).optional(),
  backoff_multiplier: z.preprocess(toNumber, z.number().min(1)).optional(),
  max_elapsed_seconds: posNumber.optional(),
  max_retry_after_seconds: nonNegNumber.optional(),
});

/**
 * `rate_limits` of a recipe or a job's `source` (docs/network.md): a rate
 * per second and/or minute (> 0), a burst and a concurrency (>= 1), an
 * optional Redis URL for a budget shared across processes, an account key,
 * and per-request retry overrides. Python spellings `rps_default` and
 * `burst_default` are accepted.
 */
export const RateLimitsSchema = z.strictObject({
  requests_per_second: posNumber.optional(),
  requests_per_minute: posNumber.optional(),
  rps_default: posNumber.optional(),
  burst: posInt.optional(),
  burst_default: posInt.optional(),
  concurrency: posInt.optional(),
  redis: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(),
  account: stringLike.optional(),
  retry: RequestRetrySchema.optional(),
});

/** Upper bound of `source.parallel_objects`. */
export const MAX_PARALLEL_OBJECTS = 16;

/**
 * The job's `source` block: the keys the engine reads are typed, the rest is
 * the connector's (its options schema checks them: lib/config/source-options.ts).
 */
export const SourceSchema = z.looseObject({
  type: z.string().optional(),
  object: stringLike.optional(),
  objects: z.array(objectEntry).optional(),
  incremental: IncrementalSchema.nullable().optional(),
  connection: anyRecord.optional(),
  credentials: anyRecord.optional(),
  engine: anyRecord.optional(),
  rate_limits: RateLimitsSchema.optional(),
  parallel_objects: z.preprocess(toNumber, z.number().int().min(1).max(MAX_PARALLEL_OBJECTS, `at most ${MAX_PARALLEL_OBJECTS}: each object in flight holds its own batch and row group`)).optional(),
});

/** `target.connection.s3` (also the flat `target.connection` of S3/MinIO recipes). */
export const S3Schema = z.strictObject({
  bucket: z.string().optional(),
  prefix: z.string().optional(),
  endpoint: z.string().optional(),
  region: z.string().optional(),
  path_style_access: boolLike.optional(),
  access_key_id: z.string().optional(),
  secret_access_key: z.string().optional(),
  session_token: z.string().optional(),
});

export const COMPRESSIONS = ['zstd', 'snappy', 'gzip', 'uncompressed'] as const;

/** The job's `target` block. */
export const TargetSchema = z.strictObject({
  type: z.string().optional(),
  description: z.string().optional(),
  catalog: CatalogSchema.nullable().optional(),
  branch: z.string().optional(),
  warehouse: z.string().optional(),
  namespace: stringLike.optional(),
  table: stringLike.optional(),
  file_format: z.string().optional(),
  partitioning: z.array(z.string()).nullable().optional(),
  parquet_target_size_mb: posNumber.optional(),
  row_group_rows: posInt.optional(),
  batch_rows: posInt.optional(),
  workers: z.preprocess(toNumber, z.number().int().min(0)).optional(),
  compression: z.enum(COMPRESSIONS).optional(),
  connection: z
    .looseObject({
      s3: S3Schema.optional(),
      nessie: z.looseObject({ uri: z.string().optional() }).optional(),
      bucket: z.string().optional(),
      prefix: z.string().optional(),
      endpoint: z.string().optional(),
      region: z.string().optional(),
      path_style_access: boolLike.optional(),
    })
    .optional(),
  engine: anyRecord.optional(),
  markdown_kv_storage: anyRecord.optional(),
  custom_writer: z.string().optional(),
});

/** `retry_config` (the Python keys; `max_attempts` from its JSON schema too). */
export const RetrySchema = z.strictObject({
  max_retries: nonNegInt.optional(),
  max_attempts: posInt.optional(),
  initial_delay_seconds: nonNegNumber.optional(),
  retry_delay_seconds: nonNegNumber.optional(),
  max_delay_seconds: posNumber.optional(),
  backoff_multiplier: z.preprocess(toNumber, z.number().min(1)).optional(),
  retryable_exit_codes: z.array(intLike).optional(),
  retryable_error_patterns: z.array(z.string()).nullable().optional(),
  retryable_errors: z.array(z.string()).nullable().optional(),
});

/** A table name for the Postgres state store: `name` or `schema.name`, lower-case identifiers. */
const SQL_TABLE_RE = /^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/;

/**
 * `state`: `{path}` / `{kind: file, path}` (a JSON file) or `{kind: postgres,
 * url, table}` (one row per job in a table that many machines share).
 */
export const StateSchema = z
  .strictObject({
    kind: z.enum(['file', 'postgres']).optional(),
    path: z.string().min(1).optional(),
    url: z.string().min(1).optional(),
    table: z.string().regex(SQL_TABLE_RE, 'must be a lower-case SQL name, optionally schema-qualified (dativo.state)').optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.kind ?? 'file') === 'file') {
      if (v.url !== undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'only for kind: postgres' });
      if (v.table !== undefined) ctx.addIssue({ code: 'custom', path: ['table'], message: 'only for kind: postgres' });
    } else {
      if (v.url === undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required for kind: postgres (postgres://user:password@host:5432/db)' });
      else if (!/^postgres(ql)?:\/\//i.test(v.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be a postgres:// or postgresql:// URL' });
      if (v.path !== undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'only for kind: file' });
    }
  });

/** `lock`: which per-job run lock `dativo run` takes (default: follows `state`). */
export const LockSchema = z
  .strictObject({
    kind: z.enum(['file', 'postgres']),
    url: z.string().min(1).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.kind === 'postgres') {
      if (v.url !== undefined && !/^postgres(ql)?:\/\//i.test(v.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be a postgres:// or postgresql:// URL' });
    } else if (v.url !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'only for kind: postgres (a file lock lives next to the state file)' });
    }
  });

export const LOG_LEVELS: Record<string, string> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
  silent: 'silent',
};

/** The job file. Closed at the top level. */
export const JobSchema = z.strictObject({
  $schema: z.string().optional(),
  tenant_id: stringLike.pipe(
    z
      .string()
      .min(1)
      .regex(/^(?!\.\.?$)[^/\\]+$/, 'must not contain "/" or "\\" or be "." or ".." (it names state and reject folders)'),
  ),
  environment: stringLike.optional(),
  source_connector: z.string().min(1).optional(),
  source_connector_path: z.string().min(1).optional(),
  target_connector: z.string().min(1).optional(),
  target_connector_path: z.string().min(1).optional(),
  asset: stringLike.optional(),
  asset_path: z.string().min(1).optional(),
  source: SourceSchema.optional(),
  target: TargetSchema.optional(),
  sync_mode: z.enum(['full_refresh', 'incremental_append']).optional(),
  schema_validation_mode: z.enum(['strict', 'warn']).optional(),
  reject_dir: z.string().min(1).optional(),
  state: StateSchema.optional(),
  lock: LockSchema.optional(),
  retry_config: RetrySchema.nullable().optional(),
  logging: z
    .strictObject({
      level: z
        .string()
        .refine((s) => s.toLowerCase() in LOG_LEVELS, { message: `must be one of ${Object.keys(LOG_LEVELS).join(', ')} (any case)` })
        .optional(),
      redaction: boolLike.optional(),
    })
    .nullable()
    .optional(),
  catalog: anyRecord.nullable().optional(),
  classification_overrides: z.record(z.string(), stringLike).nullable().optional(),
  finops: anyRecord.nullable().optional(),
  governance_overrides: anyRecord.nullable().optional(),
  plugins: anyRecord.nullable().optional(),
  metrics: anyRecord.nullable().optional(),
  infrastructure: anyRecord.nullable().optional(),
});
export type JobInput = z.infer<typeof JobSchema>;
