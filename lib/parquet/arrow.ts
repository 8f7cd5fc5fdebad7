/**
 * Rows of canonical values → one Arrow RecordBatch, with the Arrow buffers
 * built by hand (offsets, one UTF-8 buffer, packed bitmaps, typed arrays).
 * apache-arrow's generic builders cost more than the Parquet encoding itself
 * (reference/parquet-lab.md §1), so they are not used here. Column statistics
 * for the Iceberg manifest are gathered in the same pass.
 *
 * This file is the schema and the batch builder; the column builders, one
 * per physical type family, are in arrow/: bytes.ts (text, binary),
 * fixed.ts (64/32-bit integers, floats, booleans), decimal.ts, with their
 * common base in column.ts and statistics in stats.ts.
 */
import {
  Binary,
  Bool,
  DateDay,
  Decimal,
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMicrosecond,
  Utf8,
  type Data,
  type DataType,
} from 'apache-arrow';
import type { AssetField, FieldType, Row } from '../types.js';
import type { ColumnBuilder } from './arrow/column.js';
import { buildConstantColumn, columnBuilder } from './arrow/columns.js';
import { newAcc, type ColumnStatsAcc } from './arrow/stats.js';

export { decimalToUnscaled } from './arrow/decimal.js';
export { compareCodePoints, finishColumnStats, formatUnscaled, mergeColumnStats, type ColumnStatsAcc } from './arrow/stats.js';

/** Arrow field metadata key that the encoder turns into the Parquet `field_id` (as parquet-rs does). */
export const FIELD_ID_KEY = 'PARQUET:field_id';

/** The Arrow type of an asset field type. */
export function arrowType(type: FieldType): DataType {
  switch (type.kind) {
    case 'string':
    case 'json':
      return new Utf8();
    case 'long':
      return new Int64();
    case 'int':
      return new Int32();
    case 'float':
      return new Float32();
    case 'double':
      return new Float64();
    case 'decimal':
      return new Decimal(type.scale, type.precision, 128);
    case 'boolean':
      return new Bool();
    case 'date':
      return new DateDay();
    case 'timestamp':
      return new TimestampMicrosecond('UTC');
    case 'binary':
      return new Binary();
  }
}

/**
 * The Arrow schema of a table: one field per asset field, in order, nullable
 * unless required, each carrying `PARQUET:field_id`.
 */
export function arrowSchema(fields: readonly AssetField[]): Schema {
  return new Schema(
    fields.map(
      (f) => new Field(f.name, arrowType(f.type), !f.required, new Map([[FIELD_ID_KEY, String(f.fieldId)]])),
    ),
  );
}

/** The result of {@link buildRecordBatch}. */
export interface BuiltBatch {
  batch: RecordBatch;
  /** One accumulator per field, in field order. */
  stats: ColumnStatsAcc[];
  /** Bytes of Arrow buffers built (a rough size of the batch in memory). */
  byteLength: number;
}

/**
 * Build one Arrow RecordBatch from rows of canonical values (see the table
 * in lib/types.ts). `constants` gives columns whose value is the same for
 * every row (e.g. `_dativo_run_id`); their row properties are not read.
 * Statistics are computed in the same pass. A wrong JS type, an out-of-range
 * integer or a null in a required column throws INTERNAL: `validate()` must
 * have produced canonical values, so this is a bug, never silent corruption.
 * Equivalent to appending every row to a {@link RecordBatchBuilder}.
 */
export function buildRecordBatch(
  fields: readonly AssetField[],
  rows: readonly Row[],
  constants: Readonly<Record<string, unknown>> = {},
  schema: Schema = arrowSchema(fields),
): BuiltBatch {
  const b = new RecordBatchBuilder(fields, constants, schema, Math.max(1, rows.length));
  for (let i = 0; i < rows.length; i++) b.append(rows[i]!);
  return b.build();
}

/**
 * Compile `row => { c0.append(row["a"]); c1.append(row["b"]); … }` for the
 * given columns: each property read and each call site then sees one shape
 * and one class, which a loop over the columns cannot offer.
 */
