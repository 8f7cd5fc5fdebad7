/**
 * Cursor semantics of incremental sync (DESIGN.md "Incremental sync"), as a
 * plain reducer over canonical rows. The source reads `cursor >= saved.value`;
 * this tracker drops what an earlier run already wrote, and computes the
 * cursor state to save once the data is committed.
 */
import { createHash } from 'node:crypto';
import { DativoError } from '../errors.js';
import { stringifyJson } from '../json.js';
import type { CursorState, FieldKind, Row } from '../types.js';
import { compareCanonical } from './compare.js';
import { parseDecimal } from './decimal.js';
import { formatDateDays, formatTimestampMicros, parseDateDays, parseTimestampMicros } from './time.js';

/** Column kinds that can serve as a cursor. */
export const CURSOR_KINDS: readonly FieldKind[] = ['timestamp', 'long', 'int', 'date', 'decimal', 'string', 'float', 'double'];

const INT_RE = /^[+-]?\d+$/;

const CANONICAL_TYPEOF: Partial<Record<FieldKind, string>> = {
  timestamp: 'bigint',
  long: 'bigint',
  int: 'number',
  date: 'number',
  float: 'number',
  double: 'number',
  decimal: 'string',
  string: 'string',
};

function notCanonical(kind: FieldKind, value: unknown): DativoError {
  return new DativoError('INTERNAL', `cursor value is not a canonical ${kind}: ${typeof value}`, { context: { kind } });
}

/**
 * The canonical text of a cursor value, as saved in state and in Iceberg
 * snapshot summaries: timestamp → `YYYY-MM-DDTHH:MM:SS.ffffffZ`, long/int →
 * decimal digits, date → `YYYY-MM-DD`, string and decimal → themselves,
 * float/double → shortest round-trip number text.
 *
 * @throws DativoError INTERNAL when `value` is not canonical for `kind`;
 *   CONFIG_INVALID when `kind` cannot be a cursor (boolean, json, binary).
 */
export function cursorToString(kind: FieldKind, value: unknown): string {
  switch (kind) {
    case 'timestamp':
      if (typeof value !== 'bigint') throw notCanonical(kind, value);
      return formatTimestampMicros(value);
    case 'long':
      if (typeof value !== 'bigint') throw notCanonical(kind, value);
      return value.toString();
    case 'int':
    case 'float':
    case 'double':
      if (typeof value !== 'number') throw notCanonical(kind, value);
      return String(value);
    case 'date':
      if (typeof value !== 'number') throw notCanonical(kind, value);
      return formatDateDays(value);
    case 'string':
    case 'decimal':
      if (typeof value !== 'string') throw notCanonical(kind, value);
      return value;
    default:
      throw new DativoError('CONFIG_INVALID', `a ${kind} column cannot be a cursor`, { context: { kind } });
  }
}

/**
 * Parse a saved cursor text back into a canonical value. Timestamps accept
 * any form the timestamp coercer accepts (so hand-written state such as
 * `2024-01-01` works).
 *
 * @throws DativoError STATE_CORRUPT when `s` is not a value of `kind`.
 */
export function cursorFromString(kind: FieldKind, s: string): unknown {
  const corrupt = (why: string): DativoError =>
    new DativoError('STATE_CORRUPT', `saved cursor ${JSON.stringify(s)} is not a ${kind}: ${why}`, { context: { kind, value: s } });
  switch (kind) {
    case 'timestamp': {
      const us = parseTimestampMicros(s);
      if (typeof us === 'string') throw corrupt(us);
      return us;
    }
    case 'long':
      if (!INT_RE.test(s)) throw corrupt('expected digits');
      return BigInt(s);
    case 'int':
      if (!INT_RE.test(s)) throw corrupt('expected digits');
      return Number(s);
    case 'float':
    case 'double': {
      const n = Number(s);
      if (s.trim() === '' || (Number.isNaN(n) && s !== 'NaN')) throw corrupt('expected a number');
      return n;
    }
    case 'date': {
      const d = parseDateDays(s);
      if (typeof d === 'string') throw corrupt(d);
      return d;
    }
    case 'decimal':
      if (parseDecimal(s) === undefined) throw corrupt('expected a decimal');
      return s;
    case 'string':
      return s;
    default:
      throw new DativoError('CONFIG_INVALID', `a ${kind} column cannot be a cursor`, { context: { kind } });
  }
}

/**
 * Order of two canonical cursor values of `kind` (negative, zero, positive):
 * bigint comparison for timestamps and longs, numeric for decimals whatever
 * their text, code-point order for strings.
 */
export function compareCursor(kind: FieldKind, a: unknown, b: unknown): number {
  return compareCanonical(kind, a, b);
}

