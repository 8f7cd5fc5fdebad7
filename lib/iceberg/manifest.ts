/**
 * Iceberg v2 manifests (`manifest_entry` / `data_file` r2) and manifest lists
 * (`manifest_file`), with every Iceberg id attribute in the Avro schema, the
 * `logicalType: map` array encoding of the metric maps, and the header
 * metadata Java and PyIceberg write (spec §"Manifests", reference iceberg.md A2).
 */
import { DativoError } from '../errors.js';
import type { DataFile } from '../types.js';
import { avroType, readAvroFile, writeAvroFile, type AvroSchema } from './avro.js';
import { stringifyJson } from './json.js';
import type { BoundPartitionField, PartitionSpec } from './partition.js';
import { parseDecimal, type IcebergSchema, type IcebergType } from './schema.js';
import { decimalFixedSize, encodeBound, twosComplementBytes, unscaledDecimal } from './values.js';

/** Manifest entry status. */
export const EntryStatus = { EXISTING: 0, ADDED: 1, DELETED: 2 } as const;

function optional(name: string, fieldId: number, type: unknown): Record<string, unknown> {
  return { name, type: ['null', type], default: null, 'field-id': fieldId };
}

function metricMap(name: string, fieldId: number, keyId: number, valueId: number, valueType: string): Record<string, unknown> {
  return optional(name, fieldId, {
    type: 'array',
    logicalType: 'map',
    items: {
      type: 'record',
      name: `k${keyId}_v${valueId}`,
      fields: [
        { name: 'key', type: 'int', 'field-id': keyId },
        { name: 'value', type: valueType, 'field-id': valueId },
      ],
    },
  });
}

/** Avro schema of a partition value of Iceberg type `t` (Iceberg → Avro mapping). */
export function avroTypeOfPartition(t: IcebergType): unknown {
  if (typeof t !== 'string') throw new DativoError('CATALOG_INVALID', `nested partition result type ${JSON.stringify(t)} is not supported`);
  switch (t) {
    case 'boolean':
    case 'int':
    case 'long':
    case 'float':
    case 'double':
    case 'string':
      return t;
    case 'binary':
      return 'bytes';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'time':
      return { type: 'long', logicalType: 'time-micros' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': false };
    case 'timestamptz':
      return { type: 'long', logicalType: 'timestamp-micros', 'adjust-to-utc': true };
    case 'uuid':
      return { type: 'fixed', name: 'uuid_fixed', size: 16, logicalType: 'uuid' };
    default: {
      const d = parseDecimal(t);
      if (d) {
        return { type: 'fixed', name: `decimal_${d.precision}_${d.scale}`, size: decimalFixedSize(d.precision), logicalType: 'decimal', precision: d.precision, scale: d.scale };
      }
      const fixed = /^fixed\[(\d+)\]$/.exec(t);
      if (fixed) return { type: 'fixed', name: `fixed_${fixed[1]}`, size: Number(fixed[1]) };
      throw new DativoError('CATALOG_INVALID', `partition result type ${t} is not supported`);
    }
  }
}

/** Partition value in its Avro form (decimal → fixed bytes, long → bigint). */
function avroPartitionValue(t: IcebergType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (t === 'long' || t === 'timestamp' || t === 'timestamptz' || t === 'time') return typeof v === 'bigint' ? v : BigInt(v as number);
  const d = parseDecimal(t);
  if (d) {
    const n = unscaledDecimal(v, d.scale);
    if (n === undefined) throw new DativoError('INTERNAL', `partition value ${String(v)} is not a decimal of scale ${d.scale}`);
    return twosComplementBytes(n, decimalFixedSize(d.precision));
  }
  if (t === 'binary' && v instanceof Uint8Array) return Buffer.from(v);
  return v;
}

/** Avro writer schema of a v2 manifest for a given partition spec. */
export function manifestEntrySchema(partition: BoundPartitionField[]): AvroSchema {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      optional('snapshot_id', 1, 'long'),
      optional('sequence_number', 3, 'long'),
      optional('file_sequence_number', 4, 'long'),
      {
        name: 'data_file',
        'field-id': 2,
        type: {
          type: 'record',
          name: 'r2',
          fields: [
            { name: 'content', type: 'int', 'field-id': 134, doc: 'Contents of the file: 0=data, 1=position deletes, 2=equality deletes' },
            { name: 'file_path', type: 'string', 'field-id': 100, doc: 'Location URI with FS scheme' },
            { name: 'file_format', type: 'string', 'field-id': 101, doc: 'File format name: avro, orc, or parquet' },
            {
              name: 'partition',
              'field-id': 102,
              type: {
                type: 'record',
                name: 'r102',
                fields: partition.map((p) => optional(p.name, p.fieldId, avroTypeOfPartition(p.resultType))),
              },
            },
            { name: 'record_count', type: 'long', 'field-id': 103, doc: 'Number of records in the file' },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104, doc: 'Total file size in bytes' },
            metricMap('column_sizes', 108, 117, 118, 'long'),
            metricMap('value_counts', 109, 119, 120, 'long'),
            metricMap('null_value_counts', 110, 121, 122, 'long'),
            metricMap('nan_value_counts', 137, 138, 139, 'long'),
            metricMap('lower_bounds', 125, 126, 127, 'bytes'),
            metricMap('upper_bounds', 128, 129, 130, 'bytes'),
            optional('key_metadata', 131, 'bytes'),
            optional('split_offsets', 132, { type: 'array', items: 'long', 'element-id': 133 }),
            optional('equality_ids', 135, { type: 'array', items: 'int', 'element-id': 136 }),
            optional('sort_order_id', 140, 'int'),
          ],
        },
      },
    ],
  };
}

