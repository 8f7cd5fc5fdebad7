import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mapMysqlError } from '../../../connectors/mysql/errors.js';
import { compileRowBuilder } from '../../../connectors/mysql/types.js';

const err = (code: string, errno?: number, sqlState?: string): Error => Object.assign(new Error(code), { code, errno, sqlState });

describe('mapMysqlError', () => {
  it('maps driver codes to codes and dispositions', () => {
    const cases: [Error, string, string][] = [
      [err('ER_ACCESS_DENIED_ERROR', 1045, '28000'), 'AUTH_FAILED', 'fatal'],
      [err('ER_NO_SUCH_TABLE', 1146, '42S02'), 'SOURCE_NOT_FOUND', 'fatal'],
      [err('ER_BAD_FIELD_ERROR', 1054, '42S22'), 'SOURCE_NOT_FOUND', 'fatal'],
      [err('ER_BAD_DB_ERROR', 1049, '42000'), 'SOURCE_NOT_FOUND', 'fatal'],
      [err('PROTOCOL_CONNECTION_LOST'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [err('ER_QUERY_INTERRUPTED', 1317, '70100'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [err('ER_CONNECTION_KILLED', 1927, '70100'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [err('ECONNREFUSED'), 'SOURCE_UNAVAILABLE', 'retryable'],
      [err('ER_PARSE_ERROR', 1064, '42000'), 'SOURCE_ERROR', 'fatal'],
    ];
    for (const [e, code, disposition] of cases) {
      const d = mapMysqlError(e, { object: 'orders' });
      assert.equal(d.code, code, e.message);
      assert.equal(d.disposition, disposition, e.message);
      assert.equal(d.context['object'], 'orders');
    }
  });
});

describe('compileRowBuilder', () => {
  it('builds records with any column name and converts only non-null values', () => {
    const build = compileRowBuilder(['id', 'we"ird`name', 'n'], [(v) => BigInt(v as string), undefined, (v) => `<${String(v)}>`]);
    assert.deepEqual(build(['12', 'x', null]), { id: 12n, 'we"ird`name': 'x', n: null });
    assert.deepEqual(build([null, null, 'a']), { id: null, 'we"ird`name': null, n: '<a>' });
  });
});
