/**
 * The columnar path's builder (issue 14): {@link ColumnarText} batches (CSV
 * bytes and field offsets) → the table's Arrow columns and statistics, with
 * no record object for a record that is valid.
 *
 * Exact by construction: a value goes into its column through the same
 * column builder (lib/parquet/arrow/) and as the same canonical value as on
 * the record path. Read from the bytes: text (copied as UTF-8, no string
 * made), integers of up to 15 digits, `true`/`false`, dates `YYYY-MM-DD` and
 * timestamps `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` (where their µs are
 * exact in a double, years ~1685-2255), decimals `-?d+(.d+)?` within
 * scale and precision (and 15 digits), with the record path's range checks
 * and arithmetic (lib/records/time.ts); any other value goes through the
 * record path's own field coercer (lib/records/fields.ts) on its text. A record with a value
 * that coercer refuses, a missing required value, or any record of an asset
 * with constraints, goes whole through the record coercer (its strings made
 * from its bytes, as the CSV source makes them), so reject codes, reasons,
 * constraints and strict mode are the record path's.
 */
import { isAscii } from 'node:buffer';
import { Utf8Column } from '../parquet/arrow/bytes.js';
import { DecimalColumn } from '../parquet/arrow/decimal.js';
import type { ColumnBuilder } from '../parquet/arrow/column.js';
import { RecordBatchBuilder, type BuiltBatch } from '../parquet/arrow.js';
import { FIELD_ESCAPED, FIELD_QUOTED, type ColumnarText } from '../records/columnar.js';
import { compileAssetCoercer, type Coercer, type FieldError } from '../records/coerce.js';
import { compileConstraints } from '../records/constraints.js';
import { Bad, fieldCoercer, type FieldCoercer } from '../records/fields.js';
import { daysFromCivil, daysInMonth } from '../records/time.js';
import type { Asset, AssetField, FieldType, Row } from '../types.js';

const STRING = 0;
const LONG = 1;
const INT = 2;
const BOOLEAN = 3;
const OTHER = 4;
const DATE = 5;
const TIMESTAMP = 6;
const DECIMAL = 7;
/** In `vals`: the value is the field's bytes (a text column), appended without a string. */
const BYTES = Symbol('bytes');
/** In `vals`: the value is the unscaled decimal in `unscaled[i]`, appended without its text. */
const UNSCALED = Symbol('unscaled');

function kindOf(t: FieldType): number {
  switch (t.kind) {
    case 'string':
    case 'json':
      return STRING;
    case 'long':
      return LONG;
    case 'int':
      return INT;
    case 'boolean':
      return BOOLEAN;
    case 'date':
      return DATE;
    case 'timestamp':
      return TIMESTAMP;
    case 'decimal':
      return DECIMAL;
    default:
      return OTHER;
  }
}

/** A refused record: its raw values (as the CSV source makes them), why, where. */
export interface ColumnarReject {
  record: Row;
  errors: FieldError[];
  location: { file: string; line: number };
}

/** Where the asset's columns are in one header. */
interface HeaderMap {
  columns: readonly string[];
  /** Per asset field: its index in the header, -1 when the header lacks it. */
  src: Int32Array;
}

/**
 * Appends {@link ColumnarText} batches to the table's column builders;
 * {@link build} takes the Arrow batch so far. A plain class (no streams):
 * the validate stage adapts it.
 */
export class ColumnarBuilder {
  private readonly rbb: RecordBatchBuilder;
  private readonly cols: ColumnBuilder[];
  private readonly kinds: Int32Array;
  private readonly required: boolean[];
  private readonly coercers: FieldCoercer[];
  private readonly coerce: Coercer;
  /** The asset declares constraints: every record goes through the record coercer. */
  private readonly constrained: boolean;
  private header: HeaderMap | undefined;
  private readonly vals: unknown[];
  /** Per asset field: the text column builder, for values appended as bytes. */
  private readonly text: (Utf8Column | undefined)[];
  /** Per asset field: the batch field index of a value in `vals` as {@link BYTES}. */
  private readonly at: Int32Array;
  /** Per asset field: the decimal column builder, its scale and integer digits allowed. */
  private readonly dec: (DecimalColumn | undefined)[];
  private readonly scales: Int32Array;
  private readonly intDigits: Int32Array;
  private readonly unscaled: Float64Array;

