/**
 * Two independent Parquet readers for tests: DuckDB (C++) and hyparquet
 * (pure JS). Both return rows in the canonical value forms of lib/types.ts
 * (bigint for long/timestamp µs, days for dates, exact decimal strings,
 * Uint8Array for binary), so tests can compare them to the input directly.
 */
import { DuckDBInstance, DuckDBBlobValue, DuckDBDateValue, DuckDBDecimalValue, DuckDBTimestampTZValue, DuckDBTimestampValue } from '@duckdb/node-api';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { Row } from '../../lib/types.js';

/** Format an unscaled decimal integer at `scale`: (-1250n, 2) → "-12.50". */
export function formatDecimal(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  let digits = (neg ? -unscaled : unscaled).toString();
  if (scale === 0) return (neg ? '-' : '') + digits;
  digits = digits.padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** What DuckDB sees in a file. */
export interface DuckDBReadBack {
  /** DESCRIBE: column name → DuckDB type, e.g. `TIMESTAMP WITH TIME ZONE`, `DECIMAL(38,9)`. */
  types: Record<string, string>;
  /** parquet_schema: column name → field_id. */
  fieldIds: Record<string, number | null>;
  /** parquet_schema: column name → repetition (`REQUIRED` / `OPTIONAL`). */
  repetition: Record<string, string>;
  /** parquet_schema: column name → logical type text. */
  logicalTypes: Record<string, string | null>;
  /** parquet_kv_metadata as strings. */
  keyValue: Record<string, string>;
  /** Row counts of each row group, in order. */
  rowGroupRows: number[];
  /** Compression codec of the first column chunk. */
  compression: string | undefined;
  rows: Row[];
}

/** A DuckDB value in canonical form (decimal string, µs bigint, days, Uint8Array). */
export function duckToCanonical(v: unknown): unknown {
  if (v instanceof DuckDBDecimalValue) return formatDecimal(v.value, v.scale);
  if (v instanceof DuckDBTimestampTZValue || v instanceof DuckDBTimestampValue) return v.micros;
  if (v instanceof DuckDBDateValue) return v.days;
  if (v instanceof DuckDBBlobValue) return Uint8Array.from(v.bytes);
  return v;
}

const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * Read a whole Parquet file with DuckDB (extension autoinstall/autoload off,
 * so nothing is fetched from the network).
 */
export async function readParquetWithDuckDB(path: string): Promise<DuckDBReadBack> {
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    threads: '1',
  });
  const conn = await instance.connect();
  try {
    const p = sqlString(path);
    const out: DuckDBReadBack = {
      types: {},
      fieldIds: {},
      repetition: {},
      logicalTypes: {},
      keyValue: {},
      rowGroupRows: [],
      compression: undefined,
      rows: [],
    };
    for (const r of (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${p}, hive_partitioning = false)`)).getRowObjectsJS()) {
      out.types[String(r.column_name)] = String(r.column_type);
    }
    const schema = (await conn.runAndReadAll(`SELECT name, field_id, repetition_type, logical_type FROM parquet_schema(${p})`)).getRowObjectsJS();
    for (const r of schema.slice(1)) {
      const name = String(r.name);
      out.fieldIds[name] = r.field_id === null ? null : Number(r.field_id);
      out.repetition[name] = String(r.repetition_type);
      out.logicalTypes[name] = r.logical_type === null ? null : String(r.logical_type);
    }
    for (const r of (await conn.runAndReadAll(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata(${p})`)).getRowObjectsJS()) {
      out.keyValue[String(r.k)] = String(r.v);
    }
    const meta = (
      await conn.runAndReadAll(
        `SELECT row_group_id, any_value(row_group_num_rows) AS n, any_value(compression) AS c FROM parquet_metadata(${p}) GROUP BY row_group_id ORDER BY row_group_id`,
      )
    ).getRowObjectsJS();
    out.rowGroupRows = meta.map((r) => Number(r.n));
    out.compression = meta[0] === undefined ? undefined : String(meta[0].c);
    const data = await conn.runAndReadAll(`SELECT * FROM read_parquet(${p}, hive_partitioning = false)`);
    out.rows = data.getRowObjects().map((r) => {
      const row: Row = {};
      for (const [k, v] of Object.entries(r)) row[k] = duckToCanonical(v);
      return row;
    });
    return out;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A Parquet schema element as hyparquet reports it (the parts tests check). */
