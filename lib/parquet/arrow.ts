/**
 * Rows of canonical values → one Arrow RecordBatch, with the Arrow buffers
 * built by hand (offsets, one UTF-8 buffer, packed bitmaps, typed arrays).
 * apache-arrow's generic builders cost more than the Parquet encoding itself
 * (reference/parquet-lab.md §1), so they are not used here. Column statistics
 * for the Iceberg manifest are gathered in the same pass.
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
import { DativoError } from '../errors.js';
import type { AssetField, ColumnStats, FieldType, Row } from '../types.js';

/** Arrow field metadata key that parquet-rs turns into the Parquet `field_id`. */
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

/**
 * Order of strings by Unicode code point, which is UTF-8 byte order (what
 * Parquet and Iceberg use). JS `<` compares UTF-16 code units and puts
 * U+E000..U+FFFF above astral characters; this fixes that.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (astral code points) sort above the rest of the BMP.
        const fx = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        const fy = y >= 0xe000 ? y - 0x800 : y + 0x2000;
        return fx - fy;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Code units where UTF-16 order and code point order can disagree. */
const HIGH_UNITS = /[\ud800-\uffff]/;

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Exact unscaled integer of a canonical decimal string at `scale`
 * (`"-12.50"` at scale 2 → `-1250n`). Fewer fraction digits are padded;
 * extra digits are accepted only when they are zeros. Throws INTERNAL when
 * the text is not a decimal or exceeds `precision` digits.
 */
export function decimalToUnscaled(text: string, precision: number, scale: number): bigint {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (m === null || (m[2] === '' && (m[3] ?? '') === '')) {
    throw new DativoError('INTERNAL', `not a decimal: ${JSON.stringify(text)}`, { context: { value: text } });
  }
  let frac = m[3] ?? '';
  if (frac.length > scale) {
    if (!/^0*$/.test(frac.slice(scale))) {
      throw new DativoError('INTERNAL', `decimal ${text} has more than ${scale} fraction digits`, { context: { value: text, scale } });
    }
    frac = frac.slice(0, scale);
  }
  const digits = (m[2] ?? '') + frac.padEnd(scale, '0');
  const unscaled = BigInt(digits === '' ? '0' : digits);
  if (unscaled >= 10n ** BigInt(precision)) {
    throw new DativoError('INTERNAL', `decimal ${text} exceeds precision ${precision}`, { context: { value: text, precision } });
  }
  return m[1] === '-' ? -unscaled : unscaled;
}

/**
 * The unscaled value of a plain decimal string with at most 15 significant
 * digits, as an exact JS number; undefined for anything else (the caller
 * then takes the exact BigInt path of {@link decimalToUnscaled}).
 */
function smallUnscaled(text: string, scale: number): number | undefined {
  let i = 0;
  let neg = false;
  const c0 = text.charCodeAt(0);
  if (c0 === 45 /* - */ || c0 === 43 /* + */) {
    neg = c0 === 45;
    i = 1;
  }
  let value = 0;
  let digits = 0;
  let frac = -1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (frac >= 0) return undefined;
      frac = 0;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9) return undefined;
    if (frac >= 0) {
      if (frac === scale) {
        if (d !== 0) return undefined;
        continue;
      }
      frac++;
    }
    value = value * 10 + d;
    if (value !== 0 && ++digits > 15) return undefined;
  }
  if (digits === 0 && value === 0 && text.length - (c0 === 45 || c0 === 43 ? 1 : 0) - (frac >= 0 ? 1 : 0) === 0) return undefined;
  for (let k = frac < 0 ? 0 : frac; k < scale; k++) {
    value *= 10;
    if (value !== 0 && ++digits > 15) return undefined;
  }
  return neg ? -value : value;
}

/** Running statistics of one column; merge across batches with {@link mergeColumnStats}. */
export interface ColumnStatsAcc {
  fieldId: number;
  kind: FieldType['kind'];
  /** Decimal scale (decimal columns only). */
  scale?: number;
  valueCount: number;
  nullCount: number;
  nanCount: number;
  min: unknown;
  max: unknown;
  /** Comparable form of min/max (unscaled bigint for decimals, the value otherwise). */
  minKey: unknown;
  maxKey: unknown;
}

function newAcc(field: AssetField): ColumnStatsAcc {
  return {
    fieldId: field.fieldId,
    kind: field.type.kind,
    valueCount: 0,
    nullCount: 0,
    nanCount: 0,
    min: undefined,
    max: undefined,
    minKey: undefined,
    maxKey: undefined,
    ...(field.type.kind === 'decimal' ? { scale: field.type.scale } : {}),
  };
}

