/**
 * The CSV source stream: files of one object, one after the other, as an
 * object-mode Readable of records. A thin adapter around `files.ts` and
 * `parse.ts`: it opens one file at a time, pulls records from the parser only
 * when its consumer asks (`_read`), and closes the file in `_destroy`.
 */
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { Readable, type Readable as ReadableType } from 'node:stream';
import type { ReadContext } from '../../lib/connector.js';
import { DativoError, isDativoError } from '../../lib/errors.js';
import { withLocation } from '../../lib/records/location.js';
import type { FileMark, ObjectState, Row } from '../../lib/types.js';
import { fileEntries, fileMark, resolveFiles, type ResolvedFile } from './files.js';
import type { CsvOptions } from './options.js';
import { LocatedParser, quotedFields, recordBody, type CsvRecord, type SkippedRecord } from './parse.js';
import { ByteTrail, continueAt, hashPrefix, isSettled, planFileRead, prefixChanged, rewrittenError } from './resume.js';

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

/** Map a file-system error on a source file to our error model. */
export function fileError(err: unknown, file: string): DativoError {
  if (isDativoError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const msg = (err as Error).message;
  const context = { connector: 'csv', file, ...(code ? { syscallCode: code } : {}) };
  if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
    return new DativoError('SOURCE_NOT_FOUND', `csv: cannot read ${file}: ${msg}`, { cause: err, context });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new DativoError('SOURCE_ERROR', `csv: no permission to read ${file}: ${msg}`, {
      cause: err,
      context,
      disposition: 'fatal',
    });
  }
  if (err instanceof Error && (err.name === 'AbortError' || code === 'ABORT_ERR')) {
    return new DativoError('ABORTED', 'csv: read aborted', { cause: err, context });
  }
  return new DativoError('SOURCE_ERROR', `csv: reading ${file} failed: ${msg}`, { cause: err, context });
}

/** What the stream needs besides the read context. */
export interface CsvStreamConfig {
  options: CsvOptions;
  /** Relative paths resolve against this directory. */
  baseDir: string;
  /**
   * Incremental: skip files whose size and mtime match the saved state, and
   * resume grown files after the bytes already read (see `resume.ts`).
   */
  skipUnchanged: boolean;
}

/** The stream returned by the CSV connector's `read()`. */
export class CsvSourceStream extends Readable {
  private files: ResolvedFile[] = [];
  private next = 0;
  private readonly seen: Record<string, FileMark> = {};

  private current: ResolvedFile | undefined;
  private handle: FileHandle | undefined;
  private fileStream: ReadableType | undefined;
  private parser: LocatedParser | undefined;
  /** Hash and line count of the current file's bytes, from its first byte. */
  private trail: ByteTrail | undefined;
  private header: string[] | undefined;
  private opening: Promise<void> | undefined;
  private wanted = false;
  private pumping = false;
  /** Every file is done and the end was pushed. */
  private ended = false;
  private readonly onAbort = (): void => {
    this.destroy(new DativoError('ABORTED', 'csv: read aborted', { context: { connector: 'csv', object: this.ctx.object.name } }));
  };

  constructor(
    private readonly ctx: ReadContext,
    private readonly config: CsvStreamConfig,
  ) {
    super({ objectMode: true, highWaterMark: config.options.chunkSize });
  }

  /** Files this run saw (read or skipped as unchanged), for the object's state. */
  checkpoint(): Partial<ObjectState> {
    return { files: { ...this.seen } };
  }

