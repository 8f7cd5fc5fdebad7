/**
 * Calendar arithmetic for canonical dates (days since 1970-01-01) and
 * timestamps (bigint microseconds since 1970-01-01T00:00:00Z).
 *
 * Strings are parsed by hand rather than with `Date.parse`, which accepts
 * nonsense ("2024-02-31" becomes March 2nd), reads offset-less strings in
 * local time in some forms, and stops at milliseconds.
 */

const MICROS_PER_SECOND = 1_000_000n;
const MICROS_PER_DAY = 86_400_000_000n;

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). Month 1-12; no validation.
 */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of {@link daysFromCivil}: `[year, month 1-12, day]`. */
export function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** True for Gregorian leap years. */
export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Number of days of month `m` (1-12) in year `y`. */
export function daysInMonth(y: number, m: number): number {
  return m === 2 && isLeapYear(y) ? 29 : (DAYS_IN_MONTH[m - 1] ?? 0);
}

/** First day accepted: 0001-01-01 (as days since epoch). */
export const MIN_DATE_DAYS = daysFromCivil(1, 1, 1);
/** Last day accepted: 9999-12-31 (as days since epoch). */
export const MAX_DATE_DAYS = daysFromCivil(9999, 12, 31);
/** First instant accepted: 0001-01-01T00:00:00Z in µs. */
export const MIN_TIMESTAMP_MICROS = BigInt(MIN_DATE_DAYS) * MICROS_PER_DAY;
/** Last instant accepted: 9999-12-31T23:59:59.999999Z in µs. */
export const MAX_TIMESTAMP_MICROS = BigInt(MAX_DATE_DAYS + 1) * MICROS_PER_DAY - 1n;

/** Two ASCII digits at `i` as a number, or -1. */
function d2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

