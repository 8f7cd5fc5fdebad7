/**
 * The CSV splitter: bytes in, records out, no streams. Our own parser (it
 * replaced csv-parse: measured in docs/benchmarks.md), written for the
 * common case — short records, few quotes — and exact in the others:
 *
 * - Each chunk is decoded once (UTF-8 or latin1; a character cut by the
 *   chunk's end waits for the next), then split with native `indexOf` for
 *   the next delimiter, line break and quote, each position cached until
 *   passed, so a line without quotes costs one `indexOf` and one `slice` per
 *   field.
 * - Quoted fields: a doubled quote is a literal quote; a quote followed by
 *   the delimiter, a line break or the end closes the field. A quote followed
 *   by anything else is an error (`CSV_INVALID_CLOSING_QUOTE`) and the field
 *   goes on — up to a quote that does close it, possibly lines later (what
 *   csv-parse did, so rejects and line numbers are unchanged). A quote
 *   inside an unquoted field is `CSV_INVALID_OPENING_QUOTE` for that record
 *   only. An opening quote never closed is `CSV_QUOTE_NOT_CLOSED`: the rest
 *   of the input is that one record.
 * - `\r\n`, `\n` and a lone `\r` all end a record, mixed freely; empty lines
 *   are skipped but counted in line numbers; a UTF-8 BOM at the start of a
 *   file is dropped.
 * - A record longer than `maxRecordChars` is `CSV_MAX_RECORD_SIZE`, and
 *   nothing after it is read (not recoverable).
 * - A record not finished at the end of a chunk waits for more: what is kept
 *   is only the text from its start; it is scanned again when at least as
 *   much text again has arrived, so a long record costs O(its length).
 *
 * Every record carries its 1-based start line, which empty fields were
 * quoted (NULL vs `""`), whether its bytes held invalid UTF-8 (through a
 * {@link Utf8LineCheck} fed the same bytes), and its raw text, computed only
 * when asked (rejects). A record with an error is not returned but reported
 * once, whole, through `onSkip`.
 *
 * Byte offsets (`consumed`, the UTF-8 check) come from the decoded text's
 * UTF-8 length, which is the source's except where decoding put a U+FFFD
 * for an invalid sequence of one or two bytes (it is three in UTF-8): a
 * chunk whose text holds U+FFFD records where those are and how many bytes
 * each replaced ({@link replacedBytes}), so offsets stay exact after them.
 */
import type { CsvRecord, SkippedRecord, Utf8LineCheck } from './parse.js';

const LF = 10;
const CR = 13;
const NO_FFFD = '\uFFFD';

/** What a splitter needs to know. */
export interface SplitOptions {
  delimiter: string;
  /** One character. */
  quote: string;
  encoding: 'utf8' | 'latin1';
  maxRecordChars: number;
  /** Drop a UTF-8 BOM at the start (a whole file read as UTF-8). */
  stripBom: boolean;
  /** Line number of the first byte (1, or where a resumed read goes on). */
  firstLine: number;
  /** Records already read before the first byte (a resumed read: the header came before). */
  recordsBefore: number;
  /** Fed the same bytes by the caller, first: tells which records hold invalid UTF-8. */
  utf8?: Utf8LineCheck;
}

/** A parsed record; its raw text is cut from the decoded chunk only when asked. */
class ParsedRecord implements CsvRecord {
  constructor(
    readonly fields: string[],
    readonly line: number,
    readonly badUtf8: boolean,
    /** Set only when some empty field was quoted: which fields were. */
    readonly quoted: boolean[] | undefined,
    private readonly text: string,
    private readonly start: number,
    private readonly end: number,
  ) {}

  get raw(): string {
    return this.text.slice(this.start, this.end);
  }
}

/** The index where a trailing incomplete UTF-8 sequence starts (`buf.length` when there is none). */
export function utf8Cut(buf: Uint8Array): number {
  let i = buf.length - 1;
  let back = 0;
  while (i >= 0 && back < 3 && (buf[i]! & 0xc0) === 0x80) {
    i--;
    back++;
  }
  if (i < 0) return buf.length;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return buf.length - i < need ? i : buf.length;
}

