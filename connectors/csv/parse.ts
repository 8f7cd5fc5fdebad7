/**
 * The CSV parsing core: the Transform that turns a file's bytes into records
 * (the parsing itself is split.ts, our own byte-level splitter), plus the
 * pure helpers around it — the line where each record starts, which fields
 * were quoted, which records hold invalid UTF-8 — and one reject per broken
 * record with its whole raw text.
 *
 * What parsing recovers from (see split.ts for the rules):
 * - a quote inside an unquoted field (`a"b`): that record is rejected, the
 *   next line is read normally;
 * - a bad closing quote (`"ab"c`) or an opening quote that is never closed:
 *   the field goes on until a quote followed by a delimiter or a line break.
 *   Everything up to there — possibly several lines — is one rejected
 *   record; reading resumes after it. If no such quote follows, the rest of
 *   the file is that one rejected record.
 *
 * Line breaks: `\r\n`, `\n` and a lone `\r` all end a record, mixed freely in
 * one file (files concatenated from different writers), as Python's csv module
 * reads a file opened with `newline=''`.
 *
 * The end of the input: with `final` (the file has settled) a last record
 * without a line break, or an unclosed quote, is read as it is (a record, or a
 * reject). Without it (a writer may still be at work) that unfinished last
 * record is held back — neither pushed nor rejected — and the
 * {@link ByteTrail} given commits only the bytes of finished records, so the
 * next run reads it whole.
 *
 * What it cannot recover from: a record longer than `maxRecordChars` (a
 * runaway quote is the usual cause); it is reported at once as not
 * recoverable and the stream fails rather than guess where records resume.
 */
import { isUtf8 } from 'node:buffer';
import { Transform, type TransformCallback } from 'node:stream';
import type { CsvOptions } from './options.js';
import type { ByteTrail } from './resume.js';
import { ByteSplitter, type SplitBatch } from './bytesplit.js';
import { CsvSplitter } from './split.js';

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
  /** Which fields were quoted; set only when an empty field was (`""`: the empty string, not NULL). */
  quoted?: readonly boolean[] | undefined;
}

/** A record that could not be parsed; it was skipped. */
export interface SkippedRecord {
  /** Parse error code (csv-parse's names), e.g. `CSV_INVALID_CLOSING_QUOTE`. */
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

/** Where a parser starts when it continues a file after bytes read by an earlier run. */
export interface ParserResume {
  /** Line number of the first byte parsed (see `continueAt` in resume.ts). */
  firstLine: number;
}

/** How the input ends, and where the consumed bytes are counted. */
export interface ParserTail {
  /** Counts the bytes of finished records: fed every chunk, committed as records finish. */
  trail: ByteTrail;
  /** The input ends for good (the file has settled): an unfinished last record is read as it is. */
  final: boolean;
}

/**
 * The parsing Transform: bytes in, {@link CsvRecord}s out (object mode),
 * each skipped record reported once, whole, through `onSkip`. A thin adapter
 * over {@link CsvSplitter} (split.ts), which does the parsing. With `resume`
 * it parses the continuation of a file: no header is expected (its first
 * record is not `isFirst`), no BOM is dropped, and lines count from
 * `resume.firstLine`.
 */
export class LocatedParser extends Transform {
  private readonly utf8: Utf8LineCheck | undefined;
  private readonly splitter: CsvSplitter;
  private readonly trail: ByteTrail | undefined;
  /** Absolute offset of the first byte parsed (the trail's bytes before it). */
  private readonly base: number;
  private readonly final: boolean;

  constructor(
    options: Pick<CsvOptions, 'delimiter' | 'quote' | 'encoding' | 'maxRecordChars' | 'chunkSize'>,
    onSkip: (s: SkippedRecord) => void,
    resume?: ParserResume,
    tail?: ParserTail,
  ) {
    super({ readableObjectMode: true, readableHighWaterMark: options.chunkSize });
    this.utf8 = options.encoding === 'utf8' ? new Utf8LineCheck() : undefined;
    this.trail = tail?.trail;
    this.base = tail?.trail.fed ?? 0;
    this.final = tail?.final ?? true;
    this.splitter = new CsvSplitter(
      {
        delimiter: options.delimiter,
        quote: options.quote,
        encoding: options.encoding,
        maxRecordChars: options.maxRecordChars,
        // With latin1 a UTF-8 BOM is three ordinary characters; mid-file (resuming) it is text, as in a whole read.
        stripBom: options.encoding === 'utf8' && resume === undefined,
        firstLine: resume?.firstLine ?? 1,
        recordsBefore: resume !== undefined ? 1 : 0,
        ...(this.utf8 !== undefined ? { utf8: this.utf8 } : {}),
      },
      onSkip,
    );
  }

