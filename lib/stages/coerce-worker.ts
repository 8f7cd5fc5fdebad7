/**
 * Worker-thread side of lib/stages/coerce-pool.ts: per session (one validate
 * stage) the asset's coercer and a RecordBatchBuilder of the table's
 * columns; per {@link PackedRecords} batch it decodes the text once, makes
 * each record (a class compiled per header), coerces it, appends the
 * canonical row to the column buffers, and sends back the batch's Arrow IPC
 * bytes (transferred), its column statistics and the refused records.
 */
import { parentPort } from 'node:worker_threads';
import { tableToIPC, Table as ArrowTable } from 'apache-arrow';
import { RecordBatchBuilder } from '../parquet/arrow.js';
import { compileAssetCoercer, type Coercer } from '../records/coerce.js';
import type { Row } from '../types.js';
import type { FromCoerce, ToCoerce } from './coerce-pool.js';

type RecordReader = new (text: Buffer, ends: Uint32Array, nulls: Uint8Array, k: number) => Row;

interface Session {
  coerce: Coercer;
  builder: RecordBatchBuilder;
  /** The record class of the last header seen (headers rarely change). */
  header: readonly string[] | undefined;
  Reader: RecordReader | undefined;
}

const port = parentPort!;
const sessions = new Map<number, Session>();

/** `new R(text, ends, nulls, k)`: the record whose first field is field `k` of the batch. */
function compileReader(columns: readonly string[]): RecordReader {
  // One string per record, decoded from its code units: a batch-sized string
  // would land in V8's large-object space and stay there until a full GC.
  const w = columns.length;
  const body = [`const s0 = k === 0 ? 0 : e[k - 1]; const r = t.toString('utf16le', s0 * 2, e[k + ${w - 1}] * 2); let s = 0, x;`];
  columns.forEach((name, i) => {
    const v = `(x = e[k + ${i}] - s0, nl[k + ${i}] === 1 ? (s = x, null) : r.slice(s, (s = x)))`;
    body.push(
      name === '__proto__'
        ? `Object.defineProperty(this, '__proto__', { value: ${v}, enumerable: true, writable: true, configurable: true });`
        : `this[${JSON.stringify(name)}] = ${v};`,
    );
  });
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function(`return class PackedRow { constructor(t, e, nl, k) { ${body.join(' ')} } }`)() as RecordReader;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

function build(s: Session, msg: Extract<ToCoerce, { op: 'batch' }>): FromCoerce {
  const { columns, rows, ends, nulls } = msg;
  if (s.header === undefined || s.header.length !== columns.length || s.header.some((c, i) => c !== columns[i])) {
    s.header = columns;
    s.Reader = compileReader(columns);
  }
  const Reader = s.Reader!;
  const text = Buffer.from(msg.text.buffer, msg.text.byteOffset, msg.text.byteLength);
  const w = columns.length;
  const coerce = s.coerce;
  const builder = s.builder;
  const rejects: Extract<FromCoerce, { op: 'built' }>['rejects'] = [];
  for (let r = 0, k = 0; r < rows; r++, k += w) {
    const raw = new Reader(text, ends, nulls, k);
    const res = coerce(raw);
    if (res.ok) builder.append(res.row);
    else rejects.push({ index: r, values: columns.map((c) => raw[c] as string | null), errors: res.errors });
  }
  const n = builder.length;
  if (n === 0) {
    builder.build(); // starts the builder over
    return { op: 'built', id: msg.id, job: msg.job, rows: 0, ipc: undefined, stats: [], byteLength: 0, rejects };
  }
  const built = builder.build();
  const ipc = tableToIPC(new ArrowTable(built.batch), 'stream');
  const own = (ipc.byteOffset === 0 && ipc.byteLength === ipc.buffer.byteLength ? ipc : ipc.slice()) as Uint8Array<ArrayBuffer>;
  return { op: 'built', id: msg.id, job: msg.job, rows: n, ipc: own, stats: built.stats, byteLength: built.byteLength, rejects };
}

port.on('message', (msg: ToCoerce) => {
  switch (msg.op) {
    case 'open':
      try {
        // Constants (the run id, the ingest time) are columns of every row, not read from rows.
        const builder = new RecordBatchBuilder(msg.fields, msg.constants, undefined, msg.capacity, true);
        sessions.set(msg.id, { coerce: compileAssetCoercer(msg.asset), builder, header: undefined, Reader: undefined });
      } catch (err) {
        port.postMessage({ op: 'error', id: msg.id, job: -1, message: message(err) } satisfies FromCoerce);
      }
      break;
    case 'close':
      sessions.delete(msg.id);
      break;
    case 'batch': {
      const s = sessions.get(msg.id);
      if (s === undefined) {
        port.postMessage({ op: 'error', id: msg.id, job: msg.job, message: 'no such session' } satisfies FromCoerce);
        return;
      }
      let out: FromCoerce;
      try {
        out = build(s, msg);
      } catch (err) {
        // The builder may hold part of the batch: start over for the next one.
        sessions.delete(msg.id);
        out = { op: 'error', id: msg.id, job: msg.job, message: message(err) };
      }
      port.postMessage(out, out.op === 'built' && out.ipc !== undefined ? [out.ipc.buffer] : []);
      break;
    }
  }
});
