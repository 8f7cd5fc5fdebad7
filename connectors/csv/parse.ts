/**
 * The CSV parsing core: csv-parse, plus what it does not give us cheaply —
 * the line where each record starts, whether an empty field was quoted, and
 * which records hold invalid UTF-8 — and one reject per broken record with
 * its whole raw text.
 *
 * Why not csv-parse's `cast` / `info` / `on_record` options: each builds
 * context objects per field or record; `cast` alone makes parsing ~10× slower
 * (measured: 200k rows, 1.1 s → 11 s). Instead we read the parser's counters
 * at the moment a record is pushed, and look at the raw text only in the rare
 * cases that need it.
 *
 * What csv-parse can recover from (with `skip_records_with_error`):
 * - a quote inside an unquoted field (`a"b`): that record is rejected, the
 *   next line is read normally;
 * - a bad closing quote (`"ab"c`) or an opening quote that is never closed:
 *   the parser stays inside the quoted field until it meets a quote followed
 *   by a delimiter or a line break. Everything up to there — possibly several
 *   lines — is one rejected record; reading resumes after it. If no such quote
 *   follows, the rest of the file is that one rejected record.
 *
 * Line breaks: `\r\n`, `\n` and a lone `\r` all end a record, mixed freely in
 * one file (files concatenated from different writers), as Python's csv module
 * reads a file opened with `newline=''`. csv-parse would otherwise lock onto
 * the first one it meets and merge the lines that end otherwise.
 *
 * The end of the input: with `final` (the file has settled) a last record
 * without a line break, or an unclosed quote, is read as today (a record, or a
 * reject). Without it (a writer may still be at work) that unfinished last
 * record is held back — neither pushed nor rejected — and the
 * {@link ByteTrail} given commits only the bytes of finished records, so the
 * next run reads it whole.
 *
 * What it cannot recover from: a record longer than `maxRecordChars`. csv-parse
 * then drops the rest of every chunk and never finds the record's end, so the
 * rest of the file would vanish without a trace; we report it at once as not
 * recoverable and the stream fails (a runaway quote is the usual cause).
 */
import { isUtf8 } from 'node:buffer';
import type { TransformCallback } from 'node:stream';
import { Parser, type CsvError } from 'csv-parse';
import type { CsvOptions } from './options.js';
import type { ByteTrail } from './resume.js';

/** Every record delimiter, longest first (`\r\n` before `\r`). */
const RECORD_DELIMITERS = ['\r\n', '\n', '\r'];
const LF = 10;

/** One parsed record with its location. */
export interface CsvRecord {
  /** Field values as text; `''` for an empty field (see {@link quotedFields}). */
  fields: string[];
  /** The record's text as read (line break and preceding blank lines included). */
  raw: string;
  /** 1-based line where the record starts. */
  line: number;
  /** The record's bytes are not valid UTF-8 (they were decoded with U+FFFD). */
  badUtf8: boolean;
}

/** A record csv-parse could not parse; it was skipped. */
export interface SkippedRecord {
  /** csv-parse error code, e.g. `CSV_INVALID_CLOSING_QUOTE`. */
  parserCode: string;
  message: string;
  /** The whole text of the skipped record. */
  raw: string;
  /** 1-based line where the skipped record starts. */
  line: number;
  /** No record was parsed before it: it is the header line. */
  isFirst: boolean;
  /** False when parsing cannot go on after it (the file must fail). */
  recoverable: boolean;
}

/** Strip blank lines before a record and its line break after it. */
export function recordBody(raw: string): string {
  let start = 0;
  while (start < raw.length && (raw.charCodeAt(start) === 10 || raw.charCodeAt(start) === 13)) start++;
  let end = raw.length;
  if (end > start && raw.charCodeAt(end - 1) === 10) end--;
  if (end > start && raw.charCodeAt(end - 1) === 13) end--;
  return start === 0 && end === raw.length ? raw : raw.slice(start, end);
}

/**
 * Line breaks in a record's raw text: `\n`, `\r\n` or a lone `\r`. (csv-parse
 * keeps only the `\r` of a `\r\n` record delimiter in the raw text, and its
 * own line counter counts a `\r\n` inside a quoted field twice, hence our own.)
 * Returns the breaks before the first non-blank character (blank lines
 * preceding the record) and in total.
 */
