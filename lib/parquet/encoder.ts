/**
 * The Parquet encoder: Arrow IPC batches in, Parquet bytes out, through
 * parquet-wasm's `transformParquetStream`. Both sides are pull-driven: a
 * slow consumer of the output stops the encoder, and the encoder stops
 * accepting batches. The same code runs in this thread ({@link inlineEncoder})
 * or in a worker thread (lib/parquet/worker-encoder.ts), which takes the
 * encoding (about a third of a database-to-Parquet run's CPU) off the thread
 * that parses and validates rows.
 */
import type { RecordBatch as WasmRecordBatch, WriterProperties } from 'parquet-wasm';
import type { AssetField } from '../types.js';

type Wasm = typeof import('parquet-wasm');
let wasm: Promise<Wasm> | undefined;
/**
 * parquet-wasm, loaded on first use: compiling it costs ~17 MB of RSS, which
 * a process that encodes in a worker thread need not pay twice.
 */
const loadWasm = (): Promise<Wasm> => (wasm ??= import('parquet-wasm'));

/** Compression codecs offered to users. */
export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'uncompressed';

const CODECS = { zstd: 'ZSTD', snappy: 'SNAPPY', gzip: 'GZIP', uncompressed: 'UNCOMPRESSED' } as const;

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
 * parquet-rs falls back to PLAIN (lab §1: the ZSTD file went from 96.2 MB to
 * 82.9 MB and got faster with it off).
 */
export function dictionaryEnabled(field: AssetField, constant: boolean): boolean {
  if (constant) return true;
  return field.type.kind === 'string' || field.type.kind === 'date';
}

/**
 * Whether parquet-rs writes min/max statistics (row group and page) for a
 * column: not for JSON text and binary, whose byte order no reader prunes on
 * (Iceberg's bounds come from our own column statistics, not the footer).
 * Comparing every ~150-byte JSON value cost 0.35 of the encoder's 4.6 CPU s
 * on the 2M-row bench table (docs/benchmarks.md).
 */
export function statisticsEnabled(field: AssetField): boolean {
  return field.type.kind !== 'json' && field.type.kind !== 'binary';
}

function buildProperties(w: Wasm, options: EncoderOptions): WriterProperties {
  let b = new w.WriterPropertiesBuilder()
    .setCompression(w.Compression[CODECS[options.compression ?? 'zstd']])
    .setMaxRowGroupSize(options.rowGroupRows ?? 100_000)
    .setDictionaryEnabled(false);
  const constants = new Set(options.constantColumns ?? []);
  const chosen = options.dictionaryColumns === undefined ? undefined : new Set(options.dictionaryColumns);
  for (const f of options.fields) {
    const on = chosen !== undefined ? chosen.has(f.name) || constants.has(f.name) : dictionaryEnabled(f, constants.has(f.name));
    if (on) b = b.setColumnDictionaryEnabled(f.name, true);
    if (!statisticsEnabled(f)) b = b.setColumnStatisticsEnabled(f.name, w.EnabledStatistics.None);
  }
  if (options.keyValueMetadata !== undefined && Object.keys(options.keyValueMetadata).length > 0) {
    b = b.setKeyValueMetadata(new Map(Object.entries(options.keyValueMetadata)));
  }
  return b.build();
}

/** IPC bytes → wasm-owned batches. */
function toWasmBatches(w: Wasm, ipc: Uint8Array): WasmRecordBatch[] {
  const table = w.Table.fromIPCStream(ipc);
  try {
    return table.recordBatches();
  } finally {
    // Without this the wasm heap grows by every batch ever written (lab §1).
    table.free();
  }
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
 * buffer, e.g. wasm memory, must not hand that buffer over).
 */
export function transferable(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  return (whole ? bytes : bytes.slice()) as Uint8Array<ArrayBuffer>;
}

/** wasm errors may be plain strings. */
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** Encode in this thread. */
export function inlineEncoder(options: EncoderOptions, onChunk: ChunkSink): ParquetEncoder {
  return new InlineEncoder(options, onChunk);
}

class InlineEncoder implements ParquetEncoder {
  private controller!: ReadableStreamDefaultController<WasmRecordBatch>;
  private demand: (() => void) | undefined;
  private demanded = false;
  private readonly failure = new FirstFailure();
  private readonly pump: Promise<void>;
  private closed = false;

  constructor(
    options: EncoderOptions,
    private readonly onChunk: ChunkSink,
  ) {
    const input = new ReadableStream<WasmRecordBatch>(
      {
        start: (c) => {
          this.controller = c;
        },
        pull: () => {
          this.demanded = true;
          this.demand?.();
        },
        cancel: () => {},
      },
      { highWaterMark: 0 },
    );
    this.pump = loadWasm()
      .then((w) => w.transformParquetStream(input, buildProperties(w, options)))
      .then((out) => this.drain(out as ReadableStream<Uint8Array>));
    this.pump.catch((err: unknown) => this.failure.set(asError(err)));
  }

  async write(ipc: Uint8Array): Promise<void> {
    if (this.failure.error) throw this.failure.error;
    const batches = toWasmBatches(await loadWasm(), ipc);
    try {
      while (batches.length > 0) {
        await this.waitForDemand();
        this.demanded = false;
        this.controller.enqueue(batches.shift()!);
      }
    } finally {
      for (const b of batches) b.free();
    }
  }

  private waitForDemand(): Promise<void> {
    if (this.failure.error) return Promise.reject(this.failure.error);
    if (this.demanded) return Promise.resolve();
    return Promise.race([
      new Promise<void>((resolve) => {
        this.demand = () => {
          this.demand = undefined;
          resolve();
        };
      }),
      this.failure.promise,
    ]);
  }

  private async drain(out: ReadableStream<Uint8Array>): Promise<void> {
    const reader = out.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        if (this.failure.error) throw this.failure.error;
        await this.onChunk(value);
      }
    } catch (err) {
      await reader.cancel(err).catch(() => {});
      throw err;
    } finally {
      reader.releaseLock();
    }
  }

  async finish(): Promise<void> {
    if (this.failure.error) throw this.failure.error;
    this.closed = true;
    this.controller.close();
    await this.pump;
    if (this.failure.error) throw this.failure.error;
  }

  async abort(reason: Error): Promise<void> {
    this.failure.set(reason);
    if (!this.closed) {
      this.closed = true;
      try {
        this.controller.error(reason);
      } catch {
        // already closed
      }
    }
    await this.pump.catch(() => {});
  }
}
