/**
 * The CSV splitter on bytes: records out as byte offsets in typed arrays, no
 * strings. For the columnar path (issue 14), whose type parsers read each
 * field straight from the bytes. The dialect is split.ts's, rule for rule
 * (quotes, doubled quotes, the three recoverable quote errors and their
 * line numbers, `\r\n`/`\n`/lone `\r` mixed, blank lines, the UTF-8 BOM, the
 * record size limit in UTF-16 characters, the held unfinished tail, which
 * records hold invalid UTF-8), and the reject messages are split.ts's own
 * function: test/connectors/csv/bytesplit.test.ts feeds both splitters
 * awkward inputs in every chunking and requires the same records, skips,
 * lines and consumed byte offsets. The record path keeps split.ts: decoding
 * each field on its own costs more than its one decode per chunk
 * (docs/benchmarks.md, the `strings` sketch).
 *
 * A {@link SplitBatch} indexes the bytes of one call: it is valid until the
 * next {@link ByteSplitter.feed} or {@link ByteSplitter.end} (its arrays are
 * reused); the bytes themselves are never written to, so a consumer may keep
 * `bytes` longer. The quote must be one byte (an ASCII character in UTF-8);
 * the delimiter any non-empty text.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import type { SkippedRecord, Utf8LineCheck } from './parse.js';
import { message, utf8Cut, type SplitOptions } from './split.js';

const LF = 10;
const CR = 13;
const EMPTY = Buffer.alloc(0);
/** U+FFFD in UTF-8: a record whose decoded text holds it is checked against the line check, as in split.ts. */
const FFFD = Buffer.from('\uFFFD', 'utf8');

/** Field flags: quoted (an empty quoted field is `""`, not NULL); holds doubled quotes (its bytes need unescaping). The columnar batch's own. */
export { FIELD_ESCAPED as ESCAPED, FIELD_QUOTED as QUOTED } from '../../lib/records/columnar.js';
import { FIELD_ESCAPED as ESCAPED, FIELD_QUOTED as QUOTED } from '../../lib/records/columnar.js';

/** The records of one call, as offsets into {@link bytes}. */
export class SplitBatch {
  /** The bytes the offsets index (a view; not written to). */
  bytes: Buffer = EMPTY;
  /** Absolute byte offset (in the file) of `bytes[0]`. */
  base = 0;
  /** Records in the batch. */
  count = 0;
  /** Fields in the batch (all records). */
  fields = 0;
  /** Per record: 1-based start line; first byte of its raw text (blank lines before it included) and the byte after its line break. */
  line = new Int32Array(256);
  rawStart = new Int32Array(256);
  rawEnd = new Int32Array(256);
  /** Per record: 1 when its bytes are not valid UTF-8 (the same records as split.ts's `badUtf8`). */
  badUtf8 = new Uint8Array(256);
  /** Per record + 1: index of its first field; record `r` has fields `[firstField[r], firstField[r + 1])`. */
  firstField = new Int32Array(257);
  /** Per field: byte range inside the quotes (or the unquoted text), and {@link QUOTED} | {@link ESCAPED}. */
  start = new Int32Array(1024);
  end = new Int32Array(1024);
  flags = new Uint8Array(1024);

  /** Field `k`'s text (doubled quotes unescaped): for rejects, tests and fallbacks, not for the fast path. */
  text(k: number, encoding: 'utf8' | 'latin1', quote: string): string {
    const s = this.bytes.toString(encoding, this.start[k]!, this.end[k]!);
    return (this.flags[k]! & ESCAPED) !== 0 ? s.replaceAll(quote + quote, quote) : s;
  }

  /** Record `r`'s raw text. */
  raw(r: number, encoding: 'utf8' | 'latin1'): string {
    return this.bytes.toString(encoding, this.rawStart[r]!, this.rawEnd[r]!);
  }

  reset(bytes: Buffer, base: number): void {
    this.bytes = bytes;
    this.base = base;
    this.count = 0;
    this.fields = 0;
    this.firstField[0] = 0;
  }

  addField(s: number, e: number, f: number): void {
    let k = this.fields;
    if (k === this.start.length) this.growFields();
    this.start[k] = s;
    this.end[k] = e;
    this.flags[k++] = f;
    this.fields = k;
  }

