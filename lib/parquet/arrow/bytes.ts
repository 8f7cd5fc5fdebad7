/** Variable-width columns: UTF-8 text (string, json) and binary, one offsets array and one byte buffer each. */
import type { DataType } from 'apache-arrow';
import type { AssetField } from '../../types.js';
import { badValue, ColumnBuilder, setValid, make, type BuiltColumn, type Utf8Writable } from './column.js';
import { compareBytes, compareCodePoints, HIGH_UNITS, type ColumnStatsAcc } from './stats.js';

/** Byte order of `a[s, e)` against `b` (a JS loop: short values, no native call per value). */
function compareAt(a: Uint8Array, s: number, e: number, b: Uint8Array): number {
  const n = Math.min(e - s, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[s + i]! - b[i]!;
    if (d !== 0) return d;
  }
  return e - s - b.length;
}

export class Utf8Column extends ColumnBuilder {
  offsets: Int32Array;
  buf: Utf8Writable;
  pos = 0;
  min: string | undefined;
  max: string | undefined;
  /** Bounds of the values appended as bytes ({@link appendUtf8}), in byte order (= code point order); merged with `min`/`max` at finish. */
  bmin: Buffer | undefined;
  bmax: Buffer | undefined;

  constructor(field: AssetField, type: DataType, capacity: number) {
    super(field, type, capacity);
    this.offsets = new Int32Array(capacity + 1);
    this.buf = Buffer.allocUnsafeSlow(Math.max(1024, capacity * 16)) as unknown as Utf8Writable;
  }

  /**
   * Append valid UTF-8 `b[s, e)` as a value (the columnar path: no string
   * made), each doubled `quote` byte once when `escaped`. The same column
   * and statistics as `append` of the decoded string.
   */
  appendUtf8(b: Uint8Array, s: number, e: number, escaped: boolean, quote: number): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    let pos = this.pos;
    const start = pos;
    if (pos + (e - s) > this.buf.length) this.growBytes(pos + (e - s));
    const buf = this.buf;
    if (escaped) {
      for (let k = s; k < e; k++) {
        const c = b[k]!;
        buf[pos++] = c;
        if (c === quote) k++;
      }
    } else if (e - s <= 32) {
      for (let k = s; k < e; k++) buf[pos++] = b[k]!;
    } else {
      buf.set(b.subarray(s, e), pos);
      pos += e - s;
    }
    if (pos > 0x7fffffff) throw badValue(this.field, i, '', 'more than 2 GiB of text in one batch');
    this.pos = pos;
    this.offsets[i + 1] = pos;
    setValid(this.validity, i);
    this.n = i + 1;
    const lo = this.bmin;
    const hi = this.bmax;
    if (lo === undefined || hi === undefined) {
      this.bmin = this.bmax = Buffer.from(buf.subarray(start, pos));
      return;
    }
    // Strictly between the bounds' first bytes: neither bound moves (most values).
    const first = pos > start ? buf[start]! : -1;
    if (lo.length > 0 && first > lo[0]! && hi.length > 0 && first < hi[0]!) return;
    if (compareAt(buf, start, pos, lo) < 0) this.bmin = Buffer.from(buf.subarray(start, pos));
    else if (compareAt(buf, start, pos, hi) > 0) this.bmax = Buffer.from(buf.subarray(start, pos));
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
      this.bmin = this.bmax = undefined;
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
    this.bmin = this.bmax = undefined;
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
    setValid(this.validity, i);
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
    let { min, max } = this;
    if (this.bmin !== undefined && this.bmax !== undefined) {
      const lo = this.bmin.toString('utf8');
      const hi = this.bmax.toString('utf8');
      if (min === undefined || compareCodePoints(lo, min) < 0) min = lo;
      if (max === undefined || compareCodePoints(hi, max) > 0) max = hi;
    }
    acc.min = acc.minKey = min;
    acc.max = acc.maxKey = max;
    const n = this.n;
    const pos = this.pos;
    const valueOffsets = this.offsets.subarray(0, n + 1);
    // Without reuse, a copy of exactly the bytes used: the growable buffer may be far larger.
    const data = this.reuse ? this.buf.subarray(0, pos) : Uint8Array.prototype.slice.call(this.buf, 0, pos);
    return this.done(acc, (nullBitmap) => make({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, valueOffsets, data }), valueOffsets.byteLength + pos);
  }
}

export class BinaryColumn extends ColumnBuilder {
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
    setValid(this.validity, i);
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
