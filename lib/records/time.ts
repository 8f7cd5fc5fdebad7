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

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * Parse `YYYY-MM-DD` (years 0001-9999, a real calendar day) into days since
 * epoch. Returns an error message string when invalid.
 */
export function parseDateDays(s: string): number | string {
  const m = DATE_RE.exec(s);
  if (m === null) return `not a date (expected YYYY-MM-DD): ${JSON.stringify(s)}`;
  const y = +m[1]!;
  const mo = +m[2]!;
  const d = +m[3]!;
  const bad = checkYmd(y, mo, d);
  if (bad !== undefined) return `${bad}: ${JSON.stringify(s)}`;
  return daysFromCivil(y, mo, d);
}

function checkYmd(y: number, mo: number, d: number): string | undefined {
  if (y < 1) return 'year out of range 0001-9999';
  if (mo < 1 || mo > 12) return 'month out of range';
  if (d < 1 || d > daysInMonth(y, mo)) return 'day out of range for the month';
  return undefined;
}

/**
 * ISO-8601 / RFC 3339 date-time, `T`, `t` or a space between date and time,
 * optional seconds, a fraction of up to 9 digits (`.` or `,`), and an
 * optional offset `Z`, `±HH:MM`, `±HHMM` or `±HH`. A bare date is accepted too.
 */
const TS_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

/**
 * Parse a timestamp string into µs since epoch, UTC.
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
  const m = TS_RE.exec(s);
  if (m === null) return `not a timestamp (expected ISO-8601, e.g. 2024-01-31T12:00:00Z): ${JSON.stringify(s)}`;
  const y = +m[1]!;
  const mo = +m[2]!;
  const d = +m[3]!;
  const bad = checkYmd(y, mo, d);
  if (bad !== undefined) return `${bad}: ${JSON.stringify(s)}`;
  let secs = daysFromCivil(y, mo, d) * 86400;
  let micros = 0;
  if (m[4] !== undefined) {
    const hh = +m[4];
    const mi = +m[5]!;
    const ss = m[6] === undefined ? 0 : +m[6];
    if (hh > 23) return `hour out of range 00-23: ${JSON.stringify(s)}`;
    if (mi > 59) return `minute out of range 00-59: ${JSON.stringify(s)}`;
    if (ss > 59) return `second out of range 00-59: ${JSON.stringify(s)}`;
    secs += hh * 3600 + mi * 60 + ss;
    const frac = m[7];
    if (frac !== undefined) micros = +(frac.length >= 6 ? frac.slice(0, 6) : frac.padEnd(6, '0'));
    if (m[9] !== undefined) {
      const oh = +m[10]!;
      const om = m[11] === undefined ? 0 : +m[11];
      if (oh > 23 || om > 59) return `offset out of range: ${JSON.stringify(s)}`;
      const off = oh * 3600 + om * 60;
      // local time = UTC + offset, so UTC = local - offset
      secs += m[9] === '+' ? -off : off;
    }
  }
  return BigInt(secs) * MICROS_PER_SECOND + BigInt(micros);
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
