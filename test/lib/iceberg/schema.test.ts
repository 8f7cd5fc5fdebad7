import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TableMetadata } from '../../../lib/iceberg/catalog.js';
import { newTableMetadata } from '../../../lib/iceberg/metadata.js';
import { buildSchema, planSchema, type IcebergSchema } from '../../../lib/iceberg/schema.js';
import { field, orderFields } from './fixtures.js';

const LOC = 'file:///tmp/wh/sales/orders';

test('a new table gets ids 1..n in column order and the Iceberg types', () => {
  const { schema, lastColumnId, fields } = buildSchema(orderFields());
  assert.equal(lastColumnId, 10);
  assert.deepEqual(
    schema.fields.map((f) => [f.id, f.name, f.type, f.required]),
    [
      [1, 'id', 'long', true],
      [2, 'customer', 'string', false],
      [3, 'amount', 'decimal(12,2)', false],
      [4, 'qty', 'int', false],
      [5, 'score', 'double', false],
      [6, 'paid', 'boolean', false],
      [7, 'day', 'date', false],
      [8, 'note', 'string', false],
      [9, '_dativo_ingested_at', 'timestamptz', true],
      [10, '_dativo_run_id', 'string', true],
    ],
  );
  assert.deepEqual(fields.map((f) => f.fieldId), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
});

test('new table metadata: day partition on _dativo_ingested_at, v2 fields, zstd', () => {
  const { metadata } = newTableMetadata({ location: LOC, fields: orderFields(), properties: { 'asset.name': 'orders' } });
  assert.equal(metadata['format-version'], 2);
  assert.match(metadata['table-uuid'], /^[0-9a-f-]{36}$/);
  assert.deepEqual(metadata['partition-specs'], [{ 'spec-id': 0, fields: [{ name: 'ingest_date', transform: 'day', 'source-id': 9, 'field-id': 1000 }] }]);
  assert.equal(metadata['last-partition-id'], 1000);
  assert.equal(metadata['current-snapshot-id'], -1n);
  assert.deepEqual(metadata.refs, {});
  assert.deepEqual(metadata['sort-orders'], [{ 'order-id': 0, fields: [] }]);
  assert.equal((metadata.properties as Record<string, string>)['write.parquet.compression-codec'], 'zstd');
  assert.equal((metadata.properties as Record<string, string>)['asset.name'], 'orders');
});

/** A table whose ids are not 1..n (as another engine might have made it). */
function foreignTable(): TableMetadata {
  return {
    'format-version': 2,
    'table-uuid': '0f6c1b55-4c9a-4a35-9a0e-8d3c2f0b7e11',
    location: LOC,
    'last-column-id': 12,
    'current-schema-id': 3,
    schemas: [
      {
        type: 'struct',
        'schema-id': 3,
        fields: [
          { id: 7, name: 'id', required: true, type: 'long' },
          { id: 4, name: 'qty', required: false, type: 'int' },
          { id: 12, name: 'tags', required: false, type: { type: 'list', 'element-id': 11, 'element-required': true, element: 'string' } },
          { id: 9, name: 'amount', required: true, type: 'decimal(10, 2)' },
        ],
      },
    ],
  };
}

test('evolution: ids reused by name, new optional column gets last-column-id+1, promotions and relaxing', () => {
  const plan = planSchema(foreignTable(), [
    field('qty', { kind: 'long' }), // int → long promotion
    field('id', { kind: 'long' }, true),
    field('amount', { kind: 'decimal', precision: 12, scale: 2 }), // precision widening + made optional
    field('extra', { kind: 'string' }),
  ]);
  assert.equal(plan.changed, true);
  assert.equal(plan.isNewSchema, true);
  assert.equal(plan.schema['schema-id'], 4);
  assert.equal(plan.lastColumnId, 13);
  assert.deepEqual(plan.fields.map((f) => [f.name, f.fieldId]), [['qty', 4], ['id', 7], ['amount', 9], ['extra', 13]]);
  assert.deepEqual(plan.added, ['extra']);
  assert.deepEqual(plan.promoted, ['qty', 'amount']);
  assert.deepEqual(plan.relaxed, ['amount']);
  assert.deepEqual(plan.absent, ['tags']);
  // the foreign nested column is kept verbatim, order kept, new column last
  assert.deepEqual(plan.schema.fields.map((f) => f.id), [7, 4, 12, 9, 13]);
  assert.deepEqual(plan.schema.fields[2], foreignTable().schemas && (foreignTable().schemas as IcebergSchema[])[0]!.fields[2]);
  assert.equal(plan.schema.fields[1]!.type, 'long');
  assert.equal(plan.schema.fields[3]!.type, 'decimal(12,2)');
});

test('no change: the current schema is used as is; a narrower asset type is accepted', () => {
  const plan = planSchema(foreignTable(), [
    field('id', { kind: 'int' }, true),
    field('qty', { kind: 'int' }),
    field('amount', { kind: 'decimal', precision: 8, scale: 2 }, true),
  ]);
  assert.equal(plan.changed, false);
  assert.equal(plan.schema['schema-id'], 3);
  assert.deepEqual(plan.fields.map((f) => f.fieldId), [7, 4, 9]);
});

test('an identical older schema is reused instead of added', () => {
  const md = foreignTable();
  const current = (md.schemas as IcebergSchema[])[0]!;
  // schema 1 is what promoting qty to long produces; the table went back to schema 3 later
  const older: IcebergSchema = { type: 'struct', 'schema-id': 1, fields: current.fields.map((f) => (f.name === 'qty' ? { ...f, type: 'long' } : f)) };
  md.schemas = [older, current];
  const plan = planSchema(md, [field('id', { kind: 'long' }, true), field('qty', { kind: 'long' }), field('amount', { kind: 'decimal', precision: 10, scale: 2 }, true)]);
  assert.equal(plan.changed, true);
  assert.equal(plan.isNewSchema, false);
  assert.equal(plan.schema['schema-id'], 1);
});

test('incompatible changes are SCHEMA_INCOMPATIBLE naming every column', () => {
  assert.throws(
    () =>
      planSchema(foreignTable(), [
        field('id', { kind: 'string' }, true), // long → string
        field('qty', { kind: 'int' }, true), // optional → required
        field('new_req', { kind: 'int' }, true), // new required column
        // amount (required) is missing
      ]),
    (err: any) => {
      assert.equal(err.code, 'SCHEMA_INCOMPATIBLE');
      assert.deepEqual(err.context.columns, ['id', 'qty', 'new_req', 'amount']);
      assert.match(err.message, /"id": table type long cannot change to string/);
      return true;
    },
  );
  assert.throws(() => planSchema(foreignTable(), [field('id', { kind: 'long' }, true), field('amount', { kind: 'decimal', precision: 12, scale: 3 }, true), field('tags', { kind: 'string' })]), (err: any) => {
    assert.equal(err.code, 'SCHEMA_INCOMPATIBLE');
    assert.deepEqual(err.context.columns, ['amount', 'tags']);
    return true;
  });
});
