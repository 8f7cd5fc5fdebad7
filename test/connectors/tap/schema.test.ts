/** A tap stream's JSON Schema against asset types (connectors/tap/schema.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assetTypeOf, discoveredColumns, schemaProblems } from '../../../connectors/tap/schema.js';
import type { Asset, AssetField, FieldType } from '../../../lib/types.js';

test('JSON Schema types become asset types', () => {
  assert.equal(assetTypeOf({ type: ['null', 'integer'] }), 'long');
  assert.equal(assetTypeOf({ type: 'number' }), 'double');
  assert.equal(assetTypeOf({ type: ['integer', 'number'] }), 'double');
  assert.equal(assetTypeOf({ type: 'number', airbyte_type: 'integer' }), 'long');
  assert.equal(assetTypeOf({ type: 'string', format: 'date-time' }), 'timestamp');
  assert.equal(assetTypeOf({ type: 'string', airbyte_type: 'timestamp_with_timezone' }), 'timestamp');
  assert.equal(assetTypeOf({ anyOf: [{ type: 'null' }, { type: 'string', format: 'date' }] }), 'date');
  assert.equal(assetTypeOf({ type: 'boolean' }), 'boolean');
  assert.equal(assetTypeOf({ type: 'object' }), 'json');
  assert.equal(assetTypeOf({ type: ['string', 'boolean'] }), 'json');
  assert.equal(assetTypeOf({}), 'json');
});

test('discovered columns: key properties and non-null required ones are required', () => {
  const cols = discoveredColumns({ type: 'object', required: ['a', 'b'], properties: { id: { type: 'integer' }, a: { type: 'string' }, b: { type: ['null', 'string'] } } }, ['id'], 'Singer');
  assert.deepEqual(cols.map((c) => [c.name, c.type, c.required]), [['id', 'long', true], ['a', 'string', true], ['b', 'string', false]]);
  assert.equal(cols[2]?.description, 'Singer schema type: ["null","string"].');
});

const field = (name: string, type: FieldType, required = false): AssetField => ({ name, type, typeName: type.kind, required, fieldId: 1 });
const asset = (fields: AssetField[]): Asset => ({ name: 'a', version: '1', fields, primaryKey: [], file: 'a.yaml', raw: {} });

test('contradictions: a required column without a property, a type that cannot be coerced; system columns and untyped properties pass', () => {
  const a = asset([field('id', { kind: 'long' }, true), field('at', { kind: 'timestamp' }), field('n', { kind: 'string' }), field('opt', { kind: 'string' }), field('_dativo_deleted', { kind: 'boolean' }), field('any', { kind: 'long' })]);
  const schema = { type: 'object', properties: { at: { type: 'boolean' }, n: { type: 'integer' }, any: {} } };
  assert.deepEqual(schemaProblems(schema, a), [
    'column "id" is required by the asset but the stream\'s schema has no property "id"',
    'column "at" is timestamp in the asset but boolean in the stream\'s schema',
  ]);
  assert.deepEqual(schemaProblems({ type: 'object' }, a), [], 'no properties: nothing to check');
});
