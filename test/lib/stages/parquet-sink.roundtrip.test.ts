import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { DataFile, Row } from '../../../lib/types.js';
import { duckToCanonical, readParquetWithDuckDB, readParquetWithHyparquet } from '../../helpers/readers.js';
import { ALL_FIELDS, CONSTANTS, edgeRows, expectedValue } from '../parquet/fixtures.js';

const ROWS = 2500;
const ROW_GROUP = 1000;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-rt-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function compareRows(reader: string, actual: Row[], input: Row[]): void {
  assert.equal(actual.length, input.length, `${reader}: row count`);
  for (let i = 0; i < input.length; i++) {
    for (const f of ALL_FIELDS) {
      assert.deepEqual(actual[i]![f.name], expectedValue(input[i]!, f.name), `${reader}: row ${i} column ${f.name}`);
    }
  }
}

const DUCKDB_TYPES: Record<string, string> = {
  id: 'BIGINT',
  big: 'BIGINT',
  n: 'INTEGER',
  f: 'FLOAT',
  dbl: 'DOUBLE',
  d38: 'DECIMAL(38,9)',
  d12: 'DECIMAL(12,2)',
  flag: 'BOOLEAN',
  day: 'DATE',
  ts: 'TIMESTAMP WITH TIME ZONE',
  s: 'VARCHAR',
  j: 'VARCHAR',
  bin: 'BLOB',
  _dativo_ingested_at: 'TIMESTAMP WITH TIME ZONE',
  _dativo_run_id: 'VARCHAR',
};

const PHYSICAL: Record<string, string> = {
  id: 'INT64',
  big: 'INT64',
  n: 'INT32',
  f: 'FLOAT',
  dbl: 'DOUBLE',
  d38: 'FIXED_LEN_BYTE_ARRAY',
  d12: 'INT64',
  flag: 'BOOLEAN',
  day: 'INT32',
  ts: 'INT64',
  s: 'BYTE_ARRAY',
  j: 'BYTE_ARRAY',
  bin: 'BYTE_ARRAY',
  _dativo_ingested_at: 'INT64',
  _dativo_run_id: 'BYTE_ARRAY',
};

async function writeFile(
  compression: 'zstd' | 'snappy' | 'gzip' | 'uncompressed',
  input: Row[],
  chunks: 'batches' | 'rows' = 'batches',
): Promise<{ file: DataFile; path: string }> {
  const sub = chunks === 'rows' ? `${compression}-rows` : compression;
  const storage = new LocalStorage(pathToFileURL(join(dir, sub)).href);
  const sink = parquetSink({
    storage,
    fields: ALL_FIELDS,
    constants: CONSTANTS,
    directory: 'acme/sales/orders/data/ingest_date=2025-11-27',
    relativeTo: 'acme/sales/orders',
    filePrefix: 'part-run1-orders',
    partition: { ingest_date: 20419 },
    rowGroupRows: ROW_GROUP,
    compression,
    footerMetadata: { 'dativo.asset': 'orders' },
    ...(chunks === 'rows' ? { batchRows: 700, highWaterMark: 16 } : {}),
  });
  const emitted: DataFile[] = [];
  sink.on('file', (f: DataFile) => emitted.push(f));
  // Upstream batches of 700 rows: not aligned with row groups on purpose.
  const batches: Row[][] = [];
  for (let i = 0; i < input.length; i += 700) batches.push(input.slice(i, i + 700));
  await pipeline(Readable.from(chunks === 'rows' ? input : batches), sink);
  assert.equal(sink.files.length, 1);
  assert.deepEqual(emitted, sink.files);
  const file = sink.files[0]!;
  return { file, path: join(dir, sub, 'acme/sales/orders', file.relativePath) };
}