/** Separates the cursor text from the key part in a row identity. */
export const IDENTITY_SEPARATOR = '\u0000';

/**
 * The identity of a row for tie handling: `<cursor text>\u0000<JSON array of
 * primary-key values>`, or, with no primary key, `<cursor text>\u0000sha1:<hex>`
 * of the whole row's JSON (column order is the asset's, so it is stable).
 * The cursor text is part of it so that an updated row (same key, newer
 * cursor) is a new identity, and so that saved identities can be pruned by
 * cursor.
 */
export function rowIdentity(cursorText: string, primaryKey: readonly string[], row: Row): string {
  if (primaryKey.length === 0) {
    return cursorText + IDENTITY_SEPARATOR + 'sha1:' + createHash('sha1').update(stringifyJson(row)).digest('hex');
  }
  const key = new Array<unknown>(primaryKey.length);
  for (let i = 0; i < primaryKey.length; i++) key[i] = row[primaryKey[i]!] ?? null;
  return cursorText + IDENTITY_SEPARATOR + stringifyJson(key);
}

/** Options of {@link CursorTracker}. */
export interface CursorTrackerOptions {
  /** Cursor column (canonical rows). */
  field: string;
  /** Its kind; must be one of {@link CURSOR_KINDS}. */
  kind: FieldKind;
  /** Primary key columns; empty → whole-row identity. */
  primaryKey: readonly string[];
  /** Cursor saved by the previous run; default none (first run). */
  saved?: CursorState | undefined;
  /**
   * Upper bound of the new cursor, as a canonical value (run start minus lag,
   * for timestamp cursors). Rows beyond it are written and remembered in
   * `written`; the next run reads them again and drops them. Default none.
   */
  cap?: unknown;
}

/**
 * Reduces the canonical rows of one object to the cursor state to save.
 *
 * `accept(row)` decides whether a row is new: it drops rows below the saved
 * cursor (for sources that cannot filter exactly) and rows whose identity is
 * in `saved.written`. Rows with a null cursor pass and do not move the cursor.
 * `result()` gives `value = max(saved, min(max seen, cap))`, where "seen"
 * counts rows passed and rows dropped as known identities, and `written` =
 * identities of every row written, in this run or before, whose cursor is >=
 * that value.
 *
 * Memory: the identities (or, for whole-row identity, the rows) of passed rows
 * at or above the running threshold `min(max seen, cap)`; rows that fall below
 * it are pruned in amortised O(1).
 */
export class CursorTracker {
  readonly field: string;
  readonly kind: FieldKind;
  readonly primaryKey: readonly string[];
  /** Rows refused as already written (below the saved cursor or a known identity). */
  dropped = 0;
  /** Rows passed with a null cursor. */
  nullCursor = 0;
  /** Rows passed (including null-cursor rows). */
  passed = 0;

  readonly #saved: CursorState | undefined;
  readonly #savedValue: unknown;
  readonly #savedWritten: Set<string>;
  /** Highest cursor text prefix among saved identities, parsed; identity lookups above it are pointless. */
  readonly #writtenMax: unknown;
  readonly #cap: unknown;
  readonly #jsType: string | undefined;
  #max: unknown = undefined;
  // Candidates for `written`: cursor value and what identifies the row
  // (key value, key array or whole row), kept in parallel arrays.
  #candCursor: unknown[] = [];
  #candKey: unknown[] = [];
  #pruneAt = 1024;

  constructor(opts: CursorTrackerOptions) {
    if (!CURSOR_KINDS.includes(opts.kind)) {
      throw new DativoError('CONFIG_INVALID', `a ${opts.kind} column cannot be a cursor: ${opts.field}`, { context: { key: opts.field } });
    }
    this.field = opts.field;
    this.kind = opts.kind;
    this.primaryKey = [...opts.primaryKey];
    this.#saved = opts.saved;
    this.#cap = opts.cap;
    this.#savedWritten = new Set(opts.saved?.written ?? []);
    this.#jsType = CANONICAL_TYPEOF[opts.kind];
    if (opts.saved !== undefined && opts.saved.field !== opts.field) {
      // Applying one column's cursor to another would silently skip or repeat rows.
      throw new DativoError(
        'CONFIG_INVALID',
        `the saved cursor is on column "${opts.saved.field}" but the cursor field is now "${opts.field}": reset the object's state to change it`,
        { context: { key: 'source.incremental.cursor_field', savedField: opts.saved.field, field: opts.field } },
      );
    }
    if (opts.saved !== undefined) {
      this.#savedValue = cursorFromString(opts.kind, opts.saved.value);
      let wmax: unknown = undefined;
      for (const id of this.#savedWritten) {
        const c = this.#identityCursor(id);
        if (wmax === undefined || compareCanonical(this.kind, c, wmax) > 0) wmax = c;
      }
      this.#writtenMax = wmax;
    }
  }

