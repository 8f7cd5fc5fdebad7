/**
 * Every live data file of a table written by `dativo run` is read on its own
 * with DuckDB: its row count equals the manifest's record_count and its
 * size the manifest's file_size_in_bytes, every Parquet column carries the
 * Iceberg field id of the table's current schema, and the values are the
 * source's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { readManifestEntries, readManifestList } from '../../../lib/iceberg/manifest.js';
import { ancestry } from '../../../lib/iceberg/metadata.js';
import { openStorage } from '../../../lib/storage/index.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, project, type Project } from '../cli/helpers.js';

let p: Project;

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: payments
version: "1.0"
domain: fin
dataProduct: ledger
schema:
  - {name: id, type: long, required: true}
  - {name: amount, type: "decimal(18,4)"}
  - {name: paid_at, type: timestamp}
  - {name: who, type: string}
primary_key: [id]
team: {owner: fin@example.com}
`;

function csv(from: number, count: number): string {
  const lines = ['id,amount,paid_at,who'];
  for (let i = from; i < from + count; i++) {
    lines.push(`${9007199254740990n + BigInt(i)},${i % 7 === 0 ? '' : `${i}.${String(i % 10000).padStart(4, '0')}`},2026-03-0${1 + (i % 9)}T10:00:00.${String(i).padStart(6, '0').slice(-6)}+02:00,"${i % 5 === 0 ? 'ünïcødé ' : ''}p${i}"`);
  }
  return `${lines.join('\n')}\n`;
}

before(async () => {
  p = await project('iceberg-files');
  await p.write('asset.yaml', ASSET);
  await p.write(
    'job.yaml',
    'tenant_id: t1\nsource_connector: csv\ntarget_connector: iceberg\nasset_path: asset.yaml\nsource:\n  files: [{path: "data/*.csv", object: payments}]\n  incremental: {strategy: file_modified_time}\ntarget: {warehouse: wh, parquet_target_size_mb: 1}\nstate: {path: state.json}\n',
  );
  await p.write('data/a.csv', csv(1, 30_000));
  const one = await dativo(['run', 'job.yaml'], { cwd: p.dir });
  assert.equal(one.code, 0, one.stderr);
  await p.write('data/b.csv', csv(30_001, 5_000));
  const two = await dativo(['run', 'job.yaml'], { cwd: p.dir });
  assert.equal(two.code, 0, two.stderr);
});

after(() => p.cleanup());

test('each live data file read alone by DuckDB matches its manifest entry, the table field ids and the source', async () => {
  const wh = p.p('wh');
  const storage = await openStorage(pathToFileURL(wh).href);
  const catalog = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${path.join(wh, 'catalog.db')}` }, storage);
  assert.ok(catalog);
  try {
    const t = await catalog.loadTable({ namespace: ['t1', 'fin'], name: 'payments' });
    assert.ok(t);
    const md = t.metadata;
    const schemas = md['schemas'] as { 'schema-id': number; fields: { id: number; name: string }[] }[];
    const current = schemas.find((s) => s['schema-id'] === md['current-schema-id']);
    assert.ok(current);
    const ids = Object.fromEntries(current.fields.map((f) => [f.name, f.id]));
    const snap = ancestry(md)[0];
    assert.ok(snap);
    assert.equal(ancestry(md).length, 2, 'one snapshot per run');

    const list = readManifestList(await readFile(fileURLToPath(snap['manifest-list'])));
    const entries = [];
    for (const row of list) entries.push(...readManifestEntries(await readFile(fileURLToPath(row.manifest_path)), row));
    assert.ok(entries.length >= 2, `several files (rolled at 1 MB): ${entries.length}`);

    const seen = new Map<bigint, Record<string, unknown>>();
    for (const e of entries) {
      const file = fileURLToPath(e.filePath);
      assert.match(e.filePath, /\/wh\/t1\/fin\/ledger\/payments\/data\/ingest_date=\d{4}-\d{2}-\d{2}\/part-.*\.parquet$/);
      assert.equal(BigInt((await stat(file)).size), e.fileSizeBytes, 'file_size_in_bytes');
      const d = await readParquetWithDuckDB(file);
      assert.equal(BigInt(d.rows.length), e.recordCount, 'record_count');
      assert.deepEqual(d.fieldIds, ids, 'Parquet field ids = table field ids');
      assert.equal(d.types['paid_at'], 'TIMESTAMP WITH TIME ZONE');
      assert.equal(d.types['amount'], 'DECIMAL(18,4)');
      for (const r of d.rows) seen.set(r['id'] as bigint, r);
    }
    assert.equal(seen.size, 35_000, 'every source row once');
    // Spot-check exact values against the generator.
    for (const i of [1, 7, 10, 29_999, 30_001, 35_000]) {
      const r = seen.get(9007199254740990n + BigInt(i));
      assert.ok(r, `row ${i}`);
      assert.equal(r['amount'], i % 7 === 0 ? null : `${i}.${String(i % 10000).padStart(4, '0')}`);
      const micros = BigInt(Date.parse(`2026-03-0${1 + (i % 9)}T08:00:00Z`)) * 1000n + BigInt(String(i).padStart(6, '0').slice(-6));
      assert.equal(r['paid_at'], micros);
      assert.equal(r['who'], `${i % 5 === 0 ? 'ünïcødé ' : ''}p${i}`);
    }
  } finally {
    await catalog.close();
  }
});