  constructor(
    private readonly asset: Asset,
    tableFields: AssetField[],
    constants: Record<string, unknown>,
    capacity: number,
  ) {
    this.rbb = new RecordBatchBuilder(tableFields, constants, undefined, capacity, true);
    this.cols = asset.fields.map((f) => {
      const c = this.rbb.column(f.name);
      if (c === undefined) throw new Error(`columnar: asset field ${f.name} is not a table column`);
      return c;
    });
    this.text = this.cols.map((c) => (c instanceof Utf8Column ? c : undefined));
    this.dec = this.cols.map((c) => (c instanceof DecimalColumn ? c : undefined));
    const t = asset.fields.map((f) => (f.type.kind === 'decimal' ? f.type : { precision: 0, scale: 0 }));
    this.scales = Int32Array.from(t.map((d) => d.scale));
    // Digits before the point: the precision's rest, and all digits within 15 (exact in a double).
    this.intDigits = Int32Array.from(t.map((d) => Math.min(d.precision - d.scale, 15 - d.scale)));
    this.unscaled = new Float64Array(asset.fields.length);
    this.kinds = Int32Array.from(
      asset.fields.map((f, i) => {
        const k = kindOf(f.type);
        if ((k === STRING && this.text[i] === undefined) || (k === DECIMAL && (this.dec[i] === undefined || this.intDigits[i]! < 1))) return OTHER;
        return k;
      }),
    );
    this.at = new Int32Array(asset.fields.length);
    this.required = asset.fields.map((f) => f.required);
    this.coercers = asset.fields.map((f) => fieldCoercer(f.type));
    this.coerce = compileAssetCoercer(asset);
    this.constrained = compileConstraints(asset.fields, asset.raw.schema, asset.file) !== undefined;
    this.vals = new Array<unknown>(asset.fields.length).fill(null);
  }

  /** Rows appended since the last build. */
  get length(): number {
    return this.rbb.length;
  }

  /** Bytes of Arrow value buffers held so far. */
  get byteLength(): number {
    return this.rbb.byteLength;
  }

  /** The Arrow batch of the rows appended since the last build (buffers reused: consume it before the next add). */
  build(): BuiltBatch {
    return this.rbb.build();
  }

  private map(columns: readonly string[]): HeaderMap {
    const h = this.header;
    if (h !== undefined && (h.columns === columns || (h.columns.length === columns.length && h.columns.every((c, i) => c === columns[i])))) return h;
    const src = Int32Array.from(this.asset.fields.map((f) => columns.indexOf(f.name)));
    return (this.header = { columns, src });
  }