  #identityCursor(id: string): unknown {
    const at = id.indexOf(IDENTITY_SEPARATOR);
    if (at < 0) {
      throw new DativoError('STATE_CORRUPT', `saved cursor identity has no cursor part: ${JSON.stringify(id.slice(0, 80))}`, {
        context: { key: this.field },
      });
    }
    return cursorFromString(this.kind, id.slice(0, at));
  }

  #threshold(): unknown {
    let t = this.#max;
    if (this.#cap !== undefined && compareCanonical(this.kind, this.#cap, t) < 0) t = this.#cap;
    if (this.#saved !== undefined && compareCanonical(this.kind, t, this.#savedValue) < 0) t = this.#savedValue;
    return t;
  }

  #identity(cursor: unknown, key: unknown): string {
    const text = cursorToString(this.kind, cursor);
    if (this.primaryKey.length === 0) return rowIdentity(text, this.primaryKey, key as Row);
    const arr = this.primaryKey.length === 1 ? [key] : (key as unknown[]);
    return text + IDENTITY_SEPARATOR + stringifyJson(arr);
  }

  #keyOf(row: Row): unknown {
    const pk = this.primaryKey;
    if (pk.length === 0) return row;
    if (pk.length === 1) return row[pk[0]!] ?? null;
    const key = new Array<unknown>(pk.length);
    for (let i = 0; i < pk.length; i++) key[i] = row[pk[i]!] ?? null;
    return key;
  }

  /** True when `row` is new and must be written; false when it was written before. */
  accept(row: Row): boolean {
    const c = row[this.field];
    if (c === null || c === undefined) {
      this.nullCursor++;
      this.passed++;
      return true;
    }
    const kind = this.kind;
    if (typeof c !== this.#jsType) {
      throw new DativoError('INTERNAL', `cursor ${this.field} holds a ${typeof c}, not a canonical ${kind}: track() must come after validate()`, {
        context: { key: this.field, kind },
      });
    }
    if (this.#saved !== undefined) {
      if (compareCanonical(kind, c, this.#savedValue) < 0) {
        this.dropped++;
        return false;
      }
      if (this.#writtenMax !== undefined && compareCanonical(kind, c, this.#writtenMax) <= 0) {
        if (this.#savedWritten.has(this.#identity(c, this.#keyOf(row)))) {
          // Known to be written, so it may advance the cursor: its identity
          // is carried forward from the saved list if it stays >= the value.
          if (this.#max === undefined || compareCanonical(kind, c, this.#max) > 0) this.#max = c;
          this.dropped++;
          return false;
        }
      }
    }
    if (this.#max === undefined || compareCanonical(kind, c, this.#max) > 0) this.#max = c;
    this.passed++;
    // The threshold never decreases, so a row below it now can never be in `written`.
    if (compareCanonical(kind, c, this.#threshold()) < 0) return true;
    this.#candCursor.push(c);
    this.#candKey.push(this.#keyOf(row));
    if (this.#candCursor.length >= this.#pruneAt) this.#prune();
    return true;
  }

  #prune(): void {
    const t = this.#threshold();
    const cc = this.#candCursor;
    const ck = this.#candKey;
    let w = 0;
    for (let r = 0; r < cc.length; r++) {
      if (compareCanonical(this.kind, cc[r], t) >= 0) {
        cc[w] = cc[r];
        ck[w] = ck[r];
        w++;
      }
    }
    cc.length = w;
    ck.length = w;
    this.#pruneAt = Math.max(1024, w * 2);
  }

  /**
   * The cursor state to save after this run's data is committed; undefined
   * when there was no saved state and no row with a cursor was seen. When no
   * row with a cursor passed or matched a saved identity, the saved state is
   * returned unchanged.
   */
  result(): CursorState | undefined {
    if (this.#max === undefined) {
      return this.#saved === undefined ? undefined : { field: this.#saved.field, value: this.#saved.value, written: [...this.#saved.written] };
    }
    const value = this.#threshold();
    const written = new Set<string>();
    for (const id of this.#savedWritten) {
      if (compareCanonical(this.kind, this.#identityCursor(id), value) >= 0) written.add(id);
    }
    const cc = this.#candCursor;
    for (let i = 0; i < cc.length; i++) {
      if (compareCanonical(this.kind, cc[i], value) >= 0) written.add(this.#identity(cc[i], this.#candKey[i]));
    }
    return { field: this.field, value: cursorToString(this.kind, value), written: [...written] };
  }
}
