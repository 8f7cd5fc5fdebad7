import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapPgError } from '../../../connectors/postgres/errors.js';
import { arrayLiteralToJson, parseBytea } from '../../../connectors/postgres/types.js';

function dbError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code, severity: 'ERROR' });
}

describe('mapPgError', () => {
  it('maps SQLSTATEs and socket errors to codes and dispositions', () => {
    const cases: [Error, string, string][] = [
      [dbError('28P01'), 'AUTH_FAILED', 'fatal'],
      [dbError('28000'), 'AUTH_FAILED', 'fatal'],
      [dbError('42P01'), 'SOURCE_NOT_FOUND', 'fatal'],
      [dbError('42703'), 'SOURCE_NOT_FOUND', 'fatal'],
      [dbError('3D000'), 'SOURCE_NOT_FOUND', 'fatal'],
      [dbError('57P01', 'terminating connection due to administrator command'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [dbError('57014', 'canceling statement due to statement timeout'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [dbError('08006'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [dbError('40001'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [dbError('42601', 'syntax error'), 'SOURCE_ERROR', 'fatal'],
      [dbError('XX000'), 'SOURCE_ERROR', 'retryable'],
      [Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'SOURCE_UNAVAILABLE', 'retryable'],
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'SOURCE_UNAVAILABLE', 'retryable'],
      [new Error('Connection terminated unexpectedly'), 'SOURCE_UNAVAILABLE', 'retryable'],
    ];
    for (const [err, code, disposition] of cases) {
      const e = mapPgError(err, { object: 'orders' });
      assert.equal(e.code, code, err.message + ' ' + String((err as { code?: string }).code));
      assert.equal(e.disposition, disposition);
      assert.equal(e.context['object'], 'orders');
      assert.equal(e.cause, err);
    }
  });
});

describe('Postgres text values', () => {
  it('turns array literals into JSON text', () => {
    assert.equal(arrayLiteralToJson('{a,"b c",NULL,"x\\"y","NULL"}', 'string'), '["a","b c",null,"x\\"y","NULL"]');
    assert.equal(arrayLiteralToJson('{{1,2},{3,NULL}}', 'number'), '[[1,2],[3,null]]');
    assert.equal(arrayLiteralToJson('{1.50,NaN,-9223372036854775808}', 'digits'), '[1.50,"NaN",-9223372036854775808]');
    assert.equal(arrayLiteralToJson('{t,f}', 'bool'), '[true,false]');
    assert.equal(arrayLiteralToJson('{"{\\"a\\": 1}"}', 'json'), '[{"a": 1}]');
    assert.equal(arrayLiteralToJson('[0:1]={7,8}', 'number'), '[7,8]');
    assert.equal(arrayLiteralToJson('{}', 'string'), '[]');
    assert.equal(arrayLiteralToJson('not an array', 'string'), 'not an array');
  });

  it('decodes hex bytea into its own buffer', () => {
    const b = parseBytea('\\x00ff10') as Uint8Array;
    assert.deepEqual(b, new Uint8Array([0, 255, 16]));
    assert.equal(b.buffer.byteLength, 3);
  });
});
