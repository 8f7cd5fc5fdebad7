/**
 * The reject file of one object in one run: NDJSON, one line per rejected
 * record, at `<dir>/<object>/<runId>.ndjson`, created on the first reject
 * only (a clean run leaves no file behind).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Reject, RejectSink } from '../connector.js';
import { DativoError } from '../errors.js';
import { stringifyJson } from '../json.js';

/** Options of {@link createRejectWriter}. */
export interface RejectWriterOptions {
  /** Root directory of reject files (created if missing). */
  dir: string;
  /** Object (stream) name; characters other than `A-Za-z0-9_.-` become `_` in the path. */
  object: string;
  /** Run id; the file name. */
  runId: string;
  /** Bytes buffered before a write to the file; default 64 KiB. */
  bufferBytes?: number;
}

/** A {@link RejectSink} that appends to a file; `close()` flushes and closes it. */
export type RejectWriter = RejectSink & {
  /** Flush buffered lines, fsync and close the file. Idempotent. */
  close(): Promise<void>;
  /** Path of the reject file, once the first reject created it. */
  readonly path: string | undefined;
};

/** The folder of an object's reject files: characters other than `A-Za-z0-9_.-` become `_`, and it never starts with a dot. */
export function rejectFolderName(object: string): string {
  return object.replace(/[^A-Za-z0-9_.-]/g, '_').replace(/^\.+/, '_') || '_';
}

/**
 * Create the reject writer of one object in one run.
 *
 * Each line is `{run_id, object, at, code, reason, fields, location, record}`
 * written with {@link stringifyJson} (bigints exact, bytes as base64).
 *
 * Lines are buffered and written with synchronous appends once the buffer
 * passes `bufferBytes`: memory stays bounded however many records are
 * rejected, `reject()` stays synchronous as the RejectSink contract wants,
 * and nothing is left in flight when the process exits after `close()`.
 *
 * @throws DativoError STORAGE_NOT_WRITABLE / STORAGE_IO from `reject()` or
 *   `close()` when the file cannot be created or written.
 */
export function createRejectWriter(opts: RejectWriterOptions): RejectWriter {
  const limit = opts.bufferBytes ?? 64 * 1024;
  const safeObject = rejectFolderName(opts.object);
  let fd: number | undefined;
  let path: string | undefined;
  let buffer: string[] = [];
  let buffered = 0;
  let count = 0;
  let closed = false;

  const fail = (err: unknown, what: string): DativoError => {
    const code = (err as NodeJS.ErrnoException).code;
    const writable = code === 'EACCES' || code === 'EROFS' || code === 'EPERM' || code === 'ENOTDIR';
    return new DativoError(writable ? 'STORAGE_NOT_WRITABLE' : 'STORAGE_IO', `cannot ${what} reject file: ${(err as Error).message}`, {
      cause: err,
      context: { file: path ?? join(opts.dir, safeObject, `${opts.runId}.ndjson`), object: opts.object },
    });
  };

  const flush = (): void => {
    if (buffer.length === 0) return;
    if (fd === undefined) {
      const p = join(opts.dir, safeObject, `${opts.runId}.ndjson`);
      try {
        mkdirSync(join(opts.dir, safeObject), { recursive: true });
        fd = openSync(p, 'a');
        path = p;
      } catch (err) {
        throw fail(err, 'create');
      }
    }
    const data = Buffer.from(buffer.join(''), 'utf8');
    buffer = [];
    buffered = 0;
    try {
      let off = 0;
      while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    } catch (err) {
      throw fail(err, 'write');
    }
  };

  return {
    reject(r: Reject): void {
      if (closed) throw new DativoError('INTERNAL', 'reject() after the reject file was closed', { context: { object: opts.object } });
      const entry = {
        run_id: opts.runId,
        object: opts.object,
        at: new Date().toISOString(),
        code: r.code,
        reason: r.reason,
        fields: r.fields ?? [],
        location: r.location ?? null,
        record: r.record ?? null,
      };
      let text: string;
      try {
        text = stringifyJson(entry);
      } catch (err) {
        // A cyclic raw record must not take the run down with it: keep the reason.
        text = stringifyJson({ ...entry, record: { unserialisable: (err as Error).message } });
      }
      const line = text + '\n';
      count++;
      buffer.push(line);
      buffered += line.length;
      // The file exists from the first reject on, so `path` can be reported at once.
      if (fd === undefined || buffered >= limit) flush();
    },
    get count() {
      return count;
    },
    get path() {
      return path;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      flush();
      if (fd !== undefined) {
        const f = fd;
        fd = undefined;
        try {
          fsyncSync(f);
        } catch (err) {
          throw fail(err, 'sync');
        } finally {
          closeSync(f);
        }
      }
    },
  };
}