  /** Append the batch's valid records; the refused ones are returned in order. */
  add(t: ColumnarText): ColumnarReject[] {
    const { src } = this.map(t.columns);
    const w = t.columns.length;
    const bytes = t.bytes;
    // Most batches are ASCII: decode once, then a field's text is a slice.
    const text = isAscii(bytes) ? bytes.toString('latin1') : undefined;
    const { start, end, flags, quote } = t;
    const qq = quote + quote;
    const qb = quote.charCodeAt(0);
    const at = this.at;
    const textCols = this.text;
    const decCols = this.dec;
    const scales = this.scales;
    const intDigits = this.intDigits;
    const unscaled = this.unscaled;
    const kinds = this.kinds;
    const cols = this.cols;
    const coercers = this.coercers;
    const required = this.required;
    const vals = this.vals;
    const n = kinds.length;
    const rejects: ColumnarReject[] = [];
    for (let r = 0, k0 = 0; r < t.rows; r++, k0 += w) {
      let ok = !this.constrained;
      for (let i = 0; ok && i < n; i++) {
        const c = src[i]!;
        let v: unknown = null;
        if (c >= 0) {
          const k = k0 + c;
          const s = start[k]!;
          const e = end[k]!;
          const kind = kinds[i]!;
          if (s === e) {
            // Unquoted empty: NULL; quoted empty: '' for text, NULL for the rest (the record coercer's rule).
            if (kind === STRING && (flags[k]! & FIELD_QUOTED) !== 0) v = '';
          } else if (kind === LONG || kind === INT) {
            v = digits(bytes, s, e);
            if (v === undefined || (kind === INT && ((v as number) < -2147483648 || (v as number) > 2147483647))) v = coercers[i]!(field(bytes, text, s, e, flags[k]!, qq, quote));
            else if (v === 0) v = 0; // -0 → 0
          } else if (kind === STRING) {
            v = BYTES;
            at[i] = k;
          } else if (kind === DECIMAL) {
            const u = plainUnscaled(bytes, s, e, scales[i]!, intDigits[i]!);
            if (u === undefined) v = coercers[i]!(field(bytes, text, s, e, flags[k]!, qq, quote));
            else {
              unscaled[i] = u;
              v = UNSCALED;
            }
          } else if (kind === TIMESTAMP) {
            v = timestampMicros(bytes, s, e);
            if (v === undefined) v = coercers[i]!(field(bytes, text, s, e, flags[k]!, qq, quote));
          } else if (kind === DATE) {
            v = e - s === 10 ? dateDays(bytes, s) : undefined;
            if (v === undefined) v = coercers[i]!(field(bytes, text, s, e, flags[k]!, qq, quote));
          } else if (kind === BOOLEAN) {
            v = word(bytes, s, e);
            if (v === undefined) v = coercers[i]!(field(bytes, text, s, e, flags[k]!, qq, quote));
          } else {
            const str = field(bytes, text, s, e, flags[k]!, qq, quote);
            v = kind === STRING ? str : coercers[i]!(str);
          }
        }
        if (v instanceof Bad || (v === null && required[i])) ok = false;
        else vals[i] = v;
      }
      if (ok) {
        for (let i = 0; i < n; i++) {
          const v = vals[i];
          if (v === BYTES) {
            const k = at[i]!;
            textCols[i]!.appendUtf8(bytes, start[k]!, end[k]!, (flags[k]! & FIELD_ESCAPED) !== 0, qb);
          } else if (v === UNSCALED) decCols[i]!.appendUnscaled(unscaled[i]!);
          else cols[i]!.append(v);
        }
        this.rbb.addRow();
        continue;
      }
      // The record path, for this record only.
      const record = this.record(t, text, k0, qq);
      const res = this.coerce(record);
      if (res.ok) this.rbb.append(res.row);
      else rejects.push({ record, errors: res.errors, location: { file: t.file, line: t.lines[r]! } });
    }
    vals.fill(null);
    return rejects;
  }

  /** The record the CSV source would have made: header names → text, NULL for an unquoted empty field. */
  private record(t: ColumnarText, text: string | undefined, k0: number, qq: string): Row {
    const row: Row = {};
    t.columns.forEach((name, i) => {
      const k = k0 + i;
      const s = t.start[k]!;
      const e = t.end[k]!;
      const v = s === e && (t.flags[k]! & FIELD_QUOTED) === 0 ? null : field(t.bytes, text, s, e, t.flags[k]!, qq, t.quote);
      if (name === '__proto__') Object.defineProperty(row, name, { value: v, enumerable: true, writable: true, configurable: true });
      else row[name] = v;
    });
    return row;
  }
}

/** A field's text, doubled quotes unescaped. */
function field(bytes: Buffer, text: string | undefined, s: number, e: number, flags: number, qq: string, quote: string): string {
  const v = text !== undefined ? text.slice(s, e) : bytes.toString('utf8', s, e);
  return (flags & FIELD_ESCAPED) !== 0 ? v.replaceAll(qq, quote) : v;
}

/** A plain integer of at most 15 digits (optional `-`): exactly lib/records/fields.ts's `smallInteger`; undefined otherwise. */
function digits(b: Buffer, s: number, e: number): number | undefined {
  const neg = b[s] === 45;
  let i = neg ? s + 1 : s;
  if (i === e || e - i > 15) return undefined;
  let x = 0;
  for (; i < e; i++) {
    const c = b[i]! - 48;
    if (c < 0 || c > 9) return undefined;
    x = x * 10 + c;
  }
  return neg ? -x : x;
}

