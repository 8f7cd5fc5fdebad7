/**
 * Coercion and Arrow building in worker threads, for the validate stage: a
 * source that splits text (CSV) hands over {@link PackedRecords} batches
 * (a few transferred buffers, no record objects cross the thread boundary);
 * a worker (lib/stages/coerce-worker.ts) coerces them against the asset and
 * builds the table's Arrow columns, and sends back the batch as Arrow IPC
 * bytes (transferred) with its column statistics and the refused records.
 *
 * One pool per process, grown to the largest number of threads asked for;
 * each validate stage is a session on it, its batches spread over the
 * threads round-robin. A thread keeps the process alive only while it has
 * batches in hand, and is replaced if it dies (the batches in hand then fail).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../worker-thread.js';
import type { ColumnStatsAcc } from '../parquet/arrow.js';
import type { FieldError } from '../records/coerce.js';
import type { PackedRecords } from '../records/packed.js';
import type { Asset, AssetField } from '../types.js';

/** Messages to a worker. */
export type ToCoerce =
  | { op: 'open'; id: number; asset: Asset; fields: AssetField[]; constants: Record<string, unknown>; capacity: number }
  | { op: 'close'; id: number }
  | {
      op: 'batch';
      id: number;
      job: number;
      columns: readonly string[];
      rows: number;
      text: Uint8Array;
      ends: Uint32Array;
      nulls: Uint8Array;
    };

/** A refused record of a batch: its index in the batch, its raw values, why. */
export interface PackedReject {
  index: number;
  values: (string | null)[];
  errors: FieldError[];
}

/** Messages from a worker. */
export type FromCoerce =
  | {
      op: 'built';
      id: number;
      job: number;
      /** Rows in the Arrow batch (the records that passed). */
      rows: number;
      /** Arrow IPC stream bytes of the batch; undefined when no record passed. */
      ipc: Uint8Array<ArrayBuffer> | undefined;
      stats: ColumnStatsAcc[];
      byteLength: number;
      rejects: PackedReject[];
    }
  | { op: 'error'; id: number; job: number; message: string };

export type BuiltPacked = Omit<Extract<FromCoerce, { op: 'built' }>, 'op' | 'id' | 'job'>;

/**
 * Coercion threads when the job does not say (`target.workers`): one with 4
 * or more cores, else none. Measured on 2 cores (docs/benchmarks.md): the
 * main thread, the Parquet encoder's thread and V8's GC threads nearly fill
 * both already; the thread makes an idle box ~20 % faster but costs ~10 %
 * more CPU (packing) and ~150 MB of peak RSS (its isolate, heap and batches
 * in flight), and a busy box slower. `DATIVO_COERCE_WORKERS=<n>` overrides it.
 */
export function defaultCoerceWorkers(): number {
  const env = process.env['DATIVO_COERCE_WORKERS'];
  if (env !== undefined && /^\d+$/.test(env)) return Number(env);
  return availableParallelism() >= 4 ? 1 : 0;
}

interface Pending {
  session: number;
  resolve: (b: BuiltPacked) => void;
  reject: (err: Error) => void;
}

class PoolWorker {
  readonly worker: Worker;
  /** Sessions opened on this thread. */
  readonly sessions = new Set<number>();
  readonly pending = new Map<number, Pending>();
  dead = false;

  constructor(onDeath: (w: PoolWorker) => void) {
    this.worker = startModuleWorker(import.meta.url, 'coerce-worker');
    this.worker.on('message', (msg: FromCoerce) => {
      const p = this.pending.get(msg.job);
      if (msg.op === 'error' && msg.job === -1) {
        // A session failed to open: fail whatever it has in hand here.
        for (const [job, q] of this.pending) {
          if (q.session !== msg.id) continue;
          this.settle(job);
          q.reject(new Error(msg.message));
        }
        return;
      }
      if (p === undefined) return;
      this.settle(msg.job);
      if (msg.op === 'error') p.reject(new Error(msg.message));
      else p.resolve({ rows: msg.rows, ipc: msg.ipc, stats: msg.stats, byteLength: msg.byteLength, rejects: msg.rejects });
    });
    const died = (err: Error): void => {
      if (this.dead) return;
      this.dead = true;
      const pending = [...this.pending.values()];
      this.pending.clear();
      onDeath(this);
      for (const p of pending) p.reject(err);
    };
    this.worker.on('error', died);
    this.worker.on('exit', (code) => died(new Error(`coercion worker exited with code ${code}`)));
    this.worker.unref();
  }

  private settle(job: number): void {
    this.pending.delete(job);
    if (this.pending.size === 0) this.worker.unref();
  }

  post(msg: ToCoerce, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  submit(job: number, p: Pending, msg: ToCoerce, transfer: ArrayBuffer[]): void {
    if (this.pending.size === 0) this.worker.ref();
    this.pending.set(job, p);
    this.post(msg, transfer);
  }
}


const pool: PoolWorker[] = [];
let nextSession = 1;
let nextJob = 1;

function grow(size: number): void {
  while (pool.length < size) {
    pool.push(
      new PoolWorker((dead) => {
        const i = pool.indexOf(dead);
        if (i >= 0) pool.splice(i, 1);
      }),
    );
  }
}

/** What a session builds: the asset's coercion into the table's columns. */
export interface CoerceSessionOptions {
  asset: Asset;
  /** Columns of the table, in order, system columns included (as the Parquet sink's). */
  fields: AssetField[];
  /** Columns with one value for every row (as the Parquet sink's). */
  constants: Record<string, unknown>;
  /** Rows a batch holds at most (the initial buffer size). */
  capacity: number;
  /** Threads to use (>= 1). */
  workers: number;
}

/** One validate stage's use of the pool. */
export class CoerceSession {
  private readonly id = nextSession++;
  private next = 0;
  private closed = false;

  constructor(private readonly opts: CoerceSessionOptions) {
    grow(Math.max(1, opts.workers));
  }

  /** Coerce and build one batch; its buffers are transferred (unusable here afterwards). */
  submit(p: PackedRecords): Promise<BuiltPacked> {
    if (this.closed) return Promise.reject(new Error('coercion session closed'));
    const threads = Math.max(1, this.opts.workers);
    grow(threads); // replaces a thread that died
    const w = pool[this.next++ % threads]!;
    if (!w.sessions.has(this.id)) {
      w.sessions.add(this.id);
      const { asset, fields, constants, capacity } = this.opts;
      w.post({ op: 'open', id: this.id, asset, fields, constants, capacity });
    }
    const job = nextJob++;
    return new Promise<BuiltPacked>((resolve, reject) => {
      w.submit(job, { session: this.id, resolve, reject }, { op: 'batch', id: this.id, job, columns: p.columns, rows: p.rows, text: p.text, ends: p.ends, nulls: p.nulls }, [
        p.text.buffer,
        p.ends.buffer,
        p.nulls.buffer,
      ]);
    });
  }

  /** Drop the session's state in the threads. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of pool) {
      if (w.sessions.delete(this.id)) w.post({ op: 'close', id: this.id });
    }
  }
}
