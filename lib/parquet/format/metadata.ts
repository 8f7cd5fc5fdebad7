/**
 * The Parquet schema of an Arrow schema (the mapping parquet-rs used, so
 * files keep their types), and the footer (FileMetaData) in Thrift compact.
 */
import { Type, type Field, type Schema } from 'apache-arrow';
import { DativoError } from '../../errors.js';
import { CompactWriter, T } from './thrift.js';

/** Parquet physical types. */
export const PHYSICAL = { BOOLEAN: 0, INT32: 1, INT64: 2, FLOAT: 4, DOUBLE: 5, BYTE_ARRAY: 6, FIXED_LEN_BYTE_ARRAY: 7 } as const;
/** Parquet encodings used here. */
export const ENCODING = { PLAIN: 0, RLE: 3, RLE_DICTIONARY: 8 } as const;
/** Parquet page types used here. */
export const PAGE = { DATA_PAGE: 0, DICTIONARY_PAGE: 2 } as const;

const CONVERTED = { UTF8: 0, DECIMAL: 5, DATE: 6, TIMESTAMP_MICROS: 10 } as const;

/** How Arrow values of a column become Parquet values. */
export type SourceKind = 'fixed' | 'decimal' | 'bool' | 'bytes';

/** One leaf column of the file: its schema element and how it is encoded. */
export interface ColumnSpec {
  name: string;
  physical: number;
  /** Bytes per value for fixed-width physical types (FLBA: type_length); 0 for BYTE_ARRAY and BOOLEAN. */
  width: number;
  optional: boolean;
  source: SourceKind;
  /** Signed comparison (ints, decimals, dates, timestamps, floats): the legacy min/max fields are written too, as parquet-rs does. */
  signedOrder: boolean;
  dictionary: boolean;
  statistics: boolean;
  fieldId: number | undefined;
  converted: number | undefined;
  logical: 'string' | 'date' | 'timestamp' | 'decimal' | undefined;
  scale: number;
  precision: number;
}

/** Bytes of a FIXED_LEN_BYTE_ARRAY decimal of `precision` digits (parquet-rs's rule). */
export function decimalLength(precision: number): number {
  return Math.ceil((Math.log2(10 ** precision) + 1) / 8);
}

function unsupported(f: Field, why = `Arrow type ${String(f.type)}`): DativoError {
  return new DativoError('INTERNAL', `parquet encoding: column ${f.name}: ${why} is not supported`, { context: { column: f.name } });
}

/**
 * The column of Arrow field `f`. `dictionary` and `statistics` are the
 * caller's choice; dictionary encoding is dropped where Parquet or today's
 * files have none (booleans, fixed-length decimals).
 */
