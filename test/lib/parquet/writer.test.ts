import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { arrowSchema, buildRecordBatch } from '../../../lib/parquet/arrow.js';
import { readFooter } from '../../../lib/parquet/footer.js';
import { chooseDictionaryColumns, ParquetFileWriter } from '../../../lib/parquet/writer.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithHyparquet } from '../../helpers/readers.js';
import { field } from './fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-writer-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = [
  field('id', { kind: 'long' }, 1, true),
  field('email', { kind: 'string' }, 2),
  field('currency', { kind: 'string' }, 3),
  field('status', { kind: 'int' }, 4),
  field('flag', { kind: 'boolean' }, 5),
  field('bin', { kind: 'binary' }, 6),
  field('run', { kind: 'string' }, 7, true),
];

function rows(n: number, start = 0): Row[] {
  return Array.from({ length: n }, (_, k) => {
    const i = start + k;
    return {
      id: BigInt(i),
      email: i % 10 === 0 ? null : `u${i}@example.com`,
      currency: ['USD', 'EUR', 'GBP'][i % 3],
      status: [200, 404][i % 2],
      flag: i % 2 === 0,
      bin: new Uint8Array([i & 255, 0]),
    };
  });
}

const batchOf = (rs: Row[], fields = FIELDS) => buildRecordBatch(fields, rs, fields === FIELDS ? { run: 'r-1' } : {}).batch;

describe('chooseDictionaryColumns', () => {
  it('keeps the dictionary for repeating values and constants only', () => {
    assert.deepEqual(chooseDictionaryColumns(FIELDS, batchOf(rows(1000)), ['run']), ['currency', 'status', 'run']);
    assert.deepEqual(chooseDictionaryColumns(FIELDS, batchOf([]), ['run']), ['run']);
  });

  it('counts distinct non-null values by their bytes, within the first maxSample rows', () => {
    const fields = [
      field('mostly_null', { kind: 'string' }, 1),
      field('ts', { kind: 'timestamp' }, 2),
      field('amount', { kind: 'decimal', precision: 12, scale: 2 }, 3),
      field('day', { kind: 'date' }, 4),
      field('empty_vs_null', { kind: 'string' }, 5),
    ];
    const rs: Row[] = Array.from({ length: 2000 }, (_, i) => ({
      // 1,998 nulls and two equal values: one distinct of two -> dictionary.
      mostly_null: i === 7 || i === 8 ? 'x' : null,
      // Two values in the first 1,000 rows, unique after: a dictionary only when sampling 1,000 rows.
      ts: i < 1000 ? BigInt(i % 2) : BigInt(i) * 1_000_000n,
      amount: String(i % 3) + '.50',
      day: 19000 + (i % 2),
      // '' and 'a' alternate: two distinct values, '' is not confused with a null.
      empty_vs_null: i % 2 === 0 ? '' : 'a',
    }));
    assert.deepEqual(chooseDictionaryColumns(fields, batchOf(rs, fields), []), ['mostly_null', 'amount', 'day', 'empty_vs_null']);
    assert.deepEqual(chooseDictionaryColumns(fields, batchOf(rs, fields), [], 1000), ['mostly_null', 'ts', 'amount', 'day', 'empty_vs_null']);
    // Unique 16-byte decimals and 8-byte timestamps are told apart by all their bytes.
    const unique: Row[] = Array.from({ length: 600 }, (_, i) => ({ mostly_null: `v${i}`, ts: BigInt(i) << 40n, amount: `${i}0000000.00`, day: i, empty_vs_null: 'é'.repeat(i) }));
    assert.deepEqual(chooseDictionaryColumns(fields, batchOf(unique, fields), []), []);
  });
});