describe('parquetSink round trip (DuckDB + hyparquet)', () => {
  const input = edgeRows(ROWS);

  const cases = [
    ...(['zstd', 'snappy', 'gzip', 'uncompressed'] as const).map((c) => ({ compression: c, chunks: 'batches' as const })),
    // Single rows go straight into the column builders (batches of 700 made by the sink).
    { compression: 'zstd' as const, chunks: 'rows' as const },
  ];
  for (const { compression, chunks } of cases) {
    it(`writes every type exactly (${compression}, ${chunks === 'rows' ? 'single rows' : 'Row[] batches'})`, async () => {
      const { file, path } = await writeFile(compression, input, chunks);
      const sub = chunks === 'rows' ? `${compression}-rows` : compression;

      // The DataFile descriptor.
      assert.equal(file.relativePath, 'data/ingest_date=2025-11-27/part-run1-orders-00001.parquet');
      assert.equal(file.uri, pathToFileURL(path).href);
      assert.equal(file.recordCount, ROWS);
      assert.equal(file.fileSizeBytes, (await stat(path)).size);
      assert.deepEqual(file.partition, { ingest_date: 20419 });
      assert.deepEqual(
        (await readdir(join(dir, sub, 'acme/sales/orders/data/ingest_date=2025-11-27'))).sort(),
        ['part-run1-orders-00001.parquet'],
      );

      // DuckDB: types, field ids, repetition, UTC timestamps, values one by one.
      const duck = await readParquetWithDuckDB(path);
      assert.deepEqual(duck.types, DUCKDB_TYPES);
      assert.deepEqual(duck.fieldIds, Object.fromEntries(ALL_FIELDS.map((f) => [f.name, f.fieldId])));
      assert.deepEqual(duck.repetition, Object.fromEntries(ALL_FIELDS.map((f) => [f.name, f.required ? 'REQUIRED' : 'OPTIONAL'])));
      assert.match(duck.logicalTypes.ts!, /isAdjustedToUTC=1.*MICROS=MicroSeconds\(\)/);
      assert.deepEqual(duck.rowGroupRows, [1000, 1000, 500]);
      assert.equal(duck.compression, compression.toUpperCase());
      assert.equal(duck.keyValue['dativo.asset'], 'orders');
      assert.equal(duck.keyValue['dativo.run_id'], CONSTANTS._dativo_run_id);
      compareRows('duckdb', duck.rows, input);

      // hyparquet: physical + logical types, field ids, values one by one.
      const hyp = await readParquetWithHyparquet(path);
      assert.equal(hyp.numRows, ROWS);
      assert.deepEqual(
        hyp.columns.map((c) => [c.name, c.fieldId, c.physicalType, c.repetition]),
        ALL_FIELDS.map((f) => [f.name, f.fieldId, PHYSICAL[f.name], f.required ? 'REQUIRED' : 'OPTIONAL']),
      );
      const byName = Object.fromEntries(hyp.columns.map((c) => [c.name, c]));
      assert.deepEqual(byName.ts!.logicalType, { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' });
      assert.deepEqual(byName.day!.logicalType, { type: 'DATE' });
      assert.deepEqual(byName.d38!.logicalType, { type: 'DECIMAL', precision: 38, scale: 9 });
      assert.deepEqual(byName.d12!.logicalType, { type: 'DECIMAL', precision: 12, scale: 2 });
      assert.deepEqual(byName.s!.logicalType, { type: 'STRING' });
      assert.equal(byName.bin!.logicalType, undefined);
      assert.equal(hyp.codec, compression.toUpperCase());
      assert.deepEqual(hyp.rowGroupRows, [1000, 1000, 500]);
      assert.deepEqual(file.splitOffsets, hyp.rowGroupOffsets);
      compareRows('hyparquet', hyp.rows, input);

      await checkStats(path, file);
    });
  }
});

/** Column stats against DuckDB's own aggregates and footer sizes (independent of our code). */
async function checkStats(path: string, file: DataFile): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    threads: '1',
  });
  const conn = await instance.connect();
  try {
    const p = `'${path}'`;
    const sizes = Object.fromEntries(
      (
        await conn.runAndReadAll(
          `SELECT path_in_schema AS c, sum(total_compressed_size)::BIGINT AS s FROM parquet_metadata(${p}) GROUP BY path_in_schema`,
        )
      )
        .getRowObjectsJS()
        .map((r) => [String(r.c), Number(r.s)]),
    );
    for (const f of ALL_FIELDS) {
      const s = file.columns[f.name]!;
      assert.equal(s.fieldId, f.fieldId, `${f.name} fieldId`);
      assert.equal(s.valueCount, ROWS, `${f.name} valueCount`);
      assert.equal(s.sizeBytes, sizes[f.name], `${f.name} sizeBytes`);
      const col = `"${f.name}"`;
      const isFloat = f.type.kind === 'float' || f.type.kind === 'double';
      const where = isFloat ? `WHERE NOT isnan(${col})` : '';
      const agg = (
        await conn.runAndReadAll(
          `SELECT (SELECT count(*) - count(${col}) FROM read_parquet(${p}, hive_partitioning = false)) AS nulls,
                  ${isFloat ? `(SELECT count(*) FILTER (WHERE isnan(${col})) FROM read_parquet(${p}, hive_partitioning = false))` : 'NULL'} AS nans,
                  min(${col}) AS mn, max(${col}) AS mx FROM read_parquet(${p}, hive_partitioning = false) ${where}`,
        )
      ).getRowObjects()[0]!;
      assert.equal(s.nullCount, Number(agg.nulls), `${f.name} nullCount`);
      if (isFloat) assert.equal(s.nanCount, Number(agg.nans), `${f.name} nanCount`);
      else assert.equal(s.nanCount, undefined);
      assert.deepEqual(s.min, duckToCanonical(agg.mn), `${f.name} min`);
      assert.deepEqual(s.max, duckToCanonical(agg.mx), `${f.name} max`);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}
