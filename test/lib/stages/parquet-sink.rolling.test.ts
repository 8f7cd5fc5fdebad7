import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { field, prng } from '../parquet/fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-roll-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = [
  field('id', { kind: 'long' }, 1, true),
  field('word', { kind: 'string' }, 2),
  field('amount', { kind: 'decimal', precision: 12, scale: 2 }, 3),
  field('score', { kind: 'double' }, 4),
  field('_dativo_run_id', { kind: 'string' }, 5, true),
];

function makeRows(count: number): Row[] {
  const rnd = prng(7);
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const cents = Math.floor(rnd() * 2_000_000) - 1_000_000;
    rows.push({
      id: BigInt(i) * 1_000_003n - 5_000_000n,
      word: rnd() < 0.1 ? null : `w${Math.floor(rnd() * 1e9).toString(36)}-${i}`,
      amount: `${cents < 0 ? '-' : ''}${Math.floor(Math.abs(cents) / 100)}.${String(Math.abs(cents) % 100).padStart(2, '0')}`,
      score: rnd() < 0.05 ? Number.NaN : rnd() * 1000 - 500,
    });
  }
  return rows;
}

describe('parquetSink file rolling', () => {
  it('rolls at the target size; row counts add up and per-file stats match the rows in each file', async () => {
    const storage = new LocalStorage(join(dir, 'wh'));
    const target = 40_000;
    const sink = parquetSink({
      storage,
      fields: FIELDS,
      constants: { _dativo_run_id: 'r1' },
      directory: 't/data',
      filePrefix: 'part-r1',
      targetFileSizeBytes: target,
      rowGroupRows: 1000,
    });
    const rows = makeRows(30_000);
    const batches: Row[][] = [];
    for (let i = 0; i < rows.length; i += 2500) batches.push(rows.slice(i, i + 2500));
    await pipeline(Readable.from(batches), sink);

    const files = sink.files;
    assert.ok(files.length >= 3, `expected several files, got ${files.length}`);
    assert.deepEqual(
      files.map((f) => f.relativePath),
      files.map((_, i) => `t/data/part-r1-${String(i + 1).padStart(5, '0')}.parquet`),
    );
    assert.deepEqual((await readdir(join(dir, 'wh', 't/data'))).sort(), files.map((f) => f.relativePath.slice('t/data/'.length)));
    assert.equal(files.reduce((n, f) => n + f.recordCount, 0), rows.length);

    let offset = 0;
    for (const [k, f] of files.entries()) {
      const path = join(dir, 'wh', f.relativePath);
      assert.equal(f.fileSizeBytes, (await stat(path)).size);
      // Every file but the last reached the target. None overshoots by more than
      // what the encoder may hold when the size is checked: the row group in
      // progress plus the batch being written and two in flight (2,500 rows each).
      if (k < files.length - 1) assert.ok(f.fileSizeBytes >= target, `file ${k} is ${f.fileSizeBytes} bytes`);
      const bytesPerRow = f.fileSizeBytes / f.recordCount;
      assert.ok(f.fileSizeBytes - target < (1000 + 3 * 2500) * bytesPerRow, `file ${k} is ${f.fileSizeBytes} bytes (${f.recordCount} rows)`);
      const mine = rows.slice(offset, offset + f.recordCount);
      offset += f.recordCount;

      const back = await readParquetWithDuckDB(path);
      assert.equal(back.rows.length, f.recordCount);
      assert.deepEqual(back.rows.map((r) => r.id), mine.map((r) => r.id), `file ${k}: rows are the next slice of the input`);

      const words = mine.map((r) => r.word).filter((w): w is string => w !== null);
      words.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const amounts = mine.map((r) => r.amount as string).sort((a, b) => Number(a) - Number(b));
      const scores = mine.map((r) => r.score as number).filter((s) => !Number.isNaN(s));
      const ids = mine.map((r) => r.id as bigint);
      assert.deepEqual(f.columns.id, { fieldId: 1, valueCount: mine.length, nullCount: 0, min: ids[0], max: ids.at(-1), sizeBytes: f.columns.id!.sizeBytes });
      assert.equal(f.columns.word!.nullCount, mine.length - words.length);
      assert.equal(f.columns.word!.min, words[0]);
      assert.equal(f.columns.word!.max, words.at(-1));
      assert.equal(f.columns.amount!.min, amounts[0]);
      assert.equal(f.columns.amount!.max, amounts.at(-1));
      assert.equal(f.columns.score!.min, Math.min(...scores));
      assert.equal(f.columns.score!.max, Math.max(...scores));
      assert.equal(f.columns.score!.nanCount, mine.length - scores.length);
      assert.deepEqual(
        { min: f.columns._dativo_run_id!.min, max: f.columns._dativo_run_id!.max, nulls: f.columns._dativo_run_id!.nullCount },
        { min: 'r1', max: 'r1', nulls: 0 },
      );
      assert.ok(back.rowGroupRows.every((n) => n <= 1000));
      assert.equal(f.splitOffsets?.length, back.rowGroupRows.length);
    }
  });

  it('bounds row groups by uncompressed bytes as well as rows', async () => {
    const storage = new LocalStorage(join(dir, 'wide'));
    const sink = parquetSink({
      storage,
      fields: FIELDS,
      constants: { _dativo_run_id: 'r1' },
      directory: 'd',
      filePrefix: 'p',
      rowGroupRows: 100_000,
      rowGroupBytes: 200_000,
    });
    const rows = makeRows(3000).map((r, i) => ({ ...r, word: `${i}:${'w'.repeat(1000)}` }));
    await pipeline(Readable.from([rows.slice(0, 1000), rows.slice(1000)]), sink);
    const back = await readParquetWithDuckDB(join(dir, 'wide', sink.files[0]!.relativePath));
    assert.equal(back.rows.length, 3000);
    // ~1,030 Arrow bytes per row → at most ~194 rows per 200 kB row group.
    assert.ok(back.rowGroupRows.length >= 15, `row groups: ${back.rowGroupRows.join(',')}`);
    assert.ok(back.rowGroupRows.every((n) => n <= 200), `row groups: ${back.rowGroupRows.join(',')}`);
  });

  it('writes no file at all when it receives no rows', async () => {
    const storage = new LocalStorage(join(dir, 'empty'));
    const sink = parquetSink({ storage, fields: FIELDS, constants: { _dativo_run_id: 'r' }, directory: 'd', filePrefix: 'p' });
    await pipeline(Readable.from([[], []]), sink);
    assert.deepEqual(sink.files, []);
    assert.deepEqual(await storage.list(''), []);
    assert.deepEqual(await readdir(join(dir, 'empty'), { recursive: true }).catch(() => []), []);
  });
});
