/**
 * The validate stage: raw records in, canonical rows out (object mode). A thin
 * adapter over the record coercer compiled once per asset
 * (lib/records/coerce.ts); rejected records go to the reject sink.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { RejectSink } from '../connector.js';
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import { compileAssetCoercer, type Coercer, type FieldError } from '../records/coerce.js';
import { locationOf } from '../records/location.js';
import { isColumnarText, type ColumnarText } from '../records/columnar.js';
import { isPackedRecords, type PackedRecords } from '../records/packed.js';
import { ipcBatch } from '../parquet/ipc-batch.js';
import { ipcBytes } from '../parquet/ipc-pool.js';
import type { Asset, AssetField, Row } from '../types.js';
import { CoerceSession, type BuiltPacked } from './coerce-pool.js';
import { ColumnarBuilder } from './columnar.js';

/** See {@link ValidateOptions.gate}. */
export interface SourceGate {
  /** An error once `rec` is past a record the source refused, else undefined. */
  check(rec: unknown): Error | undefined;
  /** The refusal, if any, at the end of the stream. */
  atEnd(): Error | undefined;
}

/** Options of {@link validate}. */
export interface ValidateOptions {
  /**
   * `strict`: the first invalid record fails the stream with
   * VALIDATION_FAILED (after writing it to the reject sink);
   * `warn`: invalid records are rejected and the stream goes on.
   */
  mode: 'strict' | 'warn';
  /** Where invalid records go. */
  rejects: RejectSink;
  /** For the once-per-column warning about undeclared columns; default none. */
  log?: Logger;
  /** Object name, for rejects' context and errors; default the asset's `object` or name. */
  object?: string;
  /** Object-mode high-water mark of each side; default 16 records. */
  highWaterMark?: number;
  /**
   * Asked before a record is rejected: false drops it silently, because an
   * earlier run already handled (rejected) it. The cursor tracker's
   * `acceptRejected`, so that rejected rows move the cursor too. Default:
   * every invalid record is rejected.
   */
  admitReject?: (raw: Row) => boolean;
  /**
   * Coerce {@link PackedRecords} chunks (a text source's batches, see
   * lib/records/packed.ts) in `threads` worker threads, straight into the
   * Arrow columns of the table `fields` (with `constants`, as the Parquet
   * sink's): such a chunk comes out as an {@link IpcBatch} for the sink,
   * in order. Single records are coerced here as always. Without this
   * option a packed chunk is an error. Not with `admitReject`.
   */
  offload?: { threads: number; fields: AssetField[]; constants: Record<string, unknown>; batchRows: number };
  /**
   * A check asked before each chunk, and at the end (the strict gate of
   * lib/run/strict-gate.ts: a record the source itself refused fails the
   * run once the records before it went through). An error for a record
   * fails the stream there; for a batch (packed or columnar, whose earlier
   * batches may still be at work) it fails after them, and what follows is
   * dropped. Here rather than as a stage of its own: a pass-through stage
   * cost every record one more stream hop.
   */
  gate?: SourceGate;
  /**
   * Build {@link ColumnarText} chunks (a CSV source's bytes and field
   * offsets, lib/records/columnar.ts) straight into the Arrow columns of the
   * table `fields` (with `constants`, as the Parquet sink's), on this
   * thread (lib/stages/columnar.ts): they come out as {@link IpcBatch}es of
   * up to `batchRows` rows, in order. Without this option such a chunk is
   * an error. Not with `admitReject`.
   */
  columnar?: { fields: AssetField[]; constants: Record<string, unknown>; batchRows: number };
}

/** Marks a {@link failAfterPrevious} chunk. */
const FAIL_AFTER = Symbol.for('dativo.failAfterPrevious');

/**
 * A chunk that makes the validate stage fail with `error` once every chunk
 * before it has been validated (and failed first, if one of them does): what
 * the gate's failure on a batch becomes (batches in the coercion threads are
 * still being validated when the gate sees the next one).
 */
function failAfterPrevious(error: Error): { readonly [FAIL_AFTER]: Error } {
  return { [FAIL_AFTER]: error };
}

function failAfterOf(x: unknown): Error | undefined {
  return typeof x === 'object' && x !== null ? (x as { [FAIL_AFTER]?: Error })[FAIL_AFTER] : undefined;
}

/** Packed batches handed to the threads and not yet emitted, at most: threads + this. */
const EXTRA_IN_FLIGHT = 1;

/** The validate Transform, with its counters. */
export class ValidateStream extends Transform {
  /** Records received. */
  rowsIn = 0;
  /** Canonical rows emitted. */
  rowsOut = 0;
  /** Records refused. */
  rejected = 0;