export function columnSpec(f: Field, dictionary: boolean, statistics: boolean): ColumnSpec {
  const id = f.metadata.get('PARQUET:field_id');
  const base = {
    name: f.name,
    optional: f.nullable,
    fieldId: id === undefined ? undefined : Number(id),
    converted: undefined as number | undefined,
    logical: undefined as ColumnSpec['logical'],
    scale: 0,
    precision: 0,
    statistics,
    dictionary,
  };
  const t = f.type as { typeId: Type; bitWidth?: number; isSigned?: boolean; precision?: number; scale?: number; unit?: number; timezone?: string | null };
  switch (t.typeId) {
    case Type.Utf8:
      return { ...base, physical: PHYSICAL.BYTE_ARRAY, width: 0, source: 'bytes', signedOrder: false, converted: CONVERTED.UTF8, logical: 'string' };
    case Type.Binary:
      return { ...base, physical: PHYSICAL.BYTE_ARRAY, width: 0, source: 'bytes', signedOrder: false };
    case Type.Int:
      if (t.isSigned !== true || (t.bitWidth !== 32 && t.bitWidth !== 64)) throw unsupported(f);
      return { ...base, physical: t.bitWidth === 32 ? PHYSICAL.INT32 : PHYSICAL.INT64, width: t.bitWidth / 8, source: 'fixed', signedOrder: true };
    case Type.Float:
      // precision: 1 single, 2 double
      if (t.precision === 1) return { ...base, physical: PHYSICAL.FLOAT, width: 4, source: 'fixed', signedOrder: true };
      if (t.precision === 2) return { ...base, physical: PHYSICAL.DOUBLE, width: 8, source: 'fixed', signedOrder: true };
      throw unsupported(f);
    case Type.Bool:
      return { ...base, physical: PHYSICAL.BOOLEAN, width: 0, source: 'bool', signedOrder: false, dictionary: false };
    case Type.Date:
      if (t.unit !== 0) throw unsupported(f, 'a millisecond date');
      return { ...base, physical: PHYSICAL.INT32, width: 4, source: 'fixed', signedOrder: true, converted: CONVERTED.DATE, logical: 'date' };
    case Type.Timestamp:
      // unit 2 = microsecond; UTC-adjusted only (the engine writes µs UTC).
      if (t.unit !== 2 || t.timezone == null) throw unsupported(f, 'a timestamp other than µs UTC');
      return { ...base, physical: PHYSICAL.INT64, width: 8, source: 'fixed', signedOrder: true, converted: CONVERTED.TIMESTAMP_MICROS, logical: 'timestamp' };
    case Type.Decimal: {
      const precision = t.precision!;
      if (t.bitWidth !== 128) throw unsupported(f, 'a decimal other than 128-bit');
      const dec = { ...base, source: 'decimal' as const, signedOrder: true, converted: CONVERTED.DECIMAL, logical: 'decimal' as const, scale: t.scale!, precision };
      if (precision <= 9) return { ...dec, physical: PHYSICAL.INT32, width: 4 };
      if (precision <= 18) return { ...dec, physical: PHYSICAL.INT64, width: 8 };
      return { ...dec, physical: PHYSICAL.FIXED_LEN_BYTE_ARRAY, width: decimalLength(precision), dictionary: false };
    }
    default:
      throw unsupported(f);
  }
}

/** The Parquet columns of an Arrow schema (flat: no nested types). */
export function columnSpecs(schema: Schema, dictionary: (name: string) => boolean, statistics: (name: string) => boolean): ColumnSpec[] {
  return schema.fields.map((f) => columnSpec(f, dictionary(f.name), statistics(f.name)));
}

/** Column statistics as stored: PLAIN-encoded bounds (absent when unknown). */
export interface ChunkStats {
  nullCount: number;
  min: Uint8Array | undefined;
  max: Uint8Array | undefined;
}

/** A written column chunk, for the footer. */
export interface ChunkMeta {
  spec: ColumnSpec;
  codec: number;
  numValues: number;
  uncompressed: number;
  compressed: number;
  dataPageOffset: number;
  dictionaryPageOffset: number | undefined;
  dataPages: number;
  stats: ChunkStats | undefined;
}

/** A written row group, for the footer. */
export interface RowGroupMeta {
  numRows: number;
  fileOffset: number;
  columns: ChunkMeta[];
}

function writeColumnMeta(w: CompactWriter, c: ChunkMeta): void {
  const dict = c.dictionaryPageOffset !== undefined;
  w.i32(1, c.spec.physical);
  // Encodings in parquet-rs's order: values, levels, indices.
  w.list(2, T.I32, dict ? 3 : 2);
  w.rawI32(ENCODING.PLAIN);
  w.rawI32(ENCODING.RLE);
  if (dict) w.rawI32(ENCODING.RLE_DICTIONARY);
  w.list(3, T.BINARY, 1);
  w.rawBinary(new TextEncoder().encode(c.spec.name));
  w.i32(4, c.codec);
  w.i64(5, c.numValues);
  w.i64(6, c.uncompressed);
  w.i64(7, c.compressed);
  w.i64(9, c.dataPageOffset);
  if (dict) w.i64(11, c.dictionaryPageOffset!);
  const s = c.stats;
  if (s !== undefined) {
    w.begin(12);
    if (s.max !== undefined && c.spec.signedOrder) w.binary(1, s.max);
    if (s.min !== undefined && c.spec.signedOrder) w.binary(2, s.min);
    w.i64(3, s.nullCount);
    if (s.max !== undefined) w.binary(5, s.max);
    if (s.min !== undefined) w.binary(6, s.min);
    if (s.max !== undefined) w.bool(7, true);
    if (s.min !== undefined) w.bool(8, true);
    w.end();
  }
  w.list(13, T.STRUCT, dict ? 2 : 1);
  w.beginElement();
  w.i32(1, PAGE.DATA_PAGE);
  w.i32(2, dict ? ENCODING.RLE_DICTIONARY : ENCODING.PLAIN);
  w.i32(3, c.dataPages);
  w.end();
  if (dict) {
    w.beginElement();
    w.i32(1, PAGE.DICTIONARY_PAGE);
    w.i32(2, ENCODING.PLAIN);
    w.i32(3, 1);
    w.end();
  }
}

