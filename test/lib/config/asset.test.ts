import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAsset, parseFieldType } from '../../../lib/config/index.js';
import { problemsOf, tempTree } from './helpers.js';

test('every accepted type string maps to its FieldType', () => {
  const cases: [string, unknown][] = [
    ['string', { kind: 'string' }],
    ['integer', { kind: 'long' }],
    ['long', { kind: 'long' }],
    ['bigint', { kind: 'long' }],
    ['int', { kind: 'int' }],
    ['int32', { kind: 'int' }],
    ['float', { kind: 'float' }],
    ['double', { kind: 'double' }],
    ['number', { kind: 'double' }],
    ['decimal(38,10)', { kind: 'decimal', precision: 38, scale: 10 }],
    ['numeric( 9 , 0 )', { kind: 'decimal', precision: 9, scale: 0 }],
    ['DECIMAL(5)', { kind: 'decimal', precision: 5, scale: 0 }],
    ['decimal(1,1)', { kind: 'decimal', precision: 1, scale: 1 }],
    ['boolean', { kind: 'boolean' }],
    ['bool', { kind: 'boolean' }],
    ['date', { kind: 'date' }],
    ['timestamp', { kind: 'timestamp' }],
    ['datetime', { kind: 'timestamp' }],
    ['timestamptz', { kind: 'timestamp' }],
    ['json', { kind: 'json' }],
    ['object', { kind: 'json' }],
    ['array', { kind: 'json' }],
    ['binary', { kind: 'binary' }],
    ['bytes', { kind: 'binary' }],
    [' Timestamp ', { kind: 'timestamp' }],
  ];
  for (const [s, want] of cases) assert.deepEqual(parseFieldType(s), { type: want }, s);

  const bad: [string, string][] = [
    ['decimal', '"decimal" needs a precision and scale, e.g. decimal(18,2)'],
    ['numeric', '"numeric" needs a precision and scale, e.g. decimal(18,2)'],
    ['decimal(0,0)', 'decimal precision must be 1..38, got 0'],
    ['decimal(39,2)', 'decimal precision must be 1..38, got 39'],
    ['decimal(5,6)', 'decimal scale must be 0..5 (the precision), got 6'],
    ['decimal(12', 'unknown type "decimal(12": in a {...} mapping quote it, e.g. type: "decimal(12,2)"'],
    ['text', 'unknown type "text" (expected one of: string, integer, long, bigint, int, int32, float, double, number, boolean, bool, date, timestamp, datetime, timestamptz, json, object, array, binary, bytes, decimal(p,s), numeric(p,s))'],
  ];
  for (const [s, msg] of bad) assert.deepEqual(parseFieldType(s), { error: msg }, s);
});

test('a flat ODCS asset: field ids in order, primary key from top level and fields, cursor, raw kept', async () => {
  const t = await tempTree();
  try {
    const file = await t.write(
      'customers.yaml',
      `$schema: schemas/odcs/dativo-odcs-3.0.2-extended.schema.json
apiVersion: v3.0.2
kind: DataContract
id: 5c1e
name: customers
version: 2.1
status: active
domain: crm
dataProduct: core
tenant: acme
source_type: stripe
object: customers
description: {purpose: test}
tags: [a]
schema:
  - {name: tenant, type: string, required: true, primary_key: true}
  - {name: id, type: string, required: true, primaryKey: true, classification: PII, description: the id, logicalType: string}
  - {name: created, type: timestamp}
primary_key: tenant
cursor_field: created
team: {owner: crm@example.com}
compliance: {retention_days: 90}
finops: {cost_center: C1}
data_quality: {expectations: []}
change_management: {policy: non-breaking}
target: {file_format: parquet}
`,
    );
    const a = await loadAsset(file);
    assert.equal(a.name, 'customers');
    assert.equal(a.version, '2.1');
    assert.equal(a.domain, 'crm');
    assert.equal(a.dataProduct, 'core');
    assert.equal(a.tenant, 'acme');
    assert.equal(a.sourceType, 'stripe');
    assert.equal(a.object, 'customers');
    assert.equal(a.file, file);
    assert.deepEqual(a.primaryKey, ['tenant', 'id']);
    assert.equal(a.cursorField, 'created');
    assert.deepEqual(a.fields, [
      { name: 'tenant', type: { kind: 'string' }, typeName: 'string', required: true, fieldId: 1 },
      { name: 'id', type: { kind: 'string' }, typeName: 'string', required: true, fieldId: 2, classification: 'PII', description: 'the id' },
      { name: 'created', type: { kind: 'timestamp' }, typeName: 'timestamp', required: false, fieldId: 3 },
    ]);
    assert.deepEqual(a.raw['finops'], { cost_center: 'C1' });
  } finally {
    await t.cleanup();
  }
});

