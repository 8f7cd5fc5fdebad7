/**
 * The Iceberg writer end to end on the embedded SQLite catalog: real Parquet
 * files from the engine's sink, commits, and read-back with an independent
 * reader (icebird) over HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DativoError } from '../../../lib/errors.js';
import type { Catalog, LoadedTable, TableIdent, TableMetadata } from '../../../lib/iceberg/catalog.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { parseJson } from '../../../lib/iceberg/json.js';
import { readAvroFile } from '../../../lib/iceberg/avro.js';
import { readManifestEntries, readManifestList } from '../../../lib/iceberg/manifest.js';
import { findDativoSnapshot, latestSummary, snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { storageKey } from '../../../lib/iceberg/paths.js';
import { commitFiles, ensureTable, type EnsuredTable } from '../../../lib/iceberg/table.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { AssetField, Row } from '../../../lib/types.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { DAY_US, dayOf, field, orderFields, orderRows, writeDataFiles } from './fixtures.js';
import { assertInvariants } from './invariants.js';

let dir: string;
let storage: LocalStorage;
const ingested = 20419n * DAY_US + 3_600_000_123n; // 2025-11-27T01:00:00.000123Z

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-ice-'));
  storage = new LocalStorage(dir);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sqlCatalog(db = 'catalog.db'): Promise<Catalog> {
  const c = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, db)}` }, storage);
  assert.ok(c);
  return c;
}

/** icebird's row → comparable plain values. */
function fromIcebird(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (v instanceof Date) out[k] = k === 'day' ? v.getTime() / 86_400_000 : BigInt(v.getTime());
    else if (k === 'amount' && v !== null) out[k] = Number(v).toFixed(2);
    else out[k] = v ?? null;
  }
  return out;
}

/** Source row → the same shape (icebird reads timestamps at millisecond precision). */
function expected(r: Row, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...r, qty: r.qty ?? null, _dativo_ingested_at: (r._dativo_ingested_at as bigint) / 1000n, ...extra };
}

const byId = (a: Record<string, unknown>, b: Record<string, unknown>) => ((a.id as bigint) < (b.id as bigint) ? -1 : 1);

async function readAll(table: LoadedTable): Promise<Record<string, unknown>[]> {
  const rows = await readIcebergTable({ warehouseDir: dir, location: String(table.metadata.location), metadataLocation: table.metadataLocation });
  return rows.map(fromIcebird).sort(byId);
}

async function prepare(catalog: Catalog, ident: TableIdent, tableRel: string, fields: AssetField[] = orderFields()): Promise<EnsuredTable> {
  return ensureTable(catalog, ident, { fields, location: storage.uri(tableRel), properties: { 'asset.name': ident.name } });
}

async function files(e: EnsuredTable, tableRel: string, rows: Row[], runId: string, rowsPerFile?: number) {
  return writeDataFiles({
    storage,
    tableRel,
    fields: e.fields,
    schema: e.schema,
    rows,
    runId,
    ingestDay: dayOf(ingested),
    ...(rowsPerFile ? { rowsPerFile } : {}),
  });
}

