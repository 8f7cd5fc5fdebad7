import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { field, prng } from '../parquet/fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-rows-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = [
  field('id', { kind: 'long' }, 1, true),
  field('word', { kind: 'string' }, 2),
  field('amount', { kind: 'decimal', precision: 12, scale: 2 }, 3),
  field('_dativo_run_id', { kind: 'string' }, 4, true),
];

function makeRows(count: number): Row[] {
  const rnd = prng(11);
  return Array.from({ length: count }, (_, i) => ({
    id: BigInt(i) - 7n,
    word: rnd() < 0.1 ? null : `w${Math.floor(rnd() * 1e9).toString(36)}-${i}`,
    amount: `${Math.floor(rnd() * 100000)}.${String(i % 100).padStart(2, '0')}`,
  }));
}

describe('parquetSink fed single rows', () => {
  it('batches them itself and still rolls files at the target size, every row once and in order', async () => {
    const storage = new LocalStorage(join(dir, 'roll'));
    const sink = parquetSink({
      storage,
      fields: FIELDS,
      constants: { _dativo_run_id: 'r1' },
      directory: 'd',
      filePrefix: 'p',
      targetFileSizeBytes: 30_000,
      rowGroupRows: 1000,
      batchRows: 600,
      highWaterMark: 16,
    });
    const rows = makeRows(20_000);
    await pipeline(Readable.from(rows), sink);
    const files = sink.files;
    assert.ok(files.length >= 3, `expected several files, got ${files.length}`);
    assert.equal(files.reduce((n, f) => n + f.recordCount, 0), rows.length);
    let offset = 0;
    for (const [k, f] of files.entries()) {
      const back = await readParquetWithDuckDB(join(dir, 'roll', f.relativePath));
      const mine = rows.slice(offset, offset + f.recordCount);
      offset += f.recordCount;
      assert.deepEqual(back.rows.map((r) => r.id), mine.map((r) => r.id), `file ${k}`);
      assert.deepEqual(back.rows.map((r) => r.word ?? null), mine.map((r) => r.word), `file ${k}`);
      assert.deepEqual(back.rows.map((r) => r.amount), mine.map((r) => r.amount), `file ${k}`);
      assert.equal(f.columns.id!.min, mine[0]!.id);
      assert.equal(f.columns.id!.max, mine.at(-1)!.id);
      assert.equal(f.columns.word!.nullCount, mine.filter((r) => r.word === null).length);
      assert.ok(back.rowGroupRows.every((n) => n <= 1000));
    }
  });

  it('accepts single rows and Row[] batches mixed in one stream', async () => {
    const storage = new LocalStorage(join(dir, 'mixed'));
    const sink = parquetSink({ storage, fields: FIELDS, constants: { _dativo_run_id: 'r1' }, directory: 'd', filePrefix: 'p', batchRows: 50 });
    const rows = makeRows(1000);
    const chunks: Array<Row | Row[]> = [rows[0]!, rows[1]!, rows.slice(2, 500), ...rows.slice(500, 777), rows.slice(777, 900), ...rows.slice(900)];
    await pipeline(Readable.from(chunks), sink);
    assert.equal(sink.files.length, 1);
    assert.equal(sink.files[0]!.recordCount, 1000);
    const back = await readParquetWithDuckDB(join(dir, 'mixed', sink.files[0]!.relativePath));
    assert.deepEqual(back.rows.map((r) => r.id), rows.map((r) => r.id));
    assert.deepEqual(back.rows.map((r) => r.amount), rows.map((r) => r.amount));
  });

  it('a non-canonical value in a single row fails the write and leaves no file', async () => {
    const storage = new LocalStorage(join(dir, 'bad'));
    const sink = parquetSink({ storage, fields: FIELDS, constants: { _dativo_run_id: 'r1' }, directory: 'd', filePrefix: 'p', batchRows: 100 });
    const rows: Row[] = [...makeRows(350), { id: 1n, word: 12, amount: '1.00' }, ...makeRows(10)];
    await assert.rejects(
      pipeline(Readable.from(rows), sink),
      (e: unknown) => isDativoError(e) && e.code === 'INTERNAL' && (e.context as { column?: string }).column === 'word',
    );
    assert.deepEqual(sink.files, []);
    assert.deepEqual(await readdir(join(dir, 'bad'), { recursive: true }).then((l) => l.filter((p) => p.endsWith('.parquet'))).catch(() => []), []);
  });
});
