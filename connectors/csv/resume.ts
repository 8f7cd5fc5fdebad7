/**
 * What of a CSV file can be taken this run, and where the next run goes on.
 * Plain functions and one small class over bytes, a size, a modification
 * time and the previous checkpoint (a {@link FileMark}) — nothing here asks
 * the file system, so a source that streams a file body over HTTP (Google
 * Drive: `size` and `modifiedTime` from the API) uses the same logic.
 *
 * A file's mark records the bytes consumed (`size`: every record in them was
 * written or rejected), their sha256, their line count and how they end.
 *
 * - **Unfinished tail.** While a file is still changing (modified less than
 *   `settle_seconds` ago, {@link isSettled}), a last record that is not
 *   finished — inside an open quote, or without its line break — is neither
 *   written nor rejected: the parser holds it back (`parse.ts`) and the mark
 *   ends before it, so the next run reads it whole. A settled file is read to
 *   its end, a last line without a line break included.
 * - **Appended.** Next run, a file that grew is resumed at `size` when its
 *   first `size` bytes still hash the same and the bytes after them can only
 *   be new records ({@link continueAt}).
 * - **Rewritten.** Anything else (bytes read before changed, the file shrank,
 *   a record already taken was continued, a state without a checksum) cannot
 *   be read incrementally without writing rows a second time: the plan says
 *   `rewritten` with the reason and the read fails with `SOURCE_REWRITTEN`
 *   (see {@link rewrittenError}).
 */
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { DativoError } from '../../lib/errors.js';
import type { FileMark } from '../../lib/types.js';

const LF = 10;
const CR = 13;

/** Bytes per read when hashing a prefix: large reads keep the hash at disk speed. */
const HASH_READ_BYTES = 1 << 20;

/**
 * The bytes of one file consumed so far: the running sha256, the line breaks
 * (counted as `parse.ts` counts them: `\n`, `\r\n` and a lone `\r` are one
 * each) and the last byte. Bytes are fed in file order; only the bytes up to
 * the last {@link commit} count — the rest (an unfinished record, at most one
 * record plus a chunk) waits in memory until a later commit or the end.
 */
export class ByteTrail {
  private readonly hash: Hash;
  /** Bytes committed: hashed and counted. */
  private done = 0;
  /** Bytes fed. */
  private fedBytes = 0;
  /** Commit target (≤ fed); reached lazily so small records cost no hash call each. */
  private target = 0;
  /** Fed, not yet consumed; `pending[0]` starts at `done - headUsed`. */
  private readonly pending: Buffer[] = [];
  private headUsed = 0;
  private breaks = 0;
  /** The last byte consumed was `\r`: a break, unless the next byte is `\n`. */
  private pendingCr = false;
  private last = -1;

  constructor(hash: Hash = createHash('sha256')) {
    this.hash = hash;
  }

  /** Bytes committed (what a mark may vouch for). */
  get bytes(): number {
    this.drain();
    return this.done;
  }

  /** Bytes fed, committed or not. */
  get fed(): number {
    return this.fedBytes;
  }

  /** Feed the next chunk; it counts once committed. The chunk must not be reused by the caller. */
  feed(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.drain();
    this.pending.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.fedBytes += chunk.length;
  }

  /** Feed a chunk and commit it at once (the chunk may be reused afterwards). */
  feedCommitted(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.drain();
    if (this.pending.length > 0) throw new Error('ByteTrail: feedCommitted after uncommitted bytes');
    this.consume(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.fedBytes += chunk.length;
    this.target = this.fedBytes;
  }

  /** Everything up to absolute byte `end` is consumed for good. */
  commit(end: number): void {
    if (end > this.target) this.target = Math.min(end, this.fedBytes);
  }

  /** Line breaks in the committed bytes (a trailing `\r` counts). */
  get lines(): number {
    this.drain();
    return this.breaks + (this.pendingCr ? 1 : 0);
  }

  /** The committed bytes end with a line break (`\n`, or a `\r` that may be the first half of `\r\n`). */
  get endsWithBreak(): boolean {
    this.drain();
    return this.last === LF || this.last === CR;
  }

  /** The last committed byte is `\r` (a following `\n` completes its `\r\n`). */
  get endsWithCr(): boolean {
    this.drain();
    return this.last === CR;
  }

  /** sha256 (hex) of the committed bytes; feeding can go on. */
  digest(): string {
    this.drain();
    return this.hash.copy().digest('hex');
  }

  private drain(): void {
    while (this.done < this.target) {
      const head = this.pending[0]!;
      const take = Math.min(head.length - this.headUsed, this.target - this.done);
      this.consume(this.headUsed === 0 && take === head.length ? head : head.subarray(this.headUsed, this.headUsed + take));
      this.headUsed += take;
      if (this.headUsed === head.length) {
        this.pending.shift();
        this.headUsed = 0;
      }
    }
  }

  private consume(buf: Buffer): void {
    const n = buf.length;
    this.hash.update(buf);
    if (this.pendingCr && buf[0] !== LF) this.breaks++;
    for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) this.breaks++;
    for (let i = buf.indexOf(CR); i !== -1; i = buf.indexOf(CR, i + 1)) {
      if (i + 1 < n && buf[i + 1] !== LF) this.breaks++;
    }
    this.pendingCr = buf[n - 1] === CR;
    this.last = buf[n - 1]!;
    this.done += n;
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
    trail.feedCommitted(buf.subarray(0, bytesRead));
  }
  return trail;
}

