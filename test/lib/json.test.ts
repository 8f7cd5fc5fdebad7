import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringifyJson } from '../../lib/json.js';

describe('stringifyJson', () => {
  it('writes bigints as unquoted JSON numbers with every digit', () => {
    assert.equal(stringifyJson({ id: 12345678901234567890n, n: -1n }), '{"id":12345678901234567890,"n":-1}');
    assert.equal(stringifyJson(2n ** 64n), '18446744073709551616');
  });
  it('writes Uint8Array and Buffer (also a slice of a larger buffer) as base64', () => {
    assert.equal(stringifyJson(new Uint8Array([1, 2, 3])), '"AQID"');
    assert.equal(stringifyJson({ b: Buffer.from('hi') }), '{"b":"aGk="}');
    const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
    assert.equal(stringifyJson(big.subarray(2, 5)), '"AQID"');
  });
  it('otherwise matches JSON.stringify', () => {
    const v = {
      s: 'a"b\n\u2028',
      n: 1.5,
      nan: NaN,
      inf: -Infinity,
      t: true,
      nil: null,
      u: undefined,
      f: () => 1,
      d: new Date('2024-01-01T00:00:00Z'),
      arr: [1, undefined, () => 1, 'x'],
      nested: { a: [], b: {} },
    };
    assert.equal(stringifyJson(v), JSON.stringify(v));
    assert.equal(stringifyJson(v, 2), JSON.stringify(v, null, 2));
    assert.equal(stringifyJson([]), '[]');
  });
  it('always returns JSON text, and throws on cycles', () => {
    assert.equal(stringifyJson(undefined), 'null');
    const a: Record<string, unknown> = {};
    a.self = a;
    assert.throws(() => stringifyJson(a), TypeError);
    const shared = { x: 1n };
    assert.equal(stringifyJson([shared, shared]), '[{"x":1},{"x":1}]');
  });
});
