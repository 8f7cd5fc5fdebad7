import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import { compileAssetCoercer, compileCoercer, type CoerceResult } from '../../../lib/records/coerce.js';
import type { Asset, AssetField, FieldType, Row } from '../../../lib/types.js';

function field(name: string, type: FieldType, required = false): AssetField {
  const typeName = type.kind === 'decimal' ? `decimal(${type.precision},${type.scale})` : type.kind;
  return { name, type, typeName, required, fieldId: 0 };
}

const FIELDS = [
  field('id', { kind: 'long' }, true),
  field('name', { kind: 'string' }),
  field('amount', { kind: 'decimal', precision: 12, scale: 2 }),
  field('active', { kind: 'boolean' }),
  field('updated_at', { kind: 'timestamp' }, true),
];

function rowOf(r: CoerceResult): Row {
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.errors));
  return r.row;
}

describe('compileCoercer', () => {
  it('writes exactly the asset columns in asset order, canonical values', () => {
    const coerce = compileCoercer(FIELDS);
    const row = rowOf(coerce({ updated_at: '2024-01-01T00:00:00Z', active: 'yes', amount: '5', name: 'Ann', id: '7' }));
    assert.deepEqual(Object.keys(row), ['id', 'name', 'amount', 'active', 'updated_at']);
    assert.deepEqual(row, { id: 7n, name: 'Ann', amount: '5.00', active: true, updated_at: 1704067200000000n });
  });
  it('turns missing and undefined into null, and empty strings into null except for string columns', () => {
    const coerce = compileCoercer(FIELDS);
    const row = rowOf(coerce({ id: 1, name: '', amount: '', active: undefined, updated_at: 0 }));
    assert.deepEqual(row, { id: 1n, name: '', amount: null, active: null, updated_at: 0n });
  });
  it('reports every bad field of a record at once, with codes', () => {
    const coerce = compileCoercer(FIELDS);
    const r = coerce({ id: '', amount: '1.234', active: 'maybe', updated_at: '2024-02-30' });
    assert.equal(r.ok, false);
    assert.deepEqual(
      !r.ok && r.errors.map((e) => [e.field, e.code]),
      [
        ['id', 'required'],
        ['amount', 'precision'],
        ['active', 'type'],
        ['updated_at', 'range'],
      ],
    );
  });
  it('reports each unknown column once across records and never writes it', () => {
    const seen: string[] = [];
    const coerce = compileCoercer(FIELDS, { onUnknownField: (n) => seen.push(n) });
    for (let i = 0; i < 3; i++) {
      const row = rowOf(coerce({ id: i, updated_at: 0, extra: 1, other: null }));
      assert.equal('extra' in row, false);
    }
    rowOf(coerce({ id: 1, updated_at: 0, third: 'x' }));
    assert.deepEqual(seen, ['extra', 'other', 'third']);
  });
  it('handles column names that are not identifiers, including __proto__', () => {
    const coerce = compileCoercer([field('a "b"\n', { kind: 'int' }), field('__proto__', { kind: 'string' }), field('constructor', { kind: 'string' })]);
    const raw = JSON.parse('{"a \\"b\\"\\n": "1", "__proto__": "x"}') as Row;
    const row = rowOf(coerce(raw));
    assert.equal(Object.getPrototypeOf(row), Object.prototype);
    assert.deepEqual(Object.entries(row), [['a "b"\n', 1], ['__proto__', 'x'], ['constructor', null]]);
    assert.deepEqual(Object.entries(rowOf(coerce({}))), [['a "b"\n', null], ['__proto__', null], ['constructor', null]]);
  });
  it('does not report a declared column that is present with an undefined value', () => {
    const seen: string[] = [];
    const coerce = compileCoercer(FIELDS, { onUnknownField: (n) => seen.push(n) });
    rowOf(coerce({ id: 1, updated_at: 0, name: undefined }));
    assert.deepEqual(seen, []);
  });
});

describe('asset constraints', () => {
  const fields = [
    field('status', { kind: 'string' }),
    field('code', { kind: 'string' }),
    field('qty', { kind: 'int' }),
    field('big', { kind: 'long' }),
    field('price', { kind: 'decimal', precision: 10, scale: 2 }),
    field('at', { kind: 'timestamp' }),
  ];
  const rawSchema = [
    { name: 'status', type: 'string', enum: ['open', 'paid'] },
    { name: 'code', type: 'string', logicalTypeOptions: { pattern: '^[A-Z]{3}$', maxLength: 3 } },
    { name: 'qty', type: 'int', minimum: 0, maximum: 100 },
    { name: 'big', type: 'long', exclusiveMinimum: '9007199254740993' },
    { name: 'price', type: 'decimal(10,2)', minimum: '0.01' },
    { name: 'at', type: 'timestamp', minimum: '2020-01-01' },
  ];
  const asset: Asset = { name: 'a', version: '1', fields, primaryKey: [], file: 'a.yaml', raw: { schema: rawSchema } };
  const coerce = compileAssetCoercer(asset);

  it('accepts values inside the declared constraints and lets nulls through', () => {
    rowOf(coerce({ status: 'paid', code: 'ABC', qty: 100, big: '9007199254740994', price: '0.01', at: '2020-01-01' }));
    rowOf(coerce({}));
  });
  it('refuses values outside them, checking bigint and decimal bounds exactly', () => {
    const r = coerce({ status: 'void', code: 'abc', qty: 101, big: '9007199254740993', price: '0.00', at: '2019-12-31T23:59:59.999999Z' });
    assert.equal(r.ok, false);
    assert.deepEqual(
      !r.ok && r.errors.map((e) => e.field).sort(),
      ['at', 'big', 'code', 'price', 'qty', 'status'],
    );
    assert.ok(!r.ok && r.errors.every((e) => e.code === 'constraint'));
    assert.match(!r.ok ? (r.errors.find((e) => e.field === 'status')?.message ?? '') : '', /"open", "paid"/);
  });
  it('rejects a constraint that does not fit the column as CONFIG_INVALID naming the key', () => {
    const bad: Asset = { ...asset, raw: { schema: [{ name: 'qty', pattern: 'x' }, { name: 'at', minimum: 'yesterday' }] } };
    assert.throws(
      () => compileAssetCoercer(bad),
      (err) => isDativoError(err) && err.code === 'CONFIG_INVALID' && err.problems.map((p) => p.key).join() === 'schema[0].pattern,schema[1].minimum',
    );
  });
});