function writeSchemaElement(w: CompactWriter, s: ColumnSpec): void {
  w.beginElement();
  w.i32(1, s.physical);
  if (s.physical === PHYSICAL.FIXED_LEN_BYTE_ARRAY) w.i32(2, s.width);
  w.i32(3, s.optional ? 1 : 0);
  w.string(4, s.name);
  if (s.converted !== undefined) w.i32(6, s.converted);
  if (s.logical === 'decimal') {
    w.i32(7, s.scale);
    w.i32(8, s.precision);
  }
  if (s.fieldId !== undefined) w.i32(9, s.fieldId);
  if (s.logical !== undefined) {
    w.begin(10);
    switch (s.logical) {
      case 'string':
        w.begin(1);
        w.end();
        break;
      case 'decimal':
        w.begin(5);
        w.i32(1, s.scale);
        w.i32(2, s.precision);
        w.end();
        break;
      case 'date':
        w.begin(6);
        w.end();
        break;
      case 'timestamp':
        w.begin(8);
        w.bool(1, true);
        w.begin(2);
        w.begin(2); // MICROS
        w.end();
        w.end();
        w.end();
        break;
    }
    w.end();
  }
  w.end();
}

/** FileMetaData in Thrift compact bytes (without the length and magic that follow it). */
export function encodeFooter(
  columns: readonly ColumnSpec[],
  rowGroups: readonly RowGroupMeta[],
  keyValue: Readonly<Record<string, string>>,
  createdBy: string,
): Uint8Array {
  const w = new CompactWriter(4096);
  w.beginElement();
  w.i32(1, 1);
  w.list(2, T.STRUCT, columns.length + 1);
  w.beginElement();
  w.string(4, 'arrow_schema');
  w.i32(5, columns.length);
  w.end();
  for (const c of columns) writeSchemaElement(w, c);
  w.i64(3, rowGroups.reduce((n, g) => n + g.numRows, 0));
  w.list(4, T.STRUCT, rowGroups.length);
  rowGroups.forEach((g, ordinal) => {
    w.beginElement();
    w.list(1, T.STRUCT, g.columns.length);
    let uncompressed = 0;
    let compressed = 0;
    for (const c of g.columns) {
      w.beginElement();
      w.i64(2, 0);
      w.begin(3);
      writeColumnMeta(w, c);
      w.end();
      w.end();
      uncompressed += c.uncompressed;
      compressed += c.compressed;
    }
    w.i64(2, uncompressed);
    w.i64(3, g.numRows);
    w.i64(5, g.fileOffset);
    w.i64(6, compressed);
    w.i16(7, ordinal);
    w.end();
  });
  const kv = Object.entries(keyValue);
  if (kv.length > 0) {
    w.list(5, T.STRUCT, kv.length);
    for (const [k, v] of kv) {
      w.beginElement();
      w.string(1, k);
      w.string(2, v);
      w.end();
    }
  }
  w.string(6, createdBy);
  w.list(7, T.STRUCT, columns.length);
  for (let i = 0; i < columns.length; i++) {
    // ColumnOrder union, field 1: TypeDefinedOrder (an empty struct).
    w.beginElement();
    w.begin(1);
    w.end();
    w.end();
  }
  w.end();
  return w.bytes().slice();
}
