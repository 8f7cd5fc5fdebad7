/**
 * Metadata invariants every version we produce must satisfy (reference
 * iceberg.md A1.1 checks Java runs on load, and A9 golden test 5). Not a
 * test file: the commit tests call it on the tables they build.
 */
import assert from 'node:assert/strict';
import type { LoadedTable } from '../../../lib/iceberg/catalog.js';
import { readManifestEntries, readManifestList } from '../../../lib/iceberg/manifest.js';
import { snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { storageKey } from '../../../lib/iceberg/paths.js';
import type { IcebergSchema } from '../../../lib/iceberg/schema.js';
import type { Storage } from '../../../lib/storage/types.js';

/** Assert the invariants of `table`'s current metadata, including no duplicate live file paths. */
export async function assertInvariants(table: LoadedTable, storage: Storage): Promise<void> {
  const md = table.metadata as Record<string, any>;
  assert.equal(md['format-version'], 2);
  assert.match(md['table-uuid'], /^[0-9a-f-]{36}$/);
  for (const k of ['last-sequence-number', 'last-updated-ms']) assert.equal(typeof md[k], 'bigint', `${k} is a long`);

  // ids never exceed the high-water marks
  let maxField = 0;
  for (const s of md.schemas as IcebergSchema[]) for (const f of s.fields) maxField = Math.max(maxField, f.id);
  assert.ok(md['last-column-id'] >= maxField, 'last-column-id covers every field id');
  assert.ok((md.schemas as IcebergSchema[]).some((s) => s['schema-id'] === md['current-schema-id']));
  let maxPartition = 999;
  for (const spec of md['partition-specs']) for (const f of spec.fields) maxPartition = Math.max(maxPartition, f['field-id']);
  assert.ok(md['last-partition-id'] >= maxPartition);

  // snapshots: unique ids, sequence numbers increasing along the chain, refs consistent
  const snaps = snapshotsOf(table.metadata);
  assert.equal(new Set(snaps.map((s) => s['snapshot-id'])).size, snaps.length, 'unique snapshot ids');
  const byId = new Map(snaps.map((s) => [s['snapshot-id'], s]));
  for (const s of snaps) {
    assert.ok(s['snapshot-id'] > 0n && s['snapshot-id'] < 2n ** 63n);
    assert.ok(s['sequence-number'] <= md['last-sequence-number']);
    assert.ok(s.summary.operation === 'append' || s.summary.operation === 'overwrite');
    const parent = s['parent-snapshot-id'];
    if (parent !== undefined && byId.has(parent)) assert.ok(byId.get(parent)!['sequence-number'] < s['sequence-number'], 'sequence grows along the chain');
  }
  if (snaps.length === 0) {
    assert.equal(md['current-snapshot-id'], -1n);
    assert.equal(md.refs?.main, undefined);
  } else {
    assert.equal(md.refs.main['snapshot-id'], md['current-snapshot-id']);
    assert.equal(md.refs.main.type, 'branch');
    assert.ok(byId.has(md['current-snapshot-id']));
  }

  // logs ordered in time, last-updated-ms not before them
  for (const key of ['snapshot-log', 'metadata-log']) {
    const ts = (md[key] as { 'timestamp-ms': bigint }[]).map((e) => e['timestamp-ms']);
    for (let i = 1; i < ts.length; i++) assert.ok(ts[i]! >= ts[i - 1]!, `${key} is ordered`);
    if (ts.length > 0) assert.ok(md['last-updated-ms'] >= ts[ts.length - 1]!);
  }
  assert.ok(!(md['metadata-log'] as { 'metadata-file': string }[]).some((e) => e['metadata-file'] === table.metadataLocation));

  // every live data file path appears once in the current snapshot
  const current = byId.get(md['current-snapshot-id']);
  if (!current) return;
  const seen = new Set<string>();
  let records = 0n;
  for (const row of readManifestList(await storage.read(storageKey(storage, current['manifest-list'])))) {
    assert.ok(row.sequence_number <= current['sequence-number']);
    for (const e of readManifestEntries(await storage.read(storageKey(storage, row.manifest_path)), row)) {
      if (e.status === 2) continue;
      assert.ok(!seen.has(e.filePath), `file ${e.filePath} is live twice`);
      seen.add(e.filePath);
      records += e.recordCount;
    }
  }
  assert.equal(String(records), current.summary['total-records'], 'total-records equals the live record count');
  assert.equal(String(seen.size), current.summary['total-data-files']);
}
