/**
 * Where an object's data files go inside its table and what they carry:
 * the `ingest_date=YYYY-MM-DD` partition of the run's start (UTC) when the
 * table is partitioned by ingest day (none when it is unpartitioned), file names
 * that never repeat across runs, the system columns, and (S3) the object
 * metadata the Python tool wrote.
 */
import type { PartitionLayout } from '../iceberg/partition.js';
import type { JobPlan } from '../plan.js';
import { parquetSink, type ParquetSink } from '../stages/parquet-sink.js';
import type { Storage } from '../storage/types.js';
import { INGESTED_AT_COLUMN, RUN_ID_COLUMN, type AssetField } from '../types.js';

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

/** The part of the Parquet sink's options that says where files go and what they carry. */
export interface DataFileLayout {
  /** Folder of the files, relative to the warehouse root. */
  directory: string;
  /** The table location the files' `relativePath` is relative to. */
  relativeTo: string;
  filePrefix: string;
  /** Partition values of every file (`ingest_date` in days since the epoch). */
  partition: Record<string, number>;
  /** Values of the system columns. */
  constants: Record<string, unknown>;
  /** S3 object metadata, for an S3 warehouse. */
  metadata?: Record<string, string>;
  footerMetadata: Record<string, string>;
}

/**
 * The layout of one object's files in a run that started at `started`:
 * `<table>/data/<name>=YYYY-MM-DD/` for a table partitioned by the ingest
 * day, `<table>/data/` for an unpartitioned one.
 */
export async function dataFileLayout(plan: JobPlan, tableLocation: string, partitioning: PartitionLayout, object: string, runId: string, started: Date): Promise<DataFileLayout> {
  const day = utcDay(started);
  const folder = partitioning.kind === 'ingest_day' ? `${partitioning.name}=${day.iso}` : undefined;
  // S3 object metadata as the Python tool wrote it (loaded on demand: the AWS SDK only when the warehouse is S3).
  const metadata = plan.target.warehouse.startsWith('s3')
    ? (await import('../storage/s3.js')).s3ObjectMetadata({
        asset: plan.asset,
        tenantId: plan.tenantId,
        runId,
        partition: folder ?? '',
        compression: plan.target.compression,
        now: started,
      })
    : undefined;
  return {
    directory: folder ? `${tableLocation}/data/${folder}` : `${tableLocation}/data`,
    relativeTo: tableLocation,
    filePrefix: `part-${runId}-${object.replace(/[^A-Za-z0-9_.-]/g, '_')}`,
    partition: partitioning.kind === 'ingest_day' ? { [partitioning.name]: day.days } : {},
    constants: { [INGESTED_AT_COLUMN]: BigInt(started.getTime()) * 1000n, [RUN_ID_COLUMN]: runId },
    ...(metadata ? { metadata } : {}),
    footerMetadata: { 'dativo.asset': `${plan.asset.name}:${plan.asset.version}`, 'dativo.object': object },
  };
}

/** Per-sink choices of a caller; the rest comes from the job's target and the layout. */
export interface LayoutSinkOptions {
  /** Rows per Arrow batch (default the target's `batch_rows`, else 10,000) and its byte bound (default 32 MiB). */
  batchRows?: number;
  batchBytes?: number;
  /** The sink's writable buffer in chunks (default 16: single rows). */
  highWaterMark?: number;
  signal?: AbortSignal;
}

/** The Parquet sink that writes one object's rows where {@link dataFileLayout} puts them (runs and replays alike). */
export function layoutSink(plan: JobPlan, storage: Storage, fields: AssetField[], layout: DataFileLayout, opts: LayoutSinkOptions = {}): ParquetSink {
  return parquetSink({
    storage,
    fields,
    constants: layout.constants,
    directory: layout.directory,
    relativeTo: layout.relativeTo,
    filePrefix: layout.filePrefix,
    partition: layout.partition,
    targetFileSizeBytes: plan.target.targetFileSizeBytes,
    rowGroupRows: plan.target.rowGroupRows,
    compression: plan.target.compression,
    // Single rows: the sink appends each into column buffers, so no Row[] batch is held.
    batchRows: opts.batchRows ?? plan.target.batchRows ?? 10_000,
    batchBytes: opts.batchBytes ?? 32 * 1024 * 1024,
    highWaterMark: opts.highWaterMark ?? 16,
    ...(layout.metadata ? { metadata: layout.metadata } : {}),
    footerMetadata: layout.footerMetadata,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}
