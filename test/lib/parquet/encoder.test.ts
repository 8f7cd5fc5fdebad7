import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableToIPC, Table } from 'apache-arrow';
import { arrowSchema, buildRecordBatch } from '../../../lib/parquet/arrow.js';
import { inlineEncoder, type EncoderOptions, type PageLimits } from '../../../lib/parquet/encoder.js';
import { readFooter } from '../../../lib/parquet/footer.js';
import type { AssetField, Row } from '../../../lib/types.js';
import { readParquetWithDuckDB, readParquetWithHyparquet } from '../../helpers/readers.js';
import { ALL_FIELDS, CONSTANTS, edgeRows, expectedValue, field } from './fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-encoder-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Encode `batches` (rows each) with the inline encoder into `name`; returns the path. */
async function encode(
  name: string,
  fields: readonly AssetField[],
  batches: Row[][],
  options: Partial<EncoderOptions> = {},
  limits?: PageLimits,
  constants: Record<string, unknown> = {},
): Promise<string> {
  const chunks: Uint8Array[] = [];
  const enc = inlineEncoder({ fields, ...options }, (c) => void chunks.push(c.slice()), limits);
  const schema = arrowSchema(fields);
  for (const rows of batches) await enc.write(tableToIPC(new Table(buildRecordBatch(fields, rows, constants, schema).batch), 'stream'));
  await enc.finish();
  const path = join(dir, name);
  await writeFile(path, Buffer.concat(chunks));
  return path;
}

const edgeFile = (name: string, n: number, options: Partial<EncoderOptions> = {}, limits?: PageLimits, perBatch = n) => {
  const rows = edgeRows(n);
  const batches: Row[][] = [];
  for (let i = 0; i < n; i += perBatch) batches.push(rows.slice(i, i + perBatch));
  return { rows, path: encode(name, ALL_FIELDS, batches, { constantColumns: Object.keys(CONSTANTS), ...options }, limits, CONSTANTS) };
};

function compareRows(reader: string, actual: Row[], input: Row[], fields: readonly AssetField[] = ALL_FIELDS): void {
  assert.equal(actual.length, input.length, `${reader}: row count`);
  for (let i = 0; i < input.length; i++) {
    for (const f of fields) assert.deepEqual(actual[i]![f.name], expectedValue(input[i]!, f.name), `${reader}: row ${i} column ${f.name}`);
  }
}

async function bothReaders(path: string, input: Row[], fields: readonly AssetField[] = ALL_FIELDS): Promise<void> {
  compareRows('duckdb', (await readParquetWithDuckDB(path)).rows, input, fields);
  compareRows('hyparquet', (await readParquetWithHyparquet(path)).rows, input, fields);
}

