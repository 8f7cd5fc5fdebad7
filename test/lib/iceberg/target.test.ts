/**
 * The job-facing handle on an Iceberg table: fields with the table's ids,
 * commits that carry the object's state, and the state read back from the
 * newest snapshot that has it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { carriedStates, committedStateIn, icebergTable, MAX_CARRIED_STATES } from '../../../lib/iceberg/target.js';
import type { TableMetadata } from '../../../lib/iceberg/catalog.js';
import { commitFiles } from '../../../lib/iceberg/table.js';
import { currentSnapshot } from '../../../lib/iceberg/metadata.js';
import { legacyStateSummaryKey, parseStateSummaryKey, stateSummaryKey } from '../../../lib/table-target.js';
import { silentLogger } from '../../../lib/log.js';
import type { JobPlan } from '../../../lib/plan.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';

test('icebergTable: create, commit with state, read the state back, reopen with the same ids', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dativo-ice-target-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = new LocalStorage(dir);
  const fields = orderFields();
  const plan = {
    tenantId: 'acme',
    name: 'orders_job',
    target: { catalog: { type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, 'catalog.db')}` }, namespace: 'sales', table: 'orders' },
    asset: { name: 'orders', version: '1.0', domain: 'sales', dataProduct: 'erp', fields: fields.slice(0, -2), primaryKey: ['id'], file: '', raw: { team: { owner: 'a@b.c' }, compliance: { classification: ['PII'], retention_days: 30 } } },
  } as unknown as JobPlan;
  const h = await icebergTable(plan, storage, fields, 'sales/erp/orders', silentLogger());
  t.after(() => h.close());
  assert.equal(h.relativeLocation, 'sales/erp/orders');
  assert.deepEqual(h.fields.map((f) => f.fieldId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(await h.committedState('orders'), undefined);
  const ingested = 20419n * DAY_US;
  const files = await writeDataFiles({ storage, tableRel: h.relativeLocation, fields: h.fields, schema: { type: 'struct', 'schema-id': 0, fields: [] }, rows: orderRows(0, 4, 'r1', ingested), runId: 'r1', ingestDay: dayOf(ingested) });
  const state = { cursor: { field: 'id', value: '9007199254740996', written: [] }, runId: 'r1', updatedAt: '2026-11-27T00:00:00.000Z' };
  const res = await h.commit({ object: 'orders', files, mode: 'append', runId: 'r1', state });
  assert.match(res.snapshotId!, /^\d+$/);
  assert.deepEqual(await h.committedState('orders'), state);
  assert.equal(await h.committedState('other'), undefined);

  const catalog = (await openCatalog(plan.target.catalog, storage))!;
  const props = (await catalog.loadTable({ namespace: ['sales'], name: 'orders' }))!.metadata.properties as Record<string, string>;
  await catalog.close();
  assert.equal(props['asset.name'], 'orders');
  assert.equal(props['asset.data_product'], 'erp');
  assert.equal(props['governance.owner'], 'a@b.c');
  assert.equal(props['governance.retention_days'], '30');
  assert.equal(props['classification.default'], 'pii');
  assert.equal(props['write.parquet.compression-codec'], 'zstd');

  const again = await icebergTable(plan, storage, fields, 'ignored/for/existing', silentLogger());
  t.after(() => again.close());
  assert.equal(again.relativeLocation, 'sales/erp/orders');
  assert.deepEqual(again.fields.map((f) => f.fieldId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('state keys name tenant, job and object unambiguously, dots and slashes included', () => {
  const a = stateSummaryKey({ tenant: 'a.b', job: 'c' }, 'd');
  const b = stateSummaryKey({ tenant: 'a', job: 'b.c' }, 'd');
  const c = stateSummaryKey({ tenant: 'a/b', job: 'c' }, 'd/e');
  assert.equal(a, 'dativo.state/a.b/c/d');
  assert.notEqual(a, b);
  assert.equal(c, 'dativo.state/a%2Fb/c/d%2Fe');
  assert.deepEqual(parseStateSummaryKey(c), { tenant: 'a/b', job: 'c', object: 'd/e' });
  assert.deepEqual(parseStateSummaryKey(b), { tenant: 'a', job: 'b.c', object: 'd' });
  assert.equal(parseStateSummaryKey('dativo.cursor.orders'), undefined);
});

/** Metadata with a linear history of snapshots carrying `summaries` (oldest first). */
function history(summaries: Record<string, string>[]): TableMetadata {
  const snapshots = summaries.map((summary, i) => ({
    'snapshot-id': BigInt(i + 1),
    ...(i > 0 ? { 'parent-snapshot-id': BigInt(i) } : {}),
    'sequence-number': BigInt(i + 1),
    'timestamp-ms': BigInt(i),
    'manifest-list': `m${i}`,
    summary: { operation: 'append', ...summary },
  }));
  return {
    'format-version': 2,
    'table-uuid': 'u',
    location: '/t',
    snapshots,
    'current-snapshot-id': BigInt(summaries.length),
    refs: { main: { 'snapshot-id': BigInt(summaries.length), type: 'branch' } },
  };
}

