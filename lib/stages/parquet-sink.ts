/**
 * parquetSink: the last stage of a pipeline. Accepts single rows or `Row[]`
 * batches of canonical values, writes Parquet files through a {@link Storage}, rolls to
 * a new file at the target size, and reports each durable file as a
 * {@link DataFile} for the Iceberg commit. The Arrow building and Parquet
 * encoding live in lib/parquet; this is only the stream adapter.
 */
import { posix } from 'node:path';
import { Writable } from 'node:stream';
import { DativoError, toDativoError } from '../errors.js';
import {
  arrowSchema,
  finishColumnStats,
  mergeColumnStats,
  RecordBatchBuilder,
  type ColumnStatsAcc,
} from '../parquet/arrow.js';
import { chooseDictionaryColumns, ParquetFileWriter, type ParquetCompression } from '../parquet/writer.js';
import type { Storage } from '../storage/types.js';
import { RUN_ID_COLUMN, type AssetField, type ColumnStats, type DataFile, type Row } from '../types.js';
import { tableFromIPC, type RecordBatch, type Schema } from 'apache-arrow';
import { isIpcBatch, type IpcBatch } from '../parquet/ipc-batch.js';

/** Options of {@link parquetSink}. */
export interface ParquetSinkOptions {
  storage: Storage;
  /** Columns of the table, in order, including system columns. */
  fields: AssetField[];
  /** Columns with one value for every row (e.g. `_dativo_run_id`); rows are not read for them. */
  constants?: Record<string, unknown>;
  /** Directory of the files, relative to the storage root, e.g. `acme/sales/orders/data/ingest_date=2026-11-27`. */
  directory: string;
  /** `DataFile.relativePath` is relative to this directory (relative to the storage root); default: the root. */
  relativeTo?: string;
  /** File names are `<filePrefix>-<seq, 5 digits>.parquet`; include the run id so names never repeat. */
  filePrefix: string;
  /** Copied into every DataFile; default `{}`. */
  partition?: Record<string, unknown>;
  /**
   * Roll to a new file once the bytes handed to storage reach this; default
   * 128 MiB. Bytes leave the encoder a row group at a time, and the encoder
   * may be up to two batches behind, so a file can exceed the target by about
   * one row group plus three batches.
   */
  targetFileSizeBytes?: number;
  /** Upper bound of rows per row group; default 100,000. */
  rowGroupRows?: number;
  /**
   * Approximate upper bound of a row group's uncompressed (Arrow) size; default
   * 128 MiB. Each file derives its rows per row group from the bytes per row of
   * its first batch, so wide rows get smaller row groups and the memory held by
   * the encoder stays within this budget.
   */
  rowGroupBytes?: number;
  /** Default `zstd`. */
  compression?: ParquetCompression;
  /**
   * Single rows written to the sink are appended straight into Arrow column
   * buffers; a batch is handed to the encoder once it holds this many rows
   * (default 10,000, never more than a row group). `Row[]` chunks keep their
   * own boundaries instead.
   */
  batchRows?: number;
  /** ... or once its column buffers hold this many bytes; default 16 MiB. */
  batchBytes?: number;
  /**
   * Writable buffer, in chunks; default 1 (one `Row[]` batch waits while one
   * is encoded). When writing single rows, pass ~16 so that a row is not a
   * pause/resume of the upstream stream each.
   */
  highWaterMark?: number;
  /** Storage object metadata (S3 `x-amz-meta-*`). */
  metadata?: Record<string, string>;
  /**
   * Parquet footer key/value metadata, e.g. `{ 'dativo.asset': 'orders' }`.
   * `dativo.run_id` is added from the `_dativo_run_id` constant when there is one.
   */
  footerMetadata?: Record<string, string>;
  signal?: AbortSignal;
}

