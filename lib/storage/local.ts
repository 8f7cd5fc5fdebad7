/**
 * Local-disk storage (`file:///abs/root`). Every write goes to a hidden temp
 * file in the destination directory and is renamed into place only after an
 * fsync, so a reader (or a crashed run) never sees a half-written object at
 * its final path.
 */
import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DativoError, isDativoError } from '../errors.js';
import type { Storage, StoredObject, WriteHandle, WriteOptions } from './types.js';

/** Suffix of temp files; such files are never listed as objects. */
export const IN_PROGRESS_SUFFIX = '.inprogress';

/** Node error codes that mean "this location cannot be written", not "try again". */
const NOT_WRITABLE_CODES = new Set(['EACCES', 'EROFS', 'EPERM', 'ENOTDIR']);

/**
 * Map a Node fs error to a DativoError: EACCES/EROFS/EPERM/ENOTDIR →
 * STORAGE_NOT_WRITABLE (fatal), ENOENT on a read → SOURCE_NOT_FOUND,
 * anything else → STORAGE_IO (retryable).
 */
export function fsError(err: unknown, op: string, path: string): DativoError {
  if (isDativoError(err)) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const context = { path, op, ...(code !== undefined ? { syscallCode: code } : {}) };
  if (code !== undefined && NOT_WRITABLE_CODES.has(code)) {
    return new DativoError('STORAGE_NOT_WRITABLE', `cannot write ${path}: ${message}`, { cause: err, context });
  }
  if (code === 'ENOENT' && op === 'read') {
    return new DativoError('SOURCE_NOT_FOUND', `no such object: ${path}`, { cause: err, context });
  }
  return new DativoError('STORAGE_IO', `${op} ${path} failed: ${message}`, { cause: err, context });
}

function isCode(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}

/** Fsync a directory so that a rename inside it survives a power loss. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
    if (!isCode(err, 'EINVAL') && !isCode(err, 'EISDIR') && !isCode(err, 'EPERM')) throw err;
  } finally {
    await fh?.close();
  }
}

/** mkdir -p; a file in the way (EEXIST from a recursive mkdir) means "not a writable directory". */
/**
 * `mkdir -p` that fails with the real reason. Node's recursive mkdir answers
 * ENOENT when a missing folder cannot be created on a read-only file system
 * (Node 20, measured: a plain mkdir there says EROFS), which reads as "try
 * again" instead of "cannot write"; on ENOENT the missing folders are made
 * one by one, so that the error is the file system's own (EROFS, EACCES...).
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    return;
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err;
  }
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const exists = await stat(d).then(
      () => true,
      () => false,
    );
    if (exists) break;
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (err) {
      if (!isCode(err, 'EEXIST')) throw err;
    }
  }
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await makeDirs(dir);
  } catch (err) {
    if (isCode(err, 'EEXIST')) {
      throw new DativoError('STORAGE_NOT_WRITABLE', `cannot write ${dir}: a path component is not a directory`, {
        cause: err,
        context: { path: dir, op: 'mkdir', syscallCode: 'EEXIST' },
      });
    }
    throw err;
  }
}

function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.${randomUUID()}${IN_PROGRESS_SUFFIX}`);
}

async function writeFully(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.byteLength) {
    const { bytesWritten } = await fh.write(buf, off, buf.byteLength - off);
    off += bytesWritten;
  }
}

/** Writable over a temp file: opens in `_construct`, fsyncs and closes in `_final`. */
class TempFileWritable extends Writable {
  private fh: FileHandle | undefined;
  bytes = 0;

  constructor(
    readonly tempPath: string,
    private readonly finalPath: string,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    ensureDir(dirname(this.tempPath))
      .then(() => open(this.tempPath, 'wx'))
      .then(
        (fh) => {
          this.fh = fh;
          callback();
        },
        (err: unknown) => callback(fsError(err, 'create', this.finalPath)),
      );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeChunk(chunk, callback);
  }

