/**
 * A sketch of the columnar CSV path of issue 14, for measurement only (the
 * connector still uses connectors/csv/split.ts for records): how much CPU the
 * main thread would need if the CSV bytes were never turned into strings or
 * per-record objects. The split is the product's byte splitter
 * (connectors/csv/bytesplit.ts, held to split.ts's dialect by
 * test/connectors/csv/bytesplit.test.ts); the type parsers are the sketch's.
 * Modes on a demo orders file (`pipelines/demo/generate-orders.ts`):
 *
 * - `offsets` (step 1): the byte splitter alone: per-field start/end
 *   offsets and quoted/escaped flags in typed arrays, each record's line;
 * - `strings`: step 1 feeding today's record path: the same split, then
 *   each record's fields as strings (the chunk decoded once and sliced when
 *   it is ASCII, else each record decoded on its own), an array a record;
 * - `columns` (step 2): the same, then each record's fields parsed straight
 *   from the bytes into Arrow-layout buffers of the demo asset's types
 *   (int64 as two uint32, decimal128(12,2), timestamp µs with the offset
 *   applied, date32, int32, bit-packed booleans and validity, UTF-8 bytes
 *   copied with doubled quotes unescaped; an unquoted empty note is NULL, a
 *   quoted one the empty string), batches of 10,000 rows;
 * - `parquet`: the same columns as Arrow batches (the asset's Arrow schema,
 *   no system columns, no statistics) through our Parquet encoder in its
 *   worker thread (lib/parquet/worker-encoder.ts, ZSTD) into a file under
 *   the system's temp folder: the whole run as the columnar path would make
 *   it, to set beside DuckDB's conversion of the same file. The encoder's
 *   thread is started before the clock (tsx compiling it is not the run's).
 *
 * It knows only the demo's column mix and the common case (no bad quotes,
 * no encodings but UTF-8, no rejects, resume or hashing); what the real path
 * must also keep is listed in docs/benchmarks.md. `--check` compares sums of
 * the columns built with DuckDB's reading of the same file, so the figure
 * is of a correct result (its summing is timed too: time runs without it).
 *
 *   node --import tsx bench/csv-columnar-sketch.ts <orders.csv> <offsets|strings|columns|parquet> [--check]
 */