function compareKeys(kind: FieldType['kind'], a: unknown, b: unknown): number {
  switch (kind) {
    case 'string':
    case 'json':
      return compareCodePoints(a as string, b as string);
    case 'binary':
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 'boolean':
      return Number(a) - Number(b);
    default: {
      const x = a as number | bigint;
      const y = b as number | bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
}

/** Merge `from` into `into` (same column). */
export function mergeColumnStats(into: ColumnStatsAcc, from: ColumnStatsAcc): void {
  into.valueCount += from.valueCount;
  into.nullCount += from.nullCount;
  into.nanCount += from.nanCount;
  if (from.minKey !== undefined && (into.minKey === undefined || compareKeys(into.kind, from.minKey, into.minKey) < 0)) {
    into.minKey = from.minKey;
    into.min = from.min;
  }
  if (from.maxKey !== undefined && (into.maxKey === undefined || compareKeys(into.kind, from.maxKey, into.maxKey) > 0)) {
    into.maxKey = from.maxKey;
    into.max = from.max;
  }
}

/** Canonical text of an unscaled decimal: (-1250n, 2) → "-12.50". */
export function formatUnscaled(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${text}` : text;
}

/** The public {@link ColumnStats} of an accumulator (decimal bounds in canonical text at the column scale). */
export function finishColumnStats(acc: ColumnStatsAcc): ColumnStats {
  const out: ColumnStats = { fieldId: acc.fieldId, valueCount: acc.valueCount, nullCount: acc.nullCount };
  if (acc.minKey !== undefined) {
    out.min = acc.scale === undefined ? acc.min : formatUnscaled(acc.minKey as bigint, acc.scale);
    out.max = acc.scale === undefined ? acc.max : formatUnscaled(acc.maxKey as bigint, acc.scale);
  }
  if (acc.kind === 'float' || acc.kind === 'double') out.nanCount = acc.nanCount;
  return out;
}

/** The result of {@link buildRecordBatch}. */
export interface BuiltBatch {
  batch: RecordBatch;
  /** One accumulator per field, in field order. */
  stats: ColumnStatsAcc[];
  /** Bytes of Arrow buffers built (a rough size of the batch in memory). */
  byteLength: number;
}

function badValue(field: AssetField, row: number, value: unknown, why = `expected a canonical ${field.type.kind} value`): DativoError {
  return new DativoError('INTERNAL', `column ${field.name}, row ${row}: ${why}, got ${typeof value}`, {
    context: { column: field.name, row, kind: field.type.kind, valueType: typeof value },
  });
}

/** Value of one column for row `i`. */
type Getter = (i: number) => unknown;

/**
 * Build one Arrow RecordBatch from rows of canonical values (see the table
 * in lib/types.ts). `constants` gives columns whose value is the same for
 * every row (e.g. `_dativo_run_id`); their row properties are not read.
 * Statistics are computed in the same pass. A wrong JS type, an out-of-range
 * integer or a null in a required column throws INTERNAL: `validate()` must
 * have produced canonical values, so this is a bug, never silent corruption.
 */
export function buildRecordBatch(
  fields: readonly AssetField[],
  rows: readonly Row[],
  constants: Readonly<Record<string, unknown>> = {},
  schema: Schema = arrowSchema(fields),
): BuiltBatch {
  const n = rows.length;
  const children: Data[] = [];
  const stats: ColumnStatsAcc[] = [];
  let byteLength = 0;
  for (let c = 0; c < fields.length; c++) {
    const field = fields[c]!;
    const name = field.name;
    const acc = newAcc(field);
    const type = schema.fields[c]!.type as DataType;
    const col = Object.hasOwn(constants, name)
      ? buildConstantColumn(field, type, n, constants[name], acc)
      : buildColumn(field, type, n, (i) => rows[i]![name], acc);
    byteLength += col.bytes;
    children.push(col.data);
    stats.push(acc);
  }
  const data = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
  return { batch: new RecordBatch(schema, data), stats, byteLength };
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
function buildConstantColumn(field: AssetField, type: DataType, n: number, value: unknown, acc: ColumnStatsAcc): BuiltColumn {
  const one = buildColumn(field, type, 1, () => value, acc).data;
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

interface BuiltColumn {
  data: Data;
  bytes: number;
}

function buildColumn(field: AssetField, type: DataType, n: number, get: Getter, acc: ColumnStatsAcc): BuiltColumn {
  const validity = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  const isNull = (i: number, v: unknown): boolean => {
    if (v === null || v === undefined) {
      if (field.required) throw badValue(field, i, v, 'null in a required column');
      nulls++;
      return true;
    }
    validity[i >> 3]! |= 1 << (i & 7);
    return false;
  };
  const finish = (data: Data, bytes: number): BuiltColumn => {
    acc.valueCount = n;
    acc.nullCount = nulls;
    return { data, bytes: bytes + validity.byteLength };
  };
  const nullBitmap = (): Uint8Array | undefined => (nulls === 0 ? undefined : validity);
  const kind = field.type.kind;

  switch (kind) {
    case 'string':
    case 'json': {
      const offsets = new Int32Array(n + 1);
      let totalChars = 0;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (typeof v === 'string') totalChars += v.length;
      }
      let buf = new Uint8Array(Math.max(1024, Math.ceil(totalChars * 1.2)));
      let pos = 0;
      const enc = new TextEncoder();
      let min: string | undefined;
      let max: string | undefined;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (!isNull(i, v)) {
          if (typeof v !== 'string') throw badValue(field, i, v);
          if (pos + v.length * 3 > buf.length) {
            const next = new Uint8Array(Math.max(buf.length * 2, pos + v.length * 3));
            next.set(buf.subarray(0, pos));
            buf = next;
          }
          const len = v.length;
          let ascii = len <= 32;
          if (ascii) {
            // Short ASCII strings: a byte loop beats a native call plus a subarray per value.
            for (let k = 0; k < len; k++) {
              const ch = v.charCodeAt(k);
              if (ch > 0x7f) {
                ascii = false;
                break;
              }
              buf[pos + k] = ch;
            }
          }
          if (ascii) pos += len;
          else pos += enc.encodeInto(v, buf.subarray(pos)).written;
          if (min === undefined) {
            min = v;
            max = v;
          } else if (v !== min && v !== max) {
            // JS `<` orders like code points unless both strings have a unit >= U+D800
            // where they first differ; without such units in `v` it cannot happen.
            if (ascii || !HIGH_UNITS.test(v)) {
              if (v < min) min = v;
              else if (v > max!) max = v;
            } else if (compareCodePoints(v, min) < 0) min = v;
            else if (compareCodePoints(v, max!) > 0) max = v;
          }
        }
        if (pos > 0x7fffffff) throw badValue(field, i, v, 'more than 2 GiB of text in one batch');
        offsets[i + 1] = pos;
      }
      acc.min = acc.minKey = min;
      acc.max = acc.maxKey = max;
      const data = buf.subarray(0, pos);
      return finish(
        makeData({ type: type as Utf8, length: n, nullCount: nulls, nullBitmap: nullBitmap(), valueOffsets: offsets, data }),
        offsets.byteLength + pos,
      );
    }
    case 'binary': {
      const offsets = new Int32Array(n + 1);
      let total = 0;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (v instanceof Uint8Array) total += v.byteLength;
      }
      const data = new Uint8Array(total);
      let pos = 0;
      let min: Uint8Array | undefined;
      let max: Uint8Array | undefined;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (!isNull(i, v)) {
          if (!(v instanceof Uint8Array)) throw badValue(field, i, v);
          data.set(v, pos);
          pos += v.byteLength;
          if (min === undefined || compareBytes(v, min) < 0) min = v;
          if (max === undefined || compareBytes(v, max) > 0) max = v;
        }
        offsets[i + 1] = pos;
      }
      // Copies: the caller may reuse its buffers after the batch is written.
      acc.min = acc.minKey = min === undefined ? undefined : Uint8Array.from(min);
      acc.max = acc.maxKey = max === undefined ? undefined : Uint8Array.from(max);
      return finish(
        makeData({ type: type as Binary, length: n, nullCount: nulls, nullBitmap: nullBitmap(), valueOffsets: offsets, data }),
        offsets.byteLength + total,
      );
    }
    case 'long':
    case 'timestamp': {
      const values = new BigInt64Array(n);
      let min: bigint | undefined;
      let max: bigint | undefined;
      for (let i = 0; i < n; i++) {
        let v = get(i);
        if (isNull(i, v)) continue;
        if (typeof v !== 'bigint') {
          if (typeof v === 'number' && Number.isSafeInteger(v)) v = BigInt(v);
          else throw badValue(field, i, v);
        }
        const b = v as bigint;
        if (BigInt.asIntN(64, b) !== b) throw badValue(field, i, v, 'value outside the signed 64-bit range');
        values[i] = b;
        if (min === undefined || b < min) min = b;
        if (max === undefined || b > max) max = b;
      }
      acc.min = acc.minKey = min;
      acc.max = acc.maxKey = max;
      const data =
        kind === 'long'
          ? makeData({ type: type as Int64, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values })
          : makeData({ type: type as TimestampMicrosecond, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values });
      return finish(data, values.byteLength);
    }
    case 'int':
    case 'date': {
      const values = new Int32Array(n);
      let min: number | undefined;
      let max: number | undefined;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (isNull(i, v)) continue;
        if (typeof v !== 'number' || (v | 0) !== v) throw badValue(field, i, v, 'expected a 32-bit integer');
        values[i] = v;
        if (min === undefined || v < min) min = v;
        if (max === undefined || v > max) max = v;
      }
      acc.min = acc.minKey = min;
      acc.max = acc.maxKey = max;
      const data =
        kind === 'int'
          ? makeData({ type: type as Int32, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values })
          : makeData({ type: type as DateDay, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values });
      return finish(data, values.byteLength);
    }
    case 'float':
    case 'double': {
      const values = kind === 'float' ? new Float32Array(n) : new Float64Array(n);
      let min: number | undefined;
      let max: number | undefined;
      let nan = 0;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (isNull(i, v)) continue;
        if (typeof v !== 'number') throw badValue(field, i, v);
        values[i] = v;
        // Stats describe the stored value, so float columns use the rounded one.
        const s = values[i]!;
        if (Number.isNaN(s)) nan++;
        else {
          if (min === undefined || s < min || (s === 0 && min === 0 && Object.is(s, -0))) min = s;
          if (max === undefined || s > max || (s === 0 && max === 0 && Object.is(max, -0))) max = s;
        }
      }
      acc.nanCount = nan;
      acc.min = acc.minKey = min;
      acc.max = acc.maxKey = max;
      const data =
        values instanceof Float32Array
          ? makeData({ type: type as Float32, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values })
          : makeData({ type: type as Float64, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: values });
      return finish(data, values.byteLength);
    }
    case 'decimal': {
      const { precision, scale } = field.type as { precision: number; scale: number };
      const words = new Uint32Array(n * 4);
      const limit = precision <= 15 ? 10 ** precision : Number.POSITIVE_INFINITY;
      // number (fast path) or bigint; `<` compares the two exactly.
      let min: number | bigint | undefined;
      let max: number | bigint | undefined;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (isNull(i, v)) continue;
        if (typeof v !== 'string') throw badValue(field, i, v);
        let u: number | bigint | undefined = smallUnscaled(v, scale);
        if (u !== undefined && Math.abs(u) < limit) {
          // |u| < 2^53: split into 32-bit words without BigInt.
          let lo = u % 4294967296;
          if (lo < 0) lo += 4294967296;
          const hi = (u - lo) / 4294967296;
          const ext = u < 0 ? 0xffffffff : 0;
          words[4 * i] = lo;
          words[4 * i + 1] = hi >>> 0;
          words[4 * i + 2] = ext;
          words[4 * i + 3] = ext;
        } else {
          let b: bigint;
          try {
            b = decimalToUnscaled(v, precision, scale);
          } catch (err) {
            throw badValue(field, i, v, (err as Error).message);
          }
          // 128-bit two's complement, little-endian: low word first.
          for (let w = 0; w < 4; w++) words[4 * i + w] = Number(BigInt.asUintN(32, b >> BigInt(32 * w)));
          u = b;
        }
        if (min === undefined || u < min) min = u;
        if (max === undefined || u > max) max = u;
      }
      acc.min = acc.minKey = min === undefined ? undefined : BigInt(min);
      acc.max = acc.maxKey = max === undefined ? undefined : BigInt(max);
      const data = makeData({ type: type as Decimal, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: words });
      return finish(data, words.byteLength);
    }
    case 'boolean': {
      const bits = new Uint8Array((n + 7) >> 3);
      let seenFalse = false;
      let seenTrue = false;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (isNull(i, v)) continue;
        if (typeof v !== 'boolean') throw badValue(field, i, v);
        if (v) {
          bits[i >> 3]! |= 1 << (i & 7);
          seenTrue = true;
        } else seenFalse = true;
      }
      if (seenFalse || seenTrue) {
        acc.min = acc.minKey = !seenFalse;
        acc.max = acc.maxKey = seenTrue;
      }
      return finish(makeData({ type: type as Bool, length: n, nullCount: nulls, nullBitmap: nullBitmap(), data: bits }), bits.byteLength);
    }
  }
}
