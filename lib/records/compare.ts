/**
 * Ordering of canonical values (see the table in lib/types.ts). Used by the
 * cursor tracker and by exact constraint checks; never compares numbers as
 * strings or bigints as floats.
 */
import type { FieldKind } from '../types.js';
import { compareDecimalText } from './decimal.js';

/**
 * Compare two non-null canonical values of the same kind: negative, zero or
 * positive. Strings compare by Unicode code point (the order of their UTF-8
 * bytes, which is what Parquet statistics use), NaN sorts after every
 * number, decimals compare numerically whatever their scale.
 */
export function compareCanonical(kind: FieldKind, a: unknown, b: unknown): number {
  switch (kind) {
    case 'long':
    case 'timestamp':
      return (a as bigint) < (b as bigint) ? -1 : (a as bigint) > (b as bigint) ? 1 : 0;
    case 'int':
    case 'date':
    case 'float':
    case 'double':
      return compareNumbers(a as number, b as number);
    case 'decimal':
      return compareDecimalText(a as string, b as string);
    case 'string':
    case 'json':
      return compareCodePoints(a as string, b as string);
    case 'boolean':
      return a === b ? 0 : a === false ? -1 : 1;
    case 'binary':
      return compareBytes(a as Uint8Array, b as Uint8Array);
  }
}

function compareNumbers(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  const na = Number.isNaN(a);
  const nb = Number.isNaN(b);
  return na === nb ? 0 : na ? 1 : -1;
}

/** Code-point order (= UTF-8 byte order), unlike `<` which compares UTF-16 units. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (0xD800-0xDFFF) encode code points above 0xFFFF, which sort
    // after 0xE000-0xFFFF in code-point order but before them in UTF-16 order.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length < 0 ? -1 : a.length > b.length ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}