function compileAppender(names: readonly string[], cols: readonly ColumnBuilder[]): (row: Row) => void {
  const params = cols.map((_, i) => `c${i}`);
  const body = names.map((name, i) => `c${i}.append(row[${JSON.stringify(name)}]);`).join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function(...params, `'use strict';\nreturn function appendRow(row) {\n${body}\n};`) as (
    ...c: ColumnBuilder[]
  ) => (row: Row) => void;
  return factory(...cols);
}

/**
 * Appends rows of canonical values one at a time into growable Arrow column
 * buffers, then {@link build}s a RecordBatch of them with per-column
 * statistics and starts over. A row is read once, when it is appended, so
 * rows die young instead of waiting in a batch array. Same values, checks
 * and errors as {@link buildRecordBatch}; after an `append` threw, the
 * builder is in an unspecified state and must be dropped.
 */
export class RecordBatchBuilder {
  private readonly cols: ColumnBuilder[] = [];
  /** For each field: index into `cols`, or -1 for a constant. */
  private readonly slot: number[] = [];
  private readonly appendRow: (row: Row) => void;
  private rows = 0;

  /**
   * @param fields columns of the table, in order
   * @param constants columns with one value for every row (not read from rows); default none
   * @param schema default `arrowSchema(fields)`
   * @param capacity initial rows per buffer (they grow by doubling); default 1,024
   * @param reuseBuffers keep the column buffers across builds instead of
   *   allocating fresh ones (less allocation and GC); a built batch's buffers
   *   are then overwritten by the next `append`, so use it only when each
   *   batch is consumed first (ParquetFileWriter.write copies it when called).
   *   Default false.
   */
  constructor(
    readonly fields: readonly AssetField[],
    readonly constants: Readonly<Record<string, unknown>> = {},
    readonly schema: Schema = arrowSchema(fields),
    capacity = 1024,
    reuseBuffers = false,
  ) {
    const names: string[] = [];
    fields.forEach((field, c) => {
      if (Object.hasOwn(constants, field.name)) {
        this.slot.push(-1);
        return;
      }
      this.slot.push(this.cols.length);
      const col = columnBuilder(field, schema.fields[c]!.type as DataType, Math.max(1, capacity));
      col.reuse = reuseBuffers;
      this.cols.push(col);
      names.push(field.name);
    });
    this.appendRow = compileAppender(names, this.cols);
  }

  /** Rows appended since the last build. */
  get length(): number {
    return this.rows;
  }

  /** Bytes of Arrow value buffers held so far (validity bits not counted); O(columns). */
  get byteLength(): number {
    let n = 0;
    for (const c of this.cols) n += c.valueBytes;
    return n;
  }

  /**
   * The builder of the table column `name`, to append canonical values one
   * column at a time (the columnar path: lib/stages/columnar.ts); undefined
   * for a constant or a name not in the table. Every such column gets one
   * value per row, then {@link addRow} counts the row.
   */
  column(name: string): ColumnBuilder | undefined {
    const c = this.fields.findIndex((f) => f.name === name);
    const s = c < 0 ? -1 : this.slot[c]!;
    return s < 0 ? undefined : this.cols[s];
  }

  /** Count one row appended through {@link column}. */
  addRow(): void {
    this.rows++;
  }

  /** Append one row (its values are copied into the column buffers). */
  append(row: Row): void {
    this.appendRow(row);
    this.rows++;
  }

  /** The RecordBatch of the rows appended since the last build, and statistics; the builder starts empty again. */
  build(): BuiltBatch {
    const n = this.rows;
    const children: Data[] = [];
    const stats: ColumnStatsAcc[] = [];
    let byteLength = 0;
    for (let c = 0; c < this.fields.length; c++) {
      const field = this.fields[c]!;
      const acc = newAcc(field);
      const s = this.slot[c]!;
      const col =
        s < 0
          ? buildConstantColumn(field, this.schema.fields[c]!.type as DataType, n, this.constants[field.name], acc)
          : this.cols[s]!.finish(acc);
      byteLength += col.bytes;
      children.push(col.data);
      stats.push(acc);
    }
    this.rows = 0;
    const data = makeData({ type: new Struct(this.schema.fields), length: n, nullCount: 0, children });
    return { batch: new RecordBatch(this.schema, data), stats, byteLength };
  }
}