  private writeChunk(chunk: Buffer, callback: (error?: Error | null) => void): void {
    writeFully(this.fh!, chunk).then(
      () => {
        this.bytes += chunk.byteLength;
        callback();
      },
      (err: unknown) => callback(fsError(err, 'write', this.finalPath)),
    );
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buf = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.writeChunk(buf, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const fh = this.fh!;
    fh.sync()
      .then(() => fh.close())
      .then(
        () => {
          this.fh = undefined;
          callback();
        },
        (err: unknown) => callback(fsError(err, 'fsync', this.finalPath)),
      );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fh = this.fh;
    this.fh = undefined;
    if (fh === undefined) {
      callback(error);
      return;
    }
    fh.close().then(
      () => callback(error),
      () => callback(error),
    );
  }
}

function waitFinished(stream: Writable): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (stream.writableFinished) {
      resolvePromise();
      return;
    }
    const onFinish = (): void => {
      cleanup();
      resolvePromise();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (stream.writableFinished) resolvePromise();
      else reject(stream.errored ?? new DativoError('ABORTED', 'write stream closed before it finished'));
    };
    const cleanup = (): void => {
      stream.off('finish', onFinish);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    stream.on('finish', onFinish);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

class LocalWriteHandle implements WriteHandle {
  readonly stream: TempFileWritable;
  /** `_write` is done with a chunk when it calls back; `_writev` concatenates (a copy). */
  readonly chunkDoneAtCallback = true;
  private state: 'open' | 'done' | 'aborted' = 'open';
  private donePromise: Promise<{ uri: string; size: number }> | undefined;
  private abortPromise: Promise<void> | undefined;
  private readonly onAbort: (() => void) | undefined;

  constructor(
    private readonly finalPath: string,
    private readonly finalUri: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.stream = new TempFileWritable(tempPathFor(finalPath), finalPath);
    // Nobody may be listening yet; the error is surfaced through done().
    this.stream.on('error', () => {});
    if (signal !== undefined) {
      this.onAbort = () => void this.abort(signal.reason);
      if (signal.aborted) queueMicrotask(this.onAbort);
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  done(): Promise<{ uri: string; size: number }> {
    this.donePromise ??= this.finish();
    return this.donePromise;
  }

  private async finish(): Promise<{ uri: string; size: number }> {
    if (this.state === 'aborted') throw new DativoError('ABORTED', 'write was aborted', { context: { path: this.finalPath } });
    try {
      if (!this.stream.writableEnded) this.stream.end();
      await waitFinished(this.stream);
      if (this.state !== 'open') throw new DativoError('ABORTED', 'write was aborted', { context: { path: this.finalPath } });
      await rename(this.stream.tempPath, this.finalPath).catch((err: unknown) => {
        throw fsError(err, 'rename', this.finalPath);
      });
      this.state = 'done';
      this.detachSignal();
      await fsyncDir(dirname(this.finalPath)).catch((err: unknown) => {
        throw fsError(err, 'fsync', dirname(this.finalPath));
      });
      return { uri: this.finalUri, size: this.stream.bytes };
    } catch (err) {
      if (this.state === 'open') await this.drop(err);
      throw fsError(err, 'write', this.finalPath);
    }
  }

  async abort(reason?: unknown): Promise<void> {
    if (this.state === 'done') return;
    if (this.donePromise !== undefined && this.state === 'open') {
      // A done() in flight either lands (then there is nothing to drop) or drops the file itself.
      await this.donePromise.catch(() => {});
      if (this.landed()) return;
    }
    await this.drop(reason);
  }

  /** Re-reads the state after an await (a method call defeats TS's stale narrowing). */
  private landed(): boolean {
    return this.state === 'done';
  }

  private drop(reason: unknown): Promise<void> {
    this.abortPromise ??= (async () => {
      this.state = 'aborted';
      this.detachSignal();
      if (!this.stream.destroyed) {
        const closed = new Promise<void>((r) => this.stream.once('close', () => r()));
        this.stream.destroy(reason instanceof Error ? reason : undefined);
        await closed;
      }
      await unlink(this.stream.tempPath).catch((err: unknown) => {
        // ENOTDIR: the directory never existed, so neither did the temp file.
        if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTDIR')) throw fsError(err, 'delete', this.stream.tempPath);
      });
    })();
    return this.abortPromise;
  }

  private detachSignal(): void {
    if (this.onAbort !== undefined) this.signal?.removeEventListener('abort', this.onAbort);
  }
}

/**
 * {@link Storage} on the local file system. `root` is `file:///abs/path`
 * (a plain absolute path is accepted too). Object metadata and content types
 * are ignored on disk.
 */
export class LocalStorage implements Storage {
  readonly root: string;
  /** Absolute directory of the root. */
  readonly rootDir: string;

  constructor(root: string) {
    this.rootDir = resolve(root.startsWith('file:') ? fileURLToPath(root) : root);
    this.root = pathToFileURL(this.rootDir).href;
  }

  /** Absolute path of a relative path; refuses paths that escape the root. */
  path(relativePath: string): string {
    const abs = resolve(this.rootDir, relativePath);
    const rel = relative(this.rootDir, abs);
    if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel) || isAbsolute(relativePath)) {
      throw new DativoError('INTERNAL', `path escapes the storage root: ${relativePath}`, {
        context: { path: relativePath, root: this.root },
      });
    }
    return abs;
  }

  uri(relativePath: string): string {
    return pathToFileURL(this.path(relativePath)).href;
  }

  createWriteStream(relativePath: string, options: WriteOptions = {}): WriteHandle {
    const finalPath = this.path(relativePath);
    return new LocalWriteHandle(finalPath, pathToFileURL(finalPath).href, options.signal);
  }

  async writeAtomic(
    relativePath: string,
    data: Uint8Array | string,
    options: WriteOptions & { ifNotExists?: boolean } = {},
  ): Promise<void> {
    const finalPath = this.path(relativePath);
    const dir = dirname(finalPath);
    const temp = tempPathFor(finalPath);
    let fh: FileHandle | undefined;
    try {
      options.signal?.throwIfAborted();
      await ensureDir(dir);
      fh = await open(temp, 'wx');
      await writeFully(fh, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      await fh.sync();
      await fh.close();
      fh = undefined;
      options.signal?.throwIfAborted();
      if (options.ifNotExists === true) {
        // link() fails with EEXIST if the name is taken: of two racing writers exactly one wins.
        try {
          await link(temp, finalPath);
        } catch (err) {
          if (isCode(err, 'EEXIST')) {
            throw new DativoError('STORAGE_IO', `object already exists: ${finalPath}`, {
              cause: err,
              disposition: 'fatal',
              context: { path: finalPath, exists: true },
            });
          }
          throw err;
        }
        await unlink(temp);
      } else {
        await rename(temp, finalPath);
      }
      await fsyncDir(dir);
    } catch (err) {
      await fh?.close().catch(() => {});
      await unlink(temp).catch(() => {});
      throw fsError(err, 'write', finalPath);
    }
  }

  async read(relativePath: string): Promise<Buffer> {
    const p = this.path(relativePath);
    try {
      return await readFile(p);
    } catch (err) {
      throw fsError(err, 'read', p);
    }
  }

  async exists(relativePath: string): Promise<boolean> {
    const p = this.path(relativePath);
    try {
      return (await stat(p)).isFile();
    } catch (err) {
      if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return false;
      throw fsError(err, 'stat', p);
    }
  }

  /**
   * Every object whose relative path starts with `prefix` (S3 semantics:
   * `a/b` matches `a/b/c` and `a/bc`), sorted, with `/` separators.
   * In-progress temp files are not objects and are skipped.
   */
  async list(prefix: string): Promise<string[]> {
    return (await this.walk(prefix, false)).map((o) => o.path);
  }

  /** {@link Storage.listDetailed}: like {@link list}, with size and mtime; `inProgress` adds temp files. */
  async listDetailed(prefix: string, options: { inProgress?: boolean } = {}): Promise<StoredObject[]> {
    return this.walk(prefix, options.inProgress === true);
  }

  private async walk(prefix: string, inProgress: boolean): Promise<StoredObject[]> {
    const slash = prefix.lastIndexOf('/');
    const start = slash < 0 ? this.rootDir : this.path(prefix.slice(0, slash));
    const out: StoredObject[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isCode(err, 'ENOENT') || isCode(err, 'ENOTDIR')) return;
        throw fsError(err, 'list', dir);
      }
      for (const e of entries) {
        const abs = join(dir, e.name);
        if (e.isDirectory()) {
          await walk(abs);
        } else if (e.isFile() && (inProgress || !e.name.endsWith(IN_PROGRESS_SUFFIX))) {
          const rel = relative(this.rootDir, abs).split(sep).join('/');
          if (!rel.startsWith(prefix)) continue;
          try {
            const st = await stat(abs);
            out.push({ path: rel, size: st.size, modifiedAt: st.mtime });
          } catch (err) {
            // Renamed or removed while listing: not there any more.
            if (!isCode(err, 'ENOENT')) throw fsError(err, 'stat', abs);
          }
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async delete(relativePath: string): Promise<void> {
    const p = this.path(relativePath);
    try {
      await unlink(p);
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw fsError(err, 'delete', p);
    }
  }

  /**
   * Create the root if needed, then create, fsync and remove a probe file.
   * Throws STORAGE_NOT_WRITABLE (context.path) when that is impossible:
   * permissions, read-only file system, or a file where a directory should be.
   */
  async checkWritable(): Promise<void> {
    const probe = join(this.rootDir, `.dativo-probe-${randomUUID()}`);
    let fh: FileHandle | undefined;
    try {
      await ensureDir(this.rootDir);
      fh = await open(probe, 'wx');
      await fh.write('probe');
      await fh.sync();
    } catch (err) {
      throw fsError(err, 'probe', this.rootDir);
    } finally {
      await fh?.close().catch(() => {});
      await unlink(probe).catch(() => {});
    }
  }
}
