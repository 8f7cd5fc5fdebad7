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

/** Lower and upper bound of a signed 64-bit integer, hoisted (comparisons do not allocate). */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Node's UTF-8 writer into a Buffer at an offset: no subarray per value, unlike TextEncoder.encodeInto. */
interface Utf8Writable extends Uint8Array {
  utf8Write(text: string, offset: number, length?: number): number;
}

/**
 * One column being appended to, row by row, into growable typed buffers
 * (values, offsets, validity bits) with its statistics. `append` is called
 * from a per-schema compiled function, so each call site sees one class.
 */
abstract class ColumnBuilder {
  /** Rows appended. */
  n = 0;
  nulls = 0;
  cap: number;
  /** Capacity to allocate after a build. */
  nextCap: number;
  validity: Uint8Array;
  /** Keep the buffers across builds (see RecordBatchBuilder's `reuseBuffers`). */
  reuse = false;

  constructor(
    readonly field: AssetField,
    readonly type: DataType,
    capacity: number,
  ) {
    this.cap = capacity;
    this.nextCap = capacity;
    this.validity = new Uint8Array((capacity + 7) >> 3);
  }

  abstract append(v: unknown): void;
  /** Arrow data of the rows appended so far; resets the column for the next batch. */
  abstract finish(acc: ColumnStatsAcc): BuiltColumn;
  /** Bytes of values held (not counting validity). */
  abstract get valueBytes(): number;
  /** Grow the value buffers to `cap` rows, or (negative) replace them with fresh ones of `-cap` rows and reset the statistics. */
  protected abstract growValues(cap: number): void;
  /** Reset statistics and positions after a build. */
  protected abstract clear(): void;

  /** Room for one more row (call before writing row `n`). */
  protected grow(): void {
    if (this.cap === 0) {
      // First row after a build: the built Data owns the old buffers, so start fresh ones.
      const cap = this.nextCap;
      this.validity = new Uint8Array((cap + 7) >> 3);
      this.growValues(-cap);
      this.cap = cap;
      return;
    }
    const cap = this.cap * 2;
    const validity = new Uint8Array((cap + 7) >> 3);
    validity.set(this.validity);
    this.validity = validity;
    this.growValues(cap);
    this.cap = cap;
  }

  /** Record a null at row `n` (or throw for a required column). */
  protected appendNull(v: unknown): void {
    const i = this.n;
    if (this.field.required) throw badValue(this.field, i, v, 'null in a required column');
    this.nulls++;
    // The first row of a byte writes the whole byte: reused buffers need no clearing pass.
    if ((i & 7) === 0) this.validity[i >> 3] = 0;
  }

  protected setValid(i: number): void {
    const k = i >> 3;
    const bit = i & 7;
    this.validity[k] = bit === 0 ? 1 : this.validity[k]! | (1 << bit);
  }

  /** Common tail of `finish`: counts, the validity bitmap (omitted when no nulls), reset. */
  protected done(acc: ColumnStatsAcc, make: (nullBitmap: Uint8Array | undefined) => Data, bytes: number): BuiltColumn {
    const n = this.n;
    acc.valueCount = n;
    acc.nullCount = this.nulls;
    const validity = this.validity.subarray(0, (n + 7) >> 3);
    const data = make(this.nulls === 0 ? undefined : validity);
    const out = { data, bytes: bytes + validity.byteLength };
    this.n = 0;
    this.nulls = 0;
    if (!this.reuse) {
      // Capacity 0 makes the next append allocate fresh buffers (see grow).
      this.nextCap = this.cap;
      this.cap = 0;
    }
    this.clear();
    return out;
  }
}

/** Arrow type constructors share this `makeData` overload shape per kind. */
type MakeArgs = Parameters<typeof makeData>[0];
const make = (args: Record<string, unknown>): Data => makeData(args as unknown as MakeArgs) as Data;