test('create, append, append, overwrite: icebird reads exactly the source rows; snapshots chain', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'orders' };
  const rel = 'sales/orders';
  const e = await prepare(catalog, ident, rel);
  assert.equal(e.created, true);
  const common = { fields: e.fields, location: storage.uri(rel), storage };

  const rows1 = orderRows(0, 120, 'run-1', ingested);
  const c1 = await commitFiles(catalog, ident, {
    ...common,
    files: await files(e, rel, rows1, 'run-1', 50),
    mode: 'append',
    summary: { 'dativo.run-id': 'run-1', 'dativo.cursor.orders': '{"v":1}' },
  });
  assert.equal(c1.sequenceNumber, 1n);
  assert.equal(c1.alreadyCommitted, false);
  let t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.deepEqual(await readAll(t), rows1.map((r) => expected(r)));

  const rows2 = orderRows(120, 200, 'run-2', ingested + 1000n);
  const c2 = await commitFiles(catalog, ident, {
    ...common,
    files: await files(e, rel, rows2, 'run-2'),
    mode: 'append',
    summary: { 'dativo.run-id': 'run-2', 'dativo.cursor.orders': '{"v":2}' },
  });
  t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.deepEqual(await readAll(t), [...rows1, ...rows2].map((r) => expected(r)));

  const rows3 = orderRows(500, 530, 'run-3', ingested + 2000n);
  const c3 = await commitFiles(catalog, ident, {
    ...common,
    files: await files(e, rel, rows3, 'run-3'),
    mode: 'overwrite',
    summary: { 'dativo.run-id': 'run-3' },
  });
  t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.deepEqual(await readAll(t), rows3.map((r) => expected(r)));

  // snapshot chain, sequence numbers, summaries
  const snaps = snapshotsOf(t.metadata);
  assert.deepEqual(snaps.map((s) => s['snapshot-id']), [c1.snapshotId, c2.snapshotId, c3.snapshotId]);
  assert.deepEqual(snaps.map((s) => s['sequence-number']), [1n, 2n, 3n]);
  assert.equal(snaps[0]!['parent-snapshot-id'], undefined);
  assert.equal(snaps[1]!['parent-snapshot-id'], c1.snapshotId);
  assert.equal(snaps[2]!['parent-snapshot-id'], c2.snapshotId);
  assert.equal(t.metadata['current-snapshot-id'], c3.snapshotId);
  assert.deepEqual(t.metadata.refs, { main: { 'snapshot-id': c3.snapshotId, type: 'branch' } });
  assert.equal(t.metadata['last-sequence-number'], 3n);
  const [s1, s2, s3] = snaps.map((s) => s.summary);
  assert.equal(s1!.operation, 'append');
  assert.equal(s1!['added-data-files'], '3');
  assert.equal(s1!['added-records'], '120');
  assert.equal(s1!['total-records'], '120');
  assert.equal(s1!['changed-partition-count'], '1');
  assert.equal(s2!['total-records'], '200');
  assert.equal(s2!['total-data-files'], '4');
  assert.equal(BigInt(s2!['total-files-size']!), BigInt(s1!['added-files-size']!) + BigInt(s2!['added-files-size']!));
  assert.equal(s3!.operation, 'overwrite');
  assert.equal(s3!['deleted-data-files'], '4');
  assert.equal(s3!['deleted-records'], '200');
  assert.equal(s3!['removed-files-size'], s2!['total-files-size']);
  assert.equal(s3!['total-records'], '30');
  assert.equal(s2!['dativo.cursor.orders'], '{"v":2}');
  assert.deepEqual(latestSummary(t.metadata), { 'dativo.run-id': 'run-3' });
  assert.equal(findDativoSnapshot(t.metadata, 'run-2')?.['snapshot-id'], c2.snapshotId);

  // metadata files NNNNN-<uuid>.metadata.json, the log, version-hint
  const metaNames = (await readdir(join(dir, rel, 'metadata'))).filter((n) => n.endsWith('.metadata.json')).sort();
  assert.deepEqual(metaNames.map((n) => n.slice(0, 6)), ['00000-', '00001-', '00002-', '00003-']);
  assert.ok(t.metadataLocation.endsWith(metaNames[3]!));
  assert.equal(await readFile(join(dir, rel, 'metadata', 'version-hint.text'), 'utf8'), '3');
  const log = t.metadata['metadata-log'] as { 'metadata-file': string; 'timestamp-ms': bigint }[];
  assert.deepEqual(log.map((l) => l['metadata-file'].split('/').pop()!.slice(0, 6)), ['00000-', '00001-', '00002-']);
  const times = [...log.map((l) => l['timestamp-ms']), t.metadata['last-updated-ms'] as bigint];
  assert.deepEqual([...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), times);

  // time travel: the metadata of the first append still reads as that append
  const first = log[1]!['metadata-file'];
  const old = await readIcebergTable({ warehouseDir: dir, location: String(t.metadata.location), metadataLocation: first });
  assert.equal(old.length, 120);
  await catalog.close();
});