/** Avro writer schema of a v2 manifest list. */
export const MANIFEST_LIST_SCHEMA: AvroSchema = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500, doc: 'Location URI with FS scheme' },
    { name: 'manifest_length', type: 'long', 'field-id': 501, doc: 'Total file size in bytes' },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502, doc: 'Spec ID used to write' },
    { name: 'content', type: 'int', 'field-id': 517, doc: 'Contents of the manifest: 0=data, 1=deletes' },
    { name: 'sequence_number', type: 'long', 'field-id': 515, doc: 'Sequence number when the manifest was added' },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516, doc: 'Lowest sequence number in the manifest' },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503, doc: 'Snapshot ID that added the manifest' },
    { name: 'added_files_count', type: 'int', 'field-id': 504, doc: 'Added entry count' },
    { name: 'existing_files_count', type: 'int', 'field-id': 505, doc: 'Existing entry count' },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506, doc: 'Deleted entry count' },
    { name: 'added_rows_count', type: 'long', 'field-id': 512, doc: 'Added rows count' },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513, doc: 'Existing rows count' },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514, doc: 'Deleted rows count' },
    optional('partitions', 507, {
      type: 'array',
      'element-id': 508,
      items: {
        type: 'record',
        name: 'r508',
        fields: [
          { name: 'contains_null', type: 'boolean', 'field-id': 509, doc: 'True if any file has a null partition value' },
          optional('contains_nan', 518, 'boolean'),
          optional('lower_bound', 510, 'bytes'),
          optional('upper_bound', 511, 'bytes'),
        ],
      },
    }),
    optional('key_metadata', 519, 'bytes'),
  ],
};

/** `field_summary` (r508) of a manifest list row. */
export interface FieldSummary {
  contains_null: boolean;
  contains_nan: boolean | null;
  lower_bound: Buffer | null;
  upper_bound: Buffer | null;
}

/** One manifest list row (Avro field names). Longs are bigints. */
export interface ManifestListEntry {
  manifest_path: string;
  manifest_length: bigint;
  partition_spec_id: number;
  content: number;
  sequence_number: bigint;
  min_sequence_number: bigint;
  added_snapshot_id: bigint;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: bigint;
  existing_rows_count: bigint;
  deleted_rows_count: bigint;
  partitions: FieldSummary[] | null;
  key_metadata: Buffer | null;
}

type MetricPair<V> = { key: number; value: V };

/** Numeric view of a partition value for ordering summaries. */
function compareValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if ((typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'bigint' || typeof b === 'number')) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const x = Buffer.from(a, 'utf8');
    return x.compare(Buffer.from(b, 'utf8'));
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).compare(Buffer.from(b));
  return 0;
}

/** Result of {@link buildManifest}. */
export interface BuiltManifest {
  /** The manifest file bytes. */
  bytes: Buffer;
  addedFiles: number;
  addedRows: bigint;
  addedBytes: bigint;
  /** Field summaries for the manifest list row, in spec order. */
  partitions: FieldSummary[];
  /** Partitions the files are in, as {@link partitionKey}s (for `changed-partition-count`). */
  partitionKeys: Set<string>;
}

