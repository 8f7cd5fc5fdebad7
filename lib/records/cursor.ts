/**
 * Cursor semantics of incremental sync (DESIGN.md "Incremental sync",
 * docs/configuration.md), as a plain reducer over canonical rows.
 *
 * Two protocols, one state type (CursorState in lib/types.ts):
 * - window: the source bounds the read itself (`from <= cursor < watermark`,
 *   the watermark taken from the source's own clock) and reports the window
 *   with {@link CursorTracker.window}; the state saved is the watermark, no
 *   tie keys, constant size.
 * - tie keys, for sources that cannot bound the window: the source reads
 *   `cursor >= saved.value`; this tracker drops what an earlier run already
 *   handled and keeps the identities of the rows at the new value, at most
 *   {@link MAX_TIE_KEYS} of them; past that it falls back to a bounded rule
 *   (see {@link CursorTracker}).
 */
import { createHash } from 'node:crypto';
import { DativoError } from '../errors.js';
import { stringifyJson } from '../json.js';
import type { AssetField, CursorState, FieldKind, Row } from '../types.js';
import { compileCoercer, type Coercer } from './coerce.js';
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

/**
 * Tie keys kept at most in a saved cursor: past this many rows at the newest
 * value the tracker uses its bounded fallback (see {@link CursorTracker}).
 */
export const MAX_TIE_KEYS = 1000;

/** The window a source that bounds its reads reports (see lib/connector.ts ReadContext.reportWindow). */
export interface CursorWindow {
  /** Cursor column. */
  field: string;
  /** Lower bound as read, canonical text; undefined: from the beginning of the source. */
  from?: string;
  /** Whether rows AT `from` were read (`>=`) or not (`>`). */
  fromInclusive?: boolean;
  /**
   * The high watermark, canonical text; undefined when the window holds no
   * row (an empty table, or a watermark not past `from`): the saved cursor
   * is kept as it was.
   */
  to?: string;
  /** Whether rows AT `to` were read (`inclusive`, e.g. `max(id)`) or left for the next run (`exclusive`). */
  upper: 'exclusive' | 'inclusive';
  /** How `to` was chosen, for the log (e.g. `database clock minus lag_seconds`). */
  basis: string;
  /**
   * Counts in the read's snapshot, when the source measured them (rows with
   * a NULL cursor are in none): `rows` with a cursor; `behind` the window
   * (below `from`, or at it when `from` is exclusive); `ahead` of it (at or
   * after an exclusive `to`, after an inclusive one); `below` the next
   * cursor (before `to`, or through it when inclusive). The engine saves
   * `below` and compares the next run's `behind` with it.
   */
  rows?: number;
  behind?: number;
  ahead?: number;
  below?: number;
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
   * for timestamp and date cursors). Rows beyond it are written and
   * remembered in `written`; the next run reads them again and drops them.
   * Also where the tie-key fallback may settle a value. Default none.
   */
  cap?: unknown;
  /** Tie keys kept at most (default {@link MAX_TIE_KEYS}). */
  maxTieKeys?: number;
  /**
   * The asset fields of the cursor and primary-key columns: with them
   * {@link CursorTracker.acceptRejected} can place a record validate refused.
   */
  keyFields?: readonly AssetField[];
}

/** Rows at the threshold beyond the tie-key limit: only counted. */
interface Overflow {
  at: unknown;
  count: number;
}

/**
 * Reduces the canonical rows of one object to the cursor state to save.
 *
 * `accept(row)` decides whether a row is new: it drops rows below the saved
 * cursor (at or below it for an `inclusive` window) and rows whose identity
 * is in `saved.written`. Rows with a null cursor pass and do not move the
 * cursor.
 *
 * Window protocol: once the source reported its window ({@link window}),
 * `result()` is that window's watermark, with no tie keys.
 *
 * Tie-key protocol: `result()` gives `value = max(saved, min(max seen, cap))`
 * ("seen" counts rows passed, rows rejected by validate and rows dropped as
 * known identities) and `written` = identities of every row handled, in this
 * run or before, whose cursor is >= that value — while there are at most
 * `maxTieKeys` of them. Past that, no keys are kept:
 * - a timestamp or date cursor whose value is below the cap (older than run
 *   start minus lag) is settled: the state says `upper: 'inclusive'` and the
 *   next run reads only rows after it (exact under the same assumption as
 *   lag_seconds: no row appears later with a cursor older than the lag);
 * - otherwise the state records `overflow: <count>`: the next run reads the
 *   rows at `value` again and writes them again (never a lost row; those
 *   rows may be duplicated, and the run warns with their count).
 *
 * Memory: at most `maxTieKeys` + 1024 candidate identities, whatever the data.
 */