test('an evolved schema: new optional column gets a new schema and id; old rows read as null', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'evolving' };
  const rel = 'sales/evolving';
  const e1 = await prepare(catalog, ident, rel);
  const rows1 = orderRows(0, 10, 'run-a', ingested);
  await commitFiles(catalog, ident, { fields: e1.fields, location: storage.uri(rel), storage, files: await files(e1, rel, rows1, 'run-a'), mode: 'append', summary: { 'dativo.run-id': 'run-a' } });

  const widened = [...orderFields().slice(0, 8), field('coupon', { kind: 'string' }), ...orderFields().slice(8)];
  const e2 = await prepare(catalog, ident, rel, widened);
  assert.deepEqual(e2.evolution.added, ['coupon']);
  assert.equal(e2.schema['schema-id'], 1);
  assert.equal(e2.fields.find((f) => f.name === 'coupon')!.fieldId, 11);
  assert.equal(e2.fields.find((f) => f.name === '_dativo_run_id')!.fieldId, 10);
  assert.equal(e2.table.metadata['current-schema-id'], 1);
  assert.equal(e2.table.metadata['last-column-id'], 11);

  const rows2 = orderRows(10, 15, 'run-b', ingested).map((r) => ({ ...r, coupon: `C${String(r.id)}` }));
  await commitFiles(catalog, ident, { fields: e2.fields, location: storage.uri(rel), storage, files: await files(e2, rel, rows2, 'run-b'), mode: 'append', summary: { 'dativo.run-id': 'run-b' } });
  const t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal(snapshotsOf(t.metadata)[1]!['schema-id'], 1);
  const got = await readAll(t);
  assert.deepEqual(got, [...rows1.map((r) => expected(r, { coupon: null })), ...rows2.map((r) => expected(r))].sort(byId));

  // incompatible: type change and a new required column → refused, table untouched
  const before = t.metadataLocation;
  const bad = widened.map((f) => (f.name === 'qty' ? field('qty', { kind: 'string' }) : f));
  await assert.rejects(prepare(catalog, ident, rel, [...bad, field('must', { kind: 'int' }, true)]), (err: DativoError) => {
    assert.equal(err.code, 'SCHEMA_INCOMPATIBLE');
    assert.deepEqual(err.context.columns, ['qty', 'must']);
    return true;
  });
  assert.equal((await catalog.loadTable(ident))!.metadataLocation, before);
  await catalog.close();
});

test('a 63-bit snapshot id round-trips exactly through metadata JSON and Avro', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'bigid' };
  const rel = 'sales/bigid';
  const e = await prepare(catalog, ident, rel);
  const id = 8123456789012345678n;
  const res = await commitFiles(catalog, ident, {
    fields: e.fields,
    location: storage.uri(rel),
    storage,
    files: await files(e, rel, orderRows(0, 3, 'run-big', ingested), 'run-big'),
    mode: 'append',
    summary: { 'dativo.run-id': 'run-big' },
    snapshotId: id,
  });
  assert.equal(res.snapshotId, id);
  const text = await readFile(new URL(res.metadataLocation), 'utf8');
  assert.match(text, /"current-snapshot-id": 8123456789012345678,/);
  const md = parseJson(text) as Record<string, any>;
  assert.equal(md['current-snapshot-id'], id);
  assert.equal(md.snapshots[0]['snapshot-id'], id);
  assert.equal(md.refs.main['snapshot-id'], id);
  const listUri = md.snapshots[0]['manifest-list'] as string;
  assert.ok(listUri.includes(`snap-${id}-1-`));
  const list = readManifestList(await storage.read(storageKey(storage, listUri)));
  assert.equal(list[0]!.added_snapshot_id, id);
  const entries = readManifestEntries(await storage.read(storageKey(storage, list[0]!.manifest_path)), list[0]!);
  assert.equal(entries[0]!.snapshotId, id);
  // an independent decoder (icebird's Avro reader) sees the same bigint
  const { avroMetadata, avroRead } = await import('icebird');
  const { asyncBufferFromFile } = await import('hyparquet');
  const buf = await asyncBufferFromFile(new URL(listUri).pathname);
  const reader = { view: new DataView(await buf.slice(0)), offset: 0 };
  const { metadata, syncMarker } = avroMetadata(reader);
  assert.equal(metadata['snapshot-id'], id.toString());
  const recs = avroRead({ reader, metadata, syncMarker }) as Record<string, unknown>[];
  assert.equal(recs[0]!.added_snapshot_id, id);
  await catalog.close();
});