  override _construct(callback: (err?: Error | null) => void): void {
    if (this.ctx.signal.aborted) {
      callback(new DativoError('ABORTED', 'csv: read aborted', { context: { connector: 'csv' } }));
      return;
    }
    this.ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    Promise.resolve()
      .then(() => resolveFiles(fileEntries(this.ctx.object), this.config.baseDir))
      .then(
        (files) => {
          this.files = files;
          callback();
        },
        (err: unknown) => callback(fileError(err, '')),
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
        const rec = parser.read() as CsvRecord | null;
        if (rec === null) return; // 'readable' or 'end' brings us back
        const row = this.toRow(rec);
        if (row !== undefined) this.wanted = this.push(row);
      }
    } catch (err) {
      this.destroy(fileError(err, this.current?.path ?? ''));
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
    const path = this.current?.path ?? '';
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
        this.destroy(fileError(err, this.current?.path ?? path));
      },
    );
  }

  /** Open the next file that needs reading, or end the stream. */
  private async openFile(): Promise<void> {
    while (this.next < this.files.length) {
      const file = this.files[this.next++]!;
      this.current = file;
      this.header = undefined;
      const handle = await open(file.path, 'r');
      if (this.destroyed) {
        await handle.close();
        return;
      }
      this.handle = handle;
      // The stat of the open file, taken before reading: the mark we save
      // describes what we read even if a writer appends meanwhile.
      const mark = fileMark(await handle.stat({ bigint: true }));
      if (this.destroyed) return; // _destroy closes the handle
      const size = mark.size ?? 0;
      const saved = this.ctx.state?.files?.[file.key];
      this.seen[file.key] = mark;
      const plan = planFileRead(saved, mark, this.config.skipUnchanged);
      let skip = plan.kind === 'skip' || (plan.kind === 'whole' && size === 0);
      let rewritten = plan.kind === 'rewritten' ? plan.reason : undefined;
      let resume: Resume | undefined;
      if (plan.kind === 'verify') {
        const prefix = await hashPrefix(handle, plan.prefix, () => this.destroyed);
        if (this.destroyed) return;
        if (prefix === undefined || prefix.digest() !== plan.hash) rewritten = prefixChanged(plan.prefix);
        else if (!plan.grew) skip = true; // only the mtime changed: the same bytes
        else {
          const found = await this.resumeAfter(file, handle, saved!, prefix);
          if (this.destroyed) return;
          if (typeof found === 'string') rewritten = found;
          else resume = found; // undefined: no header in the bytes taken before, so no row came from them
        }
      }
      if (rewritten !== undefined) {
        // Rows came from this file; reading it again would write them twice.
        throw rewrittenError({ connector: 'csv', file: file.path, object: this.ctx.object.name, reason: rewritten });
      }
      if (skip) {
        // Keep the hash and line count of the unchanged bytes for later runs.
        if (saved !== undefined && size !== 0) this.seen[file.key] = { ...saved, ...mark };
        if (size !== 0) this.ctx.log.debug({ file: file.path }, 'csv: unchanged since last run, skipped');
        this.handle = undefined;
        await handle.close();
        continue;
      }
      // Settled at the stat: its writer is done, so its last line is whole.
      const final = isSettled(mark.modifiedAt, Date.now(), this.config.options.settleSeconds * 1000);
      this.startParsing(file, handle, size, resume, final);
      return;
    }
    this.current = undefined;
    this.ended = true;
    this.push(null);
  }

  /**
   * Prepare to continue a file after the `prefix` bytes taken before (the
   * hash says they are unchanged): check the byte after them can start new
   * records, read the header from the start and take it. `undefined` when
   * the earlier bytes hold no header (then nothing came from them: read the
   * file whole); a reason when the file cannot be continued.
   */
  private async resumeAfter(file: ResolvedFile, handle: FileHandle, saved: FileMark, prefix: ByteTrail): Promise<Resume | string | undefined> {
    const offset = prefix.bytes;
    const next = Buffer.alloc(1);
    const { bytesRead } = await handle.read(next, 0, 1, offset);
    if (bytesRead === 0) return 'it shrank while being read';
    const at = continueAt(saved, prefix, next[0]!);
    if ('rewritten' in at) return at.rewritten;
    const first = await readFirstRecord(handle, offset, this.config.options);
    if (first === undefined || this.destroyed) return undefined;
    if (first.skipped !== undefined) {
      this.onSkipped(file, first.skipped);
      return undefined;
    }
    this.toRow(first.record); // sets this.header, or throws as on a whole read
    return { offset, trail: prefix, firstLine: at.firstLine };
  }

  private startParsing(file: ResolvedFile, handle: FileHandle, size: number, resume: Resume | undefined, final: boolean): void {
    // Read only the bytes the mark describes; bytes appended later belong
    // to the next run.
    const fileStream = handle.createReadStream({ start: resume?.offset ?? 0, end: size - 1, autoClose: false, highWaterMark: 64 * 1024 });
    const trail = resume?.trail ?? new ByteTrail();
    const parser = new LocatedParser(
      this.config.options,
      (s) => this.onSkipped(file, s),
      resume !== undefined ? { firstLine: resume.firstLine } : undefined,
      { trail, final },
    );
    this.fileStream = fileStream;
    this.parser = parser;
    this.trail = trail;
    fileStream.on('error', (err) => this.destroy(fileError(err, file.path)));
    parser.on('error', (err) => this.destroy(fileError(err, file.path)));
    parser.on('readable', () => this.pump());
    parser.on('end', () => {
      if (this.parser === parser) this.advance(true);
    });
    fileStream.pipe(parser);
  }

  private async finishFile(): Promise<void> {
    const file = this.current;
    const { trail, parser } = this;
    if (this.header === undefined && file !== undefined && parser?.heldTail !== true) {
      this.ctx.log.warn({ file: file.path }, 'csv: file has no header line; nothing read');
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
          { event_type: 'csv_tail_held', file: file.path, taken_bytes: trail.bytes, size: mark.size, settle_seconds: this.config.options.settleSeconds },
          `csv: the last record of ${file.path} is not finished yet (the file changed less than ${this.config.options.settleSeconds} s ago); the next run reads it`,
        );
      }
    }
    await this.closeFile();
  }

  /**
   * Stop parsing and close the current file; resolves once the descriptor is
   * really closed. Closing the FileHandle makes its read stream close too
   * (after any read in flight); the stream's 'close' comes after the
   * descriptor's. Not `fileStream.destroy()` first: the handle would then
   * report closed while the descriptor's close is still in flight.
   */
  private async closeFile(): Promise<void> {
    const { parser, fileStream, handle } = this;
    this.parser = undefined;
    this.fileStream = undefined;
    this.handle = undefined;
    this.trail = undefined;
    fileStream?.unpipe();
    parser?.destroy();
    const streamClosed = fileStream !== undefined && !fileStream.closed ? once(fileStream, 'close') : undefined;
    await handle?.close().catch(() => undefined);
    await streamClosed?.catch(() => undefined);
  }

  private onSkipped(file: ResolvedFile, s: SkippedRecord): void {
    if (!s.recoverable) {
      this.destroy(
        new DativoError(
          'SOURCE_FORMAT',
          `csv: the record at line ${s.line} of ${file.path} is longer than max_record_size (${this.config.options.maxRecordChars} characters); ` +
            'the rest of the file cannot be read (an unclosed quote? else raise max_record_size)',
          { context: { connector: 'csv', file: file.path, line: s.line }, disposition: 'fatal' },
        ),
      );
      return;
    }
    if (s.isFirst) {
      // Without its header a file has no meaning: fail rather than guess.
      this.destroy(
        new DativoError('SOURCE_FORMAT', `csv: the header line of ${file.path} cannot be parsed: ${s.message}`, {
          context: { connector: 'csv', file: file.path, line: s.line },
          disposition: 'fatal',
        }),
      );
      return;
    }
    const code = s.parserCode.includes('QUOTE') ? 'csv_quote' : s.parserCode.includes('INCONSISTENT') ? 'column_count' : 'csv_format';
    this.ctx.rejects.reject({
      code,
      reason: s.message,
      record: recordBody(s.raw),
      location: { file: file.path, line: s.line },
    });
  }

  private toRow(rec: CsvRecord): Row | undefined {
    const file = this.current!;
    const fields = rec.fields;
    if (this.header === undefined) {
      if (rec.badUtf8) {
        throw new DativoError('SOURCE_FORMAT', `csv: the header line of ${file.path} is not valid UTF-8`, {
          context: { connector: 'csv', file: file.path, line: rec.line },
          disposition: 'fatal',
        });
      }
      const names = fields.slice();
      if (names[0] !== undefined) names[0] = names[0].replace(/^\uFEFF/, '');
      const dup = names.find((n, i) => names.indexOf(n) !== i);
      if (dup !== undefined) {
        // Two columns of one name would silently overwrite each other.
        throw new DativoError('SOURCE_FORMAT', `csv: the header of ${file.path} names column ${JSON.stringify(dup)} twice`, {
          context: { connector: 'csv', file: file.path, line: rec.line, column: dup },
          disposition: 'fatal',
        });
      }
      this.header = names;
      return undefined;
    }
    const header = this.header;
    if (rec.badUtf8) {
      this.ctx.rejects.reject({
        code: 'utf8',
        reason: `invalid UTF-8 at line ${rec.line}`,
        record: recordBody(rec.raw),
        location: { file: file.path, line: rec.line },
      });
      return undefined;
    }
    if (fields.length !== header.length) {
      this.ctx.rejects.reject({
        code: 'column_count',
        reason: `expected ${header.length} fields (as in the header), got ${fields.length}`,
        record: recordBody(rec.raw),
        location: { file: file.path, line: rec.line },
      });
      return undefined;
    }
    const { delimiter, quote } = this.config.options;
    let quoted: readonly boolean[] | undefined;
    const row: Row = {};
    for (let i = 0; i < header.length; i++) {
      const v = fields[i]!;
      if (v === '') {
        // Unquoted empty → NULL, quoted "" → empty string: the only way a
        // CSV file can tell them apart.
        quoted ??= rec.raw.includes(quote + quote) ? quotedFields(rec.raw, delimiter, quote) : NO_QUOTED;
        row[header[i]!] = quoted[i] === true ? '' : null;
      } else {
        row[header[i]!] = v;
      }
    }
    return withLocation(row, { file: file.path, line: rec.line } satisfies CsvLocation);
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
 * The first record of a file (its header), parsed from bytes [0, `size`) of
 * an open handle. Reads through
 * `handle.read` so the handle stays open for the read that follows (a file
 * read stream would close it when stopped early). `skipped` when the header
 * itself cannot be parsed; `undefined` when the bytes hold no record.
 */
async function readFirstRecord(
  handle: FileHandle,
  size: number,
  options: CsvOptions,
): Promise<{ record: CsvRecord; skipped?: undefined } | { skipped: SkippedRecord } | undefined> {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let pos = 0; pos < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, size - pos));
      const { bytesRead } = await handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }
  let skipped: SkippedRecord | undefined;
  const parser = new LocatedParser(options, (s) => {
    if (s.isFirst) skipped ??= s;
  });
  const source = Readable.from(chunks(), { objectMode: false });
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
    // The generator returns only after its read in flight: the handle is
    // not used once this resolves.
    await sourceClosed.catch(() => undefined);
  }
}
