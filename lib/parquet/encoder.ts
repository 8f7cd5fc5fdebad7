/**
 * The Parquet encoder: Arrow IPC batches in, Parquet bytes out, written by
 * our own encoder (lib/parquet/format/). Rows of several batches fill one
 * row group (copied out of the batches, so their buffers can go back at
 * once; byte-array columns are paged and compressed as they come); each
 * full row group is handed to `onChunk` as one chunk, and the encoder waits
 * for it (backpressure), so memory is one row group, mostly compressed,
 * whatever the file size. The same code runs in this thread
 * ({@link inlineEncoder}) or in a worker thread
 * (lib/parquet/worker-encoder.ts), which takes the encoding off the thread
 * that parses and validates rows.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { tableFromIPC, type Schema } from 'apache-arrow';
import { packageRoot } from '../config/paths.js';
import { DativoError } from '../errors.js';
import type { AssetField } from '../types.js';
import { arrowSchema } from './arrow.js';
import { columnChunk, type ColumnChunk } from './format/columns.js';
import { CODEC_ID, compressorFor, type ParquetCompression } from './format/compress.js';
import { columnSpecs, encodeFooter, type ColumnSpec, type RowGroupMeta } from './format/metadata.js';
import { PageContext, type PageLimits } from './format/pages.js';

export type { ParquetCompression } from './format/compress.js';
export type { PageLimits } from './format/pages.js';

/** What the encoder needs to know about a file (plain data: it is posted to workers). */
export interface EncoderOptions {
  /** Columns of the file, in order (decides dictionary encoding per column). */
  fields: readonly AssetField[];
  /** Columns with one value for the whole file: always dictionary-encoded. */
  constantColumns?: readonly string[];
  /** Exactly the columns to dictionary-encode. Default: by type, see {@link dictionaryEnabled}. */
  dictionaryColumns?: readonly string[];
  /** Default `zstd`. */
  compression?: ParquetCompression;
  /** Upper bound of rows per row group; default 100,000. */
  rowGroupRows?: number;
  /** Footer key/value metadata, e.g. `dativo.asset`, `dativo.run_id`. */
  keyValueMetadata?: Record<string, string>;
}

/**
 * One file being encoded. `onChunk` (given at creation) receives the output
 * bytes in order; the encoder waits for the promise it returns.
 */
export interface ParquetEncoder {
  /**
   * Hand over one batch as Arrow IPC stream bytes (the encoder may take
   * ownership of their buffer). Resolves once the encoder can take another.
   */
  write(ipc: Uint8Array): Promise<void>;
  /** Encode the rest and the footer; resolves once `onChunk` returned for the last bytes. */
  finish(): Promise<void>;
  /** Stop and drop everything; idempotent, never rejects. */
  abort(reason: Error): Promise<void>;
}

/** Receives the encoder's output; the encoder waits for the returned promise (backpressure). */
export type ChunkSink = (chunk: Uint8Array) => void | Promise<void>;

/**
 * Default when no sample is available: dictionary encoding only where values
 * usually repeat: strings, dates and constant columns. On ids, timestamps,
 * numbers, decimals, binary and JSON it costs time and bytes before
 * the encoder falls back to PLAIN (lab §1: the ZSTD file went from 96.2 MB to
 * 82.9 MB and got faster with it off).
 */
export function dictionaryEnabled(field: AssetField, constant: boolean): boolean {
  if (constant) return true;
  return field.type.kind === 'string' || field.type.kind === 'date';
}

/**
 * Whether the encoder writes min/max statistics (null counts always) for a
 * column: not for JSON text and binary, whose byte order no reader prunes on
 * (Iceberg's bounds come from our own column statistics, not the footer).
 * Comparing every ~150-byte JSON value cost 0.35 of the encoder's 4.6 CPU s
 * on the 2M-row bench table (docs/benchmarks.md).
 */
export function statisticsEnabled(field: AssetField): boolean {
  return field.type.kind !== 'json' && field.type.kind !== 'binary';
}

/**
 * The first error of an object that fails once: `error` once set, and a
 * promise that rejects with it, to race against whatever the object awaits.
 */
export class FirstFailure {
  error: Error | undefined;
  readonly promise: Promise<never>;
  private reject!: (err: Error) => void;