export function lineBreaks(raw: string): { leading: number; total: number } {
  let leading = -1;
  let total = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 10) total++;
    else if (c === 13) {
      if (raw.charCodeAt(i + 1) !== 10) total++;
    } else if (leading === -1) leading = total;
  }
  return { leading: leading === -1 ? total : leading, total };
}

/**
 * Which fields of a well-formed record were quoted. Needed only to tell an
 * unquoted empty field (NULL) from a quoted one (`""`, the empty string);
 * callers first check that the raw text contains a doubled quote at all.
 */
export function quotedFields(raw: string, delimiter: string, quote: string): boolean[] {
  const s = recordBody(raw);
  const out: boolean[] = [];
  let i = 0;
  for (;;) {
    if (s.startsWith(quote, i)) {
      out.push(true);
      i += quote.length;
      while (i < s.length) {
        if (s.startsWith(quote, i)) {
          if (s.startsWith(quote, i + quote.length)) {
            i += 2 * quote.length;
            continue;
          }
          i += quote.length;
          break;
        }
        i++;
      }
    } else {
      out.push(false);
    }
    const d = s.indexOf(delimiter, i);
    if (d === -1) return out;
    i = d + delimiter.length;
  }
}

/**
 * Finds lines that are not valid UTF-8 in a byte stream fed chunk by chunk.
 * The fast path validates whole chunks (simdutf via `buffer.isUtf8`); only a
 * chunk that fails is split into lines to locate the bad ones. Lines are split
 * at `\n`, which never occurs inside a multi-byte sequence.
 */
export class Utf8LineCheck {
  /** Absolute byte offsets where an invalid line starts, ascending. */
  private readonly bad: number[] = [];
  private tail: Buffer | undefined;
  private tailStart = 0;
  private offset = 0;

  /** Bytes of text without a line break kept before validating anyway. */
  static readonly MAX_TAIL = 1 << 20;

  /** Feed the next chunk of the file. */
  feed(chunk: Buffer): void {
    const buf = this.tail === undefined ? chunk : Buffer.concat([this.tail, chunk]);
    const base = this.tail === undefined ? this.offset : this.tailStart;
    this.offset += chunk.length;
    let cut = buf.lastIndexOf(10) + 1;
    if (cut === 0) {
      if (buf.length < Utf8LineCheck.MAX_TAIL) {
        this.tail = buf;
        this.tailStart = base;
        return;
      }
      // A very long line (or `\r`-only line breaks): validate up to a
      // character boundary so memory stays bounded.
      cut = buf.length;
      let back = 0;
      while (back < 3 && cut > 0 && ((buf[cut - 1] ?? 0) & 0xc0) === 0x80) {
        cut--;
        back++;
      }
      if (cut > 0 && (buf[cut - 1] ?? 0) >= 0xc0) cut--;
    }
    this.check(buf.subarray(0, cut), base);
    this.tail = cut < buf.length ? Buffer.from(buf.subarray(cut)) : undefined;
    this.tailStart = base + cut;
  }

  /** The end of the input: check what is left. */
  end(): void {
    if (this.tail !== undefined) this.check(this.tail, this.tailStart);
    this.tail = undefined;
  }

  /** True when an invalid line starts in `[from, to)`; forgets offsets before `from`. */
  hasBadIn(from: number, to: number): boolean {
    while (this.bad.length > 0 && (this.bad[0] ?? 0) < from) this.bad.shift();
    const first = this.bad[0];
    return first !== undefined && first < to;
  }

  private check(region: Buffer, base: number): void {
    if (region.length === 0 || isUtf8(region)) return;
    let start = 0;
    while (start < region.length) {
      const nl = region.indexOf(10, start);
      const end = nl === -1 ? region.length : nl + 1;
      if (!isUtf8(region.subarray(start, end))) this.bad.push(base + start);
      start = end;
    }
  }
}