/** What {@link buildManifest} needs to know about the table. */
export interface ManifestContext {
  /** Table schema the files were written under (header `schema`; types for bounds). */
  schema: IcebergSchema;
  spec: PartitionSpec;
  partition: BoundPartitionField[];
  /** Snapshot id written into each ADDED entry. */
  snapshotId: bigint;
}

/**
 * The `data_file` (r2) record of one of our Parquet files. Metrics are keyed by
 * the table's field id of each column (by name); bounds are encoded with the
 * table's type. Every column is a flat primitive, so its value count is the
 * record count (nulls included, as the spec defines it).
 */
export function dataFileRecord(file: DataFile, ctx: ManifestContext): Record<string, unknown> {
  const byName = new Map(ctx.schema.fields.map((f) => [f.name, f]));
  const columnSizes: MetricPair<bigint>[] = [];
  const valueCounts: MetricPair<bigint>[] = [];
  const nullCounts: MetricPair<bigint>[] = [];
  const nanCounts: MetricPair<bigint>[] = [];
  const lower: MetricPair<Buffer>[] = [];
  const upper: MetricPair<Buffer>[] = [];
  const names = Object.keys(file.columns).sort((a, b) => (byName.get(a)?.id ?? 0) - (byName.get(b)?.id ?? 0));
  for (const name of names) {
    const stats = file.columns[name]!;
    const field = byName.get(name);
    if (!field) {
      throw new DativoError('SCHEMA_INCOMPATIBLE', `data file ${file.relativePath} has column "${name}", which the table schema does not have`, {
        context: { file: file.relativePath, columns: [name] },
      });
    }
    const id = field.id;
    if (stats.sizeBytes !== undefined) columnSizes.push({ key: id, value: BigInt(stats.sizeBytes) });
    valueCounts.push({ key: id, value: BigInt(file.recordCount) });
    nullCounts.push({ key: id, value: BigInt(stats.nullCount) });
    if ((field.type === 'float' || field.type === 'double') && stats.nanCount !== undefined) {
      nanCounts.push({ key: id, value: BigInt(stats.nanCount) });
    }
    const lo = encodeBound(field.type, stats.min, 'lower');
    const hi = encodeBound(field.type, stats.max, 'upper');
    if (lo) lower.push({ key: id, value: lo });
    if (hi) upper.push({ key: id, value: hi });
  }
  const partition = partitionRecord(file, ctx.partition);
  const splits = file.splitOffsets && file.splitOffsets.length > 0 ? [...file.splitOffsets].sort((a, b) => a - b).map((n) => BigInt(n)) : null;
  return {
    content: 0,
    file_path: file.uri,
    file_format: 'PARQUET',
    partition,
    record_count: BigInt(file.recordCount),
    file_size_in_bytes: BigInt(file.fileSizeBytes),
    column_sizes: columnSizes.length > 0 ? columnSizes : null,
    value_counts: valueCounts.length > 0 ? valueCounts : null,
    null_value_counts: nullCounts.length > 0 ? nullCounts : null,
    nan_value_counts: nanCounts.length > 0 ? nanCounts : null,
    lower_bounds: lower.length > 0 ? lower : null,
    upper_bounds: upper.length > 0 ? upper : null,
    key_metadata: null,
    split_offsets: splits,
    equality_ids: null,
    sort_order_id: null,
  };
}

/**
 * Field summaries (r508) of a manifest from the partition tuples of its
 * entries: null/NaN flags and the min/max non-null value of each field,
 * encoded with the field's result type.
 */
export function summarizePartitions(partition: BoundPartitionField[], tuples: unknown[][]): FieldSummary[] {
  return partition.map((p, i) => {
    let containsNull = false;
    let containsNan = false;
    let lo: unknown;
    let hi: unknown;
    for (const t of tuples) {
      const v = t[i];
      if (v === null || v === undefined) {
        containsNull = true;
        continue;
      }
      if (typeof v === 'number' && Number.isNaN(v)) {
        containsNan = true;
        continue;
      }
      if (lo === undefined || compareValues(v, lo) < 0) lo = v;
      if (hi === undefined || compareValues(v, hi) > 0) hi = v;
    }
    const floating = p.resultType === 'float' || p.resultType === 'double';
    return {
      contains_null: containsNull,
      contains_nan: floating ? containsNan : false,
      lower_bound: lo === undefined ? null : (encodeBound(p.resultType, lo, 'lower') ?? null),
      upper_bound: hi === undefined ? null : (encodeBound(p.resultType, hi, 'upper') ?? null),
    };
  });
}