  constructor() {
    this.promise = new Promise<never>((_, reject) => {
      this.reject = reject;
    });
    this.promise.catch(() => {});
  }

  /** Record `err` unless an error was recorded already; true if this one was. */
  set(err: Error): boolean {
    if (this.error) return false;
    this.error = err;
    this.reject(err);
    return true;
  }
}

/**
 * Bytes whose buffer can be transferred to another thread: `bytes` itself
 * when it spans its whole ArrayBuffer, else a copy (a view into a larger
 * buffer, e.g. a pooled Buffer, must not hand that buffer over).
 */
export function transferable(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return (whole ? bytes : bytes.slice()) as Uint8Array<ArrayBuffer>;
}

/** `created_by` of our files: `dativo-ingest <version>`. */
let createdBy: string | undefined;
function creator(): string {
  if (createdBy === undefined) {
    let version = 'unknown';
    try {
      version = String((JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version);
    } catch {
      // a missing package.json must not fail a file
    }
    createdBy = `dativo-ingest ${version}`;
  }
  return createdBy;
}

const MAGIC = Uint8Array.of(0x50, 0x41, 0x52, 0x31);

/**
 * Encode in this thread. `limits` (page and dictionary sizes) is for tests;
 * the defaults are parquet-rs's (1 MiB each).
 */
export function inlineEncoder(options: EncoderOptions, onChunk: ChunkSink, limits?: PageLimits): ParquetEncoder {
  return new InlineEncoder(options, onChunk, limits);
}

class InlineEncoder implements ParquetEncoder {
  private readonly failure = new FirstFailure();
  private readonly rowGroupRows: number;
  private readonly ctx: PageContext;
  private specs: ColumnSpec[] | undefined;
  private columns: ColumnChunk[] = [];
  /** Rows gathered for the row group being filled. */
  private rows = 0;
  private readonly groups: RowGroupMeta[] = [];
  private wroteMagic = false;
  private closed = false;
  /** Output chunks not yet handed to `onChunk`. */
  private queue: Uint8Array[] = [];
  /** Chunks queued so far, and how many of them `onChunk` took. */
  private emitted = 0;
  private taken = 0;
  /** `emitted` at the end of the last two writes (older first). */
  private marks = [0, 0];
  private pumping: Promise<void> | undefined;
  private space: (() => void) | undefined;

  constructor(
    private readonly options: EncoderOptions,
    private readonly onChunk: ChunkSink,
    limits: PageLimits = {},
  ) {
    const rowGroupRows = options.rowGroupRows ?? 100_000;
    if (!Number.isInteger(rowGroupRows) || rowGroupRows < 1) {
      throw new DativoError('INTERNAL', `rowGroupRows must be a positive integer, got ${rowGroupRows}`, { context: { rowGroupRows } });
    }
    this.rowGroupRows = rowGroupRows;
    const codec = options.compression ?? 'zstd';
    if (!Object.hasOwn(CODEC_ID, codec)) throw new DativoError('INTERNAL', `unknown Parquet compression ${String(codec)}`, { context: { codec } });
    this.ctx = new PageContext(compressorFor(codec), CODEC_ID[codec], limits);
  }

  /** The columns, decided by the first schema seen (or the fields, for a file without rows). */
  private init(schema: Schema): ColumnSpec[] {
    const o = this.options;
    const fields = new Map<string, AssetField>(o.fields.map((f) => [f.name, f]));
    const constants = new Set(o.constantColumns ?? []);
    const chosen = o.dictionaryColumns === undefined ? undefined : new Set(o.dictionaryColumns);
    const specs = columnSpecs(
      schema,
      (name) => {
        if (chosen !== undefined) return chosen.has(name) || constants.has(name);
        const f = fields.get(name);
        return f === undefined ? constants.has(name) : dictionaryEnabled(f, constants.has(name));
      },
      (name) => {
        const f = fields.get(name);
        return f === undefined || statisticsEnabled(f);
      },
    );
    this.specs = specs;
    this.columns = specs.map((s) => columnChunk(s, this.ctx));
    return specs;
  }

  private check(): void {
    if (this.failure.error) throw this.failure.error;
    if (this.closed) throw new DativoError('INTERNAL', 'parquet encoder: write after finish or abort');
  }

  async write(ipc: Uint8Array): Promise<void> {
    this.check();
    try {
      // A row group filled by the last write is encoded now, after that write
      // returned: in the worker its batch went back and the next one came
      // meanwhile, so the thread building batches did not wait for it.
      if (this.full) this.flush();
      const table = tableFromIPC(ipc);
      const specs = this.specs ?? this.init(table.schema);
      const fields = table.schema.fields;
      if (fields.length !== specs.length || fields.some((f, i) => f.name !== specs[i]!.name)) {
        throw new DativoError('INTERNAL', 'parquet encoder: a batch of another schema', {
          context: { expected: specs.map((s) => s.name), got: fields.map((f) => f.name) },
        });
      }
      const columns = this.columns;
      for (const batch of table.batches) {
        const n = batch.numRows;
        const children = batch.data.children;
        let from = 0;
        while (from < n) {
          if (this.full) this.flush();
          const take = Math.min(n - from, this.rowGroupRows - this.rows);
          for (let c = 0; c < columns.length; c++) columns[c]!.add(children[c]!, from, from + take);
          this.rows += take;
          from += take;
        }
      }
    } catch (err) {
      // The row group holds part of a batch now: the file cannot be finished.
      this.failure.set(err as Error);
      throw err;
    }
    // Backpressure: the output of this write and the one before may wait
    // for onChunk, no more (a stalled storage stops the source within a few batches).
    const older = this.marks[0]!;
    this.marks = [this.marks[1]!, this.emitted];
    await this.takenUpTo(older);
  }

  /** The row group being filled is full. */
  private get full(): boolean {
    return this.rows === this.rowGroupRows;
  }

  /** Encode the gathered rows as one row group and hand it over. */
  private flush(): void {
    const ctx = this.ctx;
    const fileOffset = ctx.offset;
    ctx.pieces = this.wroteMagic ? [] : [MAGIC];
    const columns = this.columns.map((c) => c.write());
    this.groups.push({ numRows: this.rows, fileOffset, columns });
    this.rows = 0;
    this.emit(ctx.pieces);
  }

  /** Queue one output chunk (the pieces, joined) for `onChunk`. */
  private emit(pieces: Uint8Array[]): void {
    this.wroteMagic = true;
    let size = 0;
    for (const p of pieces) size += p.length;
    const chunk = new Uint8Array(size);
    let at = 0;
    for (const p of pieces) {
      chunk.set(p, at);
      at += p.length;
    }
    this.ctx.pieces = [];
    this.queue.push(chunk);
    this.emitted++;
    this.pumping ??= this.pump();
  }

  /** Hand queued chunks to `onChunk` one at a time, each after the previous one's promise resolved. */
  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure.error) {
        const chunk = this.queue.shift()!;
        await this.onChunk(chunk);
        this.taken++;
        this.space?.();
      }
    } catch (err) {
      this.failure.set(err as Error);
    } finally {
      this.pumping = undefined;
      this.space?.();
    }
  }

  /** Wait until `onChunk` took the first `n` chunks (or failed). */
  private async takenUpTo(n: number): Promise<void> {
    while (!this.failure.error && this.taken < n && this.pumping !== undefined) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.space = () => {
            this.space = undefined;
            resolve();
          };
        }),
        this.failure.promise,
      ]);
    }
    if (this.failure.error) throw this.failure.error;
  }

  async finish(): Promise<void> {
    this.check();
    try {
      if (this.rows > 0) this.flush();
      const specs = this.specs ?? this.init(arrowSchema(this.options.fields));
      const footer = encodeFooter(specs, this.groups, this.options.keyValueMetadata ?? {}, creator());
      const tail = new Uint8Array(8);
      new DataView(tail.buffer).setUint32(0, footer.length, true);
      tail.set(MAGIC, 4);
      this.emit(this.wroteMagic ? [footer, tail] : [MAGIC, footer, tail]);
      await this.takenUpTo(this.emitted);
    } catch (err) {
      this.failure.set(err as Error);
      throw err;
    } finally {
      this.closed = true;
      this.columns = [];
    }
  }

  async abort(reason: Error): Promise<void> {
    this.failure.set(reason);
    this.closed = true;
    this.columns = [];
    this.queue = [];
    await this.pumping;
  }
}
