/**
 * The batch stage: rows in, `Row[]` out, each batch bounded in rows and in
 * (estimated) bytes, so that memory is a budget you can state. The logic is
 * the plain {@link BatchAccumulator}; {@link batch} only adapts it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { Row } from '../types.js';

/** Default row bound of a batch. */
export const DEFAULT_BATCH_ROWS = 10_000;
/** Default byte bound of a batch: 16 MiB. */
export const DEFAULT_BATCH_BYTES = 16 * 1024 * 1024;

/**
 * A cheap estimate of a canonical row's size: strings count their length,
 * numbers and bigints 8, booleans 1, null 1, Uint8Array its byteLength, any
 * other object 16. It tracks the data volume, not V8's exact heap use.
 */
export function estimateRowBytes(row: Row): number {
  let n = 0;
  for (const k in row) {
    const v = row[k];
    switch (typeof v) {
      case 'string':
        n += v.length;
        break;
      case 'number':
      case 'bigint':
        n += 8;
        break;
      case 'boolean':
        n += 1;
        break;
      case 'undefined':
        n += 1;
        break;
      default:
        n += v === null ? 1 : v instanceof Uint8Array ? v.byteLength : 16;
    }
  }
  return n;
}

/** Bounds of a batch. */
export interface BatchOptions {
  /** Emit once a batch holds this many rows; default {@link DEFAULT_BATCH_ROWS}. */
  maxRows?: number;
  /** Emit once a batch's estimated size reaches this many bytes; default {@link DEFAULT_BATCH_BYTES}. */
  maxBytes?: number;
}

/**
 * Collects rows into batches. `add()` returns a full batch when the row
 * count reaches `maxRows` or the estimated bytes reach `maxBytes` (a single
 * row larger than `maxBytes` therefore makes a batch of its own); `flush()`
 * returns the rest at the end.
 */
export class BatchAccumulator {
  readonly maxRows: number;
  readonly maxBytes: number;
  #rows: Row[] = [];
  #bytes = 0;

  constructor(opts: BatchOptions = {}) {
    this.maxRows = opts.maxRows ?? DEFAULT_BATCH_ROWS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_BATCH_BYTES;
    if (!(this.maxRows >= 1) || !(this.maxBytes >= 1)) throw new RangeError('batch bounds must be >= 1');
  }

  /** Rows in the batch being filled. */
  get rows(): number {
    return this.#rows.length;
  }

  /** Estimated bytes of the batch being filled. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Add a row; returns the batch if this row completed it. */
  add(row: Row): Row[] | undefined {
    this.#rows.push(row);
    this.#bytes += estimateRowBytes(row);
    if (this.#rows.length >= this.maxRows || this.#bytes >= this.maxBytes) return this.flush();
    return undefined;
  }

  /** The partial batch, if any rows are waiting. */
  flush(): Row[] | undefined {
    if (this.#rows.length === 0) return undefined;
    const out = this.#rows;
    this.#rows = [];
    this.#bytes = 0;
    return out;
  }
}

/** The batch Transform. */
export class BatchStream extends Transform {
  /** Batches emitted. */
  batches = 0;
  readonly #acc: BatchAccumulator;

  constructor(opts: BatchOptions & { highWaterMark?: number } = {}) {
    // One finished batch may wait downstream; while it does, the Transform
    // stops taking rows, so read-ahead is one batch plus the one being filled
    // plus `highWaterMark` rows (default 16).
    super({ objectMode: true, readableHighWaterMark: 1, writableHighWaterMark: opts.highWaterMark ?? 16 });
    this.#acc = new BatchAccumulator(opts);
  }

  override _transform(row: Row, _enc: BufferEncoding, cb: TransformCallback): void {
    const out = this.#acc.add(row);
    if (out === undefined) {
      cb();
      return;
    }
    this.batches++;
    cb(null, out);
  }

  override _flush(cb: TransformCallback): void {
    const out = this.#acc.flush();
    if (out !== undefined) {
      this.batches++;
      this.push(out);
    }
    cb();
  }
}

/**
 * Group rows into `Row[]` batches bounded by `maxRows` (default 10,000) and
 * `maxBytes` (default 16 MiB, estimated by {@link estimateRowBytes}); the last,
 * partial batch is emitted at the end. Respects backpressure: at most one
 * finished batch waits for the consumer. `highWaterMark` is the row buffer
 * on the writable side (default 16).
 */
export function batch(opts: BatchOptions & { highWaterMark?: number } = {}): BatchStream {
  return new BatchStream(opts);
}