  /** Forget the fields added since `k` (a record not returned). */
  dropFields(k: number): void {
    this.fields = k;
  }

  addRecord(line: number, rawStart: number, rawEnd: number, bad: boolean): void {
    const r = this.count;
    if (r === this.line.length) this.growRecords();
    this.line[r] = line;
    this.rawStart[r] = rawStart;
    this.rawEnd[r] = rawEnd;
    this.badUtf8[r] = bad ? 1 : 0;
    this.firstField[r + 1] = this.fields;
    this.count = r + 1;
  }

  private growFields(): void {
    const n = this.start.length * 2;
    this.start = grown(this.start, new Int32Array(n));
    this.end = grown(this.end, new Int32Array(n));
    this.flags = grown(this.flags, new Uint8Array(n));
  }

  private growRecords(): void {
    const n = this.line.length * 2;
    this.line = grown(this.line, new Int32Array(n));
    this.rawStart = grown(this.rawStart, new Int32Array(n));
    this.rawEnd = grown(this.rawEnd, new Int32Array(n));
    this.badUtf8 = grown(this.badUtf8, new Uint8Array(n));
    this.firstField = grown(this.firstField, new Int32Array(n + 1));
  }
}

function grown<T extends Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Line breaks (`\n`, `\r\n`, lone `\r`) in `b[a, e)`. */
function breaksIn(b: Uint8Array, a: number, e: number): number {
  let n = 0;
  for (let i = a; i < e; i++) {
    const c = b[i]!;
    if (c === LF) n++;
    else if (c === CR && b[i + 1] !== LF) n++;
  }
  return n;
}

/** Bytes of blank lines at the start of `b`. */
function breaksBefore(b: Uint8Array): number {
  let i = 0;
  while (i < b.length && (b[i] === LF || b[i] === CR)) i++;
  return i;
}

const CODES = ['', 'CSV_INVALID_OPENING_QUOTE', 'CSV_INVALID_CLOSING_QUOTE', 'CSV_QUOTE_NOT_CLOSED'] as const;
const OPENING = 1;
const CLOSING = 2;
const NOT_CLOSED = 3;

/**
 * Splits a byte stream into CSV records as offsets: {@link feed} each chunk,
 * then {@link end} once; same options, skips and state as split.ts's
 * `CsvSplitter`.
 */
export class ByteSplitter {
  /** Bytes not consumed yet: they start where the next record's raw text starts. */
  private buf: Buffer = EMPTY;
  /** Absolute byte offset of `buf[0]`. */
  private bufStart = 0;
  private line: number;
  private records: number;
  /** Scan again only once `buf` decodes to this many characters (a long unfinished record); 0: always. */
  private rescanAt = 0;
  private atStart: boolean;
  private readonly utf8: boolean;
  private readonly delim: Buffer;
  private readonly dl: number;
  private readonly d0: number;
  private readonly q: number;
  private failed = false;
  private unclosed = false;
  private held = false;
  private readonly out = new SplitBatch();

  constructor(
    private readonly o: SplitOptions,
    private readonly onSkip: (s: SkippedRecord) => void,
  ) {
    this.utf8 = o.encoding === 'utf8';
    this.line = o.firstLine;
    this.records = o.recordsBefore;
    this.atStart = o.stripBom && this.utf8;
    this.delim = Buffer.from(o.delimiter, o.encoding);
    const quote = Buffer.from(o.quote, o.encoding);
    if (this.delim.length === 0 || quote.length !== 1 || o.quote.length !== 1) {
      throw new Error(`ByteSplitter: the quote must be one byte and the delimiter not empty (got ${JSON.stringify(o.quote)}, ${JSON.stringify(o.delimiter)})`);
    }
    this.dl = this.delim.length;
    this.d0 = this.delim[0]!;
    this.q = quote[0]!;
  }

  /** Absolute byte offset up to which every record is finished (read or reported). */
  get consumed(): number {
    return this.bufStart;
  }

  /** After a final {@link end}: the input ended inside a quoted field, or parsing had stopped. */
  get endsInQuote(): boolean {
    return this.unclosed || this.failed;
  }