/** csv-parse internals we read (csv-parse 7); test/connectors/csv/{format,parse}.test.ts fail if they change. */
interface ParserInternals {
  api: {
    info: { bytes: number };
    state: { recordHasError: boolean; quoting: boolean; rawBuffer: { toString(encoding: string): string } };
    __resetRecord: () => void;
  };
}

/** Where a parser starts when it continues a file after bytes read by an earlier run. */
export interface ParserResume {
  /** Line number of the first byte parsed (see `continueAt` in resume.ts). */
  firstLine: number;
}

/** How the input ends, and where the consumed bytes are counted. */
export interface ParserTail {
  /** Counts the bytes of finished records: fed every chunk, committed at each record's end. */
  trail: ByteTrail;
  /** The input ends for good (the file has settled): an unfinished last record is read as it is. */
  final: boolean;
}

/**
 * csv-parse's stream Parser, emitting {@link CsvRecord}s and reporting each
 * skipped record once, whole, through `onSkip`. With `resume` it parses the
 * continuation of a file: no header is expected (its first record is not
 * `isFirst`) and lines count from `resume.firstLine`.
 */
export class LocatedParser extends Parser {
  private readonly utf8: Utf8LineCheck | undefined;
  private readonly encodingName: string;
  /** Byte offset where the next record starts. */
  private recordStart = 0;
  /** Line where the next record's raw text starts. */
  private nextLine = 1;
  /** Records pushed or skipped so far. */
  private records = 0;
  private pendingSkip: { err: CsvError; raw: string } | undefined;
  /** An error parsing cannot continue after was reported. */
  private failed = false;
  private endedInQuote = false;
  private readonly trail: ByteTrail | undefined;
  /** Absolute offset of the first byte parsed (the trail's bytes before it). */
  private readonly base: number;
  private readonly final: boolean;
  /** Bytes parsed so far, and the last of them. */
  private fed = 0;
  private lastByte = -1;
  private flushing = false;
  private held = false;

  constructor(
    options: Pick<CsvOptions, 'delimiter' | 'quote' | 'encoding' | 'maxRecordChars' | 'chunkSize'>,
    private readonly onSkip: (s: SkippedRecord) => void,
    resume?: ParserResume,
    tail?: ParserTail,
  ) {
    // `this` cannot be used in the arguments of super(): reach it through a box.
    const self: { parser?: LocatedParser } = {};
    super({
      delimiter: options.delimiter,
      quote: options.quote,
      escape: options.quote,
      encoding: options.encoding,
      // With latin1 a UTF-8 BOM is three ordinary characters; do not let
      // csv-parse switch the encoding behind our back. Mid-file (resuming)
      // a BOM is text, as it would be in a whole read.
      bom: options.encoding === 'utf8' && resume === undefined,
      raw: true,
      relax_column_count: true,
      skip_records_with_error: true,
      skip_empty_lines: true,
      max_record_size: options.maxRecordChars,
      record_delimiter: RECORD_DELIMITERS,
      on_skip: (err: CsvError | undefined, raw: string | undefined) => {
        const p = self.parser;
        if (p === undefined || err === undefined || p.failed) return undefined;
        if (err.code === 'CSV_MAX_RECORD_SIZE') {
          p.failed = true;
          p.pendingSkip = { err, raw: raw ?? p.pendingSkip?.raw ?? '' };
          p.reportSkip(p.pendingSkip.raw, false);
          return undefined;
        }
        // A bad closing quote (`"ab"c`) is reported first with the text up to
        // it; if no closing quote follows, csv-parse reports the same record
        // again at the end of the input (CSV_QUOTE_NOT_CLOSED) with the rest of
        // the file. Keep the first error but the longest text, or those lines
        // would be in neither the dataset nor the reject file.
        if (p.pendingSkip === undefined) p.pendingSkip = { err, raw: raw ?? '' };
        else if (raw !== undefined && raw.length > p.pendingSkip.raw.length) p.pendingSkip.raw = raw;
        return undefined;
      },
      readableHighWaterMark: options.chunkSize,
    } as ConstructorParameters<typeof Parser>[0]);
    self.parser = this;
    if (resume !== undefined) {
      this.nextLine = resume.firstLine;
      this.records = 1; // the header came before
    }
    this.trail = tail?.trail;
    this.base = tail?.trail.fed ?? 0;
    this.final = tail?.final ?? true;
    this.utf8 = options.encoding === 'utf8' ? new Utf8LineCheck() : undefined;
    this.encodingName = options.encoding;
    const api = (this as unknown as ParserInternals).api;
    const reset = api.__resetRecord;
    // The end of every record, pushed or skipped, passes here: the one place
    // where the whole raw text of a skipped record is still available.
    api.__resetRecord = () => {
      if (api.state.recordHasError && this.pendingSkip !== undefined && !this.failed) {
        if (this.holdsEnd()) this.pendingSkip = undefined;
        else {
          this.reportSkip(api.state.rawBuffer.toString(this.encodingName));
          this.recordStart = api.info.bytes;
          this.trail?.commit(this.base + this.recordStart);
        }
      }
      reset.call(api);
    };
  }

