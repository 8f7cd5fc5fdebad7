/**
 * Iceberg single-value binary encoding (spec Appendix D) for column bounds and
 * partition summaries, with the default metrics mode `truncate(16)` for
 * strings and binary.
 */
import type { IcebergType } from './schema.js';
import { parseDecimal } from './schema.js';

/** Length of a truncated string/binary bound (Iceberg default metrics mode `truncate(16)`). */
export const TRUNCATE_LENGTH = 16;

function le32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

function le64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(n, 0);
  return b;
}

function toBigInt(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return undefined;
}

/** Unscaled value of a canonical decimal string at `scale`; undefined if it has more non-zero digits than the scale. */
export function unscaledDecimal(value: unknown, scale: number): bigint | undefined {
  if (typeof value === 'bigint') return value * 10n ** BigInt(scale);
  if (typeof value === 'number') return unscaledDecimal(String(value), scale);
  if (typeof value !== 'string') return undefined;
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(value.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  let frac = m[3] ?? '';
  if (frac.length > scale) {
    if (/[^0]/.test(frac.slice(scale))) return undefined;
    frac = frac.slice(0, scale);
  }
  const digits = (m[2] || '0') + frac.padEnd(scale, '0');
  const n = BigInt(digits);
  return m[1] === '-' ? -n : n;
}

/** Minimum-length big-endian two's complement bytes of `n` (at least 1 byte). */
export function twosComplementMinBytes(n: bigint): Buffer {
  let len = 1;
  while (n < -(1n << BigInt(8 * len - 1)) || n >= 1n << BigInt(8 * len - 1)) len++;
  return twosComplementBytes(n, len);
}

/** Big-endian two's complement of `n` in exactly `len` bytes. */
export function twosComplementBytes(n: bigint, len: number): Buffer {
  const out = Buffer.alloc(len);
  let v = BigInt.asUintN(8 * len, n);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Bytes needed for a decimal of precision `p` stored as fixed (Iceberg/Avro/Parquet). */
export function decimalFixedSize(precision: number): number {
  let len = 1;
  while (2 ** (8 * len - 1) < 10 ** precision) len++;
  return len;
}

/** Truncate a string to `len` code points (not UTF-16 units). */
export function truncateString(s: string, len = TRUNCATE_LENGTH): string {
  const cps = Array.from(s);
  return cps.length <= len ? s : cps.slice(0, len).join('');
}

/**
 * Smallest string of at most `len` code points that is greater than every
 * string starting with the first `len` code points of `s`: truncate, then
 * increment the last code point that can be (skipping surrogates), dropping
 * the tail. Undefined when no code point can be incremented.
 */
export function truncateStringUpper(s: string, len = TRUNCATE_LENGTH): string | undefined {
  const cps = Array.from(s);
  if (cps.length <= len) return s;
  const head = cps.slice(0, len);
  for (let i = head.length - 1; i >= 0; i--) {
    let next = head[i]!.codePointAt(0)! + 1;
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
    if (next > 0x10ffff) continue;
    return head.slice(0, i).join('') + String.fromCodePoint(next);
  }
  return undefined;
}

/** Upper bound for binary: first `len` bytes with the last byte < 0xFF incremented; undefined if impossible. */
export function truncateBinaryUpper(b: Uint8Array, len = TRUNCATE_LENGTH): Buffer | undefined {
  if (b.length <= len) return Buffer.from(b);
  const head = Buffer.from(b.subarray(0, len));
  for (let i = head.length - 1; i >= 0; i--) {
    if (head[i]! < 0xff) {
      const out = Buffer.from(head.subarray(0, i + 1));
      out[i] = head[i]! + 1;
      return out;
    }
  }
  return undefined;
}

/**
 * Encode one value of Iceberg primitive `type` as a bound (Appendix D).
 * `side` selects truncation rounding for strings/binary and the sign of zero
 * for floats (a lower bound of 0 is written as -0.0, an upper bound of -0 as
 * +0.0, so the bound holds whichever zero the column contains). Returns
 * undefined when the value has no valid bound (NaN, an upper bound that cannot
 * be incremented, unsupported or nested types, values of the wrong shape).
 */
export function encodeBound(type: IcebergType, value: unknown, side: 'lower' | 'upper'): Buffer | undefined {
  if (value === null || value === undefined || typeof type !== 'string') return undefined;
  switch (type) {
    case 'boolean':
      return typeof value === 'boolean' ? Buffer.from([value ? 1 : 0]) : undefined;
    case 'int':
    case 'date':
      return typeof value === 'number' && Number.isInteger(value) ? le32(value) : undefined;
    case 'long':
    case 'time':
    case 'timestamp':
    case 'timestamptz':
    case 'timestamp_ns':
    case 'timestamptz_ns': {
      const n = toBigInt(value);
      return n === undefined ? undefined : le64(n);
    }
    case 'float':
    case 'double': {
      if (typeof value !== 'number' || Number.isNaN(value)) return undefined;
      let v = value;
      if (v === 0) v = side === 'lower' ? -0 : 0;
      const b = Buffer.alloc(type === 'float' ? 4 : 8);
      if (type === 'float') b.writeFloatLE(v, 0);
      else b.writeDoubleLE(v, 0);
      return b;
    }
    case 'string': {
      if (typeof value !== 'string') return undefined;
      const s = side === 'lower' ? truncateString(value) : truncateStringUpper(value);
      return s === undefined ? undefined : Buffer.from(s, 'utf8');
    }
    case 'binary': {
      if (!(value instanceof Uint8Array)) return undefined;
      return side === 'lower' ? Buffer.from(value.subarray(0, TRUNCATE_LENGTH)) : truncateBinaryUpper(value);
    }
    default: {
      const d = parseDecimal(type);
      if (!d) return undefined;
      const n = unscaledDecimal(value, d.scale);
      return n === undefined ? undefined : twosComplementMinBytes(n);
    }
  }
}
