/**
 * The column builder of each asset type, and columns with one value in every
 * row (`_dativo_ingested_at`, `_dativo_run_id`).
 */
import type { Data, DataType } from 'apache-arrow';
import type { AssetField } from '../../types.js';
import { BinaryColumn, Utf8Column } from './bytes.js';
import { badValue, type BuiltColumn, type ColumnBuilder } from './column.js';
import { DecimalColumn } from './decimal.js';
import { BoolColumn, FloatColumn, Int32Column, Int64Column } from './fixed.js';
import type { ColumnStatsAcc } from './stats.js';

export function columnBuilder(field: AssetField, type: DataType, capacity: number): ColumnBuilder {
  switch (field.type.kind) {
    case 'string':
    case 'json':
      return new Utf8Column(field, type, capacity);
    case 'binary':
      return new BinaryColumn(field, type, capacity);
    case 'long':
    case 'timestamp':
      return new Int64Column(field, type, capacity);
    case 'int':
    case 'date':
      return new Int32Column(field, type, capacity);
    case 'float':
    case 'double':
      return new FloatColumn(field, type, capacity);
    case 'decimal':
      return new DecimalColumn(field, type, capacity);
    case 'boolean':
      return new BoolColumn(field, type, capacity);
  }
}

/** Fill `out` with copies of `pattern` (doubling copies: O(log n) calls). */
function repeatInto<T extends Uint8Array | Uint32Array>(out: T, pattern: T): T {
  if (pattern.length === 0 || out.length === 0) return out;
  out.set(pattern);
  let filled = pattern.length;
  while (filled < out.length) {
    const c = Math.min(filled, out.length - filled);
    out.copyWithin(filled, 0, c);
    filled += c;
  }
  return out;
}

/**
 * A column with the same value in every row (`_dativo_ingested_at`,
 * `_dativo_run_id`): the value is checked and encoded once through the
 * normal one-row path, then its buffers are repeated.
 */
export function buildConstantColumn(field: AssetField, type: DataType, n: number, value: unknown, acc: ColumnStatsAcc): BuiltColumn {
  const b = columnBuilder(field, type, 1);
  b.append(value);
  const one = b.finish(acc).data;
  const isNull = value === null || value === undefined;
  acc.valueCount = n;
  acc.nullCount = isNull ? n : 0;
  const nullBitmap = isNull ? new Uint8Array((n + 7) >> 3) : new Uint8Array(0);
  const kind = field.type.kind;
  let offsets: Int32Array | undefined;
  let values: Int32Array | BigInt64Array | Float32Array | Float64Array | Uint32Array | Uint8Array;
  if (kind === 'string' || kind === 'json' || kind === 'binary') {
    const src = one.values as Uint8Array;
    const bytes = src.subarray(0, (one.valueOffsets as Int32Array)[1]);
    if (bytes.length * n > 0x7fffffff) throw badValue(field, 0, value, 'more than 2 GiB of text in one batch');
    values = repeatInto(new Uint8Array(bytes.length * n), bytes);
    offsets = new Int32Array(n + 1);
    for (let i = 1; i <= n; i++) offsets[i] = i * bytes.length;
  } else if (kind === 'boolean') {
    values = new Uint8Array((n + 7) >> 3);
    if (value === true) {
      values.fill(0xff);
      // Padding bits past the last row stay zero, as the row path leaves them.
      if ((n & 7) !== 0) values[values.length - 1] = (1 << (n & 7)) - 1;
    }
  } else if (kind === 'decimal') {
    values = repeatInto(new Uint32Array(4 * n), one.values as Uint32Array);
  } else {
    const src = one.values as Int32Array | BigInt64Array | Float32Array | Float64Array;
    const Ctor = src.constructor as new (length: number) => typeof src;
    values = new Ctor(n);
    (values as { fill(v: unknown): unknown }).fill(src[0]);
  }
  // Buffer slots as apache-arrow orders them: OFFSET, DATA, VALIDITY.
  const buffers = [offsets, values, nullBitmap, undefined] as unknown as Parameters<Data['clone']>[4];
  const data = one.clone(one.type, 0, n, isNull ? n : 0, buffers);
  return { data, bytes: values.byteLength + (offsets?.byteLength ?? 0) + nullBitmap.byteLength };
}