  readonly #coerce: Coercer;
  readonly #mode: 'strict' | 'warn';
  readonly #rejects: RejectSink;
  readonly #object: string;
  readonly #admitReject: ((raw: Row) => boolean) | undefined;
  readonly #asset: Asset;
  readonly #offload: ValidateOptions['offload'];
  readonly #log: Logger | undefined;
  #session: CoerceSession | undefined;
  readonly #columnarOpts: ValidateOptions['columnar'];
  #columnar: ColumnarBuilder | undefined;
  /** Packed batches in the threads, oldest first: emitted in this order. */
  readonly #inFlight: { packed: PackedRecords; built: Promise<BuiltPacked> }[] = [];
  readonly #gate: SourceGate | undefined;
  /** The gate failed a batch: what follows is dropped. */
  #gateClosed = false;
  /** A batch passed the gate (its failure at the end waits for the batches in flight). */
  #gateSawBatch = false;
  #warnedHeader: readonly string[] | undefined;
  readonly #unknownWarned = new Set<string>();

  constructor(asset: Asset, opts: ValidateOptions) {
    const hwm = opts.highWaterMark ?? 16;
    // An emitted Arrow batch holds thousands of rows: keep one waiting, not 16.
    super({ objectMode: true, readableHighWaterMark: opts.offload || opts.columnar ? 1 : hwm, writableHighWaterMark: hwm });
    if ((opts.offload || opts.columnar) && opts.admitReject) throw new DativoError('INTERNAL', 'validate: offload or columnar and admitReject do not go together');
    this.#columnarOpts = opts.columnar;
    this.#asset = asset;
    this.#offload = opts.offload;
    this.#log = opts.log;
    this.#mode = opts.mode;
    this.#rejects = opts.rejects;
    this.#object = opts.object ?? asset.object ?? asset.name;
    this.#admitReject = opts.admitReject;
    this.#gate = opts.gate;
    this.#coerce = compileAssetCoercer(asset, { onUnknownField: (column) => this.#warnColumn(column) });
  }