/**
 * The bytes the U+FFFD decoded at `buf[at]` stands for: 3 for a real
 * U+FFFD (`EF BF BD`), else the invalid sequence's maximal subpart as the
 * WHATWG decoder (Node's `toString`, `TextDecoder`) replaces it: a lead
 * byte and the continuation bytes that fit it, up to the first that does not.
 */
export function replacedBytes(buf: Uint8Array, at: number, end: number): number {
  const b = buf[at]!;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b >= 0xe0 && b <= 0xef) {
    need = 2;
    if (b === 0xe0) lo = 0xa0;
    else if (b === 0xed) hi = 0x9f;
  } else if (b >= 0xf0 && b <= 0xf4) {
    need = 3;
    if (b === 0xf0) lo = 0x90;
    else if (b === 0xf4) hi = 0x8f;
  } else return 1;
  let n = 1;
  while (n <= need && at + n < end) {
    const c = buf[at + n]!;
    if (c < lo || c > hi) break;
    lo = 0x80;
    hi = 0xbf;
    n++;
  }
  return n; // complete (need + 1) only for EF BF BD
}

/** Line breaks (`\n`, `\r\n`, lone `\r`) in `t[a, b)`. */
function breaksIn(t: string, a: number, b: number): number {
  let n = 0;
  for (let i = a; i < b; i++) {
    const c = t.charCodeAt(i);
    if (c === LF) n++;
    else if (c === CR && t.charCodeAt(i + 1) !== LF) n++;
  }
  return n;
}

/**
 * Splits a byte stream into CSV records: {@link feed} each chunk, then
 * {@link end} once. Records come back from each call; broken records go to
 * `onSkip`.
 */
export class CsvSplitter {
  /** Decoded text not consumed yet: it starts where the next record's raw text starts. */
  private text = '';
  /** Absolute byte offset of `text[0]`, and the bytes `text` decodes. */
  private textStart = 0;
  private textBytes = 0;
  /** Bytes of an incomplete character at the end of the last chunk. */
  private carry: Uint8Array | undefined;
  /**
   * U+FFFDs in `text` that replaced other than three bytes: their indexes,
   * ascending, and bytes replaced − 3. Empty for valid UTF-8.
   */
  private fixAt: number[] = [];
  private fixDelta: number[] = [];
  /** Index of the last U+FFFD in `text`, -1 when none (then a scan need not look for them). */
  private lastFffd = -1;
  /** {@link byteAt}'s last answer within this scan: index, byte offset from `text[0]`, fixes before it. */
  private atChar = 0;
  private atByte = 0;
  private atFix = 0;
  /** Line number at `text[0]`. */
  private line: number;
  private records: number;
  /** Scan again only once `text` is this long (a long unfinished record). */
  private rescanAt = 0;
  private atStart: boolean;
  private readonly delimiter: string;
  private readonly delimLen: number;
  private readonly delim0: number;
  private readonly quote: string;
  private readonly q: number;
  private failed = false;
  private unclosed = false;
  private held = false;

  constructor(
    private readonly o: SplitOptions,
    private readonly onSkip: (s: SkippedRecord) => void,
  ) {
    this.line = o.firstLine;
    this.records = o.recordsBefore;
    this.atStart = o.stripBom;
    this.delimiter = o.delimiter;
    this.delimLen = o.delimiter.length;
    this.delim0 = o.delimiter.charCodeAt(0);
    this.quote = o.quote;
    this.q = o.quote.charCodeAt(0);
  }

  /** Absolute byte offset up to which every record is finished (read or reported). */
  get consumed(): number {
    return this.textStart;
  }

  /** After a final {@link end}: the input ended inside a quoted field, or parsing had stopped. */
  get endsInQuote(): boolean {
    return this.unclosed || this.failed;
  }