class Utf8Column extends ColumnBuilder {
  offsets: Int32Array;
  buf: Utf8Writable;
  pos = 0;
  min: string | undefined;
  max: string | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.offsets = new Int32Array(capacity + 1);
    this.buf = Buffer.allocUnsafeSlow(Math.max(1024, capacity * 16)) as unknown as Utf8Writable;
  }

  get valueBytes(): number {
    return this.pos + 4 * this.n;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.offsets = new Int32Array(-cap + 1);
      this.buf = Buffer.allocUnsafeSlow(this.buf.length) as unknown as Utf8Writable;
      this.pos = 0;
      this.min = this.max = undefined;
      return;
    }
    const offsets = new Int32Array(cap + 1);
    offsets.set(this.offsets);
    this.offsets = offsets;
  }

  private growBytes(need: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, need)) as unknown as Utf8Writable;
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  protected clear(): void {
    this.pos = 0;
    this.min = this.max = undefined;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      this.offsets[i + 1] = this.pos;
      this.n = i + 1;
      return;
    }
    if (typeof v !== 'string') throw badValue(this.field, i, v);
    const len = v.length;
    let pos = this.pos;
    if (pos + len * 3 > this.buf.length) this.growBytes(pos + len * 3);
    const buf = this.buf;
    let ascii = len <= 32;
    if (ascii) {
      // Short ASCII strings: a byte loop beats a native call per value.
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
    else pos += buf.utf8Write(v, pos);
    if (pos > 0x7fffffff) throw badValue(this.field, i, v, 'more than 2 GiB of text in one batch');
    this.pos = pos;
    this.offsets[i + 1] = pos;
    this.setValid(i);
    this.n = i + 1;
    const min = this.min;
    if (min === undefined) {
      this.min = v;
      this.max = v;
    } else if (v !== min && v !== this.max) {
      // JS `<` orders like code points unless both strings have a unit >= U+D800
      // where they first differ; without such units in `v` it cannot happen.
      if (ascii || !HIGH_UNITS.test(v)) {
        if (v < min) this.min = v;
        else if (v > this.max!) this.max = v;
      } else if (compareCodePoints(v, min) < 0) this.min = v;
      else if (compareCodePoints(v, this.max!) > 0) this.max = v;
    }
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.min = acc.minKey = this.min;
    acc.max = acc.maxKey = this.max;
    const n = this.n;
    const pos = this.pos;
    const valueOffsets = this.offsets.subarray(0, n + 1);
    // Without reuse, a copy of exactly the bytes used: the growable buffer may be far larger.
    const data = this.reuse ? this.buf.subarray(0, pos) : Uint8Array.prototype.slice.call(this.buf, 0, pos);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, valueOffsets, data }), valueOffsets.byteLength + pos);
  }
}

class BinaryColumn extends ColumnBuilder {
  offsets: Int32Array;
  buf: Uint8Array;
  pos = 0;
  min: Uint8Array | undefined;
  max: Uint8Array | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.offsets = new Int32Array(capacity + 1);
    this.buf = new Uint8Array(1024);
  }

  get valueBytes(): number {
    return this.pos + 4 * this.n;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.offsets = new Int32Array(-cap + 1);
      this.buf = new Uint8Array(this.buf.length);
      this.pos = 0;
      this.min = this.max = undefined;
      return;
    }
    const offsets = new Int32Array(cap + 1);
    offsets.set(this.offsets);
    this.offsets = offsets;
  }

  protected clear(): void {
    this.pos = 0;
    this.min = this.max = undefined;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      this.offsets[i + 1] = this.pos;
      this.n = i + 1;
      return;
    }
    if (!(v instanceof Uint8Array)) throw badValue(this.field, i, v);
    const pos = this.pos;
    const end = pos + v.byteLength;
    if (end > 0x7fffffff) throw badValue(this.field, i, v, 'more than 2 GiB of binary in one batch');
    if (end > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, end));
      next.set(this.buf.subarray(0, pos));
      this.buf = next;
    }
    this.buf.set(v, pos);
    this.pos = end;
    this.offsets[i + 1] = end;
    this.setValid(i);
    this.n = i + 1;
    // Copies: the caller may reuse its buffers after the batch is written.
    if (this.min === undefined || compareBytes(v, this.min) < 0) this.min = Uint8Array.from(v);
    if (this.max === undefined || compareBytes(v, this.max) > 0) this.max = Uint8Array.from(v);
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.min = acc.minKey = this.min;
    acc.max = acc.maxKey = this.max;
    const n = this.n;
    const pos = this.pos;
    const valueOffsets = this.offsets.subarray(0, n + 1);
    const data = this.reuse ? this.buf.subarray(0, pos) : this.buf.slice(0, pos);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, valueOffsets, data }), valueOffsets.byteLength + pos);
  }
}