/**
 * Build one manifest holding `files` as ADDED entries with `snapshot_id` set
 * and both sequence numbers null (inherited from the manifest list row, so
 * the file stays valid across commit retries — iceberg.md gotcha 5).
 */
export function buildManifest(files: DataFile[], ctx: ManifestContext): BuiltManifest {
  const entries = files.map((f) => ({
    status: EntryStatus.ADDED,
    snapshot_id: ctx.snapshotId,
    sequence_number: null,
    file_sequence_number: null,
    data_file: dataFileRecord(f, ctx),
  }));
  const partitions = summarizePartitions(ctx.partition, files.map((f) => ctx.partition.map((p) => p.valueOf(f))));
  const partitionKeys = new Set(files.map((f) => partitionKey(ctx.spec['spec-id'], partitionRecord(f, ctx.partition))));
  const bytes = writeAvroFile(manifestEntrySchema(ctx.partition), entries, {
    metadata: manifestHeader(ctx.schema, ctx.spec),
  });
  return {
    bytes,
    addedFiles: files.length,
    addedRows: files.reduce((s, f) => s + BigInt(f.recordCount), 0n),
    addedBytes: files.reduce((s, f) => s + BigInt(f.fileSizeBytes), 0n),
    partitions,
    partitionKeys,
  };
}

/** Header values of a manifest list. */
export interface ManifestListHeader {
  snapshotId: bigint;
  parentSnapshotId: bigint | null;
  sequenceNumber: bigint;
}

/** Encode a v2 manifest list (rows in the order given: new manifests first, then the parent's). */
export function buildManifestList(rows: ManifestListEntry[], header: ManifestListHeader): Buffer {
  return writeAvroFile(MANIFEST_LIST_SCHEMA, rows, {
    metadata: {
      'snapshot-id': header.snapshotId.toString(),
      'parent-snapshot-id': header.parentSnapshotId === null ? 'null' : header.parentSnapshotId.toString(),
      'sequence-number': header.sequenceNumber.toString(),
      'format-version': '2',
    },
  });
}

function bigOr(v: unknown, dflt: bigint): bigint {
  return typeof v === 'bigint' ? v : typeof v === 'number' ? BigInt(v) : dflt;
}

function intOr(v: unknown, dflt: number): number {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : dflt;
}

/**
 * Decode a manifest list into rows re-encodable under {@link MANIFEST_LIST_SCHEMA}
 * (fields another writer left out get their v2 defaults; unknown fields are dropped).
 */
export function readManifestList(buf: Buffer, what = 'manifest list'): ManifestListEntry[] {
  const file = readAvroFile(buf, what);
  return file.records.map((raw) => {
    const r = raw as Record<string, unknown>;
    const parts = r.partitions as Record<string, unknown>[] | null | undefined;
    return {
      manifest_path: String(r.manifest_path),
      manifest_length: bigOr(r.manifest_length, 0n),
      partition_spec_id: intOr(r.partition_spec_id, 0),
      content: intOr(r.content, 0),
      sequence_number: bigOr(r.sequence_number, 0n),
      min_sequence_number: bigOr(r.min_sequence_number, 0n),
      added_snapshot_id: bigOr(r.added_snapshot_id, 0n),
      added_files_count: intOr(r.added_files_count ?? r.added_data_files_count, 0),
      existing_files_count: intOr(r.existing_files_count ?? r.existing_data_files_count, 0),
      deleted_files_count: intOr(r.deleted_files_count ?? r.deleted_data_files_count, 0),
      added_rows_count: bigOr(r.added_rows_count, 0n),
      existing_rows_count: bigOr(r.existing_rows_count, 0n),
      deleted_rows_count: bigOr(r.deleted_rows_count, 0n),
      partitions: parts
        ? parts.map((p) => ({
            contains_null: Boolean(p.contains_null),
            contains_nan: typeof p.contains_nan === 'boolean' ? p.contains_nan : null,
            lower_bound: p.lower_bound ? Buffer.from(p.lower_bound as Uint8Array) : null,
            upper_bound: p.upper_bound ? Buffer.from(p.upper_bound as Uint8Array) : null,
          }))
        : null,
      key_metadata: r.key_metadata ? Buffer.from(r.key_metadata as Uint8Array) : null,
    };
  });
}

