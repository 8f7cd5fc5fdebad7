/**
 * The CSV source stream: files of one object, one after the other, as an
 * object-mode Readable of records. A thin adapter around `parse.ts` and
 * `resume.ts`: it opens one file at a time through a {@link CsvFileSource}
 * (local files: `local.ts`; Google Drive: connectors/gdrive_csv), pulls
 * records from the parser only when its consumer asks (`_read`), and closes
 * the file in `_destroy`. Where the bytes come from is the source's
 * business; what is read, skipped, resumed, rejected or refused
 * (SOURCE_REWRITTEN) is decided here, once, for every source.
 */
import { once } from 'node:events';
import { Readable, type Readable as ReadableType } from 'node:stream';
import type { ReadContext } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import { columnarText, FIELD_ESCAPED, type ColumnarText } from '../../lib/records/columnar.js';
import { RecordPacker, type PackedRecords } from '../../lib/records/packed.js';
import type { FileMark, ObjectState, Row } from '../../lib/types.js';
import type { CsvOptions } from './options.js';
import { ColumnarParser, LocatedParser, recordBody, type CsvRecord, type ParsedBytes, type SkippedRecord } from './parse.js';
import { ByteTrail, continueAt, isSettled, planFileRead, prefixChanged, rewrittenError } from './resume.js';
import { csvRowFactory, type RowFactory } from './row.js';

/** Where a CSV record came from; attached under `LOCATION` (lib/records/location.ts). */
export interface CsvLocation {
  file: string;
  /** 1-based line where the record starts. */
  line: number;
}

const NO_QUOTED: readonly boolean[] = [];

/** Where a grown file is continued: after `offset` bytes (their trail), at line `firstLine`. */
interface Resume {
  offset: number;
  trail: ByteTrail;
  firstLine: number;
}

/** One file of an object, as its source lists it. */
export interface CsvFile {
  /** State key: `file_<id>` (the Python tool's naming). */
  readonly key: string;
  /** The file in messages and in each record's location (`{file, line}`): a path, or what names it at the source. */
  readonly label: string;
}

/** A file opened for this run: its mark now, and its bytes on request. */
export interface OpenCsvFile {
  /** Size and modification time now (a stat, an API's listing): the read is planned from it and the mark saved describes it. */
  readonly mark: FileMark;
  /**
   * The first `size` bytes hashed into a {@link ByteTrail} (which can go on
   * with the rest), and the byte after them (undefined at the end of the
   * file). Undefined when the file has fewer bytes or `cancelled()` turned true.
   */
  prefix(size: number, cancelled: () => boolean): Promise<{ trail: ByteTrail; next: number | undefined } | undefined>;
  /** Bytes [0, `end`) in order, for the header of a file resumed after them; a consumer may stop early. */
  head(end: number): AsyncIterable<Buffer>;
  /** Bytes [`start`, `end`) as a byte stream, piped into the parser (its backpressure reaches the source). */
  body(start: number, end: number): ReadableType;
  /** Release the file; resolves once everything it opened is closed. */
  close(): Promise<void>;
}

/** Where an object's files come from: listed once, opened one at a time. */
export interface CsvFileSource<F extends CsvFile = CsvFile> {
  /** Connector name, for messages and error context. */
  readonly connector: string;
  /** The object's files, in reading order (a file named twice is listed once). */
  list(): Promise<F[]>;
  /** Open one file; `saved` is its mark of the last run (a source may spare a download when it says enough). */
  open(file: F, saved: FileMark | undefined): Promise<OpenCsvFile>;
  /** Any failure while listing, opening or reading `file`, as a DativoError. */
  error(err: unknown, file: F | undefined): DativoError;
  /** Marks the state keeps besides those of the files read (files gone from a folder, kept so a restored one is not read twice). Default none. */
  retained?(): Record<string, FileMark>;
}

/** What the stream needs besides the read context. */
export interface CsvStreamConfig {
  options: CsvOptions;
  /**
   * Incremental: skip files whose size and mtime match the saved state, and
   * resume grown files after the bytes already read (see `resume.ts`).
   */
  skipUnchanged: boolean;
}

/** The stream returned by the CSV connector's `read()`. */
export class CsvSourceStream<F extends CsvFile = CsvFile> extends Readable {
  private files: F[] = [];
  private next = 0;
  private readonly seen: Record<string, FileMark> = {};