/** Default {@link isSettled} time: long enough for a writer's pause between two writes, short for a scheduler. */
export const DEFAULT_SETTLE_SECONDS = 5;

/**
 * The file has not been modified for `settleMs` at `nowMs`: its writer is
 * done, so a last record without a line break is complete. `modifiedAt` is
 * ISO-8601 (the mark's; from fs mtime or an API's modifiedTime). A time in
 * the future (clock skew) or one that cannot be parsed is not settled.
 */
export function isSettled(modifiedAt: string, nowMs: number, settleMs: number): boolean {
  const t = Date.parse(modifiedAt);
  return Number.isFinite(t) && nowMs - t >= settleMs;
}

/** How to read one file this run; see {@link planFileRead}. */
export type FilePlan =
  /** Size and mtime as saved: nothing new. */
  | { kind: 'skip' }
  /** Read from the first line: no row came from the file before (or the run reads everything, as asked). */
  | { kind: 'whole' }
  /** Rows came from the file and it cannot be continued: `reason` says why. */
  | { kind: 'rewritten'; reason: string }
  /**
   * Hash the first `prefix` bytes; if they match `hash`, skip the file when
   * it did not grow, else go on at `prefix` (see {@link continueAt}); if they
   * do not match, it was rewritten.
   */
  | { kind: 'verify'; prefix: number; hash: string; grew: boolean };

/**
 * Decide how to read a file from its saved mark and what is known of it now
 * (`now`: size and modification time, from a stat or an API). Without
 * `incremental` (full refresh, incremental off, lookback) every file is read
 * whole, as asked.
 */
export function planFileRead(saved: FileMark | undefined, now: FileMark, incremental: boolean): FilePlan {
  if (!incremental || saved === undefined) return { kind: 'whole' };
  if (isUnchanged(saved, now)) return { kind: 'skip' };
  // Nothing was taken from the file before: no row can be written twice.
  if (saved.size === 0) return { kind: 'whole' };
  const size = now.size ?? 0;
  if (saved.size === undefined || saved.sha256 === undefined) {
    return { kind: 'rewritten', reason: 'the saved state has no checksum of the bytes read before (written by an older version), so the new rows cannot be told from the old' };
  }
  if (size < saved.size) return { kind: 'rewritten', reason: `it shrank (${saved.size} → ${size} bytes)` };
  return { kind: 'verify', prefix: saved.size, hash: saved.sha256, grew: size > saved.size };
}

/** The verified prefix does not hash as saved. */
export function prefixChanged(prefix: number): string {
  return `its first ${prefix} bytes are not those read before`;
}

/**
 * Where the parse goes on in a grown file whose first `saved.size` bytes
 * hash as saved (`prefix`: their trail), given `next`, the first byte after
 * them. `firstLine` is the line number of that byte (the parser counts a
 * leading line break as a blank line, so a `\n` completing a `\r\n`, or the
 * line break a last line lacked, keeps the numbers true). Else the reason the
 * bytes after cannot be read as new records.
 */
export function continueAt(saved: FileMark, prefix: ByteTrail, next: number): { firstLine: number } | { rewritten: string } {
  if (saved.endsInQuote === true) {
    return { rewritten: 'its last record, an unclosed quote rejected once the file had settled, was continued afterwards' };
  }
  if (prefix.endsWithBreak) {
    // `\r` then `\n`: one `\r\n`, already counted at the `\r`.
    return { firstLine: prefix.endsWithCr && next === LF ? prefix.lines : prefix.lines + 1 };
  }
  // The last line was taken without a line break (the file had settled).
  if (next === LF || next === CR) return { firstLine: prefix.lines + 1 };
  return { rewritten: 'its last line, taken without a line break once the file had settled, was continued afterwards' };
}

/** True when a file is the same as when it was last read: the saved size AND modification time both match. */
export function isUnchanged(saved: FileMark | undefined, now: FileMark): boolean {
  return saved !== undefined && saved.size !== undefined && saved.size === now.size && saved.modifiedAt === now.modifiedAt;
}

/**
 * The error for a file that cannot be continued: rows were taken from it
 * before, and reading it again would write them a second time.
 */
export function rewrittenError(opts: { connector: string; file: string; object: string; reason: string }): DativoError {
  const { connector, file, object, reason } = opts;
  return new DativoError(
    'SOURCE_REWRITTEN',
    `${connector}: ${file} changed other than by appending since rows were taken from it (${reason}); ` +
      'reading it again would write those rows a second time, so nothing of this object is committed. ' +
      `To load it again: run the job once with sync_mode: full_refresh (replaces the table), or delete the rows that came from it and run \`dativo state reset <job> --object ${object}\` (every file of the object is then read again)`,
    { context: { connector, file, object, reason } },
  );
}
