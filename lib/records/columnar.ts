/**
 * Text records as bytes and field offsets, for the columnar path (issue 14):
 * a CSV source asked for them (`ReadContext.columnarText`) emits its
 * well-formed records this way instead of one object per record, and the
 * validate stage builds the table's Arrow columns from the bytes
 * (lib/stages/columnar.ts). Every record of a batch has one field per
 * header column, in order: field `i` of record `r` is at `r * columns.length + i`.
 */

/** Marks a {@link ColumnarText} chunk in an object-mode stream. */
export const COLUMNAR_TEXT = Symbol.for('dativo.columnarText');

/** Field flag: the field was quoted (an empty quoted field is `""`, not NULL). */
export const FIELD_QUOTED = 1;
/** Field flag: the quoted field holds doubled quotes (unescape its bytes). */
export const FIELD_ESCAPED = 2;

/** A batch of records of one header, as UTF-8 bytes and field offsets. */
export interface ColumnarText {
  readonly [COLUMNAR_TEXT]: true;
  /** Column names (the header), in field order. */
  readonly columns: readonly string[];
  readonly rows: number;
  /** UTF-8 bytes the offsets index (valid UTF-8 in every field: records that are not were rejected by the source). */
  readonly bytes: Buffer;
  /** `rows * columns.length` byte ranges and flags ({@link FIELD_QUOTED}, {@link FIELD_ESCAPED}). */
  readonly start: Int32Array;
  readonly end: Int32Array;
  readonly flags: Uint8Array;
  /** The quote character (doubled inside an escaped field). */
  readonly quote: string;
  /** Where the records came from: the file (label) and each record's 1-based line. */
  readonly file: string;
  readonly lines: Int32Array;
}

export function columnarText(b: Omit<ColumnarText, typeof COLUMNAR_TEXT>): ColumnarText {
  return { [COLUMNAR_TEXT]: true, ...b };
}

export function isColumnarText(x: unknown): x is ColumnarText {
  return typeof x === 'object' && x !== null && (x as { [COLUMNAR_TEXT]?: unknown })[COLUMNAR_TEXT] === true;
}
