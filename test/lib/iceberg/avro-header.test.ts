/**
 * Manifests and manifest lists as written by a real commit: the Avro header
 * (read by avsc's own header parser, not ours) carries every Iceberg id
 * attribute and the Iceberg header keys; entries carry the metrics.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import avro from 'avsc';
import { readAvroFile } from '../../../lib/iceberg/avro.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { parseJson } from '../../../lib/iceberg/json.js';
import { currentSnapshot } from '../../../lib/iceberg/metadata.js';
import { commitFiles, ensureTable } from '../../../lib/iceberg/table.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';

type Json = Record<string, any>;

/** Walk an Avro schema: every record field needs `field-id`; arrays `element-id` or the Iceberg map encoding. Returns all ids. */
function collectIds(schema: unknown, ids: number[], where = ''): void {
  if (Array.isArray(schema)) {
    for (const s of schema) collectIds(s, ids, where);
    return;
  }
  if (schema === null || typeof schema !== 'object') return;
  const s = schema as Json;
  if (s.type === 'record') {
    for (const f of s.fields as Json[]) {
      assert.equal(typeof f['field-id'], 'number', `field ${where}${f.name} has no field-id`);
      ids.push(f['field-id']);
      collectIds(f.type, ids, `${where}${f.name}.`);
    }
  } else if (s.type === 'array') {
    if (s.logicalType === 'map') {
      assert.match(s.items.name, /^k\d+_v\d+$/, `${where} map record name`);
      assert.deepEqual(s.items.fields.map((f: Json) => f.name), ['key', 'value']);
    } else {
      assert.equal(typeof s['element-id'], 'number', `array ${where} has no element-id`);
      ids.push(s['element-id']);
    }
    collectIds(s.items, ids, where);
  }
}

