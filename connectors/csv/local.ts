/**
 * Local files as a {@link CsvFileSource}: the object's `source.files`
 * entries (paths and globs, `files.ts`), each opened as a FileHandle whose
 * stat is the mark, read with positioned reads and a read stream.
 */
import { once } from 'node:events';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { DativoError, isDativoError } from '../../lib/errors.js';
import type { SourceObjectSpec } from '../../lib/plan.js';
import { fileEntries, fileMark, resolveFiles, type ResolvedFile } from './files.js';
import { hashPrefix } from './resume.js';
import type { CsvFileSource, OpenCsvFile } from './stream.js';

/** A local file of an object. */
export interface LocalCsvFile extends ResolvedFile {
  readonly label: string;
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

/** The local files of one object (relative paths against `baseDir`). */
export class LocalCsvFiles implements CsvFileSource<LocalCsvFile> {
  readonly connector = 'csv';

  constructor(
    private readonly object: SourceObjectSpec,
    private readonly baseDir: string,
  ) {}

  async list(): Promise<LocalCsvFile[]> {
    const files = await resolveFiles(fileEntries(this.object), this.baseDir);
    return files.map((f) => ({ ...f, label: f.path }));
  }

  async open(file: LocalCsvFile): Promise<OpenCsvFile> {
    const handle = await open(file.path, 'r');
    try {
      return new OpenLocalFile(handle, fileMark(await handle.stat({ bigint: true })));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  error(err: unknown, file: LocalCsvFile | undefined): DativoError {
    return fileError(err, file?.path ?? '');
  }
}

class OpenLocalFile implements OpenCsvFile {
  private stream: Readable | undefined;

  constructor(
    private readonly handle: FileHandle,
    readonly mark: ReturnType<typeof fileMark>,
  ) {}

  async prefix(size: number, cancelled: () => boolean): ReturnType<OpenCsvFile['prefix']> {
    const trail = await hashPrefix(this.handle, size, cancelled);
    if (trail === undefined) return undefined;
    const next = Buffer.alloc(1);
    const { bytesRead } = await this.handle.read(next, 0, 1, size);
    return { trail, next: bytesRead === 0 ? undefined : next[0]! };
  }

  /** Positioned reads, so the handle stays open for the read that follows (a file read stream would close it when stopped early). */
  async *head(end: number): AsyncGenerator<Buffer> {
    for (let pos = 0; pos < end; ) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, end - pos));
      const { bytesRead } = await this.handle.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }

  body(start: number, end: number): Readable {
    this.stream = this.handle.createReadStream({ start, end: end - 1, autoClose: false, highWaterMark: 64 * 1024 });
    return this.stream;
  }

  /**
   * Close the handle, then wait for the read stream's close, which follows
   * the descriptor's. Not `stream.destroy()` first: the handle would then
   * report closed while the descriptor's close is still in flight.
   */
  async close(): Promise<void> {
    const stream = this.stream;
    const streamClosed = stream !== undefined && !stream.closed ? once(stream, 'close') : undefined;
    await this.handle.close().catch(() => undefined);
    await streamClosed?.catch(() => undefined);
  }
}