test('the legacy asset: wrapper is migrated (governance → team/compliance, tags)', async () => {
  const t = await tempTree();
  try {
    const file = await t.write(
      'legacy.yaml',
      `asset:
  name: csv_employee
  source_type: csv
  object: Employee
  version: "1.0"
  schema:
    - name: id
      type: integer
      required: true
    - name: salary
      type: "numeric(10,2)"
  incremental: {cursor_field: id}
  governance:
    owner: hr@example.com
    tags: [hr]
    classification: [PII]
    retention_days: 365
`,
    );
    const a = await loadAsset(file);
    assert.equal(a.name, 'csv_employee');
    assert.equal(a.object, 'Employee');
    assert.equal(a.cursorField, 'id');
    assert.deepEqual(
      a.fields.map((f) => [f.name, f.type, f.fieldId]),
      [
        ['id', { kind: 'long' }, 1],
        ['salary', { kind: 'decimal', precision: 10, scale: 2 }, 2],
      ],
    );
    assert.deepEqual(a.raw['team'], { owner: 'hr@example.com' });
    assert.deepEqual(a.raw['tags'], ['hr']);
    assert.deepEqual(a.raw['compliance'], { classification: ['PII'], retention_days: 365 });
    assert.equal(a.raw['governance'], undefined);
  } finally {
    await t.cleanup();
  }
});

test('asset problems are all listed: unknown keys, missing name, reserved, duplicate, unknown pk and cursor columns', async () => {
  const t = await tempTree();
  try {
    const file = await t.write(
      'bad.yaml',
      `version: 1
shema: []
schema:
  - {name: id, type: int}
`,
    );
    assert.deepEqual(await problemsOf(loadAsset(file)), [
      { file, key: 'name', message: 'required' },
      { file, key: 'shema', message: 'unknown key (did you mean "schema"?) (line 2)' },
    ]);
    const file2 = await t.write(
      'bad2.yaml',
      `asset:
  name: x
  version: 1
  schema:
    - {name: _dativo_run_id, type: string}
    - {name: a, type: bytes}
    - {name: a, type: float}
    - {type: string}
  primary_key: [a, nope]
  cursor_field: missing
extra: 1
`,
    );
    assert.deepEqual(await problemsOf(loadAsset(file2)), [
      { file: file2, key: 'extra', message: 'unknown key next to the legacy "asset:" wrapper' },
      { file: file2, key: 'asset.schema[3].name', message: 'required' },
    ]);
    const file3 = await t.write('bad3.yaml', `asset:
  name: x
  version: 1
  schema:
    - {name: _dativo_run_id, type: string}
    - {name: a, type: bytes}
    - {name: a, type: float}
  primary_key: [a, nope]
  cursor_field: missing
`);
    assert.deepEqual(await problemsOf(loadAsset(file3)), [
      { file: file3, key: 'asset.schema[0].name', message: 'column names starting with "_dativo_" are reserved (_dativo_ingested_at, _dativo_run_id, ...; only _dativo_deleted may be declared)' },
      { file: file3, key: 'asset.schema[2].name', message: 'duplicate column "a" (first at schema[1])' },
      { file: file3, key: 'asset.primary_key[1]', message: 'primary key column "nope" is not in the schema' },
      { file: file3, key: 'asset.cursor_field', message: 'cursor column "missing" is not in the schema' },
    ]);
    assert.deepEqual(await problemsOf(loadAsset(`${t.dir}/nope.yaml`)), [{ file: `${t.dir}/nope.yaml`, key: '', message: 'asset file not found' }]);
  } finally {
    await t.cleanup();
  }
});