/** A catalog whose commit lands but whose answer is lost. */
function losingResponses(inner: Catalog, times: number): Catalog & { lost: number } {
  const c = Object.create(inner) as Catalog & { lost: number };
  c.lost = 0;
  c.commit = async (base, change) => {
    const res = await inner.commit(base, change);
    if (c.lost < times) {
      c.lost += 1;
      throw new DativoError('CATALOG_UNAVAILABLE', 'connection reset while reading the commit response');
    }
    return res;
  };
  return c;
}

test('a lost commit response is detected on retry; a rerun of the same run adds nothing twice', async () => {
  const real = await sqlCatalog();
  const catalog = losingResponses(real, 1);
  const ident = { namespace: ['sales'], name: 'lost' };
  const rel = 'sales/lost';
  const e = await prepare(real, ident, rel);
  await commitFiles(real, ident, { fields: e.fields, location: storage.uri(rel), storage, files: await files(e, rel, orderRows(0, 5, 'run-0', ingested), 'run-0'), mode: 'append', summary: { 'dativo.run-id': 'run-0' } });
  const dataFiles = await files(e, rel, orderRows(5, 25, 'run-1', ingested), 'run-1', 10);
  const opts = { fields: e.fields, location: storage.uri(rel), storage, files: dataFiles, mode: 'append' as const, summary: { 'dativo.run-id': 'run-1' } };

  const res = await commitFiles(catalog, ident, opts);
  assert.equal(catalog.lost, 1);
  assert.equal(res.alreadyCommitted, true);
  let t = (await real.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal(snapshotsOf(t.metadata).length, 2);
  assert.equal(t.metadata['current-snapshot-id'], res.snapshotId);
  assert.equal((await readAll(t)).length, 25);

  // the same run again (crashed before saving state): recognised, no new snapshot
  const again = await commitFiles(real, ident, opts);
  assert.equal(again.alreadyCommitted, true);
  assert.equal(again.snapshotId, res.snapshotId);
  t = (await real.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal(snapshotsOf(t.metadata).length, 2);

  // the same files under another run id: refused, never added twice
  await assert.rejects(commitFiles(real, ident, { ...opts, summary: { 'dativo.run-id': 'run-x' } }), { code: 'CATALOG_INVALID' });
  // only part of them: refused too
  await assert.rejects(commitFiles(real, ident, { ...opts, files: [...dataFiles.slice(0, 1), ...(await files(e, rel, orderRows(90, 91, 'run-1b', ingested), 'run-1b'))] }), {
    code: 'CATALOG_INVALID',
  });
  t = (await real.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal(snapshotsOf(t.metadata).length, 2);
  const live = await readAll(t);
  assert.equal(new Set(live.map((r) => r.id)).size, 25);
  await real.close();
});

test('two writers interleaved: the loser of the swap retries on the new head, both commits land', async () => {
  const a = await sqlCatalog('race.db');
  const b0 = await sqlCatalog('race.db');
  const ident = { namespace: ['sales'], name: 'race' };
  const rel = 'sales/race';
  const e = await prepare(a, ident, rel);
  const rowsA = orderRows(0, 40, 'run-a', ingested);
  const rowsB = orderRows(40, 70, 'run-b', ingested);
  const filesA = await files(e, rel, rowsA, 'run-a');
  const filesB = await files(e, rel, rowsB, 'run-b');
  let conflicts = 0;
  let aResult: Awaited<ReturnType<typeof commitFiles>> | undefined;
  // B loaded its base; before its swap, A commits: B's UPDATE must match 0 rows.
  const b = Object.create(b0) as Catalog;
  b.commit = async (base, change) => {
    if (!aResult) aResult = await commitFiles(a, ident, { fields: e.fields, location: storage.uri(rel), storage, files: filesA, mode: 'append', summary: { 'dativo.run-id': 'run-a' } });
    try {
      return await b0.commit(base, change);
    } catch (err) {
      if ((err as DativoError).code === 'COMMIT_CONFLICT') conflicts += 1;
      throw err;
    }
  };
  const bResult = await commitFiles(b, ident, { fields: e.fields, location: storage.uri(rel), storage, files: filesB, mode: 'append', summary: { 'dativo.run-id': 'run-b' } });
  assert.equal(conflicts, 1);
  const t = (await a.loadTable(ident))!;
  await assertInvariants(t, storage);
  const snaps = snapshotsOf(t.metadata);
  assert.deepEqual(snaps.map((s) => s['snapshot-id']), [aResult!.snapshotId, bResult.snapshotId]);
  assert.equal(snaps[1]!['parent-snapshot-id'], aResult!.snapshotId);
  assert.deepEqual(snaps.map((s) => s['sequence-number']), [1n, 2n]);
  assert.equal(snaps[1]!.summary['total-records'], '70');
  assert.deepEqual(await readAll(t), [...rowsA, ...rowsB].map((r) => expected(r)));
  // the losing attempt's metadata file was removed: one file per version
  const metaNames = (await readdir(join(dir, rel, 'metadata'))).filter((n) => n.endsWith('.metadata.json'));
  assert.equal(metaNames.length, 3);
  await a.close();
  await b0.close();
});

test('the duplicate check reads only manifests whose partition range can hold our files', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'days' };
  const rel = 'sales/days';
  const e = await prepare(catalog, ident, rel);
  const day1 = ingested;
  const day2 = ingested + DAY_US;
  const write = (rows: Row[], runId: string, at: bigint) =>
    writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId, ingestDay: dayOf(at) });
  for (let i = 0; i < 3; i++) {
    const runId = `d1-${i}`;
    await commitFiles(catalog, ident, { fields: e.fields, location: storage.uri(rel), storage, files: await write(orderRows(i * 10, i * 10 + 10, runId, day1), runId, day1), mode: 'append', summary: { 'dativo.run-id': runId } });
  }
  const manifestReads: string[] = [];
  const counting = Object.create(storage) as LocalStorage;
  counting.read = async (key: string) => {
    if (/-m\d+\.avro$/.test(key)) manifestReads.push(key);
    return storage.read(key);
  };
  const day2Files = await write(orderRows(100, 110, 'd2', day2), 'd2', day2);
  await commitFiles(catalog, ident, { fields: e.fields, location: storage.uri(rel), storage: counting, files: day2Files, mode: 'append', summary: { 'dativo.run-id': 'd2' } });
  assert.deepEqual(manifestReads, [], 'manifests of day 1 cannot hold day-2 files');
  // a manifest of the same day is read, so the same files are still never added twice
  await assert.rejects(
    commitFiles(catalog, ident, { fields: e.fields, location: storage.uri(rel), storage: counting, files: day2Files, mode: 'append', summary: { 'dativo.run-id': 'other' } }),
    { code: 'CATALOG_INVALID' },
  );
  assert.equal(manifestReads.length, 1);
  const t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal(snapshotsOf(t.metadata).length, 4);
  assert.equal((await readAll(t)).length, 40);
  await catalog.close();
});

