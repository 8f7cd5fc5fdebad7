/** Decimal columns (Arrow decimal128): canonical decimal text → 128-bit two's complement unscaled integers. */
import type { DataType } from 'apache-arrow';
import { DativoError } from '../../errors.js';
import type { AssetField } from '../../types.js';
import { badValue, ColumnBuilder, setValid, make, type BuiltColumn } from './column.js';
import type { ColumnStatsAcc } from './stats.js';

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
export function smallUnscaled(text: string, scale: number): number | undefined {
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

export class DecimalColumn extends ColumnBuilder {
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
    const small = smallUnscaled(v, this.scale);
    if (small !== undefined && Math.abs(small) < this.limit) {
      this.appendUnscaled(small);
      return;
    }
    let u: bigint;
    try {
      u = decimalToUnscaled(v, this.precision, this.scale);
    } catch (err) {
      throw badValue(this.field, i, v, (err as Error).message);
    }
    // 128-bit two's complement, little-endian: low word first.
    const words = this.words;
    for (let w = 0; w < 4; w++) words[4 * i + w] = Number(BigInt.asUintN(32, u >> BigInt(32 * w)));
    setValid(this.validity, i);
    this.n = i + 1;
    if (this.min === undefined || u < this.min) this.min = u;
    if (this.max === undefined || u > this.max) this.max = u;
  }

  /**
   * Append the value of unscaled integer `u` (|u| < 2^53 and below
   * 10^precision: the caller checked): what `append` does for the canonical
   * text of that value, without the text (the columnar path; `append`'s
   * fast path for values below 2^53). Split into 32-bit words without BigInt.
   */
  appendUnscaled(u: number): void {
    const i = this.n;
    if (i === this.cap) this.grow();
    const words = this.words;
    let lo = u % 4294967296;
    if (lo < 0) lo += 4294967296;
    const hi = (u - lo) / 4294967296;
    const ext = u < 0 ? 0xffffffff : 0;
    words[4 * i] = lo;
    words[4 * i + 1] = hi >>> 0;
    words[4 * i + 2] = ext;
    words[4 * i + 3] = ext;
    setValid(this.validity, i);
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