test("committedStateIn: this job's newest state behind other jobs' and engines' commits; legacy key only when the job has none", () => {
  const me = { tenant: 'acme', job: 'orders' };
  const other = { tenant: 'globex', job: 'orders' };
  const st = (runId: string): string => JSON.stringify({ runId });
  const md = history([
    { 'dativo.run-id': 'old', [legacyStateSummaryKey('o')]: st('old') },
    { 'dativo.run-id': 'r1', [stateSummaryKey(me, 'o')]: st('r1') },
    { 'dativo.run-id': 'g1', [stateSummaryKey(other, 'o')]: st('g1') },
    {},
    { 'dativo.run-id': 'g2', [stateSummaryKey(other, 'o')]: st('g2') },
  ]);
  assert.deepEqual(committedStateIn(md, me, 'o', 't'), { state: { runId: 'r1' }, snapshotId: 2n, legacy: false });
  assert.deepEqual(committedStateIn(md, other, 'o', 't')?.state, { runId: 'g2' });
  assert.deepEqual(committedStateIn(md, { tenant: 'x', job: 'y' }, 'o', 't'), { state: { runId: 'old' }, snapshotId: 1n, legacy: true });
  assert.equal(committedStateIn(md, me, 'p', 't'), undefined);
});

test('carriedStates: the newest dativo snapshot’s job states, most recently updated first, bounded; never legacy keys', () => {
  const keys: Record<string, string> = { 'dativo.run-id': 'r', [legacyStateSummaryKey('o')]: '{}' };
  for (let i = 0; i < 100; i++) keys[stateSummaryKey({ tenant: 't', job: `j${i}` }, 'o')] = JSON.stringify({ runId: `r${i}`, updatedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString() });
  const own = stateSummaryKey({ tenant: 't', job: 'j5' }, 'o');
  const carried = carriedStates(history([keys, {}]), own);
  assert.equal(Object.keys(carried).length, MAX_CARRIED_STATES - 1);
  assert.ok(!(own in carried), 'the own key is the commit’s, not carried');
  assert.ok(!(legacyStateSummaryKey('o') in carried));
  assert.equal(Object.keys(carried)[0], stateSummaryKey({ tenant: 't', job: 'j99' }, 'o'));
});

test('a table written by an earlier version: the legacy dativo.cursor.<object> state is read, and the next commit stores it under the job key', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'dativo-ice-legacy-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const storage = new LocalStorage(dir);
  const fields = orderFields();
  const plan = {
    tenantId: 'acme',
    name: 'orders_job',
    target: { catalog: { type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, 'catalog.db')}` }, namespace: 'sales', table: 'orders' },
    asset: { name: 'orders', version: '1.0', domain: 'sales', dataProduct: 'erp', fields: fields.slice(0, -2), primaryKey: ['id'], file: '', raw: {} },
  } as unknown as JobPlan;
  const ident = { namespace: ['sales'], name: 'orders' };
  const catalog = (await openCatalog(plan.target.catalog, storage))!;
  t.after(() => catalog.close());
  const h = await icebergTable(plan, storage, fields, 'sales/erp/orders', silentLogger());
  t.after(() => h.close());
  const legacy = { cursor: { field: 'id', value: '41', written: [] }, runId: 'r0', updatedAt: '2026-11-27T00:00:00.000Z' };
  const ingested = 20419n * DAY_US;
  const old = await writeDataFiles({ storage, tableRel: h.relativeLocation, fields: h.fields, schema: { type: 'struct', 'schema-id': 0, fields: [] }, rows: orderRows(0, 2, 'r0', ingested), runId: 'r0', ingestDay: dayOf(ingested) });
  await commitFiles(catalog, ident, {
    files: old,
    mode: 'append',
    summary: { 'dativo.run-id': 'r0', [legacyStateSummaryKey('orders')]: JSON.stringify(legacy) },
    fields: h.fields,
    location: storage.uri('sales/erp/orders'),
    storage,
  });

  assert.deepEqual(await h.committedState('orders'), legacy, 'read, not reset');
  const files = await writeDataFiles({ storage, tableRel: h.relativeLocation, fields: h.fields, schema: { type: 'struct', 'schema-id': 0, fields: [] }, rows: orderRows(2, 2, 'r1', ingested), runId: 'r1', ingestDay: dayOf(ingested) });
  const next = { ...legacy, cursor: { ...legacy.cursor, value: '43' }, runId: 'r1' };
  await h.commit({ object: 'orders', files, mode: 'append', runId: 'r1', state: next, expectedRunId: 'r0' });
  const summary = currentSnapshot((await catalog.loadTable(ident))!.metadata)!.summary;
  assert.equal(summary[stateSummaryKey({ tenant: 'acme', job: 'orders_job' }, 'orders')], JSON.stringify(next));
  assert.equal(summary[legacyStateSummaryKey('orders')], undefined, 'the legacy key is not written again');
  assert.deepEqual(await h.committedState('orders'), next);

  // A commit from a run that started from the legacy state again loses the compare-and-set.
  const late = await writeDataFiles({ storage, tableRel: h.relativeLocation, fields: h.fields, schema: { type: 'struct', 'schema-id': 0, fields: [] }, rows: orderRows(4, 2, 'r2', ingested), runId: 'r2', ingestDay: dayOf(ingested) });
  await assert.rejects(h.commit({ object: 'orders', files: late, mode: 'append', runId: 'r2', state: { ...next, runId: 'r2' }, expectedRunId: 'r0' }), (err: Error & { code?: string; context?: Record<string, unknown> }) => {
    assert.equal(err.code, 'COMMIT_CONFLICT');
    assert.equal(err.context?.['reason'], 'state_moved');
    assert.equal(err.context?.['committed'], false);
    return true;
  });
});