class Int64Column extends ColumnBuilder {
  values: BigInt64Array;
  min: bigint | undefined;
  max: bigint | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.values = new BigInt64Array(capacity);
  }

  get valueBytes(): number {
    return 8 * this.n;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.values = new BigInt64Array(-cap);
      this.min = this.max = undefined;
      return;
    }
    const values = new BigInt64Array(cap);
    values.set(this.values);
    this.values = values;
  }

  protected clear(): void {
    this.min = this.max = undefined;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      // Null slots hold 0, not a value of an earlier batch in a reused buffer.
      this.values[i] = 0n;
      this.n = i + 1;
      return;
    }
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else throw badValue(this.field, i, v);
    if (b < INT64_MIN || b > INT64_MAX) throw badValue(this.field, i, v, 'value outside the signed 64-bit range');
    this.values[i] = b;
    this.setValid(i);
    this.n = i + 1;
    if (this.min === undefined) {
      this.min = b;
      this.max = b;
    } else if (b < this.min) this.min = b;
    else if (b > this.max!) this.max = b;
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.min = acc.minKey = this.min;
    acc.max = acc.maxKey = this.max;
    const n = this.n;
    const data = this.values.subarray(0, n);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data }), data.byteLength);
  }
}

class Int32Column extends ColumnBuilder {
  values: Int32Array;
  min: number | undefined;
  max: number | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.values = new Int32Array(capacity);
  }

  get valueBytes(): number {
    return 4 * this.n;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.values = new Int32Array(-cap);
      this.min = this.max = undefined;
      return;
    }
    const values = new Int32Array(cap);
    values.set(this.values);
    this.values = values;
  }

  protected clear(): void {
    this.min = this.max = undefined;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      this.values[i] = 0;
      this.n = i + 1;
      return;
    }
    if (typeof v !== 'number' || (v | 0) !== v) throw badValue(this.field, i, v, 'expected a 32-bit integer');
    this.values[i] = v;
    this.setValid(i);
    this.n = i + 1;
    if (this.min === undefined) {
      this.min = v;
      this.max = v;
    } else if (v < this.min) this.min = v;
    else if (v > this.max!) this.max = v;
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.min = acc.minKey = this.min;
    acc.max = acc.maxKey = this.max;
    const n = this.n;
    const data = this.values.subarray(0, n);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data }), data.byteLength);
  }
}

class FloatColumn extends ColumnBuilder {
  values: Float32Array | Float64Array;
  min: number | undefined;
  max: number | undefined;
  nan = 0;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.values = field.type.kind === 'float' ? new Float32Array(capacity) : new Float64Array(capacity);
  }

  get valueBytes(): number {
    return this.values.BYTES_PER_ELEMENT * this.n;
  }

  protected growValues(cap: number): void {
    const Ctor = this.field.type.kind === 'float' ? Float32Array : Float64Array;
    if (cap < 0) {
      this.values = new Ctor(-cap);
      this.min = this.max = undefined;
      this.nan = 0;
      return;
    }
    const values = new Ctor(cap);
    values.set(this.values);
    this.values = values;
  }

  protected clear(): void {
    this.min = this.max = undefined;
    this.nan = 0;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      this.values[i] = 0;
      this.n = i + 1;
      return;
    }
    if (typeof v !== 'number') throw badValue(this.field, i, v);
    this.values[i] = v;
    this.setValid(i);
    this.n = i + 1;
    // Stats describe the stored value, so float columns use the rounded one.
    const s = this.values[i]!;
    if (Number.isNaN(s)) this.nan++;
    else {
      const min = this.min;
      const max = this.max;
      if (min === undefined || s < min || (s === 0 && min === 0 && Object.is(s, -0))) this.min = s;
      if (max === undefined || s > max || (s === 0 && max === 0 && Object.is(max, -0))) this.max = s;
    }
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.nanCount = this.nan;
    acc.min = acc.minKey = this.min;
    acc.max = acc.maxKey = this.max;
    const n = this.n;
    const data = this.values.subarray(0, n);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data }), data.byteLength);
  }
}