/** The parts of a manifest entry the writer needs (duplicate guard, reconciliation). */
export interface ManifestEntryInfo {
  status: number;
  /** Entry's snapshot id, or the manifest's `added_snapshot_id` when inherited. */
  snapshotId: bigint;
  content: number;
  filePath: string;
  recordCount: bigint;
  fileSizeBytes: bigint;
}

/** Decode a manifest's entries; `row` supplies inherited values. */
export function readManifestEntries(buf: Buffer, row: Pick<ManifestListEntry, 'added_snapshot_id'>, what = 'manifest'): ManifestEntryInfo[] {
  const file = readAvroFile(buf, what);
  return file.records.map((raw) => {
    const r = raw as Record<string, unknown>;
    const df = r.data_file as Record<string, unknown>;
    return {
      status: intOr(r.status, 1),
      snapshotId: bigOr(r.snapshot_id, row.added_snapshot_id),
      content: intOr(df.content, 0),
      filePath: String(df.file_path),
      recordCount: bigOr(df.record_count, 0n),
      fileSizeBytes: bigOr(df.file_size_in_bytes, 0n),
    };
  });
}

/** One live entry carried into a merged manifest, with every inherited value resolved. */
export interface CarriedEntry {
  snapshotId: bigint;
  sequenceNumber: bigint;
  fileSequenceNumber: bigint;
  /** The decoded `data_file` record. */
  dataFile: Record<string, unknown>;
}

type AvroField = { name: string; type: unknown; 'field-id'?: number };

function recordFields(t: unknown): AvroField[] | undefined {
  const rec = Array.isArray(t) ? t.find((x) => x !== 'null') : t;
  if (rec === null || typeof rec !== 'object' || (rec as { type?: unknown }).type !== 'record') return undefined;
  return (rec as { fields?: AvroField[] }).fields;
}

/** Our field for one of theirs: by Iceberg field id when they give one, else by name. */
function matchField(theirs: AvroField, ours: AvroField[]): AvroField | undefined {
  if (typeof theirs['field-id'] === 'number') return ours.find((f) => f['field-id'] === theirs['field-id']);
  return ours.find((f) => f.name === theirs.name);
}

/**
 * Copy record `value` (decoded under their field list) into our field list:
 * fields matched by id, else by name; a field we do not have must be null
 * (else undefined: it would be lost); a field they lack is null. `nested`
 * maps a field of ours to a converter of its value (the partition record).
 */
function remapRecord(
  value: Record<string, unknown>,
  theirs: AvroField[],
  ours: AvroField[],
  nested: Record<string, (v: unknown, theirType: unknown) => unknown> = {},
): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = Object.fromEntries(ours.map((f) => [f.name, null]));
  for (const tf of theirs) {
    const v = value[tf.name];
    const of = matchField(tf, ours);
    if (!of) {
      if (v !== null && v !== undefined) return undefined;
      continue;
    }
    const conv = nested[of.name];
    const mapped = conv ? conv(v, tf.type) : v;
    if (mapped === undefined) return undefined;
    out[of.name] = mapped ?? null;
  }
  return out;
}

/**
 * A converter from manifest entries written under `writer` (any writer's
 * Avro layout of the v2 `manifest_entry`: Java, PyIceberg, ours) to our
 * layout for `partition`, reading fields by Iceberg field id (by name when
 * the writer gave no ids). Undefined when the layouts cannot be matched at
 * all; the converter returns undefined for an entry that would lose a
 * non-null value or does not fit our schema.
 */
export function entryConverter(writer: AvroSchema, partition: BoundPartitionField[]): ((r: Record<string, unknown>) => Record<string, unknown> | undefined) | undefined {
  const oursSchema = manifestEntrySchema(partition);
  const ours = recordFields(oursSchema)!;
  const theirs = recordFields(writer);
  if (!theirs) return undefined;
  const ourDf = recordFields(ours.find((f) => f.name === 'data_file')!.type)!;
  const theirDfField = theirs.find((f) => f['field-id'] === 2 || (f['field-id'] === undefined && f.name === 'data_file'));
  const theirDf = theirDfField ? recordFields(theirDfField.type) : undefined;
  if (!theirDf) return undefined;
  const ourPart = recordFields(ourDf.find((f) => f.name === 'partition')!.type)!;
  const type = avroType(oursSchema);
  const partitionOf = (v: unknown, theirType: unknown): unknown => {
    const tf = recordFields(theirType);
    if (!tf || v === null || typeof v !== 'object') return undefined;
    // Every partition field of ours must be present in theirs (same spec), and no other.
    if (tf.length !== ourPart.length || !tf.every((f) => matchField(f, ourPart))) return undefined;
    return remapRecord(v as Record<string, unknown>, tf, ourPart);
  };
  return (r) => {
    const df = remapRecord(r[theirDfField!.name] as Record<string, unknown>, theirDf, ourDf, { partition: partitionOf });
    if (!df) return undefined;
    df.content ??= 0; // absent in v1 layouts: data
    const entry = remapRecord(r, theirs, ours, { data_file: () => df });
    if (!entry || !type.isValid(entry)) return undefined;
    return entry;
  };
}

