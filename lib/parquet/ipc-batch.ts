/**
 * An Arrow batch already built (in a worker thread: lib/stages/coerce-pool.ts)
 * and serialised as Arrow IPC stream bytes, with the column statistics of
 * its rows. The validate stage emits these for packed records; the Parquet
 * sink hands the bytes to its encoder as they are.
 */
import type { ColumnStatsAcc } from './arrow/stats.js';

export const IPC_BATCH = Symbol.for('dativo.ipcBatch');

export interface IpcBatch {
  readonly [IPC_BATCH]: true;
  /** Arrow IPC stream of one RecordBatch of the table's schema (its own ArrayBuffer). */
  readonly ipc: Uint8Array<ArrayBuffer>;
  readonly rows: number;
  /** One accumulator per table column, in order. */
  readonly stats: ColumnStatsAcc[];
  /** Bytes of the Arrow buffers (the batch's size in memory). */
  readonly byteLength: number;
}

export function ipcBatch(b: Omit<IpcBatch, typeof IPC_BATCH>): IpcBatch {
  return { [IPC_BATCH]: true, ipc: b.ipc, rows: b.rows, stats: b.stats, byteLength: b.byteLength };
}

export function isIpcBatch(x: unknown): x is IpcBatch {
  return typeof x === 'object' && x !== null && (x as { [IPC_BATCH]?: unknown })[IPC_BATCH] === true;
}