/** The sink: a Writable of rows or `Row[]` batches that emits `'file'` (DataFile) per durable file. */
export interface ParquetSink extends Writable {
  /** Every finished, durable file so far, in order. */
  readonly files: DataFile[];
  /** Parquet bytes handed to storage so far: finished files plus the one in progress (for progress reports). */
  readonly bytesWritten: number;
  on(event: 'file', listener: (file: DataFile) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Default target file size: 128 MiB. */
export const DEFAULT_TARGET_FILE_SIZE = 128 * 1024 * 1024;
/** Default rows per row group. */
export const DEFAULT_ROW_GROUP_ROWS = 100_000;
/** Default uncompressed row-group budget: 128 MiB. */
export const DEFAULT_ROW_GROUP_BYTES = 128 * 1024 * 1024;
/** Default rows per batch built from single rows. */
export const DEFAULT_SINK_BATCH_ROWS = 10_000;
/** Default byte bound of a batch built from single rows: 16 MiB. */
export const DEFAULT_SINK_BATCH_BYTES = 16 * 1024 * 1024;

interface OpenFile {
  writer: ParquetFileWriter;
  relPath: string;
  /** Rows per row group chosen for this file. */
  groupRows: number;
  rows: number;
  stats: ColumnStatsAcc[] | undefined;
}

class ParquetSinkWritable extends Writable implements ParquetSink {
  readonly files: DataFile[] = [];
  private readonly schema: Schema;
  private readonly constants: Record<string, unknown>;
  private readonly target: number;
  private readonly rowGroupRows: number;
  private readonly rowGroupBytes: number;
  private readonly footer: Record<string, string>;
  private readonly batchRows: number;
  private readonly batchBytes: number;
  private readonly builder: RecordBatchBuilder;
  private current: OpenFile | undefined;
  private seq = 0;

  get bytesWritten(): number {
    return this.files.reduce((n, f) => n + f.fileSizeBytes, 0) + (this.current?.writer.bytesWritten ?? 0);
  }

  constructor(private readonly opts: ParquetSinkOptions) {
    // One batch in the buffer: upstream sees backpressure as soon as we are busy.
    super({ objectMode: true, highWaterMark: opts.highWaterMark ?? 1, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) });
    this.schema = arrowSchema(opts.fields);
    this.constants = opts.constants ?? {};
    this.target = opts.targetFileSizeBytes ?? DEFAULT_TARGET_FILE_SIZE;
    this.rowGroupRows = opts.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS;
    this.rowGroupBytes = opts.rowGroupBytes ?? DEFAULT_ROW_GROUP_BYTES;
    this.batchRows = Math.max(1, opts.batchRows ?? DEFAULT_SINK_BATCH_ROWS);
    this.batchBytes = Math.max(1, opts.batchBytes ?? DEFAULT_SINK_BATCH_BYTES);
    const runId = this.constants[RUN_ID_COLUMN];
    this.footer = { ...(typeof runId === 'string' ? { 'dativo.run_id': runId } : {}), ...(opts.footerMetadata ?? {}) };
    for (const name of Object.keys(this.constants)) {
      if (!opts.fields.some((f) => f.name === name)) {
        throw new DativoError('INTERNAL', `constant column ${name} is not a field of the table`, { context: { column: name } });
      }
    }
    // Reused buffers: ParquetFileWriter.write copies each batch before anything is appended again.
    const capacity = Math.min(this.batchRows, this.rowGroupRows, DEFAULT_SINK_BATCH_ROWS);
    this.builder = new RecordBatchBuilder(opts.fields, this.constants, this.schema, capacity, true);
  }

  override _write(chunk: Row | Row[] | IpcBatch, _enc: BufferEncoding, callback: (error?: Error | null) => void): void {
    // No closure is made on the per-row path: it runs once per row.
    if (Array.isArray(chunk)) {
      this.settle(this.writeRows(chunk), callback);
      return;
    }
    if (isIpcBatch(chunk)) {
      this.settle(this.writeIpcBatch(chunk), callback);
      return;
    }
    if (chunk === null || typeof chunk !== 'object') {
      this.failWrite(new DativoError('INTERNAL', 'parquetSink expects rows or Row[] batches', { context: { got: chunk === null ? 'null' : typeof chunk } }), callback);
      return;
    }
    const b = this.builder;
    try {
      b.append(chunk);
    } catch (err) {
      this.failWrite(err, callback);
      return;
    }
    const n = b.length;
    // The byte bound is checked every 256 rows: summing the columns per row would cost more than it saves.
    if (n >= Math.min(this.batchRows, this.current?.groupRows ?? this.rowGroupRows) || ((n & 255) === 0 && b.byteLength >= this.batchBytes)) {
      this.settle(this.flushBuilder(), callback);
      return;
    }
    callback();
  }

  private settle(p: Promise<void>, callback: (error?: Error | null) => void): void {
    p.then(
      () => callback(),
      (err: unknown) => this.failWrite(err, callback),
    );
  }

  private failWrite(err: unknown, callback: (error?: Error | null) => void): void {
    callback(toDativoError(err, { file: this.current?.relPath }));
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.flushBuilder().then(() => this.closeFile()).then(
      () => callback(),
      (err: unknown) => callback(toDativoError(err)),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const file = this.current;
    this.current = undefined;
    if (file === undefined) {
      callback(error);
      return;
    }
    file.writer.abort(error ?? new DativoError('ABORTED', 'parquet sink destroyed')).then(
      () => callback(error),
      (abortErr: unknown) => callback(error ?? toDativoError(abortErr)),
    );
  }

  private async writeRows(rows: Row[]): Promise<void> {
    // Single rows written before this batch form their own batch.
    await this.flushBuilder();
    // Slices bound the Arrow buffers and let the size check run between row groups.
    let start = 0;
    while (start < rows.length) {
      const step = this.current?.groupRows ?? this.rowGroupRows;
      const end = Math.min(rows.length, start + step);
      for (let i = start; i < end; i++) this.builder.append(rows[i]!);
      start = end;
      await this.flushBuilder();
    }
  }

  /** A batch built elsewhere (validate's coercion threads): encoded as it is. */
  private async writeIpcBatch(b: IpcBatch): Promise<void> {
    await this.flushBuilder();
    if (b.rows === 0) return;
    if (b.stats.length !== this.opts.fields.length) throw new DativoError('INTERNAL', 'an Arrow batch of another table reached the Parquet sink', { context: { columns: b.stats.length } });
    // The first batch of a file chooses its dictionary columns: read it back (views, no copy).
    const file = this.current ?? this.openFile(b.byteLength / b.rows, tableFromIPC(b.ipc).batches[0]!);
    await file.writer.writeIpc(b.ipc, b.rows);
    file.rows += b.rows;
    if (file.stats === undefined) file.stats = b.stats;
    else for (let i = 0; i < b.stats.length; i++) mergeColumnStats(file.stats[i]!, b.stats[i]!);
    if (file.writer.bytesWritten >= this.target) await this.closeFile();
  }

  /** Encode the rows in the builder as one batch; roll the file once it reached the target size. */
  private async flushBuilder(): Promise<void> {
    const n = this.builder.length;
    if (n === 0) return;
    const built = this.builder.build();
    const file = this.current ?? this.openFile(built.byteLength / n, built.batch);
    await file.writer.write(built.batch);
    file.rows += n;
    if (file.stats === undefined) file.stats = built.stats;
    else for (let i = 0; i < built.stats.length; i++) mergeColumnStats(file.stats[i]!, built.stats[i]!);
    if (file.writer.bytesWritten >= this.target) await this.closeFile();
  }

  private openFile(bytesPerRow: number, first: RecordBatch): OpenFile {
    const groupRows = Math.max(1, Math.min(this.rowGroupRows, Math.floor(this.rowGroupBytes / Math.max(1, bytesPerRow))));
    this.seq += 1;
    const name = `${this.opts.filePrefix}-${String(this.seq).padStart(5, '0')}.parquet`;
    const relPath = posix.join(this.opts.directory, name);
    const handle = this.opts.storage.createWriteStream(relPath, {
      contentType: 'application/vnd.apache.parquet',
      ...(this.opts.metadata !== undefined ? { metadata: this.opts.metadata } : {}),
      ...(this.opts.signal !== undefined ? { signal: this.opts.signal } : {}),
    });
    const writer = new ParquetFileWriter(handle, {
      fields: this.opts.fields,
      constantColumns: Object.keys(this.constants),
      // Chosen per file from its first batch: measured 14% smaller and 16% less CPU
      // than choosing by type on a table with unique emails and sparse notes.
      dictionaryColumns: chooseDictionaryColumns(this.opts.fields, first, Object.keys(this.constants)),
      rowGroupRows: groupRows,
      ...(this.opts.compression !== undefined ? { compression: this.opts.compression } : {}),
      keyValueMetadata: this.footer,
    });
    this.current = { writer, relPath, groupRows, rows: 0, stats: undefined };
    return this.current;
  }

  private async closeFile(): Promise<void> {
    const file = this.current;
    if (file === undefined) return;
    this.current = undefined;
    if (file.rows === 0) {
      await file.writer.abort();
      return;
    }
    const done = await file.writer.finish();
    const columns: Record<string, ColumnStats> = {};
    this.opts.fields.forEach((f, i) => {
      const s = finishColumnStats(file.stats![i]!);
      const size = done.footer?.columnSizes[f.name];
      if (size !== undefined) s.sizeBytes = size;
      columns[f.name] = s;
    });
    const dataFile: DataFile = {
      uri: done.uri,
      relativePath: this.opts.relativeTo === undefined ? file.relPath : posix.relative(this.opts.relativeTo, file.relPath),
      fileSizeBytes: done.size,
      recordCount: file.rows,
      partition: { ...(this.opts.partition ?? {}) },
      columns,
      ...(done.footer !== undefined ? { splitOffsets: done.footer.splitOffsets } : {}),
    };
    if (done.footer !== undefined && done.footer.numRows !== file.rows) {
      throw new DativoError('INTERNAL', `footer of ${file.relPath} says ${done.footer.numRows} rows, wrote ${file.rows}`, {
        context: { file: file.relPath },
      });
    }
    this.files.push(dataFile);
    this.emit('file', dataFile);
  }
}

/**
 * Create a Parquet sink (object-mode Writable of single rows or `Row[]`
 * batches; see {@link ParquetSinkOptions.batchRows}). Files appear at
 * their final path only when complete and durable; `destroy(err)` aborts
 * the file in progress (files already finished stay, listed in `files`).
 */
export function parquetSink(opts: ParquetSinkOptions): ParquetSink {
  return new ParquetSinkWritable(opts);
}