  /** After a non-final {@link end}: the last record was unfinished and held back. */
  get heldTail(): boolean {
    return this.held;
  }

  /** The records the chunk completes. */
  feed(chunk: Uint8Array): CsvRecord[] {
    if (this.failed || chunk.length === 0) return [];
    let bytes = chunk;
    if (this.carry !== undefined) {
      const joined = new Uint8Array(this.carry.length + chunk.length);
      joined.set(this.carry);
      joined.set(chunk, this.carry.length);
      bytes = joined;
      this.carry = undefined;
    }
    let cut = bytes.length;
    if (this.o.encoding === 'utf8') {
      cut = utf8Cut(bytes);
      if (cut < bytes.length) this.carry = new Uint8Array(bytes.subarray(cut)); // a copy: the chunk is the caller's
    }
    this.append(bytes, cut);
    if (this.text.length < this.rescanAt) return [];
    const out: CsvRecord[] = [];
    this.scan(false, false, out);
    return out;
  }

  /**
   * The end of the input. `final`: it ends for good, so a last record without
   * a line break (or inside an open quote) is read as it is; otherwise that
   * record is held back (see {@link heldTail}) and not consumed.
   */
  end(final: boolean): CsvRecord[] {
    if (this.failed) return [];
    if (this.carry !== undefined) {
      // A character cut by the end of the input: decoded as it is (U+FFFD).
      const c = this.carry;
      this.carry = undefined;
      this.append(c, c.length);
    }
    const out: CsvRecord[] = [];
    this.scan(true, final, out);
    return out;
  }

  private append(bytes: Uint8Array, cut: number): void {
    if (cut === 0) return;
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const utf8 = this.o.encoding === 'utf8';
    let s = b.toString(utf8 ? 'utf8' : 'latin1', 0, cut);
    let from = 0;
    if (this.atStart) {
      this.atStart = false;
      if (s.charCodeAt(0) === 0xfeff) {
        s = s.slice(1);
        this.textStart += 3;
        from = 3;
      }
    }
    let k = utf8 ? s.indexOf(NO_FFFD) : -1;
    if (k !== -1) {
      // Where each U+FFFD's bytes are: the UTF-8 length of the text between them is exact.
      let c = 0;
      let at = from;
      const base = this.text.length;
      for (; k !== -1; k = s.indexOf(NO_FFFD, k + 1)) {
        at += Buffer.byteLength(s.slice(c, k), 'utf8');
        const n = replacedBytes(b, at, cut);
        if (n !== 3) {
          this.fixAt.push(base + k);
          this.fixDelta.push(n - 3);
        }
        at += n;
        c = k + 1;
        this.lastFffd = base + k;
      }
    }
    this.text = this.text.length === 0 ? s : this.text + s;
    this.textBytes += cut - from;
  }

  /**
   * Byte offset (absolute) of `text[i]`. A scan asks in ascending order, so
   * each answer counts on from the last: O(the text) per scan.
   */
  private byteAt(t: string, i: number): number {
    if (t.length === this.textBytes) return this.textStart + i;
    if (i < this.atChar) {
      this.atChar = 0;
      this.atByte = 0;
      this.atFix = 0;
    }
    let b = this.atByte + Buffer.byteLength(t.slice(this.atChar, i), 'utf8');
    const fixAt = this.fixAt;
    while (this.atFix < fixAt.length && fixAt[this.atFix]! < i) b += this.fixDelta[this.atFix++]!;
    this.atChar = i;
    this.atByte = b;
    return this.textStart + b;
  }

