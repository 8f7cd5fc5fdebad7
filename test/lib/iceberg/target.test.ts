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
import { icebergTable } from '../../../lib/iceberg/target.js';
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