  /** After a non-final {@link end}: the last record was unfinished and held back. */
  get heldTail(): boolean {
    return this.held;
  }

  /** The records the chunk completes (valid until the next call). */
  feed(chunk: Uint8Array): SplitBatch {
    const out = this.out;
    if (this.failed || chunk.length === 0) {
      out.reset(EMPTY, this.bufStart);
      return out;
    }
    const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    if (this.atStart) this.dropBom(false);
    if (this.rescanAt > 0 && this.units(this.buf, true) < this.rescanAt) {
      out.reset(EMPTY, this.bufStart);
      return out;
    }
    this.scan(false, false);
    return out;
  }

  /** The end of the input; `final` as in split.ts's `CsvSplitter.end`. */
  end(final: boolean): SplitBatch {
    if (this.failed) {
      this.out.reset(EMPTY, this.bufStart);
      return this.out;
    }
    if (this.atStart) this.dropBom(true);
    this.scan(true, final);
    return this.out;
  }

  /** A BOM at the first bytes is dropped; wait while they may still become one. */
  private dropBom(atEnd: boolean): void {
    const b = this.buf;
    if (b.length >= 3 || atEnd) {
      this.atStart = false;
      if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) {
        this.buf = b.subarray(3);
        this.bufStart += 3;
      }
    } else if (!(b[0] === 0xef && (b.length === 1 || b[1] === 0xbb))) this.atStart = false;
  }

  /** UTF-16 characters `b` decodes to (split.ts counts characters); `cut`: without an incomplete character at its end (split.ts's carry). */
  private units(b: Buffer, cut: boolean): number {
    if (!this.utf8) return b.length;
    return b.toString('utf8', 0, cut ? utf8Cut(b) : b.length).length;
  }

  private delimAt(b: Buffer, i: number): boolean {
    const d = this.delim;
    for (let j = 1; j < this.dl; j++) if (b[i + j] !== d[j]) return false;
    return true;
  }

  /** Whether split.ts would mark record `[a, e)` as bad UTF-8 (its text holds U+FFFD and the line check flags it). */
  private bad(b: Buffer, a: number, e: number, check: Utf8LineCheck | undefined): boolean {
    if (check === undefined) return false;
    const r = b.subarray(a, e);
    if (isAscii(r)) return false;
    if (isUtf8(r) && r.indexOf(FFFD) === -1) return false;
    return check.hasBadIn(this.bufStart + a, this.bufStart + e);
  }

  private scan(atEnd: boolean, final: boolean): void {
    const b = this.buf;
    // A character cut by the chunk's end is not there yet (split.ts decodes up to it), so blank lines before it are consumed now as there.
    const n = atEnd || !this.utf8 ? b.length : utf8Cut(b);
    const out = this.out;
    out.reset(b, this.bufStart);
    const Q = this.q;
    const d0 = this.d0;
    const dl = this.dl;
    const max = this.o.maxRecordChars;
    const check = this.o.utf8;
    // Most chunks are ASCII: then no record needs the UTF-8 check.
    const ascii = check === undefined || isAscii(b);
    let line = this.line;
    let p = 0;
    let done = 0;
    let doneLine = line;

    records: while (true) {
      const rawStart = p;
      while (p < n) {
        const c = b[p]!;
        if (c === LF) {
          p++;
          line++;
        } else if (c === CR) {
          if (p + 1 === n && !atEnd) break records; // may be half of a \r\n
          p++;
          if (b[p] === LF) p++;
          line++;
        } else break;
      }
      if (p === n) {
        done = p;
        doneLine = line;
        break;
      }
      const recStart = p;
      const recLine = line;
      const f0 = out.fields;
      let err = 0;
      let errLine = 0;
      let open = false;
      fieldLoop: while (true) {
        if (p === n) {
          // After a delimiter at the end of the input: an empty last field.
          if (!atEnd) {
            out.dropFields(f0);
            break records;
          }
          out.addField(p, p, 0);
          break;
        }
        if (b[p] === Q) {
          const s = ++p;
          let fl = QUOTED;
          for (;;) {
            let at = p;
            while (at < n && b[at] !== Q) at++;
            if (at === n) {
              if (!atEnd) {
                out.dropFields(f0);
                break records;
              }
              line += breaksIn(b, p, n);
              if (err === 0) {
                err = NOT_CLOSED;
                errLine = recLine;
              }
              open = true;
              p = n;
              break fieldLoop;
            }
            line += breaksIn(b, p, at);
            if (at + 1 === n && !atEnd) {
              out.dropFields(f0);
              break records;
            }
            const next = at + 1 < n ? b[at + 1]! : -1;
            if (next === Q) {
              fl = QUOTED | ESCAPED;
              p = at + 2;
              continue;
            }
            if (next === -1 || next === LF || next === CR || (next === d0 && (dl === 1 || this.delimAt(b, at + 1)))) {
              out.addField(s, at, fl);
              p = at + 1;
              break;
            }
            if (err === 0) {
              err = CLOSING;
              errLine = line;
            }
            p = at + 1; // still inside the field, as split.ts
          }
        } else {
          let e = p;
          let sawQuote = false;
          while (e < n) {
            const c = b[e]!;
            if (c === d0 && (dl === 1 || this.delimAt(b, e))) break;
            if (c === LF || c === CR) break;
            if (c === Q) sawQuote = true;
            e++;
          }
          if (e === n && !atEnd) {
            out.dropFields(f0);
            break records;
          }
          if (sawQuote && err === 0) {
            err = OPENING;
            errLine = line;
          }
          out.addField(p, e, 0);
          p = e;
        }
        if (p === n) break; // atEnd: the last record without a line break
        const c = b[p]!;
        if (c === LF) {
          p++;
          line++;
          break;
        }
        if (c === CR) {
          if (p + 1 === n && !atEnd) {
            out.dropFields(f0);
            break records;
          }
          p++;
          if (b[p] === LF) p++;
          line++;
          break;
        }
        p += dl;
      }
      if (p - recStart > max && this.units(b.subarray(recStart, p), false) > max) {
        out.dropFields(f0);
        this.fail(b.subarray(rawStart, p), recLine);
        return;
      }
      if (atEnd && !final && p === n && (open || b[n - 1] !== LF)) {
        // Reaches the end of an input that may grow: not finished yet.
        out.dropFields(f0);
        this.held = true;
        break;
      }
      const isFirst = this.records++ === 0;
      if (err !== 0) {
        out.dropFields(f0);
        const code = CODES[err]!;
        this.onSkip({ parserCode: code, message: message(code, errLine, max), raw: b.toString(this.o.encoding, rawStart, p), line: recLine, isFirst, recoverable: true });
        if (open) this.unclosed = final;
      } else {
        out.addRecord(recLine, rawStart, p, !ascii && this.bad(b, rawStart, p, check));
      }
      done = p;
      doneLine = line;
      if (p === n) break;
    }

    const rest = done === b.length ? EMPTY : b.subarray(done);
    this.bufStart += done;
    this.buf = rest;
    this.line = doneLine;
    if (!atEnd) {
      const blank = breaksBefore(rest);
      if (rest.length - blank > max && this.units(rest, true) - blank > max) {
        let lines = 0;
        for (let i = 0; i < blank; i++) if (rest[i] === LF || (rest[i] === CR && rest[i + 1] !== LF)) lines++;
        this.fail(rest.subarray(0, utf8CutIf(this.utf8, rest)), doneLine + lines);
        return;
      }
    }
    // A long unfinished record: scan it again once as many characters again have come.
    const units = rest.length > 65_536 ? this.units(rest, true) : 0;
    this.rescanAt = units > 65_536 ? units * 2 : 0;
  }

  private fail(raw: Buffer, line: number): void {
    this.failed = true;
    const isFirst = this.records++ === 0;
    this.onSkip({
      parserCode: 'CSV_MAX_RECORD_SIZE',
      message: message('CSV_MAX_RECORD_SIZE', line, this.o.maxRecordChars),
      raw: raw.toString(this.o.encoding),
      line,
      isFirst,
      recoverable: false,
    });
  }
}

function utf8CutIf(utf8: boolean, b: Uint8Array): number {
  return utf8 ? utf8Cut(b) : b.length;
}
