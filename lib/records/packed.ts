/**
 * Raw text records packed for another thread: a batch of records of one
 * header as a few transferable buffers instead of one object per record
 * (structured-cloning objects costs more than coercing them). A source that
 * splits text (CSV) may emit {@link PackedRecords} instead of records when
 * its context asks (`ReadContext.packedRecords`); the validate stage then
 * coerces them and builds their Arrow columns in a worker thread
 * (lib/stages/coerce-pool.ts), and the Parquet sink takes the built batch.
 *
 * Layout: the non-null field values of every record, concatenated, as UTF-16LE
 * (`text`: a string's code units as they are, the cheapest to write and to
 * read back; measured against UTF-8 and joining an array); per field (record-major) the UTF-16 offset where it ends in the
 * decoded text (`ends`) and whether it is null (`nulls`); per record its
 * 1-based line (`lines`). The file is the same for the whole batch.
 */

/** A batch is taken once its values hold this many characters (wide records: fewer per batch). */
export const MAX_PACKED_CHARS = 8 * 1024 * 1024;

const INITIAL_CHARS = 64 * 1024;

/** Marks a {@link PackedRecords} chunk in an object-mode stream. */
export const PACKED = Symbol.for('dativo.packedRecords');

/** A batch of raw string records of one header (see the module comment). */
export interface PackedRecords {
  readonly [PACKED]: true;
  /** Column names (the header), in field order. */
  readonly columns: readonly string[];
  /** Records in the batch. */
  readonly rows: number;
  /** UTF-16LE of the concatenated non-null values: a view from the start of its own ArrayBuffer (transferable; may be longer). */
  readonly text: Uint8Array<ArrayBuffer>;
  /** `rows * columns.length` end offsets (UTF-16 code units) into the decoded text. */
  readonly ends: Uint32Array<ArrayBuffer>;
  /** `rows * columns.length` flags: 1 when the value is null. */
  readonly nulls: Uint8Array<ArrayBuffer>;
  /** Where the records came from: the file (label) and each record's line. */
  readonly file: string;
  readonly lines: Uint32Array<ArrayBuffer>;
}

export function isPackedRecords(x: unknown): x is PackedRecords {
  return typeof x === 'object' && x !== null && (x as { [PACKED]?: unknown })[PACKED] === true;
}

/**
 * Collects records of one header into {@link PackedRecords}: `add` one
 * record's fields (`null` for a null value), `take` the batch so far.
 */
export class RecordPacker {
  /** Values so far as UTF-16 code units, copied in as they come (no string outlives its record). */
  private text: Uint16Array<ArrayBuffer>;
  private ends: Uint32Array<ArrayBuffer>;
  private nulls: Uint8Array<ArrayBuffer>;
  private lines: Uint32Array<ArrayBuffer>;
  private n = 0;
  private pos = 0;
  private readonly width: number;

  constructor(
    readonly columns: readonly string[],
    readonly capacity: number,
  ) {
    this.width = columns.length;
    this.ends = new Uint32Array(capacity * this.width);
    this.nulls = new Uint8Array(capacity * this.width);
    this.lines = new Uint32Array(capacity);
    this.text = new Uint16Array(INITIAL_CHARS);
  }

  /** Records waiting. */
  get rows(): number {
    return this.n;
  }

  /** The batch holds `capacity` records, or {@link MAX_PACKED_CHARS} characters of values. */
  get full(): boolean {
    return this.n >= this.capacity || this.pos >= MAX_PACKED_CHARS;
  }

  /**
   * Add one record: `fields` as split, an empty field null unless `quoted`
   * says it was quoted (CSV's only way to tell NULL from the empty string).
   */
  addCsv(fields: readonly string[], quoted: readonly boolean[], line: number): void {
    const w = this.width;
    let k = this.n * w;
    let pos = this.pos;
    let text = this.text;
    for (let i = 0; i < w; i++, k++) {
      const v = fields[i]!;
      if (v === '' && quoted[i] !== true) this.nulls[k] = 1;
      else if (v.length > 0) {
        const len = v.length;
        if (pos + len > text.length) text = this.grow(pos + len, pos);
        for (let j = 0; j < len; j++) text[pos + j] = v.charCodeAt(j);
        pos += len;
      }
      this.ends[k] = pos;
    }
    this.pos = pos;
    this.lines[this.n++] = line;
  }

  private grow(need: number, used: number): Uint16Array<ArrayBuffer> {
    const next = new Uint16Array(Math.max(need, this.text.length * 2));
    next.set(this.text.subarray(0, used));
    this.text = next;
    return next;
  }

  /** The records added since the last take, as one batch; undefined when none. */
  take(file: string): PackedRecords | undefined {
    const n = this.n;
    if (n === 0) return undefined;
    const w = this.width;
    // The whole buffer goes to the other thread (a view of its used part): no copy.
    const own = new Uint8Array(this.text.buffer, 0, this.pos * 2);
    const out: PackedRecords = {
      [PACKED]: true,
      columns: this.columns,
      rows: n,
      text: own,
      ends: n === this.capacity ? this.ends : this.ends.slice(0, n * w),
      nulls: n === this.capacity ? this.nulls : this.nulls.slice(0, n * w),
      file,
      lines: n === this.capacity ? this.lines : this.lines.slice(0, n),
    };
    // The buffers go to another thread: start on fresh ones.
    this.ends = new Uint32Array(this.capacity * w);
    this.nulls = new Uint8Array(this.capacity * w);
    this.lines = new Uint32Array(this.capacity);
    this.text = new Uint16Array(Math.max(INITIAL_CHARS, this.pos));
    this.n = 0;
    this.pos = 0;
    return out;
  }
}

/**
 * The values of record `r` of a batch whose text was decoded to `text`:
 * `null` or the string. (Rejects and tests; the worker compiles its own
 * reader per header.)
 */
export function packedValues(p: Pick<PackedRecords, 'columns' | 'ends' | 'nulls'>, text: string, r: number): (string | null)[] {
  const w = p.columns.length;
  const out: (string | null)[] = [];
  for (let i = 0; i < w; i++) {
    const k = r * w + i;
    const start = k === 0 ? 0 : p.ends[k - 1]!;
    out.push(p.nulls[k] === 1 ? null : text.slice(start, p.ends[k]!));
  }
  return out;
}