/**
 * The live (ADDED/EXISTING) entries of a manifest as {@link CarriedEntry}s
 * in our layout, whichever writer's Avro layout the manifest has (see
 * {@link entryConverter}); undefined when some live entry cannot be
 * re-encoded under our writer schema without loss (e.g. a field we do not
 * write, or another partition record): such a manifest is carried as it is.
 */
export function carriedEntries(buf: Buffer, row: ManifestListEntry, partition: BoundPartitionField[], what = 'manifest'): CarriedEntry[] | undefined {
  const file = readAvroFile(buf, what);
  const convert = entryConverter(file.schema, partition);
  if (!convert) return undefined;
  const out: CarriedEntry[] = [];
  for (const raw of file.records) {
    const r = raw as Record<string, unknown>;
    const status = intOr(r.status, 1);
    if (status === EntryStatus.DELETED) continue;
    const entry = convert(r);
    if (!entry) return undefined;
    const resolved = resolvedSequence(r, row, what);
    out.push({ snapshotId: bigOr(r.snapshot_id, row.added_snapshot_id), ...resolved, dataFile: entry.data_file as Record<string, unknown> });
  }
  return out;
}

/** An entry's data and file sequence numbers, inherited from the manifest list row for ADDED entries that leave them null. */
function resolvedSequence(r: Record<string, unknown>, row: Pick<ManifestListEntry, 'sequence_number'>, what: string): { sequenceNumber: bigint; fileSequenceNumber: bigint } {
  const inherited = intOr(r.status, 1) === EntryStatus.ADDED;
  const seq = typeof r.sequence_number === 'bigint' ? r.sequence_number : inherited ? row.sequence_number : undefined;
  const fileSeq = typeof r.file_sequence_number === 'bigint' ? r.file_sequence_number : inherited ? row.sequence_number : undefined;
  if (seq === undefined || fileSeq === undefined) {
    throw new DativoError('CATALOG_INVALID', `${what}: EXISTING entry without sequence numbers`, { context: { file: what } });
  }
  return { sequenceNumber: seq, fileSequenceNumber: fileSeq };
}

/** What {@link deletedCopy} removed. */
export interface DeletedManifest {
  bytes: Buffer;
  /** Entries turned DELETED, by file content (0 data, 1 position deletes, 2 equality deletes). */
  files: number;
  records: bigint;
  fileSizeBytes: bigint;
  /** Per content: count of files and records. */
  byContent: Map<number, { files: number; records: bigint; bytes: bigint }>;
  minSequenceNumber: bigint;
  /** Partition tuple keys (`<spec id>:<values>`) of the removed files. */
  partitionKeys: Set<string>;
}

/**
 * The manifest that removes every live file of manifest `buf`: the same
 * entries, in the writer's own Avro layout and header (so nothing another
 * writer recorded is lost or re-interpreted), with status DELETED, our
 * snapshot id, and both sequence numbers written explicitly — what Java's
 * manifest filter writes for an overwrite. Entries already DELETED are
 * dropped. Undefined when the manifest holds no live entry.
 */