export interface HyparquetColumn {
  name: string;
  fieldId: number | undefined;
  physicalType: string | undefined;
  repetition: string | undefined;
  logicalType: Record<string, unknown> | undefined;
  precision?: number;
  scale?: number;
}

/** What hyparquet sees in a file. */
export interface HyparquetReadBack {
  columns: HyparquetColumn[];
  numRows: number;
  keyValue: Record<string, string>;
  rowGroupRows: number[];
  /** Start offset of each row group (first dictionary or data page). */
  rowGroupOffsets: number[];
  /** Codec of the first column chunk, e.g. `ZSTD`. */
  codec: string | undefined;
  rows: Row[];
}

function beTwosComplement(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return BigInt.asIntN(bytes.length * 8, v);
}

/**
 * Read a whole Parquet file with hyparquet (+ hyparquet-compressors for
 * ZSTD etc.). Decimal logical types are stripped before decoding so that
 * hyparquet returns the physical values (it would otherwise convert them
 * to inexact JS numbers); they are formatted exactly here.
 */
export async function readParquetWithHyparquet(path: string): Promise<HyparquetReadBack> {
  const file = await asyncBufferFromFile(path);
  const metadata = await parquetMetadataAsync(file);
  const columns: HyparquetColumn[] = metadata.schema.slice(1).map((e) => ({
    name: e.name,
    fieldId: e.field_id,
    physicalType: e.type,
    repetition: e.repetition_type,
    logicalType: e.logical_type as Record<string, unknown> | undefined,
    ...(e.precision !== undefined ? { precision: e.precision } : {}),
    ...(e.scale !== undefined ? { scale: e.scale } : {}),
  }));
  const decimalScale = new Map<string, number>();
  const raw = {
    ...metadata,
    schema: metadata.schema.map((e) => {
      if (e.converted_type !== 'DECIMAL' && e.logical_type?.type !== 'DECIMAL') return e;
      decimalScale.set(e.name, e.scale ?? 0);
      const { converted_type: _c, logical_type: _l, ...rest } = e;
      return rest;
    }),
  };
  const objects = await parquetReadObjects({
    file,
    metadata: raw,
    compressors,
    utf8: false,
    parsers: {
      timestampFromMicroseconds: (micros: bigint) => micros,
      dateFromDays: (days: number) => days,
    },
  });
  const rows = objects.map((o) => {
    const row: Row = { ...o };
    for (const [name, scale] of decimalScale) {
      const v = row[name];
      if (v === null || v === undefined) continue;
      const unscaled = v instanceof Uint8Array ? beTwosComplement(v) : BigInt(v as number | bigint);
      row[name] = formatDecimal(unscaled, scale);
    }
    return row;
  });
  const keyValue: Record<string, string> = {};
  for (const kv of metadata.key_value_metadata ?? []) keyValue[kv.key] = kv.value ?? '';
  return {
    columns,
    numRows: Number(metadata.num_rows),
    keyValue,
    rowGroupRows: metadata.row_groups.map((g) => Number(g.num_rows)),
    rowGroupOffsets: metadata.row_groups.map((g) => {
      const c = g.columns[0]?.meta_data;
      return Number(c?.dictionary_page_offset ?? c?.data_page_offset ?? 0);
    }),
    codec: metadata.row_groups[0]?.columns[0]?.meta_data?.codec,
    rows,
  };
}
