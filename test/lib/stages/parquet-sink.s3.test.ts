import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { openStorage } from '../../../lib/storage/index.js';
import type { Storage } from '../../../lib/storage/types.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB, readParquetWithHyparquet } from '../../helpers/readers.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { ALL_FIELDS, CONSTANTS, edgeRows, expectedValue } from '../parquet/fixtures.js';

let srv: S3rverHandle;
let dir: string;
let storage: Storage & { close?: () => void };

before(async () => {
  srv = await startS3rver({ buckets: ['lake'] });
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-s3-'));
  storage = await openStorage('s3://lake/wh', {
    bucket: 'lake',
    endpoint: srv.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  });
});
after(async () => {
  storage.close?.();
  await srv.close();
  await rm(dir, { recursive: true, force: true });
});

describe('parquetSink on S3 (s3rver)', () => {
  it('writes files whose every value reads back exactly, with s3:// URIs', async () => {
    const input = edgeRows(6000);
    const sink = parquetSink({
      storage,
      fields: ALL_FIELDS,
      constants: CONSTANTS,
      directory: 'acme/sales/orders/data/ingest_date=2025-11-27',
      relativeTo: 'acme/sales/orders',
      filePrefix: 'part-run1',
      partition: { ingest_date: 20419 },
      rowGroupRows: 500,
      // Small on purpose: the size check sees what storage accepted, which lags the rows by a batch or two.
      targetFileSizeBytes: 8_000,
    });
    const batches: Row[][] = [];
    for (let i = 0; i < input.length; i += 1000) batches.push(input.slice(i, i + 1000));
    await pipeline(Readable.from(batches), sink);

    assert.ok(sink.files.length >= 2, `files: ${sink.files.map((f) => f.fileSizeBytes).join(',')}`);
    assert.deepEqual(
      await storage.list('acme/sales/orders/data/'),
      sink.files.map((f) => `acme/sales/orders/${f.relativePath}`),
    );
    let offset = 0;
    for (const f of sink.files) {
      assert.equal(f.uri, `s3://lake/wh/acme/sales/orders/${f.relativePath}`);
      const bytes = await storage.read(`acme/sales/orders/${f.relativePath}`);
      assert.equal(bytes.length, f.fileSizeBytes);
      const local = join(dir, f.relativePath.replaceAll('/', '_'));
      await writeFile(local, bytes);
      const mine = input.slice(offset, offset + f.recordCount);
      offset += f.recordCount;
      for (const [reader, rows] of [
        ['duckdb', (await readParquetWithDuckDB(local)).rows],
        ['hyparquet', (await readParquetWithHyparquet(local)).rows],
      ] as const) {
        assert.equal(rows.length, mine.length);
        for (let i = 0; i < mine.length; i++) {
          for (const fld of ALL_FIELDS) assert.deepEqual(rows[i]![fld.name], expectedValue(mine[i]!, fld.name), `${reader} ${f.relativePath} row ${i} ${fld.name}`);
        }
      }
    }
    assert.equal(offset, input.length);
  });

  it('destroy mid-file leaves no object at the final key', async () => {
    const sink = parquetSink({
      storage,
      fields: ALL_FIELDS,
      constants: CONSTANTS,
      directory: 'aborted/data',
      filePrefix: 'part-run2',
      rowGroupRows: 500,
    });
    for (let i = 0; i < 3; i++) {
      if (!sink.write(edgeRows(1000))) await new Promise((r) => sink.once('drain', r));
    }
    const closed = new Promise((r) => sink.once('close', r));
    sink.on('error', () => {});
    sink.destroy(new Error('boom'));
    await closed;
    assert.deepEqual(sink.files, []);
    assert.deepEqual(await storage.list('aborted/'), []);
  });
});
