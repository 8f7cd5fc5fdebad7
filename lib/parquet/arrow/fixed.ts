/** Fixed-width columns: 64-bit (long, timestamp), 32-bit (int, date), float/double, and boolean bits. */
import type { DataType } from 'apache-arrow';
import type { AssetField } from '../../types.js';
import { badValue, ColumnBuilder, setValid, INT64_MAX, INT64_MIN, make, type BuiltColumn } from './column.js';
import type { ColumnStatsAcc } from './stats.js';

export class Int64Column extends ColumnBuilder {
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
    setValid(this.validity, i);
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

export class Int32Column extends ColumnBuilder {
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
    setValid(this.validity, i);
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

export class FloatColumn extends ColumnBuilder {
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
    setValid(this.validity, i);
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

export class BoolColumn extends ColumnBuilder {
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
    setValid(this.validity, i);
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
