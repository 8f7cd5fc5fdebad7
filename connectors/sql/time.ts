/**
 * Fast parsers for the date/time text that SQL drivers receive on the wire,
 * straight into canonical values (lib/types.ts): days since epoch for dates,
 * bigint microseconds since epoch (UTC) for timestamps.
 *
 * Why by hand: `new Date()` drops microseconds and is slow; a regex per value
 * costs more than the rest of the row. These functions walk character codes
 * once. Anything they do not recognise (`infinity`, MySQL zero dates, BC
 * years with a suffix we do not expect) is returned unchanged as a string, so
 * the engine's validate stage rejects the row with a message instead of
 * a value being silently changed.
 */
import { daysFromCivil, formatTimestampMicros } from '../../lib/records/time.js';

const C0 = 48; // '0'

function digits(s: string, from: number, count: number): number {
  let n = 0;
  for (let i = from; i < from + count; i++) {
    const c = s.charCodeAt(i) - C0;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

/** Index just after the day of the last successful {@link parseYmd} (an out-parameter: no tuple per value). */
let ymdEnd = 0;

/**
 * Parse the year-month-day prefix `Y…Y-MM-DD` (4 or more year digits) into
 * days since epoch, setting {@link ymdEnd}; NaN when it is not a date.
 */
function parseYmd(s: string): number {
  let i = 4;
  let y = digits(s, 0, 4);
  if (y < 0) return NaN;
  // Years past 9999 have more digits (Postgres allows them).
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i) - C0;
    if (c < 0 || c > 9) break;
    y = y * 10 + c;
  }
  if (s.charCodeAt(i) !== 45 /* - */ || s.charCodeAt(i + 3) !== 45) return NaN;
  const m = digits(s, i + 1, 2);
  const d = digits(s, i + 4, 2);
  if (m < 1 || m > 12 || d < 1 || d > 31) return NaN;
  ymdEnd = i + 6;
  return daysFromCivil(y, m, d);
}

/** Days between a BC year and the same calendar day in the astronomical year numbering. */
function bcShift(s: string, end: number): number | undefined {
  // Postgres writes year 1 BC as "0001-01-01 BC" = astronomical year 0.
  if (end === s.length) return 0;
  if (s.slice(end) !== ' BC') return undefined;
  return 1;
}

/**
 * `YYYY-MM-DD` (Postgres may add ` BC`) → days since 1970-01-01.
 * Unrecognised text (e.g. `infinity`, `0000-00-00`) is returned as is.
 */
export function parseDateText(s: string): number | string {
  const days = parseYmd(s);
  if (Number.isNaN(days)) return s;
  const end = ymdEnd;
  if (end === s.length) return days;
  if (bcShift(s, end) === 1) {
    const y = digits(s, 0, end - 6);
    return daysFromCivil(1 - y, digits(s, end - 5, 2), digits(s, end - 2, 2));
  }
  return s;
}

/**
 * Timestamp text → µs since epoch, UTC.
 *
 * Accepts `YYYY-MM-DD HH:MM:SS[.f{1,6}]` optionally followed by an offset
 * `±HH[:MM[:SS]]` (Postgres `timestamptz`) and ` BC`. Without an offset the
 * value is taken as UTC (Postgres `timestamp without time zone`, MySQL
 * `DATETIME`, which carry no zone). Unrecognised text is returned as is.
 */
export function parseTimestampText(s: string): bigint | string {
  let days = parseYmd(s);
  if (Number.isNaN(days)) return s;
  const dayEnd = ymdEnd;
  let i = dayEnd;
  const sep = s.charCodeAt(i);
  if (sep !== 32 && sep !== 84 /* T */) return i === s.length ? BigInt(days) * 86_400_000_000n : s;
  const hh = digits(s, i + 1, 2);
  const mi = digits(s, i + 4, 2);
  const ss = digits(s, i + 7, 2);
  if (hh < 0 || mi < 0 || ss < 0 || s.charCodeAt(i + 3) !== 58 || s.charCodeAt(i + 6) !== 58) return s;
  i += 9;
  let frac = 0;
  if (s.charCodeAt(i) === 46 /* . */) {
    let n = 0;
    i++;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i) - C0;
      if (c < 0 || c > 9) break;
      if (n < 6) {
        frac = frac * 10 + c;
        n++;
      }
    }
    for (; n < 6; n++) frac *= 10;
  }
  let offset = 0;
  const sign = s.charCodeAt(i);
  if (sign === 43 /* + */ || sign === 45 /* - */) {
    const oh = digits(s, i + 1, 2);
    if (oh < 0) return s;
    offset = oh * 3600;
    i += 3;
    if (s.charCodeAt(i) === 58) {
      const om = digits(s, i + 1, 2);
      if (om < 0) return s;
      offset += om * 60;
      i += 3;
      if (s.charCodeAt(i) === 58) {
        const os = digits(s, i + 1, 2);
        if (os < 0) return s;
        offset += os;
        i += 3;
      }
    }
    if (sign === 45) offset = -offset;
  } else if (sign === 90 /* Z */) i++;
  if (i !== s.length) {
    if (bcShift(s, i) !== 1) return s;
    const yLen = dayEnd - 6;
    days = daysFromCivil(1 - digits(s, 0, yLen), digits(s, yLen + 1, 2), digits(s, yLen + 4, 2));
  }
  // local = UTC + offset, so UTC = local - offset
  const secs = days * 86400 + hh * 3600 + mi * 60 + ss - offset;
  const us = secs * 1e6 + frac;
  // One BigInt conversion when exact (years ~1685-2255), else exact bigint arithmetic.
  return Number.isSafeInteger(us) ? BigInt(us) : BigInt(secs) * 1_000_000n + BigInt(frac);
}

/**
 * A saved timestamp cursor value (ISO-8601 with `Z`, as the track stage
 * writes it) in the `YYYY-MM-DD HH:MM:SS.ffffff` form MySQL compares
 * correctly with DATETIME/TIMESTAMP columns in a UTC session.
 */
export function isoToSqlDateTime(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, '');
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` (UTC) of a JS Date, for bound parameters. */
export function dateToSqlDateTime(d: Date): string {
  return isoToSqlDateTime(formatTimestampMicros(BigInt(d.getTime()) * 1000n));
}