  private current: F | undefined;
  private opened: OpenCsvFile | undefined;
  private fileStream: ReadableType | undefined;
  private parser: LocatedParser | ColumnarParser | undefined;
  /** With `ctx.columnarText` (and UTF-8, a one-byte quote): records go out as {@link ColumnarText} batches. */
  private readonly columnar: boolean;
  /** Hash and line count of the current file's bytes, from its first byte. */
  private trail: ByteTrail | undefined;
  private header: string[] | undefined;
  /** Builds the records of this header (row.ts); set with it. */
  private makeRow: RowFactory | undefined;
  /** With `ctx.packedRecords`: the batch being filled (of this header). */
  private packer: RecordPacker | undefined;
  private opening: Promise<void> | undefined;
  private wanted = false;
  private pumping = false;
  /** Every file is done and the end was pushed. */
  private ended = false;
  private readonly connector: string;
  private readonly onAbort = (): void => {
    this.destroy(new DativoError('ABORTED', `${this.connector}: read aborted`, { context: { connector: this.connector, object: this.ctx.object.name } }));
  };

  constructor(
    private readonly ctx: ReadContext,
    private readonly config: CsvStreamConfig,
    private readonly source: CsvFileSource<F>,
  ) {
    const columnar = ctx.columnarText === true && config.options.encoding === 'utf8' && Buffer.byteLength(config.options.quote) === 1 && config.options.quote.length === 1;
    // A packed or columnar batch holds hundreds or thousands of records: a few may wait, not `chunk_size`.
    super({ objectMode: true, highWaterMark: ctx.packedRecords ? 1 : columnar ? 2 : config.options.chunkSize });
    this.columnar = columnar;
    this.connector = source.connector;
  }

  /** Files this run saw (read or skipped as unchanged), for the object's state. */
  checkpoint(): Partial<ObjectState> {
    return { files: { ...this.source.retained?.(), ...this.seen } };
  }

  override _construct(callback: (err?: Error | null) => void): void {
    if (this.ctx.signal.aborted) {
      callback(new DativoError('ABORTED', `${this.connector}: read aborted`, { context: { connector: this.connector } }));
      return;
    }
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    Promise.resolve()
      .then(() => this.source.list())
      .then(
        (files) => {
          this.files = files;
          callback();
        },
        (err: unknown) => callback(this.source.error(err, undefined)),
      );
  }

  override _read(): void {
    this.wanted = true;
    this.pump();
  }