import { closeSync, createReadStream, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { makeData, RecordBatch, Struct, Table, tableToIPC, type Data, type DataType } from 'apache-arrow';
import { loadAsset } from '../lib/config/asset.js';
import { ByteSplitter, ESCAPED, type SplitBatch } from '../connectors/csv/bytesplit.js';
import { CSV_DEFAULTS } from '../connectors/csv/options.js';
import { arrowSchema } from '../lib/parquet/arrow.js';
import { workerEncoder } from '../lib/parquet/worker-encoder.js';

const [file, mode, flag] = process.argv.slice(2);
if (!file || (mode !== 'offsets' && mode !== 'strings' && mode !== 'columns' && mode !== 'parquet')) {
  throw new Error('usage: csv-columnar-sketch.ts <orders.csv> <offsets|strings|columns|parquet> [--check]');
}
const check = flag === '--check';
const building = mode === 'columns' || mode === 'parquet';

const QUOTE = 34;
const WIDTH = 10;
const BATCH = 10_000;
const TWO32 = 4294967296;

// Step 1's output for the chunk being split (the splitter's batch), and the first field of the record at hand.
let S = new Int32Array(0);
let E = new Int32Array(0);
let F = new Uint8Array(0);
let K = 0;

// Step 2's column buffers of the batch being built.
const orderId = new Uint32Array(BATCH * 2);
const amount = new Uint32Array(BATCH * 4);
const createdAt = new Uint32Array(BATCH * 2);
const orderDate = new Int32Array(BATCH);
const quantity = new Int32Array(BATCH);
const isGift = new Uint8Array((BATCH >> 3) + 1);
const noteValid = new Uint8Array((BATCH >> 3) + 1);

class Utf8Bytes {
  data = new Uint8Array(1 << 20);
  readonly offsets = new Int32Array(BATCH + 1);
  pos = 0;

  add(b: Uint8Array, s: number, e: number, r: number, escaped: boolean): void {
    let pos = this.pos;
    if (pos + (e - s) > this.data.length) {
      const d = new Uint8Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    const d = this.data;
    if (escaped) {
      for (let i = s; i < e; i++) {
        const c = b[i]!;
        d[pos++] = c;
        if (c === QUOTE) i++;
      }
    } else if (e - s < 24) {
      for (let i = s; i < e; i++) d[pos++] = b[i]!;
    } else {
      d.set(b.subarray(s, e), pos);
      pos += e - s;
    }
    this.pos = pos;
    this.offsets[r + 1] = pos;
  }
}

const email = new Utf8Bytes();
const currency = new Utf8Bytes();
const status = new Utf8Bytes();
const note = new Utf8Bytes();

let rows = 0;
let fields = 0;
let refused = 0;
let inBatch = 0;
let header = true;
const sums = { order_id: 0n, amount_cents: 0n, created_at_us: 0n, order_date_days: 0n, note_bytes: 0n, quantity: 0n, gifts: 0n };

const int64At = (a: Uint32Array, k: number): bigint => BigInt.asIntN(64, (BigInt(a[k + 1]!) << 32n) | BigInt(a[k]!));

/** The last batch handed to the encoder, until it can take another (awaited before the next chunk: one batch is at most one write). */
let pending: Promise<void> | undefined;
const mk = (args: Record<string, unknown>): Data => makeData(args as never) as Data;

/** The batch's columns as one Arrow batch to the encoder (its IPC bytes are a copy: the buffers are reused). */
function encodeBatch(n: number): void {
  const types = schema!.fields.map((f) => f.type as DataType);
  const cols: Data[] = [
    mk({ type: types[0], length: n, data: new BigInt64Array(orderId.buffer, 0, n) }),
    mk({ type: types[1], length: n, data: email.data.subarray(0, email.pos), valueOffsets: email.offsets.subarray(0, n + 1) }),
    mk({ type: types[2], length: n, data: amount.subarray(0, n * 4) }),
    mk({ type: types[3], length: n, data: currency.data.subarray(0, currency.pos), valueOffsets: currency.offsets.subarray(0, n + 1) }),
    mk({ type: types[4], length: n, data: status.data.subarray(0, status.pos), valueOffsets: status.offsets.subarray(0, n + 1) }),
    mk({ type: types[5], length: n, data: new BigInt64Array(createdAt.buffer, 0, n) }),
    mk({ type: types[6], length: n, data: orderDate.subarray(0, n) }),
    mk({ type: types[7], length: n, data: note.data.subarray(0, note.pos), valueOffsets: note.offsets.subarray(0, n + 1), nullBitmap: noteValid.subarray(0, (n + 7) >> 3) }),
    mk({ type: types[8], length: n, data: quantity.subarray(0, n) }),
    mk({ type: types[9], length: n, data: isGift.subarray(0, (n + 7) >> 3) }),
  ];
  const data = mk({ type: new Struct(schema!.fields), length: n, children: cols }) as Data<Struct>;
  const ipc = tableToIPC(new Table(new RecordBatch(schema!, data)), 'stream');
  pending = encoder!.write(ipc);
}

function flush(): void {
  if (encoder !== undefined && inBatch > 0) encodeBatch(inBatch);
  if (check) {
    for (let r = 0; r < inBatch; r++) {
      sums.order_id += int64At(orderId, r * 2);
      sums.amount_cents += int64At(amount, r * 4);
      sums.created_at_us += int64At(createdAt, r * 2);
      sums.order_date_days += BigInt(orderDate[r]!);
      sums.quantity += BigInt(quantity[r]!);
      if ((isGift[r >> 3]! & (1 << (r & 7))) !== 0) sums.gifts++;
    }
    sums.note_bytes += BigInt(note.pos);
  }
  rows += inBatch;
  inBatch = 0;
  email.pos = currency.pos = status.pos = note.pos = 0;
  isGift.fill(0);
  noteValid.fill(0);
}

function setInt64(out: Uint32Array, k: number, v: number): void {
  const lo = ((v % TWO32) + TWO32) % TWO32;
  out[k] = lo;
  out[k + 1] = Math.floor((v - lo) / TWO32) >>> 0;
}

/** Digits (optional minus) into two uint32 halves, exact beyond 2^53. */
function parseInt64(b: Uint8Array, s: number, e: number, out: Uint32Array, k: number): boolean {
  const neg = b[s] === 45;
  if (neg) s++;
  if (e <= s || e - s > 18) return false;
  let lo = 0;
  let hi = 0;
  for (let i = s; i < e; i++) {
    const d = b[i]! - 48;
    if (d < 0 || d > 9) return false;
    const t = lo * 10 + d;
    lo = t >>> 0;
    hi = (hi * 10 + Math.floor(t / TWO32)) >>> 0;
  }
  if (neg) {
    lo = (~lo + 1) >>> 0;
    hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
  }
  out[k] = lo;
  out[k + 1] = hi;
  return true;
}

const two = (b: Uint8Array, i: number): number => (b[i]! - 48) * 10 + b[i + 1]! - 48;

function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

const dateAt = (b: Uint8Array, s: number): number => daysFromCivil(two(b, s) * 100 + two(b, s + 2), two(b, s + 5), two(b, s + 8));

/** One record's fields into the batch's columns; false when a value is not in the sketch's grammar. */
function coerceRecord(b: Uint8Array): boolean {
  const r = inBatch;
  if (!parseInt64(b, S[K + 0]!, E[K + 0]!, orderId, r * 2)) return false;
  email.add(b, S[K + 1]!, E[K + 1]!, r, (F[K + 1]! & ESCAPED) !== 0);
  {
    let s = S[K + 2]!;
    const e = E[K + 2]!;
    const neg = b[s] === 45;
    if (neg) s++;
    let v = 0;
    let frac = -1;
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if (c === 46 && frac < 0) {
        frac = 0;
        continue;
      }
      const d = c - 48;
      if (d < 0 || d > 9) return false;
      v = v * 10 + d;
      if (frac >= 0) frac++;
    }
    if (frac > 2 || e <= s) return false;
    for (frac = Math.max(frac, 0); frac < 2; frac++) v *= 10;
    if (neg) v = -v;
    setInt64(amount, r * 4, v);
    amount[r * 4 + 2] = amount[r * 4 + 3] = v < 0 ? 0xffffffff : 0;
  }
  currency.add(b, S[K + 3]!, E[K + 3]!, r, false);
  status.add(b, S[K + 4]!, E[K + 4]!, r, false);
  {
    const s = S[K + 5]!;
    const e = E[K + 5]!;
    let us = (dateAt(b, s) * 86400 + two(b, s + 11) * 3600 + two(b, s + 14) * 60 + two(b, s + 17)) * 1e6;
    let i = s + 19;
    if (b[i] === 46) {
      let f = 0;
      let k = 0;
      for (i++; i < e && b[i]! >= 48 && b[i]! <= 57; i++) {
        if (k === 6) return false;
        f = f * 10 + b[i]! - 48;
        k++;
      }
      for (; k < 6; k++) f *= 10;
      us += f;
    }
    if (b[i] === 90) i++;
    else if (b[i] === 43 || b[i] === 45) {
      const off = (two(b, i + 1) * 60 + two(b, i + 4)) * 60e6;
      us += b[i] === 43 ? -off : off;
      i += 6;
    } else return false;
    if (i !== e) return false;
    setInt64(createdAt, r * 2, us);
  }
  orderDate[r] = dateAt(b, S[K + 6]!);
  if (E[K + 7]! > S[K + 7]! || F[K + 7] !== 0) noteValid[r >> 3]! |= 1 << (r & 7);
  note.add(b, S[K + 7]!, E[K + 7]!, r, (F[K + 7]! & ESCAPED) !== 0);
  {
    let v = 0;
    const s = S[K + 8]!;
    const e = E[K + 8]!;
    if (e <= s || e - s > 9) return false;
    for (let i = s; i < e; i++) {
      const d = b[i]! - 48;
      if (d < 0 || d > 9) return false;
      v = v * 10 + d;
    }
    quantity[r] = v;
  }
  const g = b[S[K + 9]!];
  if (g === 116) isGift[r >> 3]! |= 1 << (r & 7);
  else if (g !== 102) return false;
  if (++inBatch === BATCH) flush();
  return true;
}

/** The last record's strings (so that making them is not optimised away). */
let last: string[] = [];

/** Record `r` of batch `b` as field strings (`t`: its bytes decoded, `ascii`: byte offsets are its offsets). */
function strings(b: SplitBatch, t: string, ascii: boolean, r: number): string[] {
  const k0 = b.firstField[r]!;
  const nf = b.firstField[r + 1]! - k0;
  const out = new Array<string>(nf);
  let base = 0;
  let rec = t;
  let direct = ascii;
  if (!ascii) {
    rec = b.bytes.toString('utf8', b.rawStart[r]!, b.rawEnd[r]!);
    direct = rec.length === b.rawEnd[r]! - b.rawStart[r]!;
    base = b.rawStart[r]!;
  }
  for (let i = 0; i < nf; i++) {
    const k = k0 + i;
    const v = direct ? rec.slice(b.start[k]! - base, b.end[k]! - base) : b.bytes.toString('utf8', b.start[k]!, b.end[k]!);
    out[i] = (b.flags[k]! & ESCAPED) !== 0 ? v.replaceAll('""', '"') : v;
  }
  return out;
}

/** The records of one batch of the splitter. */
function take(b: SplitBatch): void {
  const t = mode === 'strings' ? b.bytes.toString('utf8') : '';
  const ascii = t.length === b.bytes.length;
  S = b.start;
  E = b.end;
  F = b.flags;
  const bytes = b.bytes;
  for (let r = 0; r < b.count; r++) {
    const nf = b.firstField[r + 1]! - b.firstField[r]!;
    K = b.firstField[r]!;
    fields += nf;
    if (header) header = false;
    else if (mode === 'offsets') rows++;
    else if (mode === 'strings') {
      last = strings(b, t, ascii, r);
      if (last.length === nf) rows++;
    } else if (nf !== WIDTH || !coerceRecord(bytes)) refused++;
  }
}

const splitter = new ByteSplitter(
  { ...CSV_DEFAULTS, stripBom: true, firstLine: 1, recordsBefore: 0 },
  (s) => {
    throw new Error(`${s.parserCode} at line ${s.line} (not in the sketch)`);
  },
);

const asset = mode === 'parquet' ? await loadAsset(fileURLToPath(new URL('../schemas/demo/v1.0/orders.yaml', import.meta.url))) : undefined;
const schema = asset === undefined ? undefined : arrowSchema(asset.fields);
const parquetFile = path.join(tmpdir(), `dativo-sketch-${process.pid}.parquet`);
const fd = asset === undefined ? undefined : openSync(parquetFile, 'w');
const encoder =
  asset === undefined || fd === undefined
    ? undefined
    : workerEncoder({ fields: asset.fields, compression: 'zstd' }, (chunk) => {
        writeSync(fd, chunk);
      });
if (encoder !== undefined) await new Promise((resolve) => setTimeout(resolve, 2000)); // the worker compiled and started

const t0 = performance.now();
const c0 = process.cpuUsage();
for await (const chunk of createReadStream(file, { highWaterMark: 64 * 1024 })) {
  take(splitter.feed(chunk as Buffer));
  if (pending !== undefined) {
    await pending; // backpressure: the encoder holds one batch and encodes another
    pending = undefined;
  }
}
take(splitter.end(true));
flush();
if (encoder !== undefined) {
  await pending;
  await encoder.finish();
  closeSync(fd!);
}
const cpu = process.cpuUsage(c0);
const out: Record<string, unknown> = {
  sketch: mode,
  rows,
  fields,
  refused,
  seconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
  cpu_seconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
};
if (check && mode === 'parquet') {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const q = (f: string): string => f.replaceAll("'", "''");
  const sql = (from: string): string => `select count(*)::varchar, sum(order_id)::varchar, sum(amount)::varchar, sum(epoch_us(created_at))::varchar, sum(quantity)::varchar from ${from}`;
  const ours = (await con.runAndReadAll(sql(`read_parquet('${q(parquetFile)}')`))).getRows()[0]!.map(String);
  const types = `{'order_id':'BIGINT','customer_email':'VARCHAR','amount':'DECIMAL(12,2)','currency':'VARCHAR','status':'VARCHAR','created_at':'TIMESTAMPTZ','order_date':'DATE','note':'VARCHAR','quantity':'INTEGER','is_gift':'BOOLEAN'}`;
  const theirs = (await con.runAndReadAll(sql(`read_csv('${q(file)}', columns=${types}, header=true, quote='"', escape='"')`))).getRows()[0]!.map(String);
  out['checked'] = ['count', 'order_id', 'amount', 'created_at', 'quantity'];
  out['verified'] = ours.every((v, i) => v === theirs[i]);
  if (out['verified'] !== true) out['mismatch'] = { ours, duckdb: theirs };
  con.closeSync();
  db.closeSync();
}
if (encoder !== undefined) await import('node:fs/promises').then((fs) => fs.rm(parquetFile, { force: true }));
if (check && mode === 'columns') {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  const types = `{'order_id':'BIGINT','customer_email':'VARCHAR','amount':'DECIMAL(12,2)','currency':'VARCHAR','status':'VARCHAR','created_at':'TIMESTAMPTZ','order_date':'DATE','note':'VARCHAR','quantity':'INTEGER','is_gift':'BOOLEAN'}`;
  const res = await con.runAndReadAll(
    `select sum(order_id)::varchar, (sum(amount) * 100)::hugeint::varchar, sum(epoch_us(created_at))::varchar, sum(order_date - date '1970-01-01')::varchar,
            coalesce(sum(strlen(note)), 0)::varchar, sum(quantity)::varchar, count(*) filter (where is_gift)::varchar
       from read_csv('${file.replaceAll("'", "''")}', columns=${types}, header=true, quote='"', escape='"')`,
  );
  const theirs = res.getRows()[0]!.map(String);
  const ours = Object.values(sums).map(String);
  out['checked'] = Object.keys(sums);
  out['verified'] = ours.every((v, i) => v === theirs[i]);
  if (out['verified'] !== true) out['mismatch'] = { ours, duckdb: theirs };
  con.closeSync();
  db.closeSync();
}
process.stdout.write(JSON.stringify(out) + '\n');
