/**
 * Exact decimal text arithmetic. Money never goes through a float: digits are
 * moved as strings, and only integers go through BigInt.
 */

/**
 * A decimal literal taken apart. The value is `±0.digits × 10^point`, i.e.
 * the decimal point sits after `point` digits of `digits` (point may be
 * negative or larger than digits.length). `digits` has no leading or
 * trailing zeros; zero is `digits === ''`.
 */
export interface DecimalParts {
  neg: boolean;
  digits: string;
  point: number;
}

const DECIMAL_RE = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * Take apart a decimal literal: optional sign, digits with an optional point,
 * optional exponent (`1.5e3`, `-.5`, `12.`, `1E-7`). Surrounding whitespace is
 * not accepted here (callers trim). Returns undefined when `s` is not one.
 */
export function parseDecimal(s: string): DecimalParts | undefined {
  const m = DECIMAL_RE.exec(s);
  if (m === null) return undefined;
  const intPart = m[2] ?? '';
  const fracPart = m[3] ?? '';
  if (intPart.length === 0 && fracPart.length === 0) return undefined;
  const all = intPart + fracPart;
  let first = 0;
  while (first < all.length && all.charCodeAt(first) === 48) first++;
  let last = all.length;
  while (last > first && all.charCodeAt(last - 1) === 48) last--;
  if (first === last) return { neg: false, digits: '', point: 0 };
  // A huge exponent stays a (float) number: only compared, never used as a length.
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  return { neg: m[1] === '-', digits: all.slice(first, last), point: intPart.length - first + exp };
}

/** Why a value does not fit a decimal(p,s) column. */
export type DecimalFitError = { code: 'range' | 'precision'; message: string };

/**
 * Format as the canonical text of a decimal(precision, scale) column: exactly
 * `scale` fraction digits, `-` only for non-zero values ("12.50", "-0.01",
 * "0.00"). More than `precision - scale` integer digits is a `range` error;
 * non-zero digits beyond `scale` are a `precision` error (never rounded).
 */
export function formatDecimal(p: DecimalParts, precision: number, scale: number): string | DecimalFitError {
  const zeros = scale > 0 ? '.' + '0'.repeat(scale) : '';
  if (p.digits === '') return '0' + zeros;
  const intLen = p.point > 0 ? p.point : 0;
  if (intLen > precision - scale) {
    return { code: 'range', message: `more than ${precision - scale} integer digits for decimal(${precision},${scale})` };
  }
  const fracLen = p.digits.length - p.point;
  if (fracLen > scale) {
    return { code: 'precision', message: `more than ${scale} fraction digits for decimal(${precision},${scale}) (would round)` };
  }
  let intStr: string;
  let fracStr: string;
  if (p.point > 0) {
    intStr = p.digits.slice(0, p.point).padEnd(p.point, '0');
    fracStr = p.digits.slice(p.point);
  } else {
    intStr = '0';
    fracStr = '0'.repeat(-p.point) + p.digits;
  }
  const text = scale > 0 ? `${intStr}.${fracStr.padEnd(scale, '0')}` : intStr;
  return p.neg ? '-' + text : text;
}

/**
 * `floor(value × 10^scale)` as a bigint, or undefined when the result would
 * have more than `maxDigits` digits (default 40).
 */
export function scaledFloor(p: DecimalParts, scale: number, maxDigits = 40): bigint | undefined {
  if (p.digits === '') return 0n;
  const shifted = p.point + scale;
  if (shifted > maxDigits) return undefined;
  if (shifted <= 0) return p.neg ? -1n : 0n;
  const whole = BigInt(p.digits.slice(0, shifted).padEnd(shifted, '0'));
  const hasRest = p.digits.length > shifted;
  return p.neg ? -whole - (hasRest ? 1n : 0n) : whole;
}

/**
 * Compare two decimal texts numerically (any scale, exponent form allowed):
 * negative, zero or positive like a sort comparator. Throws on non-decimal text.
 */
export function compareDecimalText(a: string, b: string): number {
  if (a === b) return 0;
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === undefined || y === undefined) throw new TypeError(`not a decimal: ${x === undefined ? a : b}`);
  return compareDecimalParts(x, y);
}

/** Numeric comparison of two {@link DecimalParts}. */
export function compareDecimalParts(x: DecimalParts, y: DecimalParts): number {
  const sx = x.digits === '' ? 0 : x.neg ? -1 : 1;
  const sy = y.digits === '' ? 0 : y.neg ? -1 : 1;
  if (sx !== sy) return sx < sy ? -1 : 1;
  if (sx === 0) return 0;
  let mag: number;
  if (x.point !== y.point) mag = x.point < y.point ? -1 : 1;
  else mag = x.digits < y.digits ? -1 : x.digits > y.digits ? 1 : 0;
  return sx < 0 ? -mag : mag;
}

/**
 * Fast path of parse + format for the common plain form `[-+]digits[.digits]`
 * (no exponent): returns the canonical text, a {@link DecimalFitError}, or
 * undefined when `s` is not in the plain form (then use the general path).
 */
export function formatPlainDecimal(s: string, precision: number, scale: number): string | DecimalFitError | undefined {
  const n = s.length;
  let i = 0;
  let neg = false;
  const c0 = s.charCodeAt(0);
  if (c0 === 45 || c0 === 43) {
    neg = c0 === 45;
    i = 1;
  }
  const intStart = i;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  const intEnd = i;
  let fracStart = i;
  let fracEnd = i;
  if (i < n) {
    if (s.charCodeAt(i) !== 46) return undefined;
    fracStart = ++i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return undefined;
      i++;
    }
    fracEnd = i;
  }
  if (intEnd === intStart && fracEnd === fracStart) return undefined;
  let lead = intStart;
  while (lead < intEnd && s.charCodeAt(lead) === 48) lead++;
  if (intEnd - lead > precision - scale) {
    return { code: 'range', message: `more than ${precision - scale} integer digits for decimal(${precision},${scale})` };
  }
  let last = fracEnd;
  while (last > fracStart && s.charCodeAt(last - 1) === 48) last--;
  if (last - fracStart > scale) {
    return { code: 'precision', message: `more than ${scale} fraction digits for decimal(${precision},${scale}) (would round)` };
  }
  const intStr = lead === intEnd ? '0' : s.slice(lead, intEnd);
  let text = intStr;
  if (scale > 0) {
    const frac = s.slice(fracStart, last);
    text += '.' + (frac.length === scale ? frac : frac + '0'.repeat(scale - frac.length));
  }
  return neg && (lead !== intEnd || last !== fracStart) ? '-' + text : text;
}