export function deletedCopy(buf: Buffer, row: ManifestListEntry, snapshotId: bigint, what = 'manifest'): DeletedManifest | undefined {
  const file = readAvroFile(buf, what);
  const fields = recordFields(file.schema) ?? [];
  for (const name of ['snapshot_id', 'sequence_number', 'file_sequence_number']) {
    if (!fields.some((f) => f.name === name)) {
      throw new DativoError('CATALOG_INVALID', `${what} has no ${name} field (not a v2 manifest): cannot record its files as deleted`, { context: { file: what } });
    }
  }
  const records: Record<string, unknown>[] = [];
  const byContent = new Map<number, { files: number; records: bigint; bytes: bigint }>();
  const partitionKeys = new Set<string>();
  let min: bigint | undefined;
  for (const raw of file.records) {
    const r = raw as Record<string, unknown>;
    if (intOr(r.status, 1) === EntryStatus.DELETED) continue;
    const { sequenceNumber, fileSequenceNumber } = resolvedSequence(r, row, what);
    records.push({ ...r, status: EntryStatus.DELETED, snapshot_id: snapshotId, sequence_number: sequenceNumber, file_sequence_number: fileSequenceNumber });
    const df = r.data_file as Record<string, unknown>;
    const content = intOr(df.content, row.content === 1 ? 1 : 0);
    const c = byContent.get(content) ?? { files: 0, records: 0n, bytes: 0n };
    c.files += 1;
    c.records += bigOr(df.record_count, 0n);
    c.bytes += bigOr(df.file_size_in_bytes, 0n);
    byContent.set(content, c);
    partitionKeys.add(partitionKey(row.partition_spec_id, df.partition));
    if (min === undefined || sequenceNumber < min) min = sequenceNumber;
  }
  if (records.length === 0) return undefined;
  const header = Object.fromEntries(Object.entries(file.metadata).filter(([k]) => !k.startsWith('avro.')));
  const codec = file.metadata['avro.codec'] === 'null' ? 'null' : 'deflate';
  const totals = [...byContent.values()];
  return {
    bytes: writeAvroFile(file.schema, records, { metadata: header, codec }),
    files: records.length,
    records: totals.reduce((s, c) => s + c.records, 0n),
    fileSizeBytes: totals.reduce((s, c) => s + c.bytes, 0n),
    byContent,
    minSequenceNumber: min!,
    partitionKeys,
  };
}

/**
 * A key identifying one partition of one spec, from a partition record in
 * its Avro form (decoded from a manifest or built by {@link partitionRecord}):
 * values in field order, bytes as hex, longs as decimal text.
 */
export function partitionKey(specId: number, partition: unknown): string {
  const values = partition !== null && typeof partition === 'object' ? Object.values(partition as Record<string, unknown>) : [];
  return `${specId}:${stringifyJson(values.map((v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : (v ?? null))))}`;
}

/** The Avro-form partition record of one of our data files under `partition`. */
export function partitionRecord(file: DataFile, partition: BoundPartitionField[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of partition) out[p.name] = avroPartitionValue(p.resultType, p.valueOf(file));
  return out;
}

/** Result of {@link buildMergedManifest}. */
export interface MergedManifest {
  bytes: Buffer;
  files: number;
  rows: bigint;
  minSequenceNumber: bigint;
  partitions: FieldSummary[];
}

/**
 * One manifest holding `entries` as EXISTING, with their original snapshot
 * ids and both sequence numbers written explicitly (they must never change).
 */
export function buildMergedManifest(entries: CarriedEntry[], ctx: Omit<ManifestContext, 'snapshotId'>): MergedManifest {
  const records = entries.map((e) => ({
    status: EntryStatus.EXISTING,
    snapshot_id: e.snapshotId,
    sequence_number: e.sequenceNumber,
    file_sequence_number: e.fileSequenceNumber,
    data_file: e.dataFile,
  }));
  const tuples = entries.map((e) => ctx.partition.map((p) => (e.dataFile.partition as Record<string, unknown> | undefined)?.[p.name] ?? null));
  return {
    bytes: writeAvroFile(manifestEntrySchema(ctx.partition), records, { metadata: manifestHeader(ctx.schema, ctx.spec) }),
    files: entries.length,
    rows: entries.reduce((s, e) => s + bigOr(e.dataFile.record_count, 0n), 0n),
    minSequenceNumber: entries.reduce((m, e) => (e.sequenceNumber < m ? e.sequenceNumber : m), entries[0]?.sequenceNumber ?? 0n),
    partitions: summarizePartitions(ctx.partition, tuples),
  };
}

/** Iceberg header keys of a v2 data manifest. */
function manifestHeader(schema: IcebergSchema, spec: PartitionSpec): Record<string, string> {
  return {
    schema: stringifyJson(schema),
    'schema-id': String(schema['schema-id']),
    'partition-spec': stringifyJson(spec.fields),
    'partition-spec-id': String(spec['spec-id']),
    'format-version': '2',
    content: 'data',
  };
}
