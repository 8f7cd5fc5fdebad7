/**
 * Cells read unformatted (`valueRenderOption=UNFORMATTED_VALUE`,
 * `dateTimeRenderOption=SERIAL_NUMBER`) turned into what the asset's column
 * needs, before `validate()` makes them canonical:
 *
 * - a number in a `date` column is a serial day number (days since
 *   1899-12-30, the Lotus/Sheets epoch): days since 1970-01-01; a fraction
 *   (a time of day) is refused, never truncated;
 * - a number in a `timestamp` column is a serial date-time: the wall-clock
 *   time in the sheet's time zone, to UTC microseconds, computed from the
 *   double's exact binary value and rounded to the nearest µs (whole-µs
 *   times up to year 2079 come back exactly: the double's step there is
 *   under 0.7 µs);
 * - a Sheets error value (`#N/A`, `#DIV/0!`, `#REF!`, …) in a column that is
 *   not `string` is refused with its name;
 * - everything else goes on as read: numbers, booleans and strings are
 *   coerced by `validate()` (a decimal from a JS number through its shortest
 *   round-trip text, so 0.1 is "0.10" in decimal(12,2), never
 *   0.1000000000000000055…; an integer beyond 2^53 cannot arrive as a JSON
 *   number without losing digits and is refused there: keep such ids as
 *   text cells).
 */
import type { FieldType } from '../../lib/types.js';

/** Serial day of 1970-01-01 (days from 1899-12-30). */
export const UNIX_EPOCH_SERIAL = 25_569;
const MICROS_PER_DAY = 86_400_000_000n;

const ERROR_VALUES = new Set(['#NULL!', '#DIV/0!', '#VALUE!', '#REF!', '#NAME?', '#NUM!', '#N/A', '#ERROR!', '#SPILL!', '#CALC!']);

/** True for the text of a Sheets error value. */
export function isErrorValue(v: unknown): v is string {
  return typeof v === 'string' && ERROR_VALUES.has(v);
}

/** The exact value of a finite double as `m × 2^e` (m an integer). */
function exactBinary(v: number): { m: bigint; e: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const exp = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  if (exp === 0) return { m: sign * m, e: -1074 };
  m |= 1n << 52n;
  return { m: sign * m, e: exp - 1075 };
}

/** `round(v × k)` for a finite double `v` and an integer `k`, exactly (half away from zero). */
function roundTimes(v: number, k: bigint): bigint {
  const { m, e } = exactBinary(v);
  if (e >= 0) return m * k * (1n << BigInt(e));
  const num = m * k;
  const den = 1n << BigInt(-e);
  const neg = num < 0n;
  const a = neg ? -num : num;
  const q = (a + den / 2n) / den;
  return neg ? -q : q;
}

/** Microseconds since 1970-01-01 of a serial date-time read as UTC wall-clock time. */
export function serialToWallMicros(serial: number): bigint {
  return roundTimes(serial, MICROS_PER_DAY) - BigInt(UNIX_EPOCH_SERIAL) * MICROS_PER_DAY;
}

/** Days since 1970-01-01 of a serial day number; a message when it has a time of day. */
export function serialToDays(serial: number): number | string {
  if (!Number.isInteger(serial)) return `serial ${serial} has a time of day; a date column takes whole days`;
  return serial - UNIX_EPOCH_SERIAL;
}

/**
 * A time zone's offset from UTC at an instant, in ms (east positive). `tz`
 * is an IANA name, `UTC`/`Etc/GMT`, or a fixed `GMT+05:30` / `+05:30`.
 */
export type ZoneOffset = (utcMs: number) => number;

const FIXED_RE = /^(?:GMT|UTC)?([+-])(\d{1,2})(?::?(\d{2}))?$/;

/** The offset function of a time zone name, or a message when it is not one. */
export function zoneOffset(tz: string): ZoneOffset | string {
  const name = tz.trim();
  if (name === 'UTC' || name === 'GMT' || name === 'Etc/GMT' || name === 'Etc/UTC' || name === 'Z') return () => 0;
  const fixed = FIXED_RE.exec(name);
  if (fixed) {
    const ms = (Number(fixed[2]) * 60 + Number(fixed[3] ?? 0)) * 60_000 * (fixed[1] === '-' ? -1 : 1);
    return () => ms;
  }
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' });
  } catch {
    return `unknown time zone ${JSON.stringify(tz)} (an IANA name such as Europe/Berlin, UTC, or GMT+05:30)`;
  }
  return (utcMs) => {
    const p: Record<string, number> = {};
    let era = '';
    for (const part of fmt.formatToParts(new Date(utcMs))) {
      if (part.type === 'era') era = part.value;
      else if (part.type !== 'literal') p[part.type] = Number(part.value);
    }
    const year = era.startsWith('B') ? 1 - p['year']! : p['year']!;
    const d = new Date(Date.UTC(2000, p['month']! - 1, p['day']!, p['hour']!, p['minute']!, p['second']!));
    d.setUTCFullYear(year);
    const wall = d.getTime();
    // Whole seconds: the instant's own milliseconds are not part of the offset.
    return wall - (utcMs - (((utcMs % 1000) + 1000) % 1000));
  };
}

/**
 * UTC microseconds of a wall-clock time (µs since 1970 as if UTC) in a zone.
 * A wall time that occurs twice (clocks set back) is the earlier instant; one
 * that does not occur (clocks set forward) is read with the offset before
 * the change.
 */
export function wallToUtcMicros(wallMicros: bigint, offset: ZoneOffset): bigint {
  const wallMs = Number(wallMicros / 1000n);
  const before = offset(wallMs - 86_400_000);
  const after = offset(wallMs + 86_400_000);
  const valid = [before, after].filter((o) => offset(wallMs - o) === o);
  // Two valid offsets: the time occurs twice, the earlier instant has the larger offset.
  const o = valid.length === 0 ? before : Math.max(...valid);
  return wallMicros - BigInt(o) * 1000n;
}

/** What {@link convertCell} gives: a value for `validate()`, or why the cell is refused. */
export type Converted = { ok: true; value: unknown } | { ok: false; code: 'type' | 'range'; message: string };

/** Convert one non-blank cell for a column of `type` (see the module doc). */
export function convertCell(v: unknown, type: FieldType, offset: ZoneOffset): Converted {
  if (type.kind !== 'string' && isErrorValue(v)) return { ok: false, code: 'type', message: `the cell holds the error value ${v}` };
  if (typeof v !== 'number') return { ok: true, value: v };
  if (type.kind === 'date') {
    const d = serialToDays(v);
    return typeof d === 'string' ? { ok: false, code: 'type', message: d } : { ok: true, value: d };
  }
  if (type.kind === 'timestamp') {
    if (!Number.isFinite(v)) return { ok: false, code: 'type', message: `${v} is not a serial date-time` };
    return { ok: true, value: wallToUtcMicros(serialToWallMicros(v), offset) };
  }
  return { ok: true, value: v };
}
