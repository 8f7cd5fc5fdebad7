/** Shared builders for the Iceberg tests. */
import type { AssetField, DataFile, FieldType, Row } from '../../../lib/types.js';
import { once } from 'node:events';
import { stringifyJson } from '../../../lib/iceberg/json.js';
import type { IcebergSchema } from '../../../lib/iceberg/schema.js';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import type { Storage } from '../../../lib/storage/types.js';

/** An asset field; `fieldId` 0 until a schema assigns one. */
export function field(name: string, type: FieldType, required = false, fieldId = 0): AssetField {
  const typeName = type.kind === 'decimal' ? `decimal(${type.precision},${type.scale})` : type.kind;
  return { name, type, typeName, required, fieldId };
}

/** The two system columns every dativo table has. */
export function systemFields(): AssetField[] {
  return [field('_dativo_ingested_at', { kind: 'timestamp' }, true), field('_dativo_run_id', { kind: 'string' }, true)];
}

/** A small orders asset plus system columns. */
export function orderFields(): AssetField[] {
  return [
    field('id', { kind: 'long' }, true),
    field('customer', { kind: 'string' }),
    field('amount', { kind: 'decimal', precision: 12, scale: 2 }),
    field('qty', { kind: 'int' }),
    field('score', { kind: 'double' }),
    field('paid', { kind: 'boolean' }),
    field('day', { kind: 'date' }),
    field('note', { kind: 'json' }),
    ...systemFields(),
  ];
}


export const DAY_US = 86_400_000_000n;

/** Days since epoch of a microsecond timestamp. */
export function dayOf(us: bigint): number {
  return Number(us / DAY_US);
}

/** `YYYY-MM-DD` of days since epoch. */
export function isoDay(days: number): string {
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** Order rows `from..to-1` ingested at `ingestedAt` (µs) by `runId`. */
export function orderRows(from: number, to: number, runId: string, ingestedAt: bigint): Row[] {
  const rows: Row[] = [];
  for (let i = from; i < to; i++) {
    rows.push({
      id: 9_007_199_254_740_993n + BigInt(i),
      customer: i % 7 === 0 ? null : `customer-${String(i).padStart(4, '0')}`,
      amount: `${i}.${String(i % 100).padStart(2, '0')}`,
      qty: i % 5 === 0 ? null : i,
      score: i / 4,
      paid: i % 2 === 0,
      day: 20000 + i,
      note: JSON.stringify({ i }),
      _dativo_ingested_at: ingestedAt + BigInt(i),
      _dativo_run_id: runId,
    });
  }
  return rows;
}

/**
 * Write `rows` as real Parquet files with the engine's sink under
 * `<tableRel>/data/ingest_date=<day>/`, stamping the table's field ids and
 * the `iceberg.schema` footer key (as Java does).
 */
export async function writeDataFiles(opts: {
  storage: Storage;
  tableRel: string;
  fields: AssetField[];
  schema: IcebergSchema;
  rows: Row[];
  runId: string;
  ingestDay: number;
  rowsPerFile?: number;
}): Promise<DataFile[]> {
  const files: DataFile[] = [];
  const chunk = opts.rowsPerFile ?? opts.rows.length;
  for (let start = 0, n = 0; start < opts.rows.length; start += chunk, n++) {
    const sink = parquetSink({
      storage: opts.storage,
      fields: opts.fields,
      directory: `${opts.tableRel}/data/ingest_date=${isoDay(opts.ingestDay)}`,
      relativeTo: opts.tableRel,
      filePrefix: `part-${opts.runId}-${n}`,
      partition: { ingest_date: opts.ingestDay },
      footerMetadata: { 'iceberg.schema': stringifyJson(opts.schema) },
    });
    sink.end(opts.rows.slice(start, start + chunk));
    await once(sink, 'finish');
    files.push(...sink.files);
  }
  return files;
}