test('conflicts beyond maxAttempts: COMMIT_CONFLICT, and the attempt files are removed', async () => {
  const real = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'busy' };
  const rel = 'sales/busy';
  const e = await prepare(real, ident, rel);
  const avroFiles = async () => (await readdir(join(dir, rel, 'metadata'))).filter((n) => n.endsWith('.avro'));
  const always = Object.create(real) as Catalog;
  let calls = 0;
  always.commit = async () => {
    calls += 1;
    throw new DativoError('COMMIT_CONFLICT', 'someone else won');
  };
  const dataFiles = await files(e, rel, orderRows(0, 3, 'busy', ingested), 'busy');
  await assert.rejects(
    commitFiles(always, ident, { fields: e.fields, location: storage.uri(rel), storage, files: dataFiles, mode: 'append', summary: { 'dativo.run-id': 'busy' }, maxAttempts: 3 }),
    (err: DativoError) => {
      assert.equal(err.code, 'COMMIT_CONFLICT');
      assert.equal(err.exitCode, 2);
      return true;
    },
  );
  assert.equal(calls, 3);
  assert.deepEqual(await avroFiles(), []);
  // with an unknown outcome on the way, nothing is deleted (a late write could still land)
  const flaky = Object.create(real) as Catalog;
  let n = 0;
  flaky.commit = async () => {
    n += 1;
    throw new DativoError(n === 1 ? 'CATALOG_UNAVAILABLE' : 'COMMIT_CONFLICT', 'flaky');
  };
  await assert.rejects(
    commitFiles(flaky, ident, { fields: e.fields, location: storage.uri(rel), storage, files: dataFiles, mode: 'append', summary: { 'dativo.run-id': 'busy' }, maxAttempts: 2 }),
    { code: 'COMMIT_CONFLICT' },
  );
  assert.equal((await avroFiles()).length, 3); // one manifest, two manifest lists
  assert.equal(snapshotsOf((await real.loadTable(ident))!.metadata).length, 0);
  await real.close();
});

