/**
 * Snapshots stay spec-true when another engine writes the table too: a
 * manifest merge keeps (or really merges) manifests in PyIceberg's Avro
 * layout, and an overwrite records every file it replaces as DELETED, its
 * summary counting them. The foreign manifests are written here with avsc
 * from a raw PyIceberg-style schema JSON (field ids, no `schema-id` header
 * key, `decimal(12, 2)` with a space, its own field order and record names),
 * not with our writer. Rows are read back with icebird.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import avro from 'avsc';
import type { Catalog, LoadedTable, TableIdent } from '../../../lib/iceberg/catalog.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { readAvroFile } from '../../../lib/iceberg/avro.js';
import { buildManifestList, readManifestEntries, readManifestList, type ManifestListEntry } from '../../../lib/iceberg/manifest.js';
import { currentSnapshot, snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { storageKey } from '../../../lib/iceberg/paths.js';
import { commitFiles, ensureTable, type EnsuredTable } from '../../../lib/iceberg/table.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { DataFile, Row } from '../../../lib/types.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';
import { assertInvariants } from './invariants.js';

let dir: string;
let storage: LocalStorage;
let catalog: Catalog;
const ingested = 20419n * DAY_US + 3_600_000_000n;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-foreign-'));
  storage = new LocalStorage(dir);
  const c = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, 'catalog.db')}` }, storage);
  assert.ok(c);
  catalog = c;
});
after(async () => {
  await catalog.close();
  await rm(dir, { recursive: true, force: true });
});

const opt = (name: string, id: number, type: unknown) => ({ name, 'field-id': id, type: ['null', type], default: null });
const kv = (name: string, id: number, k: number, v: number, valueType: string) =>
  opt(name, id, { type: 'array', logicalType: 'map', items: { type: 'record', name: `k${k}_v${v}`, fields: [{ name: 'key', type: 'int', 'field-id': k }, { name: 'value', type: valueType, 'field-id': v }] } });

/**
 * PyIceberg's v2 `manifest_entry` for a table partitioned by
 * `ingest_date = day(...)`, as its AvroSchemaConversion writes it: no docs,
 * its own record names, and (here) its own field order inside `data_file`.
 * `extra` adds fields we do not write (e.g. a v3 `first_row_id`).
 */
function pyicebergEntrySchema(extra: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    type: 'record',
    name: 'manifest_entry',
    fields: [
      { name: 'status', type: 'int', 'field-id': 0 },
      opt('snapshot_id', 1, 'long'),
      opt('sequence_number', 3, 'long'),
      opt('file_sequence_number', 4, 'long'),
      {
        name: 'data_file',
        'field-id': 2,
        type: {
          type: 'record',
          name: 'data_file',
          fields: [
            { name: 'file_path', type: 'string', 'field-id': 100 },
            { name: 'file_format', type: 'string', 'field-id': 101 },
            { name: 'record_count', type: 'long', 'field-id': 103 },
            { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
            { name: 'partition', 'field-id': 102, type: { type: 'record', name: 'partition', fields: [opt('ingest_date', 1000, { type: 'int', logicalType: 'date' })] } },
            { name: 'content', type: 'int', 'field-id': 134 },
            kv('value_counts', 109, 119, 120, 'long'),
            kv('null_value_counts', 110, 121, 122, 'long'),
            kv('column_sizes', 108, 117, 118, 'long'),
            kv('lower_bounds', 125, 126, 127, 'bytes'),
            kv('upper_bounds', 128, 129, 130, 'bytes'),
            opt('split_offsets', 132, { type: 'array', items: 'long', 'element-id': 133 }),
            opt('sort_order_id', 140, 'int'),
            ...extra,
          ],
        },
      },
    ],
  };
}

/** The table schema as PyIceberg serialises it in the manifest header (`decimal(12, 2)` with a space). */
function pyicebergSchemaJson(e: EnsuredTable): string {
  return JSON.stringify({
    type: 'struct',
    fields: e.schema.fields.map((f) => ({ id: f.id, name: f.name, type: typeof f.type === 'string' ? f.type.replace(/^decimal\((\d+),(\d+)\)$/, 'decimal($1, $2)') : f.type, required: f.required })),
    'schema-id': e.schema['schema-id'],
    'identifier-field-ids': [],
  });
}

/** Encode records with avsc's own container encoder from the raw schema JSON (longs as JS numbers). */
function avscFile(schema: Record<string, unknown>, records: unknown[], metadata: Record<string, string>): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const enc = new avro.streams.BlockEncoder(schema as avro.Schema, {
      codec: 'deflate',
      metadata: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, Buffer.from(v)])),
    } as never);
    const chunks: Buffer[] = [];
    enc.on('data', (c: Buffer) => chunks.push(c));
    enc.on('end', () => resolve(Buffer.concat(chunks)));
    enc.on('error', reject);
    for (const r of records) enc.write(r);
    enc.end();
  });
}