/** `YYYY-MM-DD` at the start of `s` as [y, m, d], or undefined (format only, no range check). */
function ymd(s: string): [number, number, number] | undefined {
  if (s.length < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return undefined;
  const hi = d2(s, 0);
  const lo = d2(s, 2);
  const m = d2(s, 5);
  const d = d2(s, 8);
  if (hi < 0 || lo < 0 || m < 0 || d < 0) return undefined;
  return [hi * 100 + lo, m, d];
}

/**
 * Parse `YYYY-MM-DD` (years 0001-9999, a real calendar day) into days since
 * epoch. Returns an error message string when invalid.
 */
export function parseDateDays(s: string): number | string {
  const p = s.length === 10 ? ymd(s) : undefined;
  if (p === undefined) return `not a date (expected YYYY-MM-DD): ${JSON.stringify(s)}`;
  const bad = checkYmd(p[0], p[1], p[2]);
  if (bad !== undefined) return `${bad}: ${JSON.stringify(s)}`;
  return daysFromCivil(p[0], p[1], p[2]);
}

function checkYmd(y: number, mo: number, d: number): string | undefined {
  if (y < 1) return 'year out of range 0001-9999';
  if (mo < 1 || mo > 12) return 'month out of range';
  if (d < 1 || d > daysInMonth(y, mo)) return 'day out of range for the month';
  return undefined;
}

function notTs(s: string): string {
  return `not a timestamp (expected ISO-8601, e.g. 2024-01-31T12:00:00Z): ${JSON.stringify(s)}`;
}

/**
 * Parse a timestamp string into µs since epoch, UTC.
 *
 * Accepted: ISO-8601 / RFC 3339 date-times: `YYYY-MM-DD`, then `T`, `t` or a
 * space, `HH:MM`, optional `:SS`, optional fraction of 1-9 digits after `.`
 * or `,`, optional offset `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH`. A bare
 * `YYYY-MM-DD` is accepted too. Parsed by hand (no regex, no `Date.parse`):
 * this runs once per value on the hot path.
 *
 * - No offset means UTC (never the machine's local time zone).
 * - A bare `YYYY-MM-DD` means midnight UTC.
 * - Fraction digits beyond microseconds are truncated toward the past
 *   (`.9999999` → `.999999`). Postgres rounds instead; truncating means a
 *   value never moves forward, past a cursor or into the next day.
 * - Hour 24 and second 60 (leap second) are rejected.
 *
 * Returns an error message string when invalid.
 */
export function parseTimestampMicros(s: string): bigint | string {
  const p = ymd(s);
  if (p === undefined) return notTs(s);
  const [y, mo, d] = p;
  const n = s.length;
  let hh = 0;
  let mi = 0;
  let ss = 0;
  let micros = 0;
  let off = 0;
  if (n > 10) {
    const sep = s.charCodeAt(10);
    if (sep !== 84 && sep !== 116 && sep !== 32) return notTs(s); // T t space
    if (n < 16 || s.charCodeAt(13) !== 58) return notTs(s);
    hh = d2(s, 11);
    mi = d2(s, 14);
    if (hh < 0 || mi < 0) return notTs(s);
    let i = 16;
    if (i < n && s.charCodeAt(i) === 58) {
      ss = d2(s, i + 1);
      if (ss < 0) return notTs(s);
      i += 3;
      const dot = s.charCodeAt(i);
      if (i < n && (dot === 46 || dot === 44)) {
        i++;
        let k = 0;
        while (i < n) {
          const c = s.charCodeAt(i) - 48;
          if (c < 0 || c > 9) break;
          if (k < 6) micros = micros * 10 + c;
          k++;
          i++;
        }
        if (k === 0 || k > 9) return notTs(s);
        for (; k < 6; k++) micros *= 10;
      }
    }
    if (i < n) {
      const c = s.charCodeAt(i);
      if ((c === 90 || c === 122) && i + 1 === n) {
        // Z
      } else if (c === 43 || c === 45) {
        const oh = d2(s, i + 1);
        let om = 0;
        const rest = n - i - 3;
        if (oh < 0) return notTs(s);
        if (rest === 3 && s.charCodeAt(i + 3) === 58) om = d2(s, i + 4);
        else if (rest === 2) om = d2(s, i + 3);
        else if (rest !== 0) return notTs(s);
        if (om < 0) return notTs(s);
        if (oh > 23 || om > 59) return `offset out of range: ${JSON.stringify(s)}`;
        // local time = UTC + offset, so UTC = local - offset
        off = c === 43 ? oh * 3600 + om * 60 : -(oh * 3600 + om * 60);
      } else return notTs(s);
    }
  }
  const bad = checkYmd(y, mo, d);
  if (bad !== undefined) return `${bad}: ${JSON.stringify(s)}`;
  if (hh > 23) return `hour out of range 00-23: ${JSON.stringify(s)}`;
  if (mi > 59) return `minute out of range 00-59: ${JSON.stringify(s)}`;
  if (ss > 59) return `second out of range 00-59: ${JSON.stringify(s)}`;
  const secs = daysFromCivil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off;
  // One BigInt allocation when exact in a double (years ~1685-2255), else two.
  const us = secs * 1e6 + micros;
  return Number.isSafeInteger(us) ? BigInt(us) : BigInt(secs) * MICROS_PER_SECOND + BigInt(micros);
}

/** Split µs since epoch into whole seconds (floored) and the µs remainder 0..999999. */
function splitMicros(us: bigint): [number, number] {
  let q = us / MICROS_PER_SECOND;
  let r = us % MICROS_PER_SECOND;
  if (r < 0n) {
    q -= 1n;
    r += MICROS_PER_SECOND;
  }
  return [Number(q), Number(r)];
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** `YYYY-MM-DD` of days since epoch. */
export function formatDateDays(days: number): string {
  const [y, m, d] = civilFromDays(days);
  return `${pad(y, 4)}-${pad(m, 2)}-${pad(d, 2)}`;
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` (always six fraction digits) of µs since epoch. */
export function formatTimestampMicros(us: bigint): string {
  const [secs, micros] = splitMicros(us);
  const days = Math.floor(secs / 86400);
  const sod = secs - days * 86400;
  const hh = Math.floor(sod / 3600);
  const mi = Math.floor((sod % 3600) / 60);
  const ss = sod % 60;
  return `${formatDateDays(days)}T${pad(hh, 2)}:${pad(mi, 2)}:${pad(ss, 2)}.${pad(micros, 6)}Z`;
}