  /** After the end of a final input: it ended inside a quoted field (a quote never closed). */
  get endsInQuote(): boolean {
    return this.endedInQuote;
  }

  /** After the end of a non-final input: its last record was unfinished and held back. */
  get heldTail(): boolean {
    return this.held;
  }

  /**
   * At the end of a non-final input, the record ending now reaches the end
   * of the input without a line break after it (or inside a quote): it may
   * not be finished, so hold it. A last byte `\n` outside quotes ends a
   * record; anything else — a `\r` too, whose `\n` may still come — does not.
   */
  private holdsEnd(): boolean {
    if (this.final || !this.flushing) return false;
    const api = (this as unknown as ParserInternals).api;
    // A record ending before the last byte ended with its line break.
    if (api.info.bytes < this.fed) return false;
    if (this.lastByte === LF && !api.state.quoting) return false;
    this.held = true;
    return true;
  }

  /** The line where a record with this raw text starts; moves past it. */
  private locate(raw: string): number {
    const { leading, total } = lineBreaks(raw);
    const line = this.nextLine + leading;
    this.nextLine += total;
    return line;
  }

  private reportSkip(raw: string, recoverable = true): void {
    const { err } = this.pendingSkip!;
    this.pendingSkip = undefined;
    const isFirst = this.records++ === 0;
    this.onSkip({ parserCode: err.code, message: err.message, raw, line: this.locate(raw), isFirst, recoverable });
  }

  override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length > 0) {
      this.fed += chunk.length;
      this.lastByte = chunk[chunk.length - 1]!;
    }
    this.utf8?.feed(chunk);
    this.trail?.feed(chunk);
    super._transform(chunk, encoding, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.utf8?.end();
    this.flushing = true;
    super._flush((err?: Error | null) => {
      const quoting = (this as unknown as ParserInternals).api.state.quoting;
      if (!this.final && (quoting || this.pendingSkip !== undefined) && !this.failed) {
        // A quote still open (or a bad quote still looking for its end) at
        // the end of a file that may grow: unfinished, not broken.
        this.pendingSkip = undefined;
        this.held = true;
      }
      this.endedInQuote = this.final && (quoting || this.pendingSkip !== undefined || this.failed);
      // An opening quote never closed: csv-parse reports it at the end of the
      // input and never finishes that record.
      if (this.pendingSkip !== undefined && !this.failed) this.reportSkip(this.pendingSkip.raw);
      // Blank lines after the last record are consumed too, unless a record was held.
      if (!this.held) this.trail?.commit(this.base + this.fed);
      callback(err);
    });
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || chunk === undefined) return super.push(chunk, encoding);
    // Called synchronously by csv-parse when a record is complete, so the
    // counters still describe this record.
    const api = (this as unknown as ParserInternals).api;
    const { record, raw } = chunk as { record: string[]; raw: string };
    const end = api.info.bytes;
    if (this.holdsEnd()) return true;
    this.trail?.commit(this.base + end);
    const badUtf8 = this.utf8 !== undefined && raw.includes('\uFFFD') && this.utf8.hasBadIn(this.recordStart, end);
    this.recordStart = end;
    this.records++;
    const out: CsvRecord = { fields: record, raw, line: this.locate(raw), badUtf8 };
    return super.push(out);
  }
}