  /** After the end of a final input: it ended inside a quoted field (a quote never closed). */
  get endsInQuote(): boolean {
    return this.final && this.splitter.endsInQuote;
  }

  /** After the end of a non-final input: its last record was unfinished and held back. */
  get heldTail(): boolean {
    return this.splitter.heldTail;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.utf8?.feed(chunk);
    this.trail?.feed(chunk);
    this.out(this.splitter.feed(chunk));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.utf8?.end();
    this.out(this.splitter.end(this.final));
    callback();
  }

  private out(records: CsvRecord[]): void {
    this.trail?.commit(this.base + this.splitter.consumed);
    for (let i = 0; i < records.length; i++) this.push(records[i]);
  }
}

/** What {@link ColumnarParser} pushes: one call's records, as offsets (its own copies). */
export interface ParsedBytes {
  bytes: Buffer;
  count: number;
  /** Per record + 1: its first field. */
  firstField: Int32Array;
  start: Int32Array;
  end: Int32Array;
  flags: Uint8Array;
  line: Int32Array;
  rawStart: Int32Array;
  rawEnd: Int32Array;
  badUtf8: Uint8Array;
}

/**
 * {@link LocatedParser} for the columnar path: the same parsing (the byte
 * splitter keeps split.ts's dialect: bytesplit.ts), the same skips, resume
 * and trail, but records out as {@link ParsedBytes} batches, one per chunk
 * that finishes any. UTF-8 only; the quote one byte.
 */
export class ColumnarParser extends Transform {
  private readonly utf8 = new Utf8LineCheck();
  private readonly splitter: ByteSplitter;
  private readonly trail: ByteTrail | undefined;
  private readonly base: number;
  private readonly final: boolean;

  constructor(
    options: Pick<CsvOptions, 'delimiter' | 'quote' | 'maxRecordChars'>,
    onSkip: (s: SkippedRecord) => void,
    resume?: ParserResume,
    tail?: ParserTail,
  ) {
    // A batch holds a chunk's records: a few may wait, not `chunk_size`.
    super({ readableObjectMode: true, readableHighWaterMark: 4 });
    this.trail = tail?.trail;
    this.base = tail?.trail.fed ?? 0;
    this.final = tail?.final ?? true;
    this.splitter = new ByteSplitter(
      {
        delimiter: options.delimiter,
        quote: options.quote,
        encoding: 'utf8',
        maxRecordChars: options.maxRecordChars,
        stripBom: resume === undefined,
        firstLine: resume?.firstLine ?? 1,
        recordsBefore: resume !== undefined ? 1 : 0,
        utf8: this.utf8,
      },
      onSkip,
    );
  }

  get endsInQuote(): boolean {
    return this.final && this.splitter.endsInQuote;
  }

  get heldTail(): boolean {
    return this.splitter.heldTail;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.utf8.feed(chunk);
    this.trail?.feed(chunk);
    this.out(this.splitter.feed(chunk));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.utf8.end();
    this.out(this.splitter.end(this.final));
    callback();
  }

  private out(b: SplitBatch): void {
    this.trail?.commit(this.base + this.splitter.consumed);
    const n = b.count;
    if (n === 0) return;
    const f = b.firstField[n]!;
    this.push({
      bytes: b.bytes,
      count: n,
      firstField: b.firstField.slice(0, n + 1),
      start: b.start.slice(0, f),
      end: b.end.slice(0, f),
      flags: b.flags.slice(0, f),
      line: b.line.slice(0, n),
      rawStart: b.rawStart.slice(0, n),
      rawEnd: b.rawEnd.slice(0, n),
      badUtf8: b.badUtf8.slice(0, n),
    } satisfies ParsedBytes);
  }
}
