/**
 * One Parquet file, streamed: Arrow RecordBatches go to an encoder
 * (lib/parquet/encoder.ts; in a worker thread by default, see
 * lib/parquet/worker-encoder.ts), its output bytes go into a storage
 * WriteHandle. Both sides are pull-driven, so a slow storage stream stops
 * the encoder and the encoder stops accepting batches: memory is one
 * in-progress row group inside the encoder plus the batches being handed over,
 * whatever the file size.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Data, RecordBatch } from 'apache-arrow';
import { DativoError, isDativoError, toDativoError } from '../errors.js';
import type { WriteHandle } from '../storage/types.js';
import type { AssetField } from '../types.js';
import { FirstFailure, inlineEncoder, type EncoderOptions, type ParquetEncoder } from './encoder.js';
import { readFooter, type FooterInfo } from './footer.js';
import { ipcBytes } from './ipc-pool.js';
import { defaultPlacement, workerEncoder, type EncoderPlacement } from './worker-encoder.js';

export { dictionaryEnabled, type ParquetCompression } from './encoder.js';
export type { EncoderPlacement } from './worker-encoder.js';

/** Options of {@link ParquetFileWriter}. */
export interface ParquetWriterOptions extends EncoderOptions {
  /**
   * Where to encode: `worker` (a shared worker thread) or `inline` (this
   * thread). Default: `DATIVO_PARQUET_ENCODER` if set, else `worker` when
   * the machine has more than one core.
   */
  encoder?: EncoderPlacement;
}

/** What a finished file looks like. */
export interface FinishedParquetFile {
  uri: string;
  size: number;
  /** Parsed from the footer; undefined only if the footer could not be read back. */
  footer: FooterInfo | undefined;
}

/** Below this share of distinct values in a sample, a column is dictionary-encoded. */
export const DICTIONARY_MAX_DISTINCT_RATIO = 0.5;

/**
 * Pick dictionary columns from the first batch of a file (its first
 * `maxSample` rows): constants, and every non-boolean, non-binary column whose
 * non-null values are at most half distinct (status codes, currencies, names).
 * Unique-ish columns (ids, emails, timestamps, amounts, JSON) skip the
 * dictionary, which the encoder would build and then abandon.
 *
 * Values are compared by a 32-bit hash of their Arrow bytes, read from the
 * built batch: no row is kept for it. (Holding the first 10,000 rows of every
 * file made V8 pretenure the row objects of the whole run, which then kept
 * every young string alive until a full GC: 38% more CPU on a 2M-row table.)
 */
export function chooseDictionaryColumns(
  fields: readonly AssetField[],
  batch: RecordBatch,
  constantColumns: readonly string[] = [],
  maxSample = 10_000,
): string[] {
  const constants = new Set(constantColumns);
  const n = Math.min(batch.numRows, maxSample);
  const out: string[] = [];
  fields.forEach((f, c) => {
    if (constants.has(f.name)) {
      out.push(f.name);
      return;
    }
    // Parquet has no dictionary for booleans; binary values are not worth hashing.
    if (f.type.kind === 'boolean' || f.type.kind === 'binary' || n === 0) return;
    const data = batch.getChildAt(c)?.data[0];
    if (data === undefined) return;
    const { values, distinct } = countDistinct(data, n);
    if (values > 0 && distinct <= values * DICTIONARY_MAX_DISTINCT_RATIO) out.push(f.name);
  });
  return out;
}

/** Non-null values among the first `n` rows of a column, and how many distinct ones (by FNV-1a hash of their bytes). */
function countDistinct(data: Data, n: number): { values: number; distinct: number } {
  const raw = data.values as ArrayBufferView | undefined;
  if (raw === undefined) return { values: 0, distinct: 0 };
  const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  const offsets = data.valueOffsets as Int32Array | undefined;
  const width = offsets === undefined ? bytes.byteLength / Math.max(1, data.length) : 0;
  const bitmap = data.nullCount > 0 ? data.nullBitmap : undefined;
  const seen = new Set<number>();
  let values = 0;
  for (let i = 0; i < n; i++) {
    const j = data.offset + i;
    if (bitmap !== undefined && bitmap.length > 0 && (bitmap[j >> 3]! & (1 << (j & 7))) === 0) continue;
    values++;
    const from = offsets === undefined ? j * width : offsets[j]!;
    const to = offsets === undefined ? from + width : offsets[j + 1]!;
    let h = 0x811c9dc5;
    for (let k = from; k < to; k++) h = Math.imul(h ^ bytes[k]!, 0x01000193);
    // Mix in the length so that '' and a missing byte range differ from other values.
    seen.add(Math.imul(h ^ (to - from), 0x01000193) | 0);
  }
  return { values, distinct: seen.size };
}