/** Commit `files` as PyIceberg would: its own manifest layout, a new snapshot on top of the current one. */
async function pyicebergAppend(ident: TableIdent, e: EnsuredTable, files: DataFile[], snapshotId: number, extra: { fields?: Record<string, unknown>[]; values?: Record<string, unknown> } = {}): Promise<LoadedTable> {
  const base = (await catalog.loadTable(ident))!;
  const md0 = base.metadata;
  const location = String(md0.location);
  const ids = new Map(e.schema.fields.map((f) => [f.name, f.id]));
  const records = files.map((f) => ({
    status: 1,
    snapshot_id: snapshotId,
    sequence_number: null,
    file_sequence_number: null,
    data_file: {
      file_path: f.uri,
      file_format: 'PARQUET',
      record_count: f.recordCount,
      file_size_in_bytes: f.fileSizeBytes,
      partition: { ingest_date: f.partition['ingest_date'] },
      content: 0,
      value_counts: Object.keys(f.columns).map((c) => ({ key: ids.get(c)!, value: f.recordCount })),
      null_value_counts: Object.entries(f.columns).map(([c, s]) => ({ key: ids.get(c)!, value: s.nullCount })),
      column_sizes: null,
      lower_bounds: null,
      upper_bounds: null,
      split_offsets: null,
      sort_order_id: null,
      ...(extra.values ?? {}),
    },
  }));
  const manifestUri = `${location}/metadata/${snapshotId}-py-m0.avro`;
  const bytes = await avscFile(pyicebergEntrySchema(extra.fields), records, {
    schema: pyicebergSchemaJson(e),
    'partition-spec': JSON.stringify([{ 'source-id': ids.get('_dativo_ingested_at'), 'field-id': 1000, transform: 'day', name: 'ingest_date' }]),
    'partition-spec-id': '0',
    'format-version': '2',
    content: 'data',
  });
  await storage.writeAtomic(storageKey(storage, manifestUri), bytes);
  const parent = currentSnapshot(md0);
  const seq = BigInt(md0['last-sequence-number'] as bigint) + 1n;
  const addedRows = files.reduce((s, f) => s + BigInt(f.recordCount), 0n);
  const addedSize = files.reduce((s, f) => s + BigInt(f.fileSizeBytes), 0n);
  const row: ManifestListEntry = {
    manifest_path: manifestUri,
    manifest_length: BigInt(bytes.length),
    partition_spec_id: 0,
    content: 0,
    sequence_number: seq,
    min_sequence_number: seq,
    added_snapshot_id: BigInt(snapshotId),
    added_files_count: files.length,
    existing_files_count: 0,
    deleted_files_count: 0,
    added_rows_count: addedRows,
    existing_rows_count: 0n,
    deleted_rows_count: 0n,
    partitions: null,
    key_metadata: null,
  };
  const parentRows = parent ? readManifestList(await storage.read(storageKey(storage, parent['manifest-list']))) : [];
  const listUri = `${location}/metadata/snap-${snapshotId}-0-py.avro`;
  await storage.writeAtomic(storageKey(storage, listUri), buildManifestList([row, ...parentRows], { snapshotId: BigInt(snapshotId), parentSnapshotId: parent ? parent['snapshot-id'] : null, sequenceNumber: seq }));
  const total = (k: string) => BigInt(parent?.summary[k] ?? '0');
  const ts = BigInt(Date.now());
  const snapshot = {
    'snapshot-id': BigInt(snapshotId),
    ...(parent ? { 'parent-snapshot-id': parent['snapshot-id'] } : {}),
    'sequence-number': seq,
    'timestamp-ms': ts,
    'manifest-list': listUri,
    summary: {
      operation: 'append',
      'added-data-files': String(files.length),
      'added-records': String(addedRows),
      'added-files-size': String(addedSize),
      'total-data-files': String(total('total-data-files') + BigInt(files.length)),
      'total-records': String(total('total-records') + addedRows),
      'total-files-size': String(total('total-files-size') + addedSize),
      'total-delete-files': '0',
      'total-position-deletes': '0',
      'total-equality-deletes': '0',
    },
    'schema-id': e.schema['schema-id'],
  };
  const md = structuredClone(md0);
  md.snapshots = [...snapshotsOf(md0), snapshot];
  md['current-snapshot-id'] = BigInt(snapshotId);
  md.refs = { main: { 'snapshot-id': BigInt(snapshotId), type: 'branch' } };
  md['last-sequence-number'] = seq;
  md['last-updated-ms'] = ts;
  md['snapshot-log'] = [...((md0['snapshot-log'] ?? []) as unknown[]), { 'snapshot-id': BigInt(snapshotId), 'timestamp-ms': ts }];
  md['metadata-log'] = [...((md0['metadata-log'] ?? []) as unknown[]), { 'metadata-file': base.metadataLocation, 'timestamp-ms': md0['last-updated-ms'] }];
  return catalog.commit(base, {
    requirements: [{ type: 'assert-ref-snapshot-id', ref: 'main', 'snapshot-id': parent ? parent['snapshot-id'] : null }],
    updates: [{ action: 'add-snapshot', snapshot }, { action: 'set-snapshot-ref', 'ref-name': 'main', type: 'branch', 'snapshot-id': BigInt(snapshotId) }],
    newMetadata: md,
  });
}

