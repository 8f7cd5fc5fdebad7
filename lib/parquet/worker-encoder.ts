/**
 * Parquet encoding in a worker thread: the main thread builds Arrow batches
 * and hands their IPC bytes over (transferred, not copied); one shared
 * worker per process encodes every open file (lib/parquet/encoder-worker.ts)
 * and sends the Parquet bytes back. One batch may wait in the worker while
 * another is encoded, so building and encoding overlap on two cores.
 *
 * The worker starts on first use, keeps the process alive only while a file
 * is open, and is replaced if it dies (the files open then fail).
 */
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../worker-thread.js';
import { DativoError } from '../errors.js';
import { pooledIpc, releaseIpcBuffer } from './ipc-pool.js';
import { FirstFailure, transferable, type ChunkSink, type EncoderOptions, type ParquetEncoder } from './encoder.js';

/** Messages to the worker. */
export type ToEncoder =
  | { op: 'open'; id: number; options: EncoderOptions }
  | { op: 'write'; id: number; ipc: Uint8Array }
  | { op: 'ack'; id: number }
  | { op: 'finish'; id: number }
  | { op: 'abort'; id: number };

/** Messages from the worker. */
export type FromEncoder =
  | { op: 'chunk'; id: number; chunk: Uint8Array }
  | { op: 'taken'; id: number; ipc: Uint8Array }
  | { op: 'finished'; id: number }
  | { op: 'aborted'; id: number }
  | { op: 'error'; id: number; message: string };

/** Where files are encoded: `worker` (default with 2+ cores) or `inline` (this thread). */
export type EncoderPlacement = 'worker' | 'inline';

/**
 * The default placement: `DATIVO_PARQUET_ENCODER=worker|inline` if set,
 * else a worker when the machine has more than one core.
 */
export function defaultPlacement(): EncoderPlacement {
  const env = process.env['DATIVO_PARQUET_ENCODER'];
  if (env === 'worker' || env === 'inline') return env;
  return availableParallelism() > 1 ? 'worker' : 'inline';
}

interface Client {
  onMessage(msg: FromEncoder): void;
  onWorkerDied(err: Error): void;
}

/**
 * The encoder thread's young generation, in MB (Node's default is 16 MB of
 * semi-spaces plus what V8 adds). Its young objects are few and short-lived
 * (the values live in ArrayBuffers), but the IPC batches it got and the pages
 * it compressed are freed only by a scavenge: with the default, one came
 * every few row groups and 20-45 MB of freed buffers waited for it (and
 * malloc kept the pages after). Measured in docs/benchmarks.md (Memory).
 */
export const ENCODER_YOUNG_GENERATION_MB = 4;

let worker: Worker | undefined;
const clients = new Map<number, Client>();
let nextId = 1;


function getWorker(): Worker {
  if (worker !== undefined) return worker;
  const w = startModuleWorker(import.meta.url, 'encoder-worker', { maxYoungGenerationSizeMb: ENCODER_YOUNG_GENERATION_MB });
  w.on('message', (msg: FromEncoder) => clients.get(msg.id)?.onMessage(msg));
  const died = (err: Error): void => {
    if (worker !== w) return;
    worker = undefined;
    const open = [...clients.values()];
    clients.clear();
    for (const c of open) c.onWorkerDied(err);
  };
  w.on('error', (err) => died(err));
  w.on('exit', (code) => died(new Error(`parquet encoder worker exited with code ${code}`)));
  w.unref();
  worker = w;
  return w;
}

function register(id: number, client: Client): Worker {
  const w = getWorker();
  clients.set(id, client);
  // An open file keeps the process alive; an idle worker does not.
  if (clients.size === 1) w.ref();
  return w;
}

function unregister(id: number): void {
  if (!clients.delete(id)) return;
  if (clients.size === 0) worker?.unref();
}

/** Encode in the shared worker thread; same contract as {@link inlineEncoder}. */
export function workerEncoder(options: EncoderOptions, onChunk: ChunkSink): ParquetEncoder {
  return new WorkerEncoder(options, onChunk);
}

/** Batches handed over but not yet taken by the encoder, at most. */
const MAX_IN_FLIGHT = 2;

class WorkerEncoder implements ParquetEncoder {
  private readonly id = nextId++;
  private readonly worker: Worker;
  private inFlight = 0;
  private wake: (() => void) | undefined;
  private readonly failure = new FirstFailure();
  private finished: (() => void) | undefined;
  private aborted: (() => void) | undefined;
  private ended = false;

  constructor(
    options: EncoderOptions,
    private readonly onChunk: ChunkSink,
  ) {
    this.worker = register(this.id, {
      onMessage: (msg) => this.onMessage(msg),
      onWorkerDied: (err) => {
        this.ended = true;
        this.fail(new DativoError('INTERNAL', `parquet encoding failed: ${err.message}`, { cause: err }));
        this.aborted?.();
      },
    });
    this.post({ op: 'open', id: this.id, options });
  }

  private post(msg: ToEncoder, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(msg, transfer);
  }

  private onMessage(msg: FromEncoder): void {
    switch (msg.op) {
      case 'taken':
        releaseIpcBuffer(msg.ipc.buffer as ArrayBuffer);
        this.inFlight--;
        this.wake?.();
        break;
      case 'chunk':
        this.deliver(msg.chunk);
        break;
      case 'finished':
        this.end();
        this.finished?.();
        break;
      case 'aborted':
        this.end();
        this.aborted?.();
        break;
      case 'error':
        this.fail(new DativoError('INTERNAL', `parquet encoding failed: ${msg.message}`));
        break;
    }
  }

  private deliver(chunk: Uint8Array): void {
    let r: void | Promise<void>;
    try {
      r = this.onChunk(chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    Promise.resolve(r).then(
      () => {
        if (!this.ended) this.post({ op: 'ack', id: this.id });
      },
      (err: unknown) => this.fail(err as Error),
    );
  }

  private end(): void {
    this.ended = true;
    unregister(this.id);
  }

  private fail(err: Error): void {
    if (!this.failure.set(err)) return;
    this.wake?.();
    // Stop the worker's session; 'aborted' (or the worker's death) ends it here.
    if (!this.ended) this.post({ op: 'abort', id: this.id });
  }

  async write(ipc: Uint8Array): Promise<void> {
    if (this.failure.error) throw this.failure.error;
    const bytes = pooledIpc(ipc) ? ipc : transferable(ipc);
    this.inFlight++;
    this.post({ op: 'write', id: this.id, ipc: bytes }, [bytes.buffer]);
    while (this.inFlight >= MAX_IN_FLIGHT) {
      await Promise.race([
        new Promise<void>((resolve) => {
          this.wake = () => {
            this.wake = undefined;
            resolve();
          };
        }),
        this.failure.promise,
      ]);
    }
  }

  async finish(): Promise<void> {
    if (this.failure.error) throw this.failure.error;
    const done = new Promise<void>((resolve) => {
      this.finished = resolve;
    });
    this.post({ op: 'finish', id: this.id });
    await Promise.race([done, this.failure.promise]);
  }

  async abort(reason: Error): Promise<void> {
    if (this.ended) return;
    const done = new Promise<void>((resolve) => {
      this.aborted = resolve;
    });
    this.fail(reason);
    await done;
  }
}