/**
 * Free a buffer's memory now rather than at some later GC: its contents
 * move to a new ArrayBuffer that nothing references, which the next
 * scavenge frees; `bytes` reads as empty afterwards. A row group's chunk
 * (~2 MB) outlives the main thread's next batch while storage writes it,
 * so V8 promotes it and only a full GC would free it: without this a long
 * run held up to ~60 MB of written chunks between two full GCs (the
 * peak RSS of the run).
 */
function release(bytes: Uint8Array): void {
  try {
    structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] });
  } catch {
    // not detachable (e.g. a view into a pooled Buffer): left to the GC
  }
}

/** How many trailing output bytes to keep for reading the footer back. */
const TAIL_KEEP = 4 * 1024 * 1024;

/**
 * The last {@link TAIL_KEEP} bytes of a file, copied into one buffer of this
 * writer's (a ring once it is full; it grows to that size as bytes come), so
 * that no chunk is held after storage took it (see {@link release}).
 */
class Tail {
  private buf = new Uint8Array(0);
  private total = 0;

  push(chunk: Uint8Array): void {
    const n = chunk.byteLength;
    if (n === 0) return;
    const end = this.total + n;
    if (end > this.buf.byteLength && this.buf.byteLength < TAIL_KEEP) {
      // Still linear (byte b at index b): grow, keeping what is there.
      const grown = new Uint8Array(Math.min(TAIL_KEEP, Math.max(2 * this.buf.byteLength, end, 64 * 1024)));
      grown.set(this.buf.subarray(0, this.total));
      release(this.buf);
      this.buf = grown;
    }
    // Byte b of the file is at index b % capacity (b itself while the file is smaller).
    const src = n > TAIL_KEEP ? chunk.subarray(n - TAIL_KEEP) : chunk;
    const cap = this.buf.byteLength;
    const at = (end - src.byteLength) % cap;
    const first = Math.min(src.byteLength, cap - at);
    this.buf.set(src.subarray(0, first), at);
    if (first < src.byteLength) this.buf.set(src.subarray(first), 0);
    this.total = end;
  }

  /** The footer read from the bytes kept, which are freed then (the writer is done with them). */
  footer(size: number): FooterInfo | undefined {
    const bytes = this.bytes();
    try {
      return readFooter(bytes, size);
    } finally {
      if (bytes.buffer !== this.buf.buffer) release(bytes);
      this.dispose();
    }
  }

  /** Free the buffer now: it lives as long as the writer, which may be old by then, and would wait for a full GC. */
  dispose(): void {
    release(this.buf);
    this.buf = new Uint8Array(0);
    this.total = 0;
  }

  /** The bytes kept, in file order. */
  private bytes(): Uint8Array {
    const cap = this.buf.byteLength;
    if (this.total <= cap) return this.buf.subarray(0, this.total);
    const at = this.total % cap;
    const out = new Uint8Array(cap);
    out.set(this.buf.subarray(at), 0);
    out.set(this.buf.subarray(0, at), cap - at);
    return out;
  }
}

/**
 * Writes one Parquet file into a {@link WriteHandle}. Call {@link write} for
 * each batch (await it: it resolves once the encoder can take another, which
 * is the backpressure), then {@link finish}, or {@link abort} on failure.
 */
export class ParquetFileWriter {
  private readonly encoder: ParquetEncoder;
  private readonly failure = new FirstFailure();
  private bytes = 0;
  private rows = 0;
  private tail = new Tail();
  private readonly releaseChunks: boolean;
  private state: 'open' | 'finishing' | 'done' | 'aborted' = 'open';

  constructor(
    readonly handle: WriteHandle,
    options: ParquetWriterOptions,
  ) {
    // A storage failure (e.g. the directory cannot be created) stops the encoder at once.
    handle.stream.on('error', (err) => this.fail(err));
    const { encoder, ...encoderOptions } = options;
    const inWorker = (encoder ?? defaultPlacement()) === 'worker';
    // Chunks from the worker arrive as whole transferred buffers nobody else holds.
    this.releaseChunks = inWorker && handle.chunkDoneAtCallback === true;
    this.encoder = (inWorker ? workerEncoder : inlineEncoder)(encoderOptions, (chunk) => this.onChunk(chunk));
  }