/**
 * The unscaled value of `-?D+(.d{1,scale})?` with at most `maxInt` integer
 * digits and no leading zero (but a lone `0`), not negative zero: values
 * the record path's coercer writes as exactly this number (its canonical
 * text at the scale, parsed back by the column); undefined otherwise.
 */
function plainUnscaled(b: Buffer, s: number, e: number, scale: number, maxInt: number): number | undefined {
  const neg = b[s] === 45;
  let i = neg ? s + 1 : s;
  const i0 = i;
  let v = 0;
  while (i < e) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    i++;
  }
  const n = i - i0;
  if (n === 0 || n > maxInt || (n > 1 && b[i0] === 48)) return undefined;
  let f = 0;
  if (i < e) {
    if (b[i] !== 46) return undefined;
    i++;
    const f0 = i;
    while (i < e) {
      const d = b[i]! - 48;
      if (d < 0 || d > 9) return undefined;
      v = v * 10 + d;
      i++;
    }
    f = i - f0;
    if (f === 0 || f > scale) return undefined;
  }
  for (; f < scale; f++) v *= 10;
  if (neg && v === 0) return undefined;
  return neg ? -v : v;
}

/** Two ASCII digits at `i`, or -1. */
function d2(b: Buffer, i: number): number {
  const x = b[i]! - 48;
  const y = b[i + 1]! - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

/** Days of a real calendar day `YYYY-MM-DD` (year >= 1) at `s`, as parseDateDays gives them; undefined otherwise. */
function dateDays(b: Buffer, s: number): number | undefined {
  if (b[s + 4] !== 45 || b[s + 7] !== 45) return undefined;
  const hi = d2(b, s);
  const lo = d2(b, s + 2);
  const m = d2(b, s + 5);
  const d = d2(b, s + 8);
  if (hi < 0 || lo < 0 || m < 1 || m > 12 || d < 1) return undefined;
  const y = hi * 100 + lo;
  if (y < 1 || d > daysInMonth(y, m)) return undefined;
  const days = daysFromCivil(y, m, d);
  return days === 0 ? 0 : days;
}

/**
 * µs of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|±HH:MM)` with parseTimestampMicros's
 * checks and arithmetic, as a number when exact (as the record path makes
 * its bigint); undefined for any other form or range (the coercer decides).
 */
function timestampMicros(b: Buffer, s: number, e: number): number | undefined {
  if (e - s < 20 || b[s + 10] !== 84 || b[s + 13] !== 58 || b[s + 16] !== 58) return undefined;
  const days = dateDays(b, s);
  const hh = d2(b, s + 11);
  const mi = d2(b, s + 14);
  const ss = d2(b, s + 17);
  if (days === undefined || hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return undefined;
  let i = s + 19;
  let micros = 0;
  if (b[i] === 46) {
    i++;
    let k = 0;
    while (i < e) {
      const c = b[i]! - 48;
      if (c < 0 || c > 9) break;
      if (++k > 6) return undefined;
      micros = micros * 10 + c;
      i++;
    }
    if (k === 0) return undefined;
    for (; k < 6; k++) micros *= 10;
  }
  let off = 0;
  const c = b[i];
  if (c === 90 && i + 1 === e) {
    // Z
  } else if ((c === 43 || c === 45) && i + 6 === e && b[i + 3] === 58) {
    const oh = d2(b, i + 1);
    const om = d2(b, i + 4);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return undefined;
    off = c === 43 ? oh * 3600 + om * 60 : -(oh * 3600 + om * 60);
  } else return undefined;
  const us = (days * 86400 + hh * 3600 + mi * 60 + ss - off) * 1e6 + micros;
  return Number.isSafeInteger(us) ? us : undefined;
}

/** `true` / `false` exactly; undefined otherwise. */
function word(b: Buffer, s: number, e: number): boolean | undefined {
  if (e - s === 4 && b[s] === 116 && b[s + 1] === 114 && b[s + 2] === 117 && b[s + 3] === 101) return true;
  if (e - s === 5 && b[s] === 102 && b[s + 1] === 97 && b[s + 2] === 108 && b[s + 3] === 115 && b[s + 4] === 101) return false;
  return undefined;
}