test('manifest and manifest list headers carry every Iceberg id and header key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dativo-ice-avro-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = new LocalStorage(dir);
  const catalog = (await openCatalog({ type: 'sql', name: 'c', uri: `sqlite:${join(dir, 'c.db')}` }, storage))!;
  t.after(() => catalog.close());
  const ident = { namespace: ['db'], name: 'events' };
  const rel = 'db/events';
  const ingested = 20419n * DAY_US;
  const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel) });
  const rows = orderRows(0, 30, 'r1', ingested);
  const files = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows, runId: 'r1', ingestDay: dayOf(ingested) });
  const first = await commitFiles(catalog, ident, { files, mode: 'append', summary: { 'dativo.run-id': 'r1' }, fields: e.fields, location: storage.uri(rel), storage });
  const files2 = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows: orderRows(30, 40, 'r2', ingested), runId: 'r2', ingestDay: dayOf(ingested) });
  const second = await commitFiles(catalog, ident, { files: files2, mode: 'append', summary: { 'dativo.run-id': 'r2' }, fields: e.fields, location: storage.uri(rel), storage });
  const table = (await catalog.loadTable(ident))!;
  const snap = currentSnapshot(table.metadata)!;

  // manifest list
  const listPath = fileURLToPath(snap['manifest-list']);
  const listHeader = avro.extractFileHeader(listPath, { decode: false })!;
  const listMeta = Object.fromEntries(Object.entries(listHeader.meta).map(([k, v]) => [k, (v as Buffer).toString('utf8')]));
  assert.equal(listMeta['avro.codec'], 'deflate');
  assert.equal(listMeta['snapshot-id'], second.snapshotId.toString());
  assert.equal(listMeta['parent-snapshot-id'], first.snapshotId.toString());
  assert.equal(listMeta['sequence-number'], '2');
  assert.equal(listMeta['format-version'], '2');
  const listIds: number[] = [];
  collectIds(JSON.parse(listMeta['avro.schema']!), listIds);
  assert.deepEqual([...listIds].sort((a, b) => a - b), [500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 513, 514, 515, 516, 517, 518, 519]);

  const list = readAvroFile(Buffer.from(await storage.read(`${rel}/${snap['manifest-list'].split(`/${rel}/`)[1]}`))).records as Json[];
  assert.equal(list.length, 2, 'our manifest first, then the parent manifest');
  assert.equal(list[0]!.added_snapshot_id, second.snapshotId);
  assert.equal(list[0]!.sequence_number, 2n);
  assert.equal(list[0]!.min_sequence_number, 2n);
  assert.equal(list[0]!.added_files_count, 1);
  assert.equal(list[0]!.added_rows_count, 10n);
  assert.equal(list[1]!.added_snapshot_id, first.snapshotId);
  assert.equal(list[1]!.sequence_number, 1n);
  const day = Buffer.alloc(4);
  day.writeInt32LE(20419);
  assert.deepEqual(list[0]!.partitions.map((p: Json) => ({ ...p })), [{ contains_null: false, contains_nan: false, lower_bound: day, upper_bound: day }]);

  // manifest
  const manifestPath = fileURLToPath(list[0]!.manifest_path);
  const header = avro.extractFileHeader(manifestPath, { decode: false })!;
  const meta = Object.fromEntries(Object.entries(header.meta).map(([k, v]) => [k, (v as Buffer).toString('utf8')]));
  assert.equal(meta['format-version'], '2');
  assert.equal(meta.content, 'data');
  assert.equal(meta['partition-spec-id'], '0');
  assert.equal(meta['schema-id'], '0');
  assert.deepEqual(JSON.parse(meta['partition-spec']!), [{ name: 'ingest_date', transform: 'day', 'source-id': 9, 'field-id': 1000 }]);
  const headerSchema = parseJson(meta.schema!) as Json;
  assert.deepEqual(headerSchema.fields.map((f: Json) => f.id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const ids: number[] = [];
  const avroSchema = JSON.parse(meta['avro.schema']!);
  collectIds(avroSchema, ids);
  assert.deepEqual(
    [...ids].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 100, 101, 102, 103, 104, 108, 109, 110, 117, 118, 119, 120, 121, 122, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 140, 1000],
  );
  const partitionField = avroSchema.fields[4].type.fields[3];
  assert.equal(partitionField.type.name, 'r102');
  assert.deepEqual({ ...partitionField.type.fields[0] }, { name: 'ingest_date', type: ['null', { type: 'int', logicalType: 'date' }], default: null, 'field-id': 1000 });

  const entries = readAvroFile(Buffer.from(await storage.read(`${rel}/${list[0]!.manifest_path.split(`/${rel}/`)[1]}`))).records as Json[];
  assert.equal(entries.length, 1);
  const entry = entries[0]!;
  assert.equal(entry.status, 1);
  assert.equal(entry.snapshot_id, second.snapshotId);
  assert.equal(entry.sequence_number, null);
  assert.equal(entry.file_sequence_number, null);
  const df = entry.data_file;
  assert.equal(df.content, 0);
  assert.equal(df.file_format, 'PARQUET');
  assert.equal(df.file_path, files2[0]!.uri);
  assert.equal(df.record_count, 10n);
  assert.equal(df.file_size_in_bytes, BigInt(files2[0]!.fileSizeBytes));
  assert.equal(df.partition.ingest_date, 20419);
  const map = (pairs: Json[]) => new Map(pairs.map((p) => [p.key, p.value]));
  assert.equal(map(df.value_counts).get(1), 10n);
  assert.equal(map(df.null_value_counts).get(2), BigInt(orderRows(30, 40, 'r2', ingested).filter((r) => r.customer === null).length));
  assert.equal(map(df.nan_value_counts).get(5), 0n);
  assert.ok(map(df.column_sizes).size === 10);
  const lower = map(df.lower_bounds);
  const upper = map(df.upper_bounds);
  assert.equal((lower.get(1) as Buffer).readBigInt64LE(), 9_007_199_254_740_993n + 30n);
  assert.equal((upper.get(1) as Buffer).readBigInt64LE(), 9_007_199_254_740_993n + 39n);
  assert.equal((lower.get(3) as Buffer).toString('hex'), (3030n).toString(16).padStart(4, '0')); // 30.30 → 3030 → 0bd6
  assert.equal((lower.get(7) as Buffer).readInt32LE(), 20030);
  assert.equal((upper.get(9) as Buffer).readBigInt64LE(), ingested + 39n);
  assert.equal((lower.get(10) as Buffer).toString('utf8'), 'r2');
  assert.ok(df.split_offsets.length >= 1);

  // python3-avro as an extra independent reader, when this machine has it
  let python = false;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import avro'], { stdio: 'ignore' });
    python = true;
  } catch {
    python = false;
  }
  if (!python) {
    t.diagnostic('python3-avro is not installed: extra check with the Python Avro reader skipped');
    return;
  }
  const out = execFileSync('/usr/bin/python3', [
    '-c',
    'import sys,json,avro.datafile,avro.io\nfor p in sys.argv[1:]:\n  r=avro.datafile.DataFileReader(open(p,"rb"),avro.io.DatumReader())\n  print(json.dumps({"n":len(list(r)),"ids":r.meta["avro.schema"].decode().count("field-id")}))',
    listPath,
    manifestPath,
  ]).toString();
  const [l, m] = out.trim().split('\n').map((x) => JSON.parse(x));
  assert.equal(l.n, 2);
  assert.equal(l.ids, 19);
  assert.equal(m.n, 1);
  assert.equal(m.ids, 34);
});
