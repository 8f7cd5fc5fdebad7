import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJson, stringifyJson } from '../../../lib/iceberg/json.js';

test('integers beyond 2^53 parse to bigint and print exactly', () => {
  const text = '{"snapshot-id":8123456789012345678,"n":9007199254740993,"small":5,"f":1.5}';
  const v = parseJson(text) as Record<string, unknown>;
  assert.equal(v['snapshot-id'], 8123456789012345678n);
  assert.equal(v.n, 9007199254740993n);
  assert.equal(v.small, 5);
  assert.equal(v.f, 1.5);
  assert.equal(stringifyJson(v), text);
});

test('known Iceberg long keys are bigint whatever their size', () => {
  const v = parseJson(
    '{"current-snapshot-id":-1,"last-sequence-number":0,"last-updated-ms":1767225600000,"snapshots":[{"snapshot-id":1,"sequence-number":1,"timestamp-ms":2,"schema-id":0}],"last-column-id":4}',
  ) as Record<string, any>;
  assert.equal(v['current-snapshot-id'], -1n);
  assert.equal(v['last-sequence-number'], 0n);
  assert.equal(v['last-updated-ms'], 1767225600000n);
  assert.equal(v.snapshots[0]['snapshot-id'], 1n);
  assert.equal(v.snapshots[0]['timestamp-ms'], 2n);
  assert.equal(v.snapshots[0]['schema-id'], 0);
  assert.equal(v['last-column-id'], 4);
});

test('malformed text is CATALOG_INVALID', () => {
  assert.throws(() => parseJson('{"a":', 'x.metadata.json'), { code: 'CATALOG_INVALID' });
});
