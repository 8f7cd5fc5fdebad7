/**
 * Column types guessed from a sample of CSV values, for `dativo discover`.
 * Conservative on purpose: a column becomes a non-string type only when every
 * non-empty sampled value has the exact textual form of that type, so the
 * asset it produces validates at least the sample. Numbers with leading zeros
 * (zip codes, account numbers) stay strings; floats stay strings too (a
 * CSV carries decimal text: `decimal(p,s)` keeps it exact).
 */
import type { DiscoveredColumn } from '../../lib/connector.js';

/** Records sampled by default. */
export const SAMPLE_ROWS = 1000;

const INTEGER = /^[+-]?(0|[1-9]\d*)$/;
const DECIMAL = /^[+-]?(0|[1-9]\d*)\.(\d+)$/;
const BOOLEAN = /^(true|false)$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$/;
const LONG_MAX = 9_223_372_036_854_775_807n;

function validDate(y: string, m: string, d: string): boolean {
  const t = new Date(Date.UTC(Number(y), Number(m) - 1, Number(d)));
  return t.getUTCFullYear() === Number(y) && t.getUTCMonth() === Number(m) - 1 && t.getUTCDate() === Number(d);
}

/** Mutable per-column state of {@link inferTypes}. */
interface Guess {
  seen: number;
  integer: boolean;
  decimal: boolean;
  boolean: boolean;
  date: boolean;
  timestamp: boolean;
  intDigits: number;
  scale: number;
  beyondLong: boolean;
}

function fresh(): Guess {
  return { seen: 0, integer: true, decimal: true, boolean: true, date: true, timestamp: true, intDigits: 0, scale: 0, beyondLong: false };
}

function observe(g: Guess, v: string): void {
  g.seen++;
  const i = INTEGER.exec(v);
  const d = i === null ? DECIMAL.exec(v) : null;
  if (i === null) g.integer = false;
  if (i === null && d === null) g.decimal = false;
  if (i !== null) {
    g.intDigits = Math.max(g.intDigits, i[1]!.length);
    if (!g.beyondLong && i[1]!.length >= 19) {
      const n = BigInt(v);
      if (n > LONG_MAX || n < -LONG_MAX - 1n) g.beyondLong = true;
    }
  } else if (d !== null) {
    g.intDigits = Math.max(g.intDigits, d[1]!.length);
    g.scale = Math.max(g.scale, d[2]!.length);
  }
  if (g.boolean && !BOOLEAN.test(v)) g.boolean = false;
  if (g.date) {
    const m = DATE.exec(v);
    if (m === null || !validDate(m[1]!, m[2]!, m[3]!)) g.date = false;
  }
  if (g.timestamp) {
    const m = TIMESTAMP.exec(v);
    if (m === null || !validDate(m[1]!, m[2]!, m[3]!)) g.timestamp = false;
  }
}

function typeOf(g: Guess): string {
  if (g.seen === 0) return 'string';
  if (g.boolean) return 'boolean';
  if (g.integer && !g.beyondLong) return 'long';
  if (g.decimal) {
    const needed = g.intDigits + g.scale;
    // Headroom over the sample: values later in the file may be larger.
    return needed > 38 ? 'string' : `decimal(${Math.min(38, Math.max(18, needed))},${g.scale})`;
  }
  if (g.date) return 'date';
  if (g.timestamp) return 'timestamp';
  return 'string';
}

/**
 * Guess each column's asset type from sampled values (`null` and `''` carry
 * no information). Every column is `required: false`: a sample cannot prove
 * a column is never empty.
 */
export function inferTypes(header: readonly string[], rows: readonly (readonly (string | null)[])[]): DiscoveredColumn[] {
  const guesses = header.map(fresh);
  for (const row of rows) {
    for (let c = 0; c < header.length; c++) {
      const v = row[c];
      if (v !== null && v !== undefined && v !== '') observe(guesses[c]!, v);
    }
  }
  const sampled = `${rows.length.toLocaleString('en-US')} sampled row${rows.length === 1 ? '' : 's'}`;
  return header.map((name, c) => ({ name, type: typeOf(guesses[c]!), required: false, description: `Type guessed from ${sampled} of the CSV file.` }));
}
