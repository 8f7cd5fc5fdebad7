/**
 * Resuming a grown CSV file where the last run stopped. Plain functions and
 * one small class; the stream only calls them.
 *
 * A file's mark records the bytes read (`size`), their sha256, their line
 * count and whether they end with a complete record. Next run, a file that
 * grew is resumed at `size` only when its first `size` bytes still hash the
 * same and ended with a record's line break outside quotes: then the bytes
 * after `size` are exactly the new records. Anything else (rewritten,
 * truncated, shrunk, the last line had no line break, older state without a
 * hash) is read again whole — the honest fallback, with a warning, since the
 * rows read before are then written again.
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { FileMark } from '../../lib/types.js';
import { isUnchanged } from './files.js';

const LF = 10;
const CR = 13;

/** Bytes per read when hashing a prefix: large reads keep the hash at disk speed. */
const HASH_READ_BYTES = 1 << 20;

/**
 * What a run has consumed of one file: the running sha256, the line breaks
 * (counted as `parse.ts` counts them: `\n`, `\r\n` and a lone `\r` are one
 * each) and the last two bytes. Fed the raw chunks in file order.
 */
export class ByteTrail {
  private readonly hash: Hash;
  /** Bytes fed so far. */
  bytes = 0;
  private breaks = 0;
  /** The last byte fed was `\r`: a break, unless the next byte is `\n`. */
  private pendingCr = false;
  private last = -1;
  private beforeLast = -1;

  constructor(hash: Hash = createHash('sha256')) {
    this.hash = hash;
  }

  /** Feed the next chunk. */
  feed(chunk: Uint8Array): void {
    const n = chunk.length;
    if (n === 0) return;
    this.hash.update(chunk);
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, n);
    if (this.pendingCr && buf[0] !== LF) this.breaks++;
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) this.breaks++;
    for (let i = buf.indexOf(CR); i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i + 1 < n && buf[i + 1] !== LF) this.breaks++;
    }
    this.pendingCr = buf[n - 1] === CR;
    this.beforeLast = n >= 2 ? buf[n - 2]! : this.last;
    this.last = buf[n - 1]!;
    this.bytes += n;
  }

  /** Line breaks in what was fed (a trailing `\r` counts). */
  get lines(): number {
    return this.breaks + (this.pendingCr ? 1 : 0);
  }

  /** sha256 (hex) of what was fed so far; feeding can go on. */
  digest(): string {
    return this.hash.copy().digest('hex');
  }

  /** What was fed ends with `delimiter` (`\n` or `\r\n`; anything else: false). */
  endsWith(delimiter: string | undefined): boolean {
    if (delimiter === '\n') return this.last === LF;
    if (delimiter === '\r\n') return this.last === LF && this.beforeLast === CR;
    return false;
  }
}

/**
 * Hash the first `size` bytes of an open file into a new {@link ByteTrail}
 * (which can then go on with the rest). Stops early, returning `undefined`,
 * when `cancelled()` turns true or the file has fewer bytes than `size`.
 */
export async function hashPrefix(handle: FileHandle, size: number, cancelled: () => boolean): Promise<ByteTrail | undefined> {
  const trail = new ByteTrail();
  const buf = Buffer.allocUnsafe(Math.min(HASH_READ_BYTES, Math.max(size, 1)));
  while (trail.bytes < size) {
    const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, size - trail.bytes), trail.bytes);
    if (cancelled() || bytesRead === 0) return undefined;
    trail.feed(buf.subarray(0, bytesRead));
  }
  return trail;
}

/** How to read one file this run; see {@link planFileRead}. */
export type FilePlan =
  /** Size and mtime as saved: nothing new. */
  | { kind: 'skip' }
  /** Read from the first line; `rewritten` (a reason) when rows read before will be read again. */
  | { kind: 'whole'; rewritten?: string }
  /**
   * Hash the first `prefix` bytes; if they match the saved hash: skip the
   * file when it did not grow, resume at `prefix` when `resumable`, else read
   * it whole for `reason`.
   */
  | { kind: 'verify'; prefix: number; hash: string; grew: boolean; resumable: boolean; reason?: string };

/**
 * Decide how to read a file from its saved mark and its stat now (`now`,
 * from {@link fileMark}). Without `incremental` (full refresh, incremental
 * off, lookback) every file is read whole, as asked.
 */
export function planFileRead(saved: FileMark | undefined, now: FileMark, incremental: boolean): FilePlan {
  if (!incremental || saved === undefined) return { kind: 'whole' };
  if (isUnchanged(saved, now)) return { kind: 'skip' };
  // Nothing was read from the file before: no row can be written twice.
  if (saved.size === 0) return { kind: 'whole' };
  const size = now.size ?? 0;
  if (saved.size === undefined || saved.sha256 === undefined) return { kind: 'whole', rewritten: 'the saved state has no checksum of the bytes read before' };
  if (size < saved.size) return { kind: 'whole', rewritten: `the file shrank (${saved.size} → ${size} bytes)` };
  const grew = size > saved.size;
  const reason =
    saved.endsInQuote === true
      ? 'the previous read ended inside a quoted field'
      : saved.endsWithNewline !== true
        ? 'the last line read before had no line break, so it may have been incomplete'
        : saved.lines === undefined
          ? 'the saved state has no line count'
          : undefined;
  return { kind: 'verify', prefix: saved.size, hash: saved.sha256, grew, resumable: reason === undefined, ...(reason !== undefined ? { reason } : {}) };
}
