/**
 * Per-type value coercers: one raw non-null value → its canonical value
 * (the table in lib/types.ts) or a {@link Bad} saying why not.
 */
import { stringifyJson } from '../json.js';
import type { FieldType } from '../types.js';
import { formatDecimal, formatPlainDecimal, parseDecimal, scaledFloor } from './decimal.js';
import {
  MAX_DATE_DAYS,
  MAX_TIMESTAMP_MICROS,
  MIN_DATE_DAYS,
  MIN_TIMESTAMP_MICROS,
  parseDateDays,
  parseTimestampMicros,
} from './time.js';

/**
 * Machine-readable reason a value was refused:
 * - `required`: null, missing or empty for a required column;
 * - `type`: the value cannot be read as the column type (bad format, wrong JS type);
 * - `range`: it parses but does not fit (int32 overflow, 2024-02-30, too many integer digits);
 * - `precision`: it would lose digits (non-safe JS integer into long, 3 decimals into scale 2);
 * - `constraint`: it violates a constraint declared in the asset (enum, pattern, minimum, ...).
 */
export type FieldErrorCode = 'required' | 'type' | 'range' | 'precision' | 'constraint';

/**
 * Returned by a field coercer for a refused value. A class (not a union
 * result object) so that the success path allocates nothing.
 */
export class Bad {
  constructor(
    readonly code: Exclude<FieldErrorCode, 'required' | 'constraint'>,
    readonly message: string,
  ) {}
}

/** Coerce one non-null, non-empty raw value to a canonical value, or {@link Bad}. */
export type FieldCoercer = (v: unknown) => unknown;

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const FLOAT32_MAX = 3.4028234663852886e38;

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 64 ? v.slice(0, 64) + '…' : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Date) return `Date(${Number.isNaN(v.getTime()) ? 'invalid' : v.toISOString()})`;
  if (v instanceof Uint8Array) return `bytes[${v.byteLength}]`;
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

function typeError(v: unknown, what: string): Bad {
  return new Bad('type', `${describe(v)} is not ${what}`);
}

/**
 * The value of a plain decimal integer text of at most 15 digits (an
 * optional `-`, no spaces or `+`), exact as a number; `undefined` for any
 * other text (the general path decides). Cheaper than a regular expression
 * plus `BigInt(text)` for the common case.
 */
function smallInteger(s: string): number | undefined {
  const n = s.length;
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  if (n === i || n - i > 15) return undefined;
  let x = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    x = x * 10 + c;
  }
  return s.charCodeAt(0) === 45 ? -x : x;
}

function coerceLong(v: unknown): unknown {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return BigInt(v);
    if (Number.isInteger(v)) return new Bad('precision', `${v} is beyond 2^53 as a JS number: digits already lost (send it as a string or bigint)`);
    return typeError(v, 'an integer');
  } else if (typeof v === 'string') {
    const small = smallInteger(v);
    if (small !== undefined) return BigInt(small);
    const s = v.trim();
    if (!INT_RE.test(s)) return typeError(v, 'an integer');
    b = BigInt(s);
  } else return typeError(v, 'an integer');
  if (b < INT64_MIN || b > INT64_MAX) return new Bad('range', `${b} is outside the 64-bit integer range`);
  return b;
}

function coerceInt(v: unknown): unknown {
  let n: number;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return typeError(v, 'an integer');
    n = v;
  } else if (typeof v === 'bigint') {
    if (v < -2147483648n || v > 2147483647n) return new Bad('range', `${v} is outside the 32-bit integer range`);
    return Number(v);
  } else if (typeof v === 'string') {
    const small = smallInteger(v);
    if (small !== undefined) n = small;
    else {
      const s = v.trim();
      if (!INT_RE.test(s)) return typeError(v, 'an integer');
      n = s.length > 12 ? Infinity : Number(s);
    }
  } else return typeError(v, 'an integer');
  if (n < -2147483648 || n > 2147483647) return new Bad('range', `${describe(v)} is outside the 32-bit integer range`);
  return n === 0 ? 0 : n; // -0 → 0
}

function readFloat(v: unknown): number | Bad {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const s = v.trim();
    if (FLOAT_RE.test(s)) return Number(s);
    if (s === 'NaN') return NaN;
    if (s === 'Infinity' || s === '+Infinity') return Infinity;
    if (s === '-Infinity') return -Infinity;
    return typeError(v, 'a number');
  }
  if (typeof v === 'bigint') {
    const n = Number(v);
    if (BigInt(n) !== v) return new Bad('precision', `${v} is not exactly representable as a double`);
    return n;
  }
  return typeError(v, 'a number');
}

function coerceDouble(v: unknown): unknown {
  return readFloat(v);
}

// Canonical float is the float32 value the file will hold, so statistics
// computed from canonical rows match what readers see.
function coerceFloat(v: unknown): unknown {
  const n = readFloat(v);
  if (n instanceof Bad || !Number.isFinite(n)) return n;
  if (Math.abs(n) > FLOAT32_MAX) return new Bad('range', `${describe(v)} is outside the 32-bit float range`);
  return Math.fround(n);
}