async function ids(t: LoadedTable): Promise<bigint[]> {
  const rows = await readIcebergTable({ warehouseDir: dir, location: String(t.metadata.location), metadataLocation: t.metadataLocation });
  return rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const sorted = (rows: Row[]) => rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

async function listOf(t: LoadedTable): Promise<ManifestListEntry[]> {
  return readManifestList(await storage.read(storageKey(storage, currentSnapshot(t.metadata)!['manifest-list'])));
}

interface Scenario {
  ident: TableIdent;
  rel: string;
  e: EnsuredTable;
  all: Row[];
  dativo(n: number, day?: number): Promise<void>;
}

async function scenario(name: string, minToMerge: number): Promise<Scenario> {
  const ident = { namespace: ['mixed'], name };
  const rel = `mixed/${name}`;
  const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel), properties: { 'commit.manifest.min-count-to-merge': String(minToMerge) } });
  const s: Scenario = {
    ident,
    rel,
    e,
    all: [],
    async dativo(n, day = dayOf(ingested)) {
      const runId = `d${s.all.length}`;
      const rows = orderRows(s.all.length, s.all.length + n, runId, ingested);
      s.all.push(...rows);
      const files = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId, ingestDay: day });
      await commitFiles(catalog, ident, { fields: e.fields, location: storage.uri(rel), storage, files, mode: 'append', summary: { 'dativo.run-id': runId } });
    },
  };
  return s;
}

async function foreignFiles(s: Scenario, n: number, runId: string): Promise<DataFile[]> {
  const rows = orderRows(s.all.length, s.all.length + n, runId, ingested);
  s.all.push(...rows);
  return writeDataFiles({ storage, tableRel: s.rel, fields: s.e.fields, schema: s.e.schema, rows, runId, ingestDay: dayOf(ingested), rowsPerFile: Math.ceil(n / 2) });
}

test('a merge reads a PyIceberg-layout manifest by field id and merges it: no row lost, totals = scan', async () => {
  const s = await scenario('merged', 4);
  await s.dativo(3);
  await s.dativo(4);
  const py = await pyicebergAppend(s.ident, s.e, await foreignFiles(s, 6, 'py1'), 4_000_000_001);
  // our header-less layout really is another one: no schema-id key, PyIceberg's decimal spelling, other field order
  const pyManifest = readAvroFile(await storage.read(storageKey(storage, (await listOf(py))[0]!.manifest_path)));
  assert.equal(pyManifest.metadata['schema-id'], undefined);
  assert.match(pyManifest.metadata['schema']!, /"decimal\(12, 2\)"/);
  await s.dativo(5); // 4 manifests: this commit merges the three carried ones, PyIceberg's included
  const t = (await catalog.loadTable(s.ident))!;
  await assertInvariants(t, storage);
  const list = await listOf(t);
  assert.equal(list.length, 2, 'our new manifest + one merged manifest');
  assert.equal(list[1]!.existing_files_count, 4); // 1 + 1 + 2 (PyIceberg's two files)
  assert.equal(list[1]!.existing_rows_count, 13n);
  const merged = readManifestEntries(await storage.read(storageKey(storage, list[1]!.manifest_path)), list[1]!);
  assert.equal(merged.filter((m) => m.snapshotId === 4_000_000_001n).length, 2, 'PyIceberg files keep their snapshot id');
  assert.deepEqual(await ids(t), sorted(s.all));
  assert.equal(currentSnapshot(t.metadata)!.summary['total-records'], String(s.all.length));
});