  /**
   * Split `text` into records. Without `atEnd`, a record that reaches the end
   * of the text may not be finished: it and what follows stay in `text`.
   */
  private scan(atEnd: boolean, final: boolean, out: CsvRecord[]): void {
    const t = this.text;
    const n = t.length;
    const Q = this.q;
    const quote = this.quote;
    const delimiter = this.delimiter;
    const dl = this.delimLen;
    const d0 = this.delim0;
    const max = this.o.maxRecordChars;
    const utf8 = this.o.utf8;
    // Next index ≥ the scan position of each, n when there is none.
    let nlAt = -1;
    let crAt = -1;
    let qAt = -1;
    let dAt = -1;
    let badAt = this.lastFffd === -1 ? n : -1;
    let line = this.line;
    let p = 0;
    /** End of the last finished record (or blank line), and the line there. */
    let done = 0;
    let doneLine = line;
    this.atChar = 0;
    this.atByte = 0;
    this.atFix = 0;

    records: while (true) {
      const rawStart = p;
      // Empty lines before the record.
      while (p < n) {
        const c = t.charCodeAt(p);
        if (c === LF) {
          p++;
          line++;
        } else if (c === CR) {
          if (p + 1 === n && !atEnd) break records; // may be half of a \r\n
          p++;
          if (t.charCodeAt(p) === LF) p++;
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
      const fields: string[] = [];
      let quoted: boolean[] | undefined;
      let err: string | undefined;
      let errLine = 0;
      let open = false;
      fieldLoop: while (true) {
        if (p === n) {
          // After a delimiter at the end of the text: an empty last field.
          if (!atEnd) break records;
          fields.push('');
          break;
        }
        if (t.charCodeAt(p) === Q) {
          let seg = ++p;
          let value = '';
          for (;;) {
            const at = t.indexOf(quote, p);
            if (at === -1) {
              if (!atEnd) break records;
              line += breaksIn(t, p, n);
              if (err === undefined) {
                err = 'CSV_QUOTE_NOT_CLOSED';
                errLine = recLine;
              }
              open = true;
              p = n;
              break fieldLoop;
            }
            if (nlAt < p) nlAt = (t.indexOf('\n', p) + 1 || n + 1) - 1;
            if (crAt < p) crAt = (t.indexOf('\r', p) + 1 || n + 1) - 1;
            if (nlAt < at || crAt < at) line += breaksIn(t, p, at);
            if (at + 1 === n && !atEnd) break records;
            const next = t.charCodeAt(at + 1);
            if (next === Q) {
              value += t.slice(seg, at + 1);
              p = at + 2;
              seg = p;
              continue;
            }
            if (at + 1 === n || next === LF || next === CR || (next === d0 && (dl === 1 || t.startsWith(delimiter, at + 1)))) {
              value = value === '' ? t.slice(seg, at) : value + t.slice(seg, at);
              p = at + 1;
              break;
            }
            if (err === undefined) {
              err = 'CSV_INVALID_CLOSING_QUOTE';
              errLine = line;
            }
            p = at + 1; // still inside the field, as csv-parse was
          }
          if (value === '') (quoted ??= new Array<boolean>(fields.length).fill(false))[fields.length] = true;
          else if (quoted !== undefined) quoted[fields.length] = false;
          fields.push(value);
        } else {
          if (dAt < p) dAt = (t.indexOf(delimiter, p) + 1 || n + 1) - 1;
          if (nlAt < p) nlAt = (t.indexOf('\n', p) + 1 || n + 1) - 1;
          if (crAt < p) crAt = (t.indexOf('\r', p) + 1 || n + 1) - 1;
          let e = dAt < nlAt ? dAt : nlAt;
          if (crAt < e) e = crAt;
          if (e === n && !atEnd) break records;
          if (qAt < p) qAt = (t.indexOf(quote, p) + 1 || n + 1) - 1;
          if (qAt < e && err === undefined) {
            err = 'CSV_INVALID_OPENING_QUOTE';
            errLine = line;
          }
          if (quoted !== undefined) quoted[fields.length] = false;
          fields.push(t.slice(p, e));
          p = e;
        }
        if (p === n) break; // atEnd: the last record without a line break
        const c = t.charCodeAt(p);
        if (c === LF) {
          p++;
          line++;
          break;
        }
        if (c === CR) {
          if (p + 1 === n && !atEnd) break records;
          p++;
          if (t.charCodeAt(p) === LF) p++;
          line++;
          break;
        }
        p += dl;
      }
      if (p - recStart > max) {
        this.fail(t, rawStart, p, recLine);
        return;
      }
      if (atEnd && !final && p === n && (open || t.charCodeAt(n - 1) !== LF)) {
        // Reaches the end of an input that may grow: not finished yet.
        this.held = true;
        break;
      }
      const isFirst = this.records++ === 0;
      if (err !== undefined) {
        this.onSkip({ parserCode: err, message: message(err, errLine, max), raw: t.slice(rawStart, p), line: recLine, isFirst, recoverable: true });
        if (open) this.unclosed = final;
      } else {
        let bad = false;
        if (utf8 !== undefined) {
          if (badAt < rawStart) badAt = (t.indexOf(NO_FFFD, rawStart) + 1 || n + 1) - 1;
          bad = badAt < p && utf8.hasBadIn(this.byteAt(t, rawStart), this.byteAt(t, p));
        }
        out.push(new ParsedRecord(fields, recLine, bad, quoted, t, rawStart, p));
      }
      done = p;
      doneLine = line;
      if (p === n) break;
    }

    // Keep what is not finished; count the bytes of what is.
    const rest = done === 0 ? t : t.slice(done);
    const restBytes =
      t.length === this.textBytes ? rest.length : this.fixAt.length === 0 ? Buffer.byteLength(rest, 'utf8') : this.textStart + this.textBytes - this.byteAt(t, done);
    this.textStart += this.textBytes - restBytes;
    this.textBytes = restBytes;
    this.text = rest;
    if (this.fixAt.length > 0 && done > 0) this.dropFixes(done);
    this.lastFffd = this.lastFffd >= done ? this.lastFffd - done : -1;
    this.line = doneLine;
    if (!atEnd && rest.length - breaksBefore(rest) > max) {
      this.fail(rest, 0, rest.length, doneLine + lineBreaksBeforeRecord(rest));
      return;
    }
    // A long unfinished record: scan it again once as much text again has come.
    this.rescanAt = rest.length > 65_536 ? rest.length * 2 : 0;
  }

  /** `text` loses its first `n` characters: the fixes move with it. */
  private dropFixes(n: number): void {
    let k = 0;
    while (k < this.fixAt.length && this.fixAt[k]! < n) k++;
    this.fixAt = this.fixAt.slice(k).map((i) => i - n);
    this.fixDelta = this.fixDelta.slice(k);
  }

  private fail(t: string, rawStart: number, end: number, line: number): void {
    this.failed = true;
    const isFirst = this.records++ === 0;
    this.onSkip({
      parserCode: 'CSV_MAX_RECORD_SIZE',
      message: message('CSV_MAX_RECORD_SIZE', line, this.o.maxRecordChars),
      raw: t.slice(rawStart, end),
      line,
      isFirst,
      recoverable: false,
    });
  }
}

/** Characters of blank lines at the start of `t`. */
function breaksBefore(t: string): number {
  let i = 0;
  while (i < t.length && (t.charCodeAt(i) === LF || t.charCodeAt(i) === CR)) i++;
  return i;
}

/** Line breaks among the blank lines at the start of `t`. */
function lineBreaksBeforeRecord(t: string): number {
  return breaksIn(t, 0, breaksBefore(t));
}

/** The reject reason of a parse error (wording as csv-parse's, with our line numbers); shared with bytesplit.ts. */
export function message(code: string, line: number, max: number): string {
  switch (code) {
    case 'CSV_INVALID_OPENING_QUOTE':
      return `Invalid Opening Quote: a quote is found inside a field at line ${line}`;
    case 'CSV_INVALID_CLOSING_QUOTE':
      return `Invalid Closing Quote: a quote at line ${line} is followed by a character other than a delimiter or a line break`;
    case 'CSV_QUOTE_NOT_CLOSED':
      return `Quote Not Closed: the input ends inside the quoted field opened in the record at line ${line}`;
    default:
      return `Max Record Size: the record at line ${line} is longer than the maximum of ${max} characters`;
  }
}