export class CursorTracker {
  readonly field: string;
  readonly kind: FieldKind;
  readonly primaryKey: readonly string[];
  /** Rows refused as already written (below the saved cursor or a known identity). */
  dropped = 0;
  /** Records validate refused that an earlier run already handled: dropped before the reject file. */
  droppedRejects = 0;
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
  readonly #maxKeys: number;
  readonly #jsType: string | undefined;
  readonly #keyFields: readonly AssetField[];
  #keyCoercer: Coercer | undefined;
  #window: CursorWindow | undefined;
  #max: unknown = undefined;
  // Candidates for `written`: cursor value and what identifies the row
  // (key value, key array or whole row), kept in parallel arrays.
  #candCursor: unknown[] = [];
  #candKey: unknown[] = [];
  #pruneAt = 1024;
  #overflow: Overflow | undefined;

  constructor(opts: CursorTrackerOptions) {
    if (!CURSOR_KINDS.includes(opts.kind)) {
      throw new DativoError('CONFIG_INVALID', `a ${opts.kind} column cannot be a cursor: ${opts.field}`, { context: { key: opts.field } });
    }
    this.field = opts.field;
    this.kind = opts.kind;
    this.primaryKey = [...opts.primaryKey];
    this.#saved = opts.saved;
    this.#cap = opts.cap;
    this.#maxKeys = opts.maxTieKeys ?? MAX_TIE_KEYS;
    this.#keyFields = opts.keyFields ?? [];
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

  /**
   * The source bounds its own read and reports the window it read (before
   * its first row). The saved tie keys of an earlier version still drop
   * their rows in this run; the state saved is the window's watermark.
   */
  window(w: CursorWindow): void {
    if (this.#max !== undefined || this.passed > 0) {
      throw new DativoError('INTERNAL', 'a source reported its cursor window after its first row', { context: { key: this.field } });
    }
    if (w.to !== undefined) cursorFromString(this.kind, w.to);
    this.#window = w;
  }

  /** The window the source reported, if any. */
  get reportedWindow(): CursorWindow | undefined {
    return this.#window;
  }

  /** True when the saved state is `overflow` (rows at its value are read and written again). */
  get savedOverflow(): number | undefined {
    return this.#saved?.overflow;
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

  /** False when the saved state says a row at cursor `c` with this key was handled before. */
  #isNew(c: unknown, key: () => unknown): boolean {
    if (this.#saved === undefined) return true;
    const kind = this.kind;
    // A window source filtered the values itself, in its own order (a string
    // cursor compares by the database's collation, not by code points): only
    // an old state's tie keys are left to drop.
    if (this.#window === undefined) {
      const cmp = compareCanonical(kind, c, this.#savedValue);
      if (cmp < 0 || (cmp === 0 && this.#saved.upper === 'inclusive')) return false;
    }
    if (this.#writtenMax !== undefined && compareCanonical(kind, c, this.#writtenMax) <= 0) {
      if (this.#savedWritten.has(this.#identity(c, key()))) {
        // Known to be handled, so it may advance the cursor: its identity
        // is carried forward from the saved list if it stays >= the value.
        if (this.#window === undefined && (this.#max === undefined || compareCanonical(kind, c, this.#max) > 0)) this.#max = c;
        return false;
      }
    }
    return true;
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
    if (!this.#isNew(c, () => this.#keyOf(row))) {
      this.dropped++;
      return false;
    }
    this.passed++;
    if (this.#window === undefined) this.#candidate(c, this.#keyOf(row));
    return true;
  }

  /**
   * A record validate refused: true when it is new (it goes to the reject
   * file and, for the tie-key protocol, moves the cursor like a written
   * row, so it is not read again and again); false when an earlier run
   * already handled it (dropped silently). A record whose cursor or key
   * values are themselves invalid cannot be placed and is always new.
   */
  acceptRejected(raw: Row): boolean {
    if (this.#keyFields.length === 0) return true;
    this.#keyCoercer ??= compileCoercer(this.#keyFields.map((f) => ({ ...f, required: false })));
    const r = this.#keyCoercer(raw);
    if (!r.ok) return true;
    const c = r.row[this.field];
    if (c === null || c === undefined) return true;
    // Without a primary key the identity hashes the record as read.
    const key = (): unknown => (this.primaryKey.length === 0 ? raw : this.#keyOf(r.row));
    if (!this.#isNew(c, key)) {
      this.droppedRejects++;
      return false;
    }
    if (this.#window === undefined) this.#candidate(c, key());
    return true;
  }

  #candidate(c: unknown, key: unknown): void {
    const kind = this.kind;
    if (this.#max === undefined || compareCanonical(kind, c, this.#max) > 0) this.#max = c;
    // The threshold never decreases, so a row below it now can never be in `written`.
    const t = this.#threshold();
    if (this.#overflow !== undefined && compareCanonical(kind, t, this.#overflow.at) > 0) {
      // Every overflowed row was at the old threshold (see #prune): none is needed any more.
      this.#overflow = undefined;
    }
    if (compareCanonical(kind, c, t) < 0) return;
    if (this.#overflow !== undefined) {
      this.#overflow.count++;
      return;
    }
    this.#candCursor.push(c);
    this.#candKey.push(key);
    if (this.#candCursor.length >= this.#pruneAt) this.#prune();
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
    if (w > this.#maxKeys) {
      // Too many rows at or above the threshold to remember: count them only.
      // Either the threshold is below the cap, so it is the max seen and all
      // of them are at exactly it, or it is the cap, which does not move.
      this.#overflow = { at: t, count: w };
      cc.length = 0;
      ck.length = 0;
    }
    this.#pruneAt = this.#maxKeys + 1024;
  }

  /**
   * The cursor state to save after this run's data is committed; undefined
   * when there was no saved state and no row with a cursor was seen (or the
   * reported window was empty). When nothing moved the cursor, the saved
   * state is returned unchanged.
   */
  result(): CursorState | undefined {
    const saved = this.#saved;
    const unchanged = (): CursorState | undefined => (saved === undefined ? undefined : { ...saved, written: [...saved.written] });
    const w = this.#window;
    if (w !== undefined) {
      if (w.to === undefined) return unchanged();
      return { field: this.field, value: w.to, written: [], upper: w.upper, ...(w.below !== undefined ? { below: w.below } : {}) };
    }
    if (this.#max === undefined) return unchanged();
    const value = this.#threshold();
    const text = cursorToString(this.kind, value);
    let count = 0;
    let overflow = this.#overflow !== undefined && compareCanonical(this.kind, this.#overflow.at, value) === 0;
    const written = new Set<string>();
    if (overflow) count = this.#overflow!.count;
    else {
      for (const id of this.#savedWritten) {
        if (compareCanonical(this.kind, this.#identityCursor(id), value) >= 0) written.add(id);
      }
      const cc = this.#candCursor;
      for (let i = 0; i < cc.length; i++) {
        if (compareCanonical(this.kind, cc[i], value) >= 0) written.add(this.#identity(cc[i], this.#candKey[i]));
      }
      overflow = written.size > this.#maxKeys;
      count = written.size;
    }
    if (!overflow) return { field: this.field, value: text, written: [...written] };
    const settles = (this.kind === 'timestamp' || this.kind === 'date') && this.#cap !== undefined && compareCanonical(this.kind, value, this.#cap) < 0;
    if (settles) return { field: this.field, value: text, written: [], upper: 'inclusive' };
    return { field: this.field, value: text, written: [], overflow: count };
  }
}