for (const encoder of ['worker', 'inline'] as const) {
describe(`ParquetFileWriter (${encoder} encoder)`, () => {
  it('streams row groups, applies the dictionary choice, writes footer metadata, and reads its own footer', async () => {
    const storage = new LocalStorage(dir);
    const handle = storage.createWriteStream(`w/${encoder}-a.parquet`);
    const writer = new ParquetFileWriter(handle, {
      encoder,
      fields: FIELDS,
      constantColumns: ['run'],
      dictionaryColumns: chooseDictionaryColumns(FIELDS, batchOf(rows(3000)), ['run']),
      rowGroupRows: 1000,
      compression: 'snappy',
      keyValueMetadata: { 'dativo.asset': 'orders', 'dativo.run_id': 'r-1' },
    });
    const schema = arrowSchema(FIELDS);
    let bytesAfterFirstGroups = 0;
    for (let i = 0; i < 5; i++) {
      await writer.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r-1' }, schema).batch);
      if (i === 2) bytesAfterFirstGroups = writer.bytesWritten;
    }
    assert.ok(bytesAfterFirstGroups > 0, 'bytes flow before the file is finished');
    assert.equal(writer.rowsWritten, 5000);
    const done = await writer.finish();
    const path = join(dir, `w/${encoder}-a.parquet`);
    const bytes = await readFile(path);
    assert.equal(done.size, bytes.length);
    assert.equal(done.uri, storage.uri(`w/${encoder}-a.parquet`));

    // Our footer reader against the whole file and against hyparquet.
    assert.deepEqual(readFooter(bytes, bytes.length), done.footer);
    const hyp = await readParquetWithHyparquet(path);
    assert.equal(done.footer!.numRows, 5000);
    assert.deepEqual(done.footer!.splitOffsets, hyp.rowGroupOffsets);
    assert.deepEqual(done.footer!.rowGroups.map((g) => g.numRows), [1000, 1000, 1000, 1000, 1000]);
    assert.equal(done.footer!.keyValue['dativo.asset'], 'orders');
    assert.equal(hyp.keyValue['dativo.run_id'], 'r-1');
    assert.equal(hyp.codec, 'SNAPPY');
    assert.equal(readFooter(bytes.subarray(0, bytes.length - 1), bytes.length), undefined, 'not a footer');
    assert.equal(readFooter(bytes.subarray(bytes.length - 100), bytes.length), undefined, 'footer not complete');

    const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
    const conn = await instance.connect();
    try {
      const enc = (
        await conn.runAndReadAll(
          `SELECT path_in_schema AS c, string_agg(DISTINCT encodings, ',') AS e, sum(total_compressed_size)::BIGINT AS s
           FROM parquet_metadata('${path}') GROUP BY path_in_schema`,
        )
      ).getRowObjectsJS();
      const dictionary = enc.filter((r) => String(r.e).includes('DICTIONARY')).map((r) => String(r.c)).sort();
      assert.deepEqual(dictionary, ['currency', 'run', 'status']);
      for (const r of enc) assert.equal(done.footer!.columnSizes[String(r.c)], Number(r.s), `size of ${String(r.c)}`);
      // Min/max for the columns readers prune on; none for binary (or JSON) bytes.
      const stats = (
        await conn.runAndReadAll(
          `SELECT path_in_schema AS c, bool_and(stats_min_value IS NOT NULL AND stats_max_value IS NOT NULL) AS has
           FROM parquet_metadata('${path}') GROUP BY path_in_schema`,
        )
      ).getRowObjectsJS();
      const withStats = stats.filter((r) => r.has === true).map((r) => String(r.c)).sort();
      assert.deepEqual(withStats, ['currency', 'email', 'flag', 'id', 'run', 'status']);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });

  it('reads its footer back when the last chunk is larger than the kept tail', async () => {
    const fields = [field('blob', { kind: 'binary' }, 1, true)];
    const writer = new ParquetFileWriter(new LocalStorage(dir).createWriteStream(`w/${encoder}-big.parquet`), { encoder, fields, compression: 'uncompressed' });
    // 6 MiB of incompressible bytes in one row group: one output chunk above the 4 MiB tail.
    const blobs = Array.from({ length: 96 }, () => ({ blob: randomBytes(64 * 1024) }));
    await writer.write(buildRecordBatch(fields, blobs).batch);
    const done = await writer.finish();
    assert.ok(done.size > 6 * 1024 * 1024);
    assert.equal(done.footer?.numRows, 96);
    assert.deepEqual(done.footer, readFooter(await readFile(join(dir, `w/${encoder}-big.parquet`)), done.size));
  });

  it('reads its footer back when the kept tail wrapped around inside a chunk', async () => {
    const fields = [field('blob', { kind: 'binary' }, 1, true)];
    const name = `w/${encoder}-wrap.parquet`;
    const writer = new ParquetFileWriter(new LocalStorage(dir).createWriteStream(name), { encoder, fields, compression: 'uncompressed', rowGroupRows: 23 });
    // Row groups of ~1.5 MiB (23 × 64 KiB): seven chunks below the 4 MiB tail, ~10 MiB in all.
    for (let i = 0; i < 7; i++) await writer.write(buildRecordBatch(fields, Array.from({ length: 23 }, () => ({ blob: randomBytes(64 * 1024) }))).batch);
    const done = await writer.finish();
    assert.ok(done.size > 10 * 1024 * 1024);
    assert.equal(done.footer?.numRows, 161);
    assert.equal(done.footer?.rowGroups.length, 7);
    assert.deepEqual(done.footer, readFooter(await readFile(join(dir, name)), done.size));
  });

  it('a storage stream that closes without an error fails the file instead of hanging', { timeout: 10_000 }, async () => {
    const stream = new Writable({ highWaterMark: 1024, write: () => {} });
    const handle = {
      stream,
      done: async () => ({ uri: 'mem://x', size: 0 }),
      abort: async () => {},
    };
    const writer = new ParquetFileWriter(handle, { encoder, fields: FIELDS, rowGroupRows: 100 });
    const schema = arrowSchema(FIELDS);
    await writer.write(buildRecordBatch(FIELDS, rows(500), { run: 'r' }, schema).batch);
    await writer.write(buildRecordBatch(FIELDS, rows(500), { run: 'r' }, schema).batch);
    stream.destroy();
    await assert.rejects(
      (async () => {
        for (let i = 0; i < 10; i++) await writer.write(buildRecordBatch(FIELDS, rows(500), { run: 'r' }, schema).batch);
        await writer.finish();
      })(),
      (e: unknown) => (e as { code?: string }).code === 'STORAGE_IO',
    );
  });

  it('abort() leaves nothing behind, and write() after abort fails', async () => {
    const root = join(dir, `abort-${encoder}`);
    const writer = new ParquetFileWriter(new LocalStorage(root).createWriteStream('x.parquet'), { encoder, fields: FIELDS, rowGroupRows: 500 });
    const schema = arrowSchema(FIELDS);
    for (let i = 0; i < 4; i++) await writer.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r' }, schema).batch);
    await writer.abort(new Error('stop'));
    await writer.abort();
    assert.deepEqual(await readdir(root), []);
    await assert.rejects(writer.write(buildRecordBatch(FIELDS, rows(1), { run: 'r' }, schema).batch));
  });
});
}

describe('ParquetFileWriter: worker and inline encoders', () => {
  it('write the same bytes, and files of two writers open at once in the worker do not mix', async () => {
    const storage = new LocalStorage(join(dir, 'same'));
    const schema = arrowSchema(FIELDS);
    const a = new ParquetFileWriter(storage.createWriteStream('a-worker.parquet'), { encoder: 'worker', fields: FIELDS, constantColumns: ['run'], rowGroupRows: 700 });
    const b = new ParquetFileWriter(storage.createWriteStream('b-worker.parquet'), { encoder: 'worker', fields: FIELDS, constantColumns: ['run'], rowGroupRows: 700 });
    const c = new ParquetFileWriter(storage.createWriteStream('a-inline.parquet'), { encoder: 'inline', fields: FIELDS, constantColumns: ['run'], rowGroupRows: 700 });
    for (let i = 0; i < 4; i++) {
      // Interleaved: a and b share the worker.
      await a.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r' }, schema).batch);
      await b.write(buildRecordBatch(FIELDS, rows(500, 100_000 + i * 500), { run: 'r' }, schema).batch);
      await c.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r' }, schema).batch);
    }
    const [da, db, dc] = await Promise.all([a.finish(), b.finish(), c.finish()]);
    const bytesA = await readFile(join(dir, 'same', 'a-worker.parquet'));
    assert.deepEqual(bytesA, await readFile(join(dir, 'same', 'a-inline.parquet')));
    assert.equal(da.size, dc.size);
    assert.equal(da.footer?.numRows, 4000);
    assert.equal(db.footer?.numRows, 2000);
    const back = await readParquetWithHyparquet(join(dir, 'same', 'b-worker.parquet'));
    assert.deepEqual(back.rows.map((r) => r['id']), rows(2000, 100_000).map((r) => r['id']));
  });
});

describe('ParquetFileWriter: the worker\'s output chunks', () => {
  it('are freed once local storage wrote them, and the file is whole', async () => {
    const storage = new LocalStorage(join(dir, 'release'));
    const handle = storage.createWriteStream('r.parquet');
    assert.equal(handle.chunkDoneAtCallback, true);
    const seen: Uint8Array[] = [];
    const write = handle.stream.write.bind(handle.stream) as (...args: unknown[]) => boolean;
    handle.stream.write = ((chunk: Uint8Array, ...rest: unknown[]) => {
      seen.push(chunk);
      return write(chunk, ...rest);
    }) as typeof handle.stream.write;
    const writer = new ParquetFileWriter(handle, { encoder: 'worker', fields: FIELDS, constantColumns: ['run'], rowGroupRows: 700 });
    const schema = arrowSchema(FIELDS);
    for (let i = 0; i < 4; i++) await writer.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r' }, schema).batch);
    const done = await writer.finish();
    assert.ok(seen.length >= 2, `${seen.length} chunks`);
    assert.deepEqual(seen.map((c) => c.byteLength), seen.map(() => 0), 'every chunk released after its write');
    assert.equal(done.footer?.numRows, 4000);
    const back = await readParquetWithHyparquet(join(dir, 'release', 'r.parquet'));
    assert.deepEqual(back.rows.map((r) => r['id']), rows(4000).map((r) => r['id']));
  });

  it('are left alone for a storage that keeps chunks after their write callback', async () => {
    // Like S3: a chunk waits in the part being gathered after its callback.
    const kept: Uint8Array[] = [];
    const stream = new Writable({
      highWaterMark: 1024,
      write(chunk: Uint8Array, _enc, cb) {
        kept.push(chunk);
        cb();
      },
    });
    const handle = {
      stream,
      done: async () => ({ uri: 'mem://kept', size: kept.reduce((n, c) => n + c.byteLength, 0) }),
      abort: async () => {},
    };
    const writer = new ParquetFileWriter(handle, { encoder: 'worker', fields: FIELDS, constantColumns: ['run'], rowGroupRows: 700 });
    const schema = arrowSchema(FIELDS);
    for (let i = 0; i < 4; i++) await writer.write(buildRecordBatch(FIELDS, rows(1000, i * 1000), { run: 'r' }, schema).batch);
    const done = await writer.finish();
    const path = join(dir, 'kept.parquet');
    await writeFile(path, Buffer.concat(kept));
    assert.equal(done.footer?.numRows, 4000);
    const back = await readParquetWithHyparquet(path);
    assert.deepEqual(back.rows.map((r) => r['id']), rows(4000).map((r) => r['id']));
  });
});
