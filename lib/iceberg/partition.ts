/**
 * Partition specs: the one dativo creates (`ingest_date = day(_dativo_ingested_at)`)
 * and binding any table's default spec to our data files, so that a table
 * created by another engine is written under its own spec or refused clearly.
 */
import { DativoError } from '../errors.js';
import { INGESTED_AT_COLUMN, type DataFile } from '../types.js';
import type { TableMetadata } from './catalog.js';
import type { IcebergSchema, IcebergType } from './schema.js';

/** One partition field (v2: `field-id` is table-unique, from 1000). */
export interface PartitionField {
  'source-id': number;
  'field-id': number;
  name: string;
  transform: string;
  [key: string]: unknown;
}

export interface PartitionSpec {
  'spec-id': number;
  fields: PartitionField[];
}

/** Name of dativo's partition field, and the key of `DataFile.partition` holding its value (days since epoch). */
export const INGEST_DATE_PARTITION = 'ingest_date';

/** First partition field id (Java/PyIceberg): unpartitioned tables have `last-partition-id` 999. */
export const PARTITION_ID_START = 1000;

/**
 * The spec of a new dativo table: `ingest_date = day(_dativo_ingested_at)`,
 * field id 1000, spec id 0. Unpartitioned if the schema lacks the column.
 */
export function ingestDateSpec(schema: IcebergSchema): PartitionSpec {
  const src = schema.fields.find((f) => f.name === INGESTED_AT_COLUMN);
  if (!src) return { 'spec-id': 0, fields: [] };
  return {
    'spec-id': 0,
    fields: [{ name: INGEST_DATE_PARTITION, transform: 'day', 'source-id': src.id, 'field-id': PARTITION_ID_START }],
  };
}

/** The spec of a new table for the job's `target.partitioning` (`[]` → unpartitioned, `[ingest_date]` → {@link ingestDateSpec}). */
export function specForPartitioning(schema: IcebergSchema, partitioning: readonly string[]): PartitionSpec {
  return partitioning.includes(INGEST_DATE_PARTITION) ? ingestDateSpec(schema) : { 'spec-id': 0, fields: [] };
}

/**
 * How data files are laid out for a partition spec: no partition folder
 * (`none`), or one `<name>=YYYY-MM-DD` folder per ingest day (`ingest_day`,
 * spec `day(_dativo_ingested_at)` under any field name).
 */
export type PartitionLayout = { kind: 'none' } | { kind: 'ingest_day'; name: string };

/**
 * The layout of a table's default spec. `void` fields take no folder. A spec
 * with any other transform is refused (CATALOG_INVALID) before a file is
 * written: dativo cannot compute such values for a whole file.
 */
export function partitionLayout(metadata: TableMetadata, table: string): PartitionLayout {
  const spec = defaultSpec(metadata);
  const schemas = (metadata.schemas ?? []) as IcebergSchema[];
  const schema = schemas.find((s) => s['schema-id'] === metadata['current-schema-id']);
  const live = spec.fields.filter((f) => f.transform !== 'void');
  if (live.length === 0) return { kind: 'none' };
  const src = schema?.fields.find((f) => f.id === live[0]!['source-id']);
  if (live.length === 1 && live[0]!.transform === 'day' && src?.name === INGESTED_AT_COLUMN) return { kind: 'ingest_day', name: live[0]!.name };
  const what = live.map((f) => `${f.transform}(${schema?.fields.find((c) => c.id === f['source-id'])?.name ?? f['source-id']})`).join(', ');
  throw new DativoError('CATALOG_INVALID', `table ${table} is partitioned by ${what}; dativo can only write tables partitioned by day(${INGESTED_AT_COLUMN}) or unpartitioned`, {
    context: { table },
  });
}

/** The table's default partition spec. */
export function defaultSpec(metadata: TableMetadata): PartitionSpec {
  const specs = (metadata['partition-specs'] ?? []) as PartitionSpec[];
  const id = metadata['default-spec-id'] ?? 0;
  const spec = specs.find((s) => s['spec-id'] === id);
  if (!spec) throw new DativoError('CATALOG_INVALID', `table metadata has no partition spec ${String(id)}`);
  return spec;
}

/** Result type of a transform applied to a source type (spec "Partition Transforms"). */
export function partitionResultType(transform: string, sourceType: IcebergType): IcebergType {
  if (transform === 'day') return 'date';
  if (transform === 'year' || transform === 'month' || transform === 'hour') return 'int';
  if (transform.startsWith('bucket[')) return 'int';
  return sourceType; // identity, truncate[W], void
}

/** A partition field bound to a schema: how to get its value from one of our data files. */
export interface BoundPartitionField {
  name: string;
  fieldId: number;
  transform: string;
  resultType: IcebergType;
  /** The partition value of `file` (result-type canonical value or null). */
  valueOf(file: DataFile): unknown;
}

/**
 * Bind `spec` to `schema`. A field's value is taken from `DataFile.partition`
 * by field name; `day(_dativo_ingested_at)` under any name reads
 * `partition.ingest_date`; `void` is always null. A file lacking a value for
 * another transform is refused with CATALOG_INVALID (we cannot compute
 * partition values of a foreign spec from a whole file).
 */
export function bindSpec(spec: PartitionSpec, schema: IcebergSchema): BoundPartitionField[] {
  return spec.fields.map((pf) => {
    const src = schema.fields.find((f) => f.id === pf['source-id']);
    if (!src) {
      throw new DativoError('CATALOG_INVALID', `partition field ${pf.name} refers to column id ${pf['source-id']}, which the schema does not have`);
    }
    const resultType = partitionResultType(pf.transform, src.type);
    const isIngestDay = pf.transform === 'day' && src.name === INGESTED_AT_COLUMN;
    return {
      name: pf.name,
      fieldId: pf['field-id'],
      transform: pf.transform,
      resultType,
      valueOf(file: DataFile): unknown {
        if (pf.transform === 'void') return null;
        if (Object.hasOwn(file.partition, pf.name)) return file.partition[pf.name] ?? null;
        if (isIngestDay && Object.hasOwn(file.partition, INGEST_DATE_PARTITION)) return file.partition[INGEST_DATE_PARTITION] ?? null;
        throw new DativoError(
          'CATALOG_INVALID',
          `the table is partitioned by ${pf.transform}(${src.name}) as "${pf.name}", but data file ${file.relativePath} has no value for it; dativo can only write tables partitioned by day(${INGESTED_AT_COLUMN}) or by the partition columns of its target`,
          { context: { file: file.relativePath, partitionField: pf.name } },
        );
      },
    };
  });
}
