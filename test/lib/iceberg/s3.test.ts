/**
 * The same writer on S3 (s3rver on loopback): data, manifests and metadata go
 * through the S3 storage, the SQLite catalog points at s3:// metadata, and
 * icebird reads the table back from the bucket.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { commitFiles, ensureTable } from '../../../lib/iceberg/table.js';
import { createS3Storage } from '../../../lib/storage/s3.js';
import { readIcebergVia } from '../../helpers/iceberg-read.js';
import { startS3rver } from '../../helpers/s3rver.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';
import { assertInvariants } from './invariants.js';

test('commits to a table on S3 and reads it back from the bucket', async (t) => {
  const srv = await startS3rver({ buckets: ['lake'], conditionalWrites: true });
  t.after(() => srv.close());
  const dir = await mkdtemp(join(tmpdir(), 'dativo-ice-s3-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = createS3Storage('s3://lake/wh', {
    bucket: 'lake',
    prefix: 'wh',
    endpoint: srv.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
  });
  t.after(() => storage.close());
  const catalog = (await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, 'catalog.db')}` }, storage))!;
  t.after(() => catalog.close());
  const ident = { namespace: ['sales'], name: 'orders' };
  const rel = 'sales/erp/orders';
  const ingested = 20419n * DAY_US;
  const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel) });
  assert.equal(e.table.metadata.location, 's3://lake/wh/sales/erp/orders');
  for (const [runId, from, to] of [['s1', 0, 30], ['s2', 30, 45]] as const) {
    const files = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows: orderRows(from, to, runId, ingested), runId, ingestDay: dayOf(ingested) });
    assert.match(files[0]!.uri, /^s3:\/\/lake\/wh\/sales\/erp\/orders\/data\/ingest_date=2025-11-27\//);
    await commitFiles(catalog, ident, { files, mode: 'append', summary: { 'dativo.run-id': runId }, fields: e.fields, location: storage.uri(rel), storage });
  }
  const table = (await catalog.loadTable(ident))!;
  await assertInvariants(table, storage);
  assert.match(table.metadataLocation, /^s3:\/\/lake\/wh\/sales\/erp\/orders\/metadata\/00002-[0-9a-f-]{36}\.metadata\.json$/);
  assert.equal(snapshotsOf(table.metadata).length, 2);
  assert.equal((await storage.read(`${rel}/metadata/version-hint.text`)).toString(), '2');

  const rows = await readIcebergVia({
    location: String(table.metadata.location),
    metadataLocation: table.metadataLocation,
    rewrite: (u) => u.replace(/^https:\/\/lake\.s3\.amazonaws\.com\//, `${srv.endpoint}/lake/`),
  });
  assert.equal(rows.length, 45);
  assert.deepEqual(
    rows.map((r) => r.id).sort(),
    orderRows(0, 45, 'x', ingested).map((r) => r.id).sort(),
  );
});