  /** Once per column the asset does not declare (its values are not written). */
  #warnColumn(column: string): void {
    const log = this.#log;
    if (log === undefined || this.#unknownWarned.has(column)) return;
    this.#unknownWarned.add(column);
    log.warn(
      // A logger already bound to the object (runJob's) would print the key twice.
      { event_type: 'unknown_column', ...(log.bindings()['object'] === undefined ? { object: this.#object } : {}), column },
      `column "${column}" is not in asset ${this.#asset.name}: not written`,
    );
  }

  override _transform(raw: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#gate !== undefined) {
      if (this.#gateClosed) {
        cb();
        return;
      }
      const batch = isPackedRecords(raw) || isColumnarText(raw);
      this.#gateSawBatch ||= batch;
      const err = this.#gate.check(raw);
      if (err !== undefined) {
        if (!batch) {
          cb(err);
          return;
        }
        this.#gateClosed = true;
        raw = failAfterPrevious(err);
      }
    }
    this.#take(raw, cb);
  }

  /** One chunk past the gate. */
  #take(raw: unknown, cb: TransformCallback): void {
    if (isColumnarText(raw)) {
      try {
        cb(this.#addColumnar(raw) ?? null);
      } catch (err) {
        cb(err as Error);
      }
      return;
    }
    // Keep the order: rows built from columnar chunks before this one come out first.
    if (this.#columnar !== undefined && this.#columnar.length > 0) this.#emitColumnar();
    if (isPackedRecords(raw)) {
      this.#submit(raw).then(() => cb(), (err: unknown) => cb(err as Error));
      return;
    }
    const failure = failAfterOf(raw);
    if (failure !== undefined) {
      this.#drain().then(() => cb(failure), (err: unknown) => cb(err as Error));
      return;
    }
    if (this.#inFlight.length > 0) {
      // Keep the order: batches handed over before this record come out first.
      this.#drain().then(() => this.#take(raw, cb), (err: unknown) => cb(err as Error));
      return;
    }
    this.rowsIn++;
    let errors: FieldError[];
    try {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        errors = [{ field: '', code: 'type', message: `record is ${Array.isArray(raw) ? 'an array' : String(raw === null ? null : typeof raw)}, not an object` }];
      } else {
        const r = this.#coerce(raw as Row);
        if (r.ok) {
          this.rowsOut++;
          cb(null, r.row);
          return;
        }
        errors = r.errors;
        if (this.#admitReject !== undefined && !this.#admitReject(raw as Row)) {
          cb();
          return;
        }
      }
      this.#reject(raw, errors, cb);
    } catch (err) {
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    const refused = this.#gate !== undefined && !this.#gateClosed ? this.#gate.atEnd() : undefined;
    if (refused !== undefined && !this.#gateSawBatch) {
      cb(refused);
      return;
    }
    try {
      if (this.#columnar !== undefined && this.#columnar.length > 0) this.#emitColumnar();
    } catch (err) {
      cb(err as Error);
      return;
    }
    // A refusal after batches fails once those still at work came out (or failed first).
    this.#drain().then(
      () => cb(refused ?? null),
      (err: unknown) => cb(err as Error),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#session?.close();
    this.#inFlight.length = 0;
    cb(err);
  }

  /** Append a columnar chunk; its refused records to the reject sink; in strict mode, the error that ends the stream. */
  #addColumnar(t: ColumnarText): DativoError | undefined {
    const o = this.#columnarOpts;
    if (o === undefined) throw new DativoError('INTERNAL', 'validate got columnar text without the columnar option');
    this.rowsIn += t.rows;
    if (this.#warnedHeader !== t.columns) this.#warnUnknown(t.columns);
    const b = (this.#columnar ??= new ColumnarBuilder(this.#asset, o.fields, o.constants, o.batchRows));
    const rejects = b.add(t);
    this.rowsOut += t.rows - rejects.length;
    for (const r of rejects) {
      const err = this.#rejectOf(r.record, r.errors, r.location);
      if (err) return err;
    }
    if (b.length >= o.batchRows) this.#emitColumnar();
    return undefined;
  }

  /** The rows built from columnar chunks so far, as one Arrow batch for the sink. */
  #emitColumnar(): void {
    const built = this.#columnar!.build();
    // A copy of the reused column buffers, and what the sink's encoder takes.
    const ipc = ipcBytes(built.batch);
    this.push(ipcBatch({ ipc, rows: built.batch.numRows, stats: built.stats, byteLength: built.byteLength }));
  }

  async #submit(p: PackedRecords): Promise<void> {
    const o = this.#offload;
    if (o === undefined) throw new DativoError('INTERNAL', 'validate got packed records without offload');
    this.rowsIn += p.rows;
    if (this.#warnedHeader !== p.columns) this.#warnUnknown(p.columns);
    this.#session ??= new CoerceSession({ asset: this.#asset, fields: o.fields, constants: o.constants, capacity: o.batchRows, workers: o.threads });
    const built = this.#session.submit(p);
    built.catch(() => undefined); // awaited in order below
    this.#inFlight.push({ packed: p, built });
    while (this.#inFlight.length > o.threads + EXTRA_IN_FLIGHT - 1) await this.#emitOldest();
  }

  async #drain(): Promise<void> {
    while (this.#inFlight.length > 0) await this.#emitOldest();
  }

  /** Rejects of the oldest batch in the threads, then its Arrow batch. */
  async #emitOldest(): Promise<void> {
    const { packed, built } = this.#inFlight.shift()!;
    let b: BuiltPacked;
    try {
      b = await built;
    } catch (err) {
      throw new DativoError('INTERNAL', `coercion worker failed: ${(err as Error).message}`, { cause: err });
    }
    for (const r of b.rejects) {
      const record: Row = {};
      packed.columns.forEach((c, i) => {
        if (c === '__proto__') Object.defineProperty(record, c, { value: r.values[i], enumerable: true, writable: true, configurable: true });
        else record[c] = r.values[i] ?? null;
      });
      const err = this.#rejectOf(record, r.errors, { file: packed.file, line: packed.lines[r.index]! });
      if (err) throw err;
    }
    this.rowsOut += b.rows;
    if (b.rows > 0 && b.ipc !== undefined) this.push(ipcBatch({ ipc: b.ipc, rows: b.rows, stats: b.stats, byteLength: b.byteLength }));
  }

  /** The once-per-column warning of the coercer, from a packed batch's header. */
  #warnUnknown(columns: readonly string[]): void {
    this.#warnedHeader = columns;
    const known = new Set(this.#asset.fields.map((f) => f.name));
    for (const column of columns) if (!known.has(column)) this.#warnColumn(column);
  }

  #reject(raw: unknown, errors: FieldError[], cb: TransformCallback): void {
    const err = this.#rejectOf(raw, errors, locationOf(raw));
    cb(err ?? null);
  }

  /** Send one refused record to the reject sink; in strict mode, the error that ends the stream. */
  #rejectOf(raw: unknown, errors: FieldError[], location: Record<string, unknown> | undefined): DativoError | undefined {
    const fields = [...new Set(errors.map((e) => e.field).filter((f) => f !== ''))];
    const code = errors[0]?.code ?? 'type';
    const reason = errors.map((e) => (e.field === '' ? e.message : `${e.field}: ${e.message}`)).join('; ');
    this.rejected++;
    this.#rejects.reject({ code, reason, fields, record: raw, ...(location ? { location } : {}) });
    if (this.#mode === 'warn') return undefined;
    return (
      new DativoError('VALIDATION_FAILED', `invalid record in strict mode${whereText(location)}: ${reason}`, {
        context: {
          ...(location ?? {}),
          object: this.#object,
          fields,
          rejectCode: code,
          errors,
          ...(location ? { location } : {}),
        },
      })
    );
  }
}

/** ` at <file> line <n>` (or page, ...) for messages; '' without a location. */
export function whereText(location: Record<string, unknown> | undefined): string {
  if (!location) return '';
  const parts = Object.entries(location)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
    .map(([k, v]) => (k === 'file' ? String(v) : `${k} ${String(v)}`));
  return parts.length > 0 ? ` at ${parts.join(' ')}` : '';
}

/**
 * Validate and coerce raw records against `asset` (see compileCoercer for
 * the rules). Object mode: Row in, canonical Row out. The coercer and the
 * asset's constraints are compiled here, once, so an invalid constraint
 * throws CONFIG_INVALID before any record is read.
 */
export function validate(asset: Asset, opts: ValidateOptions): ValidateStream {
  return new ValidateStream(asset, opts);
}