/** Metadata of a table made by another engine: odd ids, a nested column, unpartitioned. */
function foreignMetadata(location: string, spec: Record<string, unknown> = { 'spec-id': 0, fields: [] }, lastPartitionId = 999): TableMetadata {
  return {
    'format-version': 2,
    'table-uuid': '2a7c0c57-9d4b-4c43-9a57-3f0f3c1a1b11',
    location,
    'last-sequence-number': 0n,
    'last-updated-ms': 1767225600000n,
    'last-column-id': 8,
    'current-schema-id': 0,
    schemas: [
      {
        type: 'struct',
        'schema-id': 0,
        'identifier-field-ids': [5],
        fields: [
          { id: 5, name: 'id', required: true, type: 'long' },
          { id: 6, name: 'tags', required: false, type: { type: 'list', 'element-id': 7, 'element-required': true, element: 'string' } },
          { id: 8, name: 'customer', required: false, type: 'string', doc: 'made elsewhere' },
        ],
      },
    ],
    'default-spec-id': 0,
    'partition-specs': [spec],
    'last-partition-id': lastPartitionId,
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: { owner: 'spark' },
    'current-snapshot-id': -1n,
    refs: {},
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
  };
}

test('a table made by another engine: appended under its own ids and spec, unknown columns kept and null', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['ext'], name: 'foreign' };
  const rel = 'ext/foreign';
  await catalog.createNamespaceIfMissing(ident.namespace);
  await catalog.createTable(ident, { location: storage.uri(rel), metadata: foreignMetadata(storage.uri(rel)) });
  const asset = [field('id', { kind: 'long' }, true), field('customer', { kind: 'string' }), ...orderFields().slice(-2)];
  const e = await ensureTable(catalog, ident, { fields: asset, location: storage.uri(rel) });
  assert.deepEqual(e.fields.map((f) => [f.name, f.fieldId]), [['id', 5], ['customer', 8], ['_dativo_ingested_at', 9], ['_dativo_run_id', 10]]);
  assert.deepEqual(e.evolution.added, ['_dativo_ingested_at', '_dativo_run_id']);
  assert.deepEqual(e.evolution.absent, ['tags']);
  assert.deepEqual(e.schema.fields.map((f) => [f.id, f.required]), [[5, true], [6, false], [8, false], [9, false], [10, false]]);
  assert.deepEqual(e.schema['identifier-field-ids'], [5]);
  assert.deepEqual(e.schema.fields[1], foreignMetadata('x').schemas && (foreignMetadata('x').schemas as any)[0].fields[1]);

  const rows = orderRows(0, 6, 'f1', ingested).map((r) => ({ id: r.id, customer: r.customer, _dativo_ingested_at: r._dativo_ingested_at, _dativo_run_id: r._dativo_run_id }));
  const dataFiles = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId: 'f1', ingestDay: dayOf(ingested) });
  await commitFiles(catalog, ident, { files: dataFiles, mode: 'append', summary: { 'dativo.run-id': 'f1' }, fields: e.fields, location: storage.uri(rel), storage });
  // a second run: the system columns are optional in this table and stay so
  const again = await ensureTable(catalog, ident, { fields: asset, location: storage.uri(rel) });
  assert.equal(again.evolution.added.length + again.evolution.relaxed.length, 0);
  const t = (await catalog.loadTable(ident))!;
  await assertInvariants(t, storage);
  assert.equal((t.metadata.properties as Record<string, string>).owner, 'spark');
  const list = readManifestList(await storage.read(storageKey(storage, (t.metadata.snapshots as any)[0]['manifest-list'])));
  assert.deepEqual(list[0]!.partitions, []);
  const got = (await readIcebergTable({ warehouseDir: dir, location: String(t.metadata.location), metadataLocation: t.metadataLocation })).sort(byId);
  assert.deepEqual(got.map((r) => [r.id, r.customer ?? null, r.tags ?? null]), rows.map((r) => [r.id, r.customer, null]));
  await catalog.close();
});

