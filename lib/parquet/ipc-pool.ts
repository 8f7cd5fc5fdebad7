/**
 * Arrow IPC stream bytes written into reused buffers. Each batch handed to
 * the encoder thread is serialised (a copy of the builder's reused column
 * buffers), transferred there and transferred back once its rows were
 * copied out ({@link releaseIpcBuffer}). Allocating a fresh buffer for every
 * batch (`tableToIPC`) left 1-3 MB of garbage per 10,000 rows on the
 * building thread, where it waited for a scavenge; and glibc, whose mmap
 * threshold rises after the first large free, served those blocks from its
 * heap and kept the pages (docs/benchmarks.md, Memory).
 */
import { AsyncByteQueue, RecordBatchStreamWriter, type RecordBatch, type Table } from 'apache-arrow';

/** Buffers back from the encoder, waiting for the next batch (few: two batches are in flight at most). */
const spare: ArrayBuffer[] = [];
const MAX_SPARE = 4;
/** Buffers made or taken back here (so a view into one may be transferred whole). */
const made = new WeakSet<ArrayBuffer>();

/** Hand a buffer back for reuse (its views must be dropped: it will be written over). */
export function releaseIpcBuffer(buf: ArrayBuffer): void {
  if (spare.length >= MAX_SPARE || buf.byteLength === 0) return;
  // Back from a transfer it is a new object, and ours alone.
  made.add(buf);
  spare.push(buf);
}

/** Whether `bytes` is a view into a buffer of this pool, which may be transferred whole. */
export function pooledIpc(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer && made.has(bytes.buffer);
}

function bufferFor(n: number): ArrayBuffer {
  let best = -1;
  for (let i = 0; i < spare.length; i++) {
    const b = spare[i]!;
    if (b.byteLength >= n && (best < 0 || b.byteLength < spare[best]!.byteLength)) best = i;
  }
  if (best >= 0) return spare.splice(best, 1)[0]!;
  // Headroom: batches of one table differ by a few percent in bytes.
  const b = new ArrayBuffer(Math.ceil((n * 1.25) / 4096) * 4096);
  made.add(b);
  return b;
}

/** Collects the writer's pieces (views of the batch's buffers) without joining them. */
class Pieces extends AsyncByteQueue {
  pieces: Uint8Array[] = [];
  bytes = 0;
  override write(value: Uint8Array): void {
    if (value.byteLength === 0) return;
    this.pieces.push(value);
    this.bytes += value.byteLength;
  }
}

/**
 * The batch as one Arrow IPC stream (the bytes of `tableToIPC(…, 'stream')`),
 * in a view of a pooled buffer: the caller owns it until it hands it on.
 */
export function ipcBytes(batch: RecordBatch | Table): Uint8Array<ArrayBuffer> {
  const sink = new Pieces();
  const writer = new RecordBatchStreamWriter();
  writer.reset(sink);
  writer.write(batch);
  writer.finish();
  const out = new Uint8Array(bufferFor(sink.bytes), 0, sink.bytes);
  let at = 0;
  for (const p of sink.pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