function makeDecimal(precision: number, scale: number): FieldCoercer {
  return (v) => {
    let text: string;
    if (typeof v === 'string') text = v.trim();
    else if (typeof v === 'number') {
      if (!Number.isFinite(v)) return typeError(v, 'a finite decimal');
      text = String(v); // shortest round-trip text, the digits the sender meant
    } else if (typeof v === 'bigint') text = v.toString();
    else return typeError(v, 'a decimal');
    const fast = formatPlainDecimal(text, precision, scale);
    if (fast !== undefined) return typeof fast === 'string' ? fast : new Bad(fast.code, `${describe(v)}: ${fast.message}`);
    const parts = parseDecimal(text);
    if (parts === undefined) return typeError(v, 'a decimal');
    const out = formatDecimal(parts, precision, scale);
    return typeof out === 'string' ? out : new Bad(out.code, `${describe(v)}: ${out.message}`);
  };
}

const TRUE_WORDS = new Set(['true', 't', 'yes', 'y', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'f', 'no', 'n', '0', 'off']);

function coerceBoolean(v: unknown): unknown {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    if (v === 'true') return true;
    if (v === 'false') return false;
    const s = v.trim().toLowerCase();
    if (TRUE_WORDS.has(s)) return true;
    if (FALSE_WORDS.has(s)) return false;
  } else if (typeof v === 'number' || typeof v === 'bigint') {
    if (v == 1) return true;
    if (v == 0) return false;
  }
  return typeError(v, 'a boolean');
}

function coerceDate(v: unknown): unknown {
  let days: number;
  if (typeof v === 'string') {
    const d = parseDateDays(v.trim());
    if (typeof d === 'string') return new Bad(d.startsWith('not a date') ? 'type' : 'range', d);
    return d;
  } else if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms)) return typeError(v, 'a valid date');
    days = Math.floor(ms / 86_400_000);
  } else if (typeof v === 'number') {
    if (!Number.isInteger(v)) return typeError(v, 'a whole number of days');
    days = v;
  } else if (typeof v === 'bigint') {
    if (v < -1_000_000n || v > 3_000_000n) return new Bad('range', `${v} days is outside years 0001-9999`);
    days = Number(v);
  } else return typeError(v, 'a date');
  if (days < MIN_DATE_DAYS || days > MAX_DATE_DAYS) return new Bad('range', `${describe(v)} is outside years 0001-9999`);
  return days === 0 ? 0 : days;
}

function checkTs(us: bigint, v: unknown): unknown {
  if (us < MIN_TIMESTAMP_MICROS || us > MAX_TIMESTAMP_MICROS) return new Bad('range', `${describe(v)} is outside years 0001-9999`);
  return us;
}

function coerceTimestamp(v: unknown): unknown {
  if (typeof v === 'string') {
    const us = parseTimestampMicros(v.trim());
    if (typeof us === 'string') return new Bad(us.startsWith('not a timestamp') ? 'type' : 'range', us);
    return checkTs(us, v);
  }
  if (typeof v === 'bigint') return checkTs(v, v);
  if (v instanceof Date) {
    const ms = v.getTime();
    if (Number.isNaN(ms)) return typeError(v, 'a valid date');
    return checkTs(BigInt(ms) * 1000n, v);
  }
  if (typeof v === 'number') {
    // Unix seconds. Fractions go through the shortest decimal text of the
    // number, not `v * 1e6` (1.000001 * 1e6 is 1000000.9999999999).
    if (Number.isSafeInteger(v)) return checkTs(BigInt(v) * 1_000_000n, v);
    if (!Number.isFinite(v)) return typeError(v, 'a finite number of seconds');
    const parts = parseDecimal(String(v));
    const us = parts === undefined ? undefined : scaledFloor(parts, 6);
    if (us === undefined) return new Bad('range', `${describe(v)} seconds is outside years 0001-9999`);
    return checkTs(us, v);
  }
  return typeError(v, 'a timestamp');
}

function coerceString(v: unknown): unknown {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) return typeError(v, 'a valid date');
    return v.toISOString();
  }
  return typeError(v, 'a string');
}

function coerceJson(v: unknown): unknown {
  // JSON text from a driver is passed through verbatim: parsing and
  // re-serialising would change number precision, key order and whitespace.
  if (typeof v === 'string') return v;
  if (typeof v === 'symbol' || typeof v === 'function') return typeError(v, 'JSON');
  try {
    return stringifyJson(v);
  } catch (err) {
    return new Bad('type', `value cannot be serialised as JSON: ${(err as Error).message}`);
  }
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

function coerceBinary(v: unknown): unknown {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (typeof v === 'string') {
    if (v.startsWith('\\x')) {
      const hex = v.slice(2);
      if (!HEX_RE.test(hex)) return typeError(v, 'hex bytes (\\x…)');
      return new Uint8Array(Buffer.from(hex, 'hex'));
    }
    if (!BASE64_RE.test(v)) return typeError(v, 'base64');
    // Copy out of Buffer's shared pool so `.buffer` holds only these bytes.
    return new Uint8Array(Buffer.from(v, 'base64'));
  }
  return typeError(v, 'binary (Uint8Array, base64 or \\x hex)');
}

/**
 * The coercer of one field type: takes a non-null value (null, undefined and
 * the empty string are handled by the record coercer) and returns its
 * canonical value or a {@link Bad}.
 */
export function fieldCoercer(type: FieldType): FieldCoercer {
  switch (type.kind) {
    case 'long':
      return coerceLong;
    case 'int':
      return coerceInt;
    case 'float':
      return coerceFloat;
    case 'double':
      return coerceDouble;
    case 'decimal':
      return makeDecimal(type.precision, type.scale);
    case 'boolean':
      return coerceBoolean;
    case 'date':
      return coerceDate;
    case 'timestamp':
      return coerceTimestamp;
    case 'string':
      return coerceString;
    case 'json':
      return coerceJson;
    case 'binary':
      return coerceBinary;
  }
}