test('a foreign spec dativo cannot fill is refused with CATALOG_INVALID, no snapshot added', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['ext'], name: 'bucketed' };
  const rel = 'ext/bucketed';
  const spec = { 'spec-id': 0, fields: [{ name: 'id_bucket', transform: 'bucket[16]', 'source-id': 5, 'field-id': 1000 }] };
  const created = await catalog.createTable(ident, { location: storage.uri(rel), metadata: foreignMetadata(storage.uri(rel), spec, 1000) });
  const asset = [field('id', { kind: 'long' }, true), ...orderFields().slice(-2)];
  const e = await ensureTable(catalog, ident, { fields: asset, location: storage.uri(rel) });
  const rows = orderRows(0, 2, 'b1', ingested).map((r) => ({ id: r.id, _dativo_ingested_at: r._dativo_ingested_at, _dativo_run_id: r._dativo_run_id }));
  const dataFiles = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId: 'b1', ingestDay: dayOf(ingested) });
  await assert.rejects(
    commitFiles(catalog, ident, { files: dataFiles, mode: 'append', summary: { 'dativo.run-id': 'b1' }, fields: e.fields, location: storage.uri(rel), storage }),
    (err: DativoError) => {
      assert.equal(err.code, 'CATALOG_INVALID');
      assert.match(err.message, /bucket\[16\]\(id\)/);
      return true;
    },
  );
  const t = (await catalog.loadTable(ident))!;
  assert.equal(snapshotsOf(t.metadata).length, 0);
  assert.notEqual(t.metadataLocation, created.metadataLocation); // only the system columns were added
  await catalog.close();
});

test('appends merge carried manifests at commit.manifest.min-count-to-merge, keeping every file and its sequence numbers', async () => {
  const catalog = await sqlCatalog();
  const ident = { namespace: ['sales'], name: 'merging' };
  const rel = 'sales/merging';
  const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel), properties: { 'commit.manifest.min-count-to-merge': '3' } });
  const all: Row[] = [];
  const listSizes: number[] = [];
  const ids: bigint[] = [];
  for (let i = 0; i < 6; i++) {
    const runId = `m${i}`;
    const rows = orderRows(i * 4, i * 4 + 4, runId, ingested);
    all.push(...rows);
    const res = await commitFiles(catalog, ident, { fields: e.fields, location: storage.uri(rel), storage, files: await files(e, rel, rows, runId), mode: 'append', summary: { 'dativo.run-id': runId } });
    ids.push(res.snapshotId);
    const t = (await catalog.loadTable(ident))!;
    await assertInvariants(t, storage);
    listSizes.push(readManifestList(await storage.read(storageKey(storage, (snapshotsOf(t.metadata).at(-1)!)['manifest-list']))).length);
  }
  assert.deepEqual(listSizes, [1, 2, 2, 2, 2, 2]);
  const t = (await catalog.loadTable(ident))!;
  const list = readManifestList(await storage.read(storageKey(storage, snapshotsOf(t.metadata).at(-1)!['manifest-list'])));
  assert.equal(list[0]!.added_files_count, 1);
  assert.equal(list[1]!.existing_files_count, 5);
  assert.equal(list[1]!.existing_rows_count, 20n);
  assert.equal(list[1]!.min_sequence_number, 1n);
  assert.equal(list[1]!.sequence_number, 6n);
  // EXISTING entries keep the snapshot and sequence numbers that added them
  const merged = readAvroFile(await storage.read(storageKey(storage, list[1]!.manifest_path))).records as Record<string, any>[];
  assert.deepEqual(
    merged.map((r) => [r.status, r.snapshot_id, r.sequence_number, r.file_sequence_number]).sort((a, b) => Number(a[2] - b[2])),
    [1n, 2n, 3n, 4n, 5n].map((seq, i) => [0, ids[i], seq, seq]),
  );
  // manifests replaced by a merge of a later commit are not deleted (older snapshots use them); the table reads whole
  assert.deepEqual(await readAll(t), all.map((r) => expected(r)));
  await catalog.close();
});