test('a foreign manifest the merge cannot re-encode without loss is carried as it is, not dropped', async () => {
  const s = await scenario('carried', 4);
  await s.dativo(2);
  await s.dativo(3);
  // a v3-style field we do not write, with a value: re-encoding it in our layout would lose it
  const extraField = opt('first_row_id', 142, 'long');
  await pyicebergAppend(s.ident, s.e, await foreignFiles(s, 4, 'py2'), 4_000_000_002, { fields: [extraField], values: { first_row_id: 77 } });
  await s.dativo(6);
  const t = (await catalog.loadTable(s.ident))!;
  await assertInvariants(t, storage);
  const list = await listOf(t);
  assert.deepEqual(
    list.map((r) => [r.added_snapshot_id === 4_000_000_002n, r.added_files_count, r.existing_files_count]),
    [[false, 1, 0], [false, 0, 2], [true, 2, 0]],
    'ours, the merge of our two, and PyIceberg’s manifest carried unchanged',
  );
  assert.deepEqual(await ids(t), sorted(s.all));
  assert.equal(currentSnapshot(t.metadata)!.summary['total-records'], String(s.all.length));
});

test('an overwrite records every replaced file as DELETED (PyIceberg’s too); summary and changed partitions count them', async () => {
  const s = await scenario('overwritten', 100);
  await s.dativo(3);
  await s.dativo(4);
  await pyicebergAppend(s.ident, s.e, await foreignFiles(s, 6, 'py3'), 4_000_000_003);
  const before = (await catalog.loadTable(s.ident))!;
  const beforeSummary = currentSnapshot(before.metadata)!.summary;
  const beforeFiles = new Set<string>();
  for (const row of await listOf(before)) for (const m of readManifestEntries(await storage.read(storageKey(storage, row.manifest_path)), row)) beforeFiles.add(m.filePath);

  // a full refresh into another day: one partition removed, one added
  const day2 = dayOf(ingested) + 1;
  const fresh = orderRows(100, 105, 'full', ingested + DAY_US);
  const files = await writeDataFiles({ storage, tableRel: s.rel, fields: s.e.fields, schema: s.e.schema, rows: fresh, runId: 'full', ingestDay: day2 });
  const res = await commitFiles(catalog, s.ident, { fields: s.e.fields, location: storage.uri(s.rel), storage, files, mode: 'overwrite', summary: { 'dativo.run-id': 'full' } });
  const t = (await catalog.loadTable(s.ident))!;
  await assertInvariants(t, storage);
  assert.deepEqual(await ids(t), sorted(fresh));
  const list = await listOf(t);
  assert.equal(list[0]!.added_files_count, 1);
  const deletedRows = list.slice(1);
  assert.equal(deletedRows.length, 3, 'one DELETED manifest per replaced manifest');
  const deleted = new Set<string>();
  for (const row of deletedRows) {
    assert.deepEqual([row.added_files_count, row.existing_files_count, row.added_snapshot_id], [0, 0, res.snapshotId]);
    const entries = readManifestEntries(await storage.read(storageKey(storage, row.manifest_path)), row);
    for (const m of entries) {
      assert.equal(m.status, 2);
      assert.equal(m.snapshotId, res.snapshotId);
      deleted.add(m.filePath);
    }
    assert.equal(row.deleted_files_count, entries.length);
  }
  assert.deepEqual([...deleted].sort(), [...beforeFiles].sort());
  // PyIceberg's manifest was rewritten in its own layout, explicit sequence numbers
  const decoded = await Promise.all(deletedRows.map(async (r) => readAvroFile(await storage.read(storageKey(storage, r.manifest_path)))));
  const pyDeleted = decoded.filter((f) => f.metadata['schema']!.includes('decimal(12, 2)'));
  assert.equal(pyDeleted.length, 1);
  assert.equal(pyDeleted[0]!.metadata['schema-id'], undefined);
  const recs = pyDeleted[0]!.records as { sequence_number: bigint; file_sequence_number: bigint }[];
  assert.deepEqual(recs.map((r) => [r.sequence_number, r.file_sequence_number]), [[3n, 3n], [3n, 3n]]);

  const summary = currentSnapshot(t.metadata)!.summary;
  assert.equal(summary['operation'], 'overwrite');
  assert.equal(summary['deleted-data-files'], beforeSummary['total-data-files']);
  assert.equal(summary['deleted-data-files'], String(beforeFiles.size));
  assert.equal(summary['deleted-records'], '13');
  assert.equal(summary['removed-files-size'], beforeSummary['total-files-size']);
  assert.equal(summary['changed-partition-count'], '2');
  assert.equal(summary['total-records'], '5');

  // the next append carries neither the DELETED manifests nor their files
  s.all = [...fresh];
  await s.dativo(2, day2);
  const next = (await catalog.loadTable(s.ident))!;
  await assertInvariants(next, storage);
  assert.deepEqual((await listOf(next)).map((r) => r.deleted_files_count), [0, 0]);
  assert.deepEqual(await ids(next), sorted(s.all));
  assert.equal(currentSnapshot(next.metadata)!.summary['changed-partition-count'], '1');
});