  /** Bytes handed to storage so far (lags the rows by up to one row group). */
  get bytesWritten(): number {
    return this.bytes;
  }

  /** Rows accepted so far. */
  get rowsWritten(): number {
    return this.rows;
  }

  /**
   * Hand one batch to the encoder; resolves once it can take another
   * (backpressure). The batch is serialised (copied) before this returns
   * its first await, so its buffers may be reused as soon as the call
   * returns (RecordBatchBuilder relies on it).
   */
  async write(batch: RecordBatch): Promise<void> {
    if (this.state !== 'open') throw new DativoError('INTERNAL', 'write after finish/abort', { context: { state: this.state } });
    if (this.failure.error) throw this.failure.error;
    if (batch.numRows === 0) return;
    await this.writeIpc(ipcBytes(batch), batch.numRows);
  }

  /**
   * {@link write} for a batch already serialised as Arrow IPC stream bytes
   * (of this file's schema) holding `rows` rows. The bytes may be handed to
   * another thread: do not use them after the call.
   */
  async writeIpc(ipc: Uint8Array, rows: number): Promise<void> {
    if (this.state !== 'open') throw new DativoError('INTERNAL', 'write after finish/abort', { context: { state: this.state } });
    if (this.failure.error) throw this.failure.error;
    if (rows === 0) return;
    try {
      await Promise.race([this.encoder.write(ipc), this.failure.promise]);
    } catch (err) {
      this.fail(err);
      throw this.failure.error ?? err;
    }
    this.rows += rows;
  }

  /** The encoder's output: into storage, waiting for it to drain. */
  private async onChunk(chunk: Uint8Array): Promise<void> {
    if (this.failure.error) throw this.failure.error;
    this.bytes += chunk.byteLength;
    this.tail.push(chunk);
    const sink = this.handle.stream;
    if (sink.destroyed) {
      // Destroyed before this chunk came (the encoder may run behind): its
      // 'close' is past and its 'error' may not have been emitted yet.
      if (sink.errored) this.fail(sink.errored);
      throw this.failure.error ?? new DativoError('STORAGE_IO', 'storage stream closed before the file was complete');
    }
    if (!(this.releaseChunks ? sink.write(chunk, (err) => err == null && release(chunk)) : sink.write(chunk))) await this.waitDrain(sink);
  }

  private async waitDrain(sink: Writable): Promise<void> {
    const ac = new AbortController();
    try {
      await Promise.race([
        once(sink, 'drain', { signal: ac.signal }),
        // A stream destroyed without an error would otherwise leave us waiting forever.
        once(sink, 'close', { signal: ac.signal }).then(() => {
          throw new DativoError('STORAGE_IO', 'storage stream closed before the file was complete');
        }),
        this.failure.promise,
      ]);
    } finally {
      ac.abort();
    }
  }

  private fail(err: unknown): void {
    if (this.failure.error) return;
    // Storage errors arrive as DativoErrors, aborts map to ABORTED; anything else
    // comes from the encoder and is a bug.
    const e = toDativoError(err);
    this.failure.set(e.code === 'INTERNAL' && !isDativoError(err) ? new DativoError('INTERNAL', `parquet encoding failed: ${e.message}`, { cause: err }) : e);
  }

  /** Write the footer, make the file durable, and describe it. */
  async finish(): Promise<FinishedParquetFile> {
    if (this.state !== 'open') throw new DativoError('INTERNAL', 'finish twice or after abort', { context: { state: this.state } });
    this.state = 'finishing';
    try {
      if (this.failure.error) throw this.failure.error;
      await Promise.race([this.encoder.finish(), this.failure.promise]);
      if (this.failure.error) throw this.failure.error;
      const res = await this.handle.done();
      this.state = 'done';
      return { ...res, footer: this.tail.footer(res.size) };
    } catch (err) {
      // The original failure matters more than a failed cleanup.
      await this.abort(err).catch(() => {});
      throw err;
    }
  }

  /** Drop the file: stop the encoder and abort the storage write. Idempotent. */
  async abort(reason?: unknown): Promise<void> {
    if (this.state === 'done' || this.state === 'aborted') return;
    this.state = 'aborted';
    const err = reason instanceof Error ? reason : new DativoError('ABORTED', 'parquet write aborted');
    this.fail(err);
    await this.encoder.abort(err).catch(() => {});
    await this.handle.abort(reason);
    this.tail.dispose();
  }
}