class DecimalColumn extends ColumnBuilder {
  words: Uint32Array;
  readonly precision: number;
  readonly scale: number;
  readonly limit: number;
  // number (fast path) or bigint; `<` compares the two exactly.
  min: number | bigint | undefined;
  max: number | bigint | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    const t = field.type as { precision: number; scale: number };
    this.precision = t.precision;
    this.scale = t.scale;
    this.limit = t.precision <= 15 ? 10 ** t.precision : Number.POSITIVE_INFINITY;
    this.words = new Uint32Array(4 * capacity);
  }

  get valueBytes(): number {
    return 16 * this.n;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.words = new Uint32Array(-4 * cap);
      this.min = this.max = undefined;
      return;
    }
    const words = new Uint32Array(4 * cap);
    words.set(this.words);
    this.words = words;
  }

  protected clear(): void {
    this.min = this.max = undefined;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      // Null slots must not keep a previous value's words.
      this.words.fill(0, 4 * i, 4 * i + 4);
      this.n = i + 1;
      return;
    }
    if (typeof v !== 'string') throw badValue(this.field, i, v);
    const words = this.words;
    let u: number | bigint | undefined = smallUnscaled(v, this.scale);
    if (u !== undefined && Math.abs(u) < this.limit) {
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
        b = decimalToUnscaled(v, this.precision, this.scale);
      } catch (err) {
        throw badValue(this.field, i, v, (err as Error).message);
      }
      // 128-bit two's complement, little-endian: low word first.
      for (let w = 0; w < 4; w++) words[4 * i + w] = Number(BigInt.asUintN(32, b >> BigInt(32 * w)));
      u = b;
    }
    this.setValid(i);
    this.n = i + 1;
    if (this.min === undefined || u < this.min) this.min = u;
    if (this.max === undefined || u > this.max) this.max = u;
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    acc.min = acc.minKey = this.min === undefined ? undefined : BigInt(this.min);
    acc.max = acc.maxKey = this.max === undefined ? undefined : BigInt(this.max);
    const n = this.n;
    const data = this.words.subarray(0, 4 * n);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data }), data.byteLength);
  }
}

class BoolColumn extends ColumnBuilder {
  bits: Uint8Array;
  seenFalse = false;
  seenTrue = false;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.bits = new Uint8Array((capacity + 7) >> 3);
  }

  get valueBytes(): number {
    return (this.n + 7) >> 3;
  }

  protected growValues(cap: number): void {
    if (cap < 0) {
      this.bits = new Uint8Array((-cap + 7) >> 3);
      this.seenFalse = this.seenTrue = false;
      return;
    }
    const bits = new Uint8Array((cap + 7) >> 3);
    bits.set(this.bits);
    this.bits = bits;
  }

  protected clear(): void {
    this.seenFalse = this.seenTrue = false;
  }

  append(v: unknown): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    if (v === null || v === undefined) {
      this.appendNull(v);
      if ((i & 7) === 0) this.bits[i >> 3] = 0;
      this.n = i + 1;
      return;
    }
    if (typeof v !== 'boolean') throw badValue(this.field, i, v);
    const k = i >> 3;
    const bit = i & 7;
    if (bit === 0) this.bits[k] = v ? 1 : 0;
    else if (v) this.bits[k]! |= 1 << bit;
    if (v) this.seenTrue = true;
    else this.seenFalse = true;
    this.setValid(i);
    this.n = i + 1;
  }

  finish(acc: ColumnStatsAcc): BuiltColumn {
    if (this.seenFalse || this.seenTrue) {
      acc.min = acc.minKey = !this.seenFalse;
      acc.max = acc.maxKey = this.seenTrue;
    }
    const n = this.n;
    const data = this.bits.subarray(0, (n + 7) >> 3);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data }), data.byteLength);
  }
}

function columnBuilder(field: AssetField, type: DataType, capacity: number): ColumnBuilder {
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

interface BuiltColumn {
  data: Data;
  bytes: number;
}