  /** Move records from the parser to our buffer while the consumer wants them. */
  private pump(): void {
    if (this.pumping || this.ended || this.destroyed) return;
    this.pumping = true;
    try {
      // A reject sink may destroy us (strict mode) from inside toRow().
      while (this.wanted && !this.destroyed) {
        const parser = this.parser;
        if (parser === undefined) {
          if (this.opening === undefined) this.advance(false);
          return;
        }
        const rec = parser.read() as CsvRecord | ParsedBytes | null;
        if (rec === null) return; // 'readable' or 'end' brings us back
        if (this.columnar) {
          this.takeBytes(rec as ParsedBytes);
          continue;
        }
        const row = this.toRow(rec as CsvRecord);
        if (row !== undefined) this.wanted = this.push(row);
      }
    } catch (err) {
      this.destroy(this.source.error(err, this.current));
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Close the finished file (if any), then open the next one. `opening` is
   * set synchronously, so no other path opens a file or ends the stream
   * while this runs, and `_destroy` can wait for it.
   */
  private advance(finishCurrent: boolean): void {
    const was = this.current;
    this.opening = (async () => {
      if (finishCurrent) await this.finishFile();
      await this.openFile();
    })().then(
      () => {
        this.opening = undefined;
        this.pump();
      },
      (err: unknown) => {
        this.opening = undefined;
        this.destroy(this.source.error(err, this.current ?? was));
      },
    );
  }

  /** Open the next file that needs reading, or end the stream. */
  private async openFile(): Promise<void> {
    while (this.next < this.files.length) {
      const file = this.files[this.next++]!;
      this.current = file;
      this.header = undefined;
      const saved = this.ctx.state?.files?.[file.key];
      const opened = await this.source.open(file, saved);
      if (this.destroyed) {
        await opened.close();
        return;
      }
      this.opened = opened;
      // The mark is taken before reading: it describes what we read even if
      // a writer appends meanwhile.
      const mark = opened.mark;
      const size = mark.size ?? 0;
      this.seen[file.key] = mark;
      const plan = planFileRead(saved, mark, this.config.skipUnchanged);
      let skip = plan.kind === 'skip' || (plan.kind === 'whole' && size === 0);
      let rewritten = plan.kind === 'rewritten' ? plan.reason : undefined;
      let resume: Resume | undefined;
      if (plan.kind === 'verify') {
        const prefix = await opened.prefix(plan.prefix, () => this.destroyed);
        if (this.destroyed) return;
        if (prefix === undefined || prefix.trail.digest() !== plan.hash) rewritten = prefixChanged(plan.prefix);
        else if (!plan.grew) skip = true; // only the mtime changed: the same bytes
        else {
          const found = await this.resumeAfter(file, opened, saved!, prefix.trail, prefix.next);
          if (this.destroyed) return;
          if (typeof found === 'string') rewritten = found;
          else resume = found; // undefined: no header in the bytes taken before, so no row came from them
        }
      }
      if (rewritten !== undefined) {
        // Rows came from this file; reading it again would write them twice.
        throw rewrittenError({ connector: this.connector, file: file.label, object: this.ctx.object.name, reason: rewritten });
      }
      if (skip) {
        // Keep the hash and line count of the unchanged bytes for later runs.
        if (saved !== undefined && size !== 0) this.seen[file.key] = { ...saved, ...mark };
        if (size !== 0) this.ctx.log.debug({ file: file.label }, `${this.connector}: unchanged since last run, skipped`);
        this.opened = undefined;
        await opened.close();
        continue;
      }
      // Settled at the stat: its writer is done, so its last line is whole.
      const final = isSettled(mark.modifiedAt, Date.now(), this.config.options.settleSeconds * 1000);
      this.startParsing(file, opened, size, resume, final);
      return;
    }
    this.current = undefined;
    this.ended = true;
    this.push(null);
  }

  /**
   * Prepare to continue a file after the `prefix` bytes taken before (the
   * hash says they are unchanged; `next` is the byte after them): check it
   * can start new records, read the header from the start and take it.
   * `undefined` when the earlier bytes hold no header (then nothing came
   * from them: read the file whole); a reason when the file cannot be continued.
   */
  private async resumeAfter(file: F, opened: OpenCsvFile, saved: FileMark, prefix: ByteTrail, next: number | undefined): Promise<Resume | string | undefined> {
    const offset = prefix.bytes;
    if (next === undefined) return 'it shrank while being read';
    const at = continueAt(saved, prefix, next);
    if ('rewritten' in at) return at.rewritten;
    const first = await readFirstRecord(opened.head(offset), this.config.options);
    if (first === undefined || this.destroyed) return undefined;
    if (first.skipped !== undefined) {
      this.onSkipped(file, first.skipped);
      return undefined;
    }
    this.toRow(first.record); // sets this.header, or throws as on a whole read
    return { offset, trail: prefix, firstLine: at.firstLine };
  }

  private startParsing(file: F, opened: OpenCsvFile, size: number, resume: Resume | undefined, final: boolean): void {
    // Read only the bytes the mark describes; bytes appended later belong
    // to the next run.
    const fileStream = opened.body(resume?.offset ?? 0, size);
    const trail = resume?.trail ?? new ByteTrail();
    const parser = new (this.columnar ? ColumnarParser : LocatedParser)(
      this.config.options,
      (s) => this.onSkipped(file, s),
      resume !== undefined ? { firstLine: resume.firstLine } : undefined,
      { trail, final },
    );
    this.fileStream = fileStream;
    this.parser = parser;
    this.trail = trail;
    fileStream.on('error', (err) => this.destroy(this.source.error(err, file)));
    parser.on('error', (err) => this.destroy(this.source.error(err, file)));
    parser.on('readable', () => this.pump());
    parser.on('end', () => {
      if (this.parser === parser) this.advance(true);
    });
    fileStream.pipe(parser);
  }

  /** Push the packed batch being filled, if any (before a reject, at the end of a file). */
  private flushPacked(): void {
    const batch = this.packer?.take(this.current?.label ?? '');
    if (batch !== undefined && !this.destroyed) this.wanted = this.push(batch);
  }

  private async finishFile(): Promise<void> {
    this.flushPacked();
    this.packer = undefined;
    const file = this.current;
    const { trail, parser } = this;
    if (this.header === undefined && file !== undefined && parser?.heldTail !== true) {
      this.ctx.log.warn({ file: file.label }, `${this.connector}: file has no header line; nothing read`);
    }
    const mark = file === undefined ? undefined : this.seen[file.key];
    // Only a read that got every byte of the stat may vouch for them (a file
    // truncated while read gives fewer). The mark covers the finished
    // records: an unfinished last one held back is read by the next run.
    if (file !== undefined && mark !== undefined && trail !== undefined && parser !== undefined && trail.fed === mark.size) {
      this.seen[file.key] = {
        ...mark,
        size: trail.bytes,
        sha256: trail.digest(),
        lines: trail.lines,
        endsWithNewline: trail.endsWithBreak,
        endsInQuote: parser.endsInQuote,
      };
      if (parser.heldTail) {
        this.ctx.log.info(
          { event_type: 'csv_tail_held', file: file.label, taken_bytes: trail.bytes, size: mark.size, settle_seconds: this.config.options.settleSeconds },
          `${this.connector}: the last record of ${file.label} is not finished yet (the file changed less than ${this.config.options.settleSeconds} s ago); the next run reads it`,
        );
      }
    }
    await this.closeFile();
  }

  /**
   * Stop parsing and close the current file; resolves once what the source
   * opened for it is closed (a local file's descriptor, a download's connection).
   */
  private async closeFile(): Promise<void> {
    const { parser, fileStream, opened } = this;
    this.parser = undefined;
    this.fileStream = undefined;
    this.opened = undefined;
    this.trail = undefined;
    fileStream?.unpipe();
    parser?.destroy();
    await opened?.close().catch(() => undefined);
  }

  private onSkipped(file: F, s: SkippedRecord): void {
    if (!s.recoverable) {
      this.destroy(
        new DativoError(
          'SOURCE_FORMAT',
          `${this.connector}: the record at line ${s.line} of ${file.label} is longer than max_record_size (${this.config.options.maxRecordChars} characters); ` +
            'the rest of the file cannot be read (an unclosed quote? else raise max_record_size)',
          { context: { connector: this.connector, file: file.label, line: s.line }, disposition: 'fatal' },
        ),
      );
      return;
    }
    if (s.isFirst) {
      // Without its header a file has no meaning: fail rather than guess.
      this.destroy(
        new DativoError('SOURCE_FORMAT', `${this.connector}: the header line of ${file.label} cannot be parsed: ${s.message}`, {
          context: { connector: this.connector, file: file.label, line: s.line },
          disposition: 'fatal',
        }),
      );
      return;
    }
    const code = s.parserCode.includes('QUOTE') ? 'csv_quote' : s.parserCode.includes('INCONSISTENT') ? 'column_count' : 'csv_format';
    this.flushPacked();
    this.ctx.rejects.reject({
      code,
      reason: s.message,
      record: recordBody(s.raw),
      location: { file: file.label, line: s.line },
    });
  }

  /**
   * The columnar path: the header from the first record, then the batch's
   * records in runs of well-formed ones as {@link ColumnarText}, each run
   * pushed before the reject that ends it (the same checks and rejects as
   * {@link toRow}).
   */
  private takeBytes(b: ParsedBytes): void {
    const file = this.current!;
    const { bytes, firstField, badUtf8 } = b;
    const quote = this.config.options.quote;
    const text = (k: number): string => {
      const v = bytes.toString('utf8', b.start[k]!, b.end[k]!);
      return (b.flags[k]! & FIELD_ESCAPED) !== 0 ? v.replaceAll(quote + quote, quote) : v;
    };
    let r = 0;
    if (this.header === undefined) {
      if (b.count === 0) return;
      const fields: string[] = [];
      for (let k = firstField[0]!; k < firstField[1]!; k++) fields.push(text(k));
      this.setHeader(fields, b.line[0]!, badUtf8[0] === 1);
      r = 1;
    }
    const w = this.header!.length;
    let run = r;
    const flush = (to: number): void => {
      if (to > run && !this.destroyed) {
        const fa = firstField[run]!;
        const fb = firstField[to]!;
        const batch: ColumnarText = columnarText({
          columns: this.header!,
          rows: to - run,
          bytes,
          start: b.start.subarray(fa, fb),
          end: b.end.subarray(fa, fb),
          flags: b.flags.subarray(fa, fb),
          quote,
          file: file.label,
          lines: b.line.subarray(run, to),
        });
        this.wanted = this.push(batch);
      }
    };
    for (; r < b.count; r++) {
      const nf = firstField[r + 1]! - firstField[r]!;
      if (badUtf8[r] === 0 && nf === w) continue;
      flush(r);
      run = r + 1;
      const raw = recordBody(bytes.toString('utf8', b.rawStart[r]!, b.rawEnd[r]!));
      const location = { file: file.label, line: b.line[r]! };
      if (badUtf8[r] === 1) this.ctx.rejects.reject({ code: 'utf8', reason: `invalid UTF-8 at line ${b.line[r]!}`, record: raw, location });
      else this.ctx.rejects.reject({ code: 'column_count', reason: `expected ${w} fields (as in the header), got ${nf}`, record: raw, location });
    }
    flush(b.count);
  }

  /** The first record of a file is its header: checked, and the records after it are made for it. */
  private setHeader(fields: readonly string[], line: number, badUtf8: boolean): void {
    const file = this.current!;
    if (badUtf8) {
      throw new DativoError('SOURCE_FORMAT', `${this.connector}: the header line of ${file.label} is not valid UTF-8`, {
        context: { connector: this.connector, file: file.label, line },
        disposition: 'fatal',
      });
    }
    const names = fields.slice();
    if (names[0] !== undefined) names[0] = names[0].replace(/^\uFEFF/, '');
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) {
      // Two columns of one name would silently overwrite each other.
      throw new DativoError('SOURCE_FORMAT', `${this.connector}: the header of ${file.label} names column ${JSON.stringify(dup)} twice`, {
        context: { connector: this.connector, file: file.label, line, column: dup },
        disposition: 'fatal',
      });
    }
    const asset = this.ctx.plan.asset;
    const missing = asset.fields.filter((f) => f.required && !names.includes(f.name)).map((f) => f.name);
    if (missing.length > 0) {
      // Every record would be refused as `required`: the file, not a record, is at fault (in warn mode too).
      throw new DativoError(
        'SOURCE_FORMAT',
        `${this.connector}: the header of ${file.label} lacks the required column${missing.length > 1 ? 's' : ''} ${missing.map((m) => JSON.stringify(m)).join(', ')} of asset ${asset.name}: the file fails before any row`,
        { context: { connector: this.connector, file: file.label, line, columns: missing }, disposition: 'fatal' },
      );
    }
    this.header = names;
    this.makeRow = csvRowFactory(names);
    const packed = this.ctx.packedRecords;
    this.packer = packed === undefined || this.columnar ? undefined : new RecordPacker(names, Math.max(1, packed.batchRows));
  }

  private toRow(rec: CsvRecord): Row | PackedRecords | undefined {
    const file = this.current!;
    const fields = rec.fields;
    if (this.header === undefined) {
      this.setHeader(fields, rec.line, rec.badUtf8);
      return undefined;
    }
    const header = this.header;
    if (rec.badUtf8) {
      this.flushPacked();
      this.ctx.rejects.reject({
        code: 'utf8',
        reason: `invalid UTF-8 at line ${rec.line}`,
        record: recordBody(rec.raw),
        location: { file: file.label, line: rec.line },
      });
      return undefined;
    }
    if (fields.length !== header.length) {
      this.flushPacked();
      this.ctx.rejects.reject({
        code: 'column_count',
        reason: `expected ${header.length} fields (as in the header), got ${fields.length}`,
        record: recordBody(rec.raw),
        location: { file: file.label, line: rec.line },
      });
      return undefined;
    }
    const packer = this.packer;
    if (packer !== undefined) {
      packer.addCsv(fields, rec.quoted ?? NO_QUOTED, rec.line);
      return packer.full ? packer.take(file.label) : undefined;
    }
    return this.makeRow!(fields, rec.quoted ?? NO_QUOTED, file.label, rec.line);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    const opening = this.opening;
    const release = async (): Promise<void> => {
      await opening?.catch(() => undefined);
      await this.closeFile();
    };
    release().then(
      () => callback(err),
      () => callback(err),
    );
  }
}

/**
 * The first record of a file (its header), parsed from `chunks` (bytes from
 * the start of the file; see {@link OpenCsvFile.head}). `skipped` when the
 * header itself cannot be parsed; `undefined` when the bytes hold no record.
 */
async function readFirstRecord(
  chunks: AsyncIterable<Buffer>,
  options: CsvOptions,
): Promise<{ record: CsvRecord; skipped?: undefined } | { skipped: SkippedRecord } | undefined> {
  let skipped: SkippedRecord | undefined;
  const parser = new LocatedParser(options, (s) => {
    if (s.isFirst) skipped ??= s;
  });
  const source = Readable.from(chunks, { objectMode: false });
  const sourceClosed = once(source, 'close');
  try {
    source.pipe(parser);
    for await (const rec of parser) {
      return skipped !== undefined ? { skipped } : { record: rec as CsvRecord };
    }
    return skipped !== undefined ? { skipped } : undefined;
  } finally {
    source.unpipe();
    parser.destroy();
    source.destroy();
    // The chunks' iterator returns only after its read in flight: what it
    // read from is not used once this resolves.
    await sourceClosed.catch(() => undefined);
  }
}