/** parquet_metadata rows of a file. */
async function metadata(path: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await instance.connect();
  try {
    return (
      await conn.runAndReadAll(
        `SELECT row_group_id AS rg, path_in_schema AS c, encodings AS e, stats_min_value AS min, stats_max_value AS max, stats_null_count AS nulls, num_values AS n
         FROM parquet_metadata('${path}') ORDER BY row_group_id, column_id`,
      )
    ).getRowObjectsJS();
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe('inlineEncoder (our Parquet writer)', () => {
  for (const compression of ['zstd', 'snappy', 'gzip', 'uncompressed'] as const) {
    it(`${compression}: every column kind and edge value reads back exactly in DuckDB and hyparquet`, async () => {
      const { rows, path } = edgeFile(`codec-${compression}.parquet`, 500, { compression });
      const p = await path;
      await bothReaders(p, rows);
      assert.equal((await readParquetWithHyparquet(p)).codec, compression.toUpperCase());
    });
  }

  it('splits column chunks into many pages (small page size), dictionary and PLAIN alike', async () => {
    const dictionaryColumns = ['big', 'n', 'f', 'dbl', 'd12', 'day', 'ts', 's', 'j', 'bin'];
    const { rows, path } = edgeFile('pages.parquet', 3000, { dictionaryColumns, rowGroupRows: 1200, compression: 'snappy' }, { pageBytes: 100 });
    const p = await path;
    await bothReaders(p, rows);
    const hyp = await readParquetWithHyparquet(p);
    assert.deepEqual(hyp.rowGroupRows, [1200, 1200, 600]);
    // The encoding_stats written count the data pages: many per chunk.
    const { parquetMetadata } = await import('hyparquet');
    const { readFile } = await import('node:fs/promises');
    const buf = await readFile(p);
    const md = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    for (const c of md.row_groups[0]!.columns) {
      const pages = c.meta_data!.encoding_stats!.filter((s) => s.page_type === 'DATA_PAGE').reduce((n, s) => n + s.count, 0);
      assert.ok(pages > 1, `${c.meta_data!.path_in_schema.join('.')}: ${pages} data pages`);
    }
  });

  it('falls back to PLAIN for a chunk whose dictionary would pass the limit', async () => {
    const fields = [field('few', { kind: 'string' }, 1), field('many', { kind: 'string' }, 2), field('ids', { kind: 'long' }, 3, true)];
    const rows: Row[] = Array.from({ length: 400 }, (_, i) => ({ few: ['a', 'b', null][i % 3], many: `value-${i % 200}-ü`, ids: BigInt(i % 150) }));
    const path = await encode('fallback.parquet', fields, [rows], { dictionaryColumns: ['few', 'many', 'ids'] }, { dictionaryPageBytes: 1000 });
    await bothReaders(path, rows, fields);
    const md = await metadata(path);
    const enc = Object.fromEntries(md.map((r) => [String(r.c), String(r.e)]));
    // few: 2 entries; many: 200 × ~16 bytes > 1000; ids: 150 × 8 > 1000
    assert.deepEqual(enc, { few: 'PLAIN, RLE, RLE_DICTIONARY', many: 'PLAIN, RLE', ids: 'PLAIN, RLE' });
    // Under the limit, the same columns keep their dictionary.
    const path2 = await encode('no-fallback.parquet', fields, [rows], { dictionaryColumns: ['few', 'many', 'ids'] });
    assert.ok((await metadata(path2)).every((r) => String(r.e).includes('RLE_DICTIONARY')));
    await bothReaders(path2, rows, fields);
  });

  it('writes byte-array pages while rows arrive: a dictionary passing the limit mid-batch, nulls, bounds over every page', async () => {
    const fields = [field('few', { kind: 'string' }, 1), field('many', { kind: 'string' }, 2), field('note', { kind: 'string' }, 3), field('id', { kind: 'long' }, 4, true)];
    // 'many' passes the 1000-byte dictionary in the middle of the third batch;
    // its smallest and largest values sit in different pages, far from the first.
    const rows: Row[] = Array.from({ length: 900 }, (_, i) => ({
      few: i % 7 === 0 ? null : ['x', 'y'][i % 2],
      many: i === 611 ? 'a-smallest' : i === 847 ? '\u{1F600}-largest' : i % 11 === 0 ? null : `value-${(i * 37) % 500}-ü`,
      note: i % 3 === 0 ? null : `n${'é'.repeat(i % 50)}${i}`,
      id: BigInt(i),
    }));
    const batches: Row[][] = [];
    for (let i = 0; i < rows.length; i += 37) batches.push(rows.slice(i, i + 37));
    const path = await encode('streamed.parquet', fields, batches, { dictionaryColumns: ['few', 'many'], rowGroupRows: 450 }, { dictionaryPageBytes: 1000, pageBytes: 300 });
    await bothReaders(path, rows, fields);
    const md = await metadata(path);
    const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
    for (const rg of [0, 1]) {
      const group = rows.slice(rg * 450, rg * 450 + 450);
      for (const name of ['few', 'many', 'note']) {
        const values = group.map((r) => r[name] as string | null).filter((v): v is string => v !== null).sort(utf8Order);
        const r = md.find((m) => Number(m.rg) === rg && m.c === name)!;
        assert.deepEqual([r.min, r.max, Number(r.nulls), Number(r.n)], [values[0], values.at(-1), 450 - values.length, 450], `${name} of row group ${rg}`);
      }
    }
    const enc = Object.fromEntries(md.filter((r) => Number(r.rg) === 0).map((r) => [String(r.c), String(r.e)]));
    assert.deepEqual(enc, { few: 'PLAIN, RLE, RLE_DICTIONARY', many: 'PLAIN, RLE', note: 'PLAIN, RLE', id: 'PLAIN, RLE' });
  });

  it('fills row groups from several batches, splitting a batch at a row group boundary', async () => {
    const { rows, path } = edgeFile('groups.parquet', 250, { rowGroupRows: 100 }, undefined, 30);
    const p = await path;
    await bothReaders(p, rows);
    const duck = await readParquetWithDuckDB(p);
    assert.deepEqual(duck.rowGroupRows, [100, 100, 50]);
    assert.deepEqual(duck.keyValue, {});
  });

  it('writes nulls in every column, and an all-null chunk has a null count and no bounds', async () => {
    const nullable = ALL_FIELDS.filter((f) => !f.required);
    const fields = [field('id', { kind: 'long' }, 1, true), ...nullable.filter((f) => f.name !== 'id')];
    const rows: Row[] = Array.from({ length: 40 }, (_, i) => Object.fromEntries([['id', BigInt(i)], ...fields.slice(1).map((f) => [f.name, null])]) as Row);
    const path = await encode('nulls.parquet', fields, [rows]);
    await bothReaders(path, rows, fields);
    for (const r of await metadata(path)) {
      if (r.c === 'id') continue;
      assert.equal(Number(r.nulls), 40, `null count of ${String(r.c)}`);
      assert.equal(r.min, null, `min of ${String(r.c)}`);
      assert.equal(r.max, null, `max of ${String(r.c)}`);
    }
  });

  it('writes an empty file (no rows) that both readers open, with the schema', async () => {
    const path = await encode('empty.parquet', ALL_FIELDS, []);
    const duck = await readParquetWithDuckDB(path);
    assert.equal(duck.rows.length, 0);
    assert.deepEqual(duck.rowGroupRows, []);
    assert.equal(duck.types['d38'], 'DECIMAL(38,9)');
    assert.equal(duck.fieldIds['_dativo_run_id'], 15);
    const hyp = await readParquetWithHyparquet(path);
    assert.equal(hyp.numRows, 0);
    assert.equal(hyp.columns.length, ALL_FIELDS.length);
  });

  it('orders statistics as readers do: signed numbers, unsigned UTF-8 bytes, floats without NaN', async () => {
    const fields = [
      field('n', { kind: 'int' }, 1),
      field('big', { kind: 'long' }, 2),
      field('d12', { kind: 'decimal', precision: 12, scale: 2 }, 3),
      field('d38', { kind: 'decimal', precision: 38, scale: 9 }, 4),
      field('d5', { kind: 'decimal', precision: 5, scale: 1 }, 5),
      field('s', { kind: 'string' }, 6),
      field('day', { kind: 'date' }, 7),
      field('ts', { kind: 'timestamp' }, 8),
      field('dbl', { kind: 'double' }, 9),
      field('nan', { kind: 'float' }, 10),
      field('zero', { kind: 'double' }, 11),
      field('flag', { kind: 'boolean' }, 12),
      field('j', { kind: 'json' }, 13),
    ];
    const rows: Row[] = [
      { n: -5, big: -(2n ** 62n), d12: '-0.01', d38: '-1.000000000', d5: '-9999.9', s: 'z', day: -1, ts: -1n, dbl: Number.NaN, nan: Number.NaN, zero: 0, flag: true, j: '{"z":1}' },
      { n: 3, big: 5n, d12: '-12.50', d38: '0.500000000', d5: '12.5', s: 'é', day: 3, ts: 10n, dbl: -1.5, nan: Number.NaN, zero: -0, flag: true, j: '[]' },
      { n: -100, big: 2n ** 53n + 1n, d12: '3.00', d38: '-99999999999999999999999999999.999999999', d5: '0.0', s: '中', day: -719162, ts: -62135596800000000n, dbl: 2, nan: null, zero: null, flag: null, j: null },
      { n: 7, big: -1n, d12: null, d38: '18446744073709551616.000000001', d5: null, s: 'a', day: null, ts: null, dbl: null, nan: Number.NaN, zero: 0, flag: true, j: 'null' },
    ];
    for (const dict of [false, true]) {
      const path = await encode(`stats-${dict}.parquet`, fields, [rows], dict ? { dictionaryColumns: fields.map((f) => f.name) } : { dictionaryColumns: [] });
      const stats = Object.fromEntries((await metadata(path)).map((r) => [String(r.c), [r.min, r.max, Number(r.nulls)]]));
      assert.deepEqual(
        stats,
        {
          n: ['-100', '7', 0],
          big: ['-4611686018427387904', '9007199254740993', 0],
          d12: ['-12.50', '3.00', 1],
          d38: ['-99999999999999999999999999999.999999999', '18446744073709551616.000000001', 0],
          d5: ['-9999.9', '12.5', 1],
          s: ['a', '中', 0],
          day: ['0001-01-01', '1970-01-04', 1],
          ts: ['0001-01-01 00:00:00+00', '1970-01-01 00:00:00.00001+00', 1],
          dbl: ['-1.5', '2.0', 1],
          nan: [null, null, 1],
          zero: ['-0.0', '0.0', 1],
          flag: ['true', 'true', 1],
          j: [null, null, 1],
        },
        `dictionary ${dict}`,
      );
      await bothReaders(path, rows.map((r) => ({ ...r, nan: r['nan'] === null ? null : Math.fround(r['nan'] as number) })), fields);
    }
  });

  it('reads its footer back with lib/parquet/footer.ts and rejects a batch of another schema', async () => {
    const { path } = edgeFile('footer.parquet', 120, { rowGroupRows: 50, keyValueMetadata: { 'dativo.asset': 'x' } });
    const p = await path;
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(p);
    const info = readFooter(bytes, bytes.length)!;
    const hyp = await readParquetWithHyparquet(p);
    assert.equal(info.numRows, 120);
    assert.deepEqual(info.splitOffsets, hyp.rowGroupOffsets);
    assert.deepEqual(info.keyValue, { 'dativo.asset': 'x' });
    const enc = inlineEncoder({ fields: ALL_FIELDS }, () => {});
    const other = [field('x', { kind: 'int' }, 1)];
    await enc.write(tableToIPC(new Table(buildRecordBatch(other, [{ x: 1 }]).batch), 'stream'));
    const first = edgeRows(1);
    await assert.rejects(
      enc.write(tableToIPC(new Table(buildRecordBatch(ALL_FIELDS, first, CONSTANTS).batch), 'stream')),
      /another schema/,
    );
  });
});
