import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Bad, fieldCoercer } from '../../../lib/records/fields.js';
import type { FieldType } from '../../../lib/types.js';

function ok(type: FieldType, v: unknown): unknown {
  const out = fieldCoercer(type)(v);
  assert.ok(!(out instanceof Bad), `expected ${String(v)} accepted, got ${out instanceof Bad ? out.message : ''}`);
  return out;
}
function bad(type: FieldType, v: unknown): string {
  const out = fieldCoercer(type)(v);
  assert.ok(out instanceof Bad, `expected ${typeof v === 'bigint' ? `${v}n` : JSON.stringify(v)} refused, got ${String(out)}`);
  return out.code;
}

describe('long', () => {
  const t: FieldType = { kind: 'long' };
  it('keeps bigints and converts safe integers and digit strings, exact beyond 2^53', () => {
    assert.equal(ok(t, 42), 42n);
    assert.equal(ok(t, -7n), -7n);
    assert.equal(ok(t, '9007199254740993'), 9007199254740993n);
    assert.equal(ok(t, ' +12 '), 12n);
    assert.equal(ok(t, '-9223372036854775808'), -9223372036854775808n);
    assert.equal(ok(t, '9223372036854775807'), 9223372036854775807n);
  });
  it('refuses a JS number beyond 2^53 (digits already lost) and never truncates fractions', () => {
    assert.equal(bad(t, 2 ** 53 + 2), 'precision');
    assert.equal(bad(t, 1.5), 'type');
    assert.equal(bad(t, '1.5'), 'type');
    assert.equal(bad(t, '1e3'), 'type');
    assert.equal(bad(t, NaN), 'type');
    assert.equal(bad(t, true), 'type');
  });
  it('refuses values outside int64', () => {
    assert.equal(bad(t, '9223372036854775808'), 'range');
    assert.equal(bad(t, -(2n ** 63n) - 1n), 'range');
  });
});

describe('int', () => {
  const t: FieldType = { kind: 'int' };
  it('accepts 32-bit integers from numbers, bigints and strings', () => {
    assert.equal(ok(t, 2147483647), 2147483647);
    assert.equal(ok(t, '-2147483648'), -2147483648);
    assert.equal(ok(t, 5n), 5);
    assert.ok(Object.is(ok(t, -0), 0));
  });
  it('refuses overflow and fractions', () => {
    assert.equal(bad(t, 2147483648), 'range');
    assert.equal(bad(t, '99999999999999999999'), 'range');
    assert.equal(bad(t, 2n ** 40n), 'range');
    assert.equal(bad(t, 0.5), 'type');
  });
});

describe('float and double', () => {
  it('double accepts numbers, numeric strings, special words and exactly representable bigints', () => {
    const t: FieldType = { kind: 'double' };
    assert.equal(ok(t, 1.25), 1.25);
    assert.equal(ok(t, ' -1.5e-3 '), -0.0015);
    assert.equal(ok(t, '.5'), 0.5);
    assert.ok(Number.isNaN(ok(t, 'NaN')));
    assert.equal(ok(t, 'Infinity'), Infinity);
    assert.equal(ok(t, '-Infinity'), -Infinity);
    assert.equal(ok(t, 2n ** 60n), 2 ** 60);
    assert.equal(bad(t, 2n ** 60n + 1n), 'precision');
    assert.equal(bad(t, '0x10'), 'type');
    assert.equal(bad(t, '1,5'), 'type');
    assert.equal(bad(t, 'abc'), 'type');
  });
  it('float holds the float32 value the file will store, and refuses float32 overflow', () => {
    const t: FieldType = { kind: 'float' };
    assert.equal(ok(t, 0.1), Math.fround(0.1));
    assert.equal(bad(t, 1e39), 'range');
    assert.equal(ok(t, 'Infinity'), Infinity);
  });
});

describe('decimal', () => {
  const t: FieldType = { kind: 'decimal', precision: 10, scale: 2 };
  it('writes exactly `scale` fraction digits from strings, numbers, bigints and exponent forms', () => {
    assert.equal(ok(t, '12.5'), '12.50');
    assert.equal(ok(t, 12.5), '12.50');
    assert.equal(ok(t, '-0.01'), '-0.01');
    assert.equal(ok(t, '0'), '0.00');
    assert.equal(ok(t, '-0'), '0.00');
    assert.equal(ok(t, '1.5e3'), '1500.00');
    assert.equal(ok(t, '12300e-4'), '1.23');
    assert.equal(ok(t, 1e-2), '0.01');
    assert.equal(ok(t, 7n), '7.00');
    assert.equal(ok(t, '00012.300000'), '12.30');
    assert.equal(ok(t, '99999999.99'), '99999999.99');
  });
  it('refuses digits that would be rounded away and integer parts that do not fit', () => {
    assert.equal(bad(t, '1.005'), 'precision');
    assert.equal(bad(t, '12345e-4'), 'precision');
    assert.equal(bad(t, 0.1 + 0.2), 'precision');
    assert.equal(bad(t, '100000000.00'), 'range');
    assert.equal(bad(t, '1e300'), 'range');
    assert.equal(bad(t, '1e-300'), 'precision');
    assert.equal(bad(t, 'NaN'), 'type');
    assert.equal(bad(t, '1.2.3'), 'type');
    assert.equal(bad(t, Infinity), 'type');
  });
  it('handles scale 0 and large precision exactly', () => {
    assert.equal(ok({ kind: 'decimal', precision: 38, scale: 0 }, '12345678901234567890123456789012345678'), '12345678901234567890123456789012345678');
    assert.equal(ok({ kind: 'decimal', precision: 38, scale: 0 }, '5.000'), '5');
    assert.equal(ok({ kind: 'decimal', precision: 38, scale: 10 }, '-.5'), '-0.5000000000');
  });
});

describe('boolean', () => {
  const t: FieldType = { kind: 'boolean' };
  it('reads the usual words case-insensitively, and 1/0', () => {
    for (const w of ['true', 'T', ' yes ', 'Y', '1', 'ON']) assert.equal(ok(t, w), true, w);
    for (const w of ['false', 'f', 'No', 'n', '0', 'off']) assert.equal(ok(t, w), false, w);
    assert.equal(ok(t, 1), true);
    assert.equal(ok(t, 0), false);
  });
  it('refuses anything else', () => {
    assert.equal(bad(t, 2), 'type');
    assert.equal(bad(t, 'maybe'), 'type');
    assert.equal(bad(t, {}), 'type');
  });
});

describe('date', () => {
  const t: FieldType = { kind: 'date' };
  it('gives days since epoch from YYYY-MM-DD, a Date (its UTC day) or a day number', () => {
    assert.equal(ok(t, '1970-01-01'), 0);
    assert.equal(ok(t, '2024-02-29'), 19782);
    assert.equal(ok(t, '1969-12-31'), -1);
    assert.equal(ok(t, '0001-01-01'), -719162);
    assert.equal(ok(t, new Date('2024-02-29T23:59:59Z')), 19782);
    assert.equal(ok(t, 19782), 19782);
  });
  it('refuses impossible calendar days and other formats', () => {
    assert.equal(bad(t, '2023-02-29'), 'range');
    assert.equal(bad(t, '1900-02-29'), 'range');
    assert.equal(bad(t, '2024-13-01'), 'range');
    assert.equal(bad(t, '0000-01-01'), 'range');
    assert.equal(bad(t, '2024-1-1'), 'type');
    assert.equal(bad(t, '2024-01-01T00:00:00Z'), 'type');
    assert.equal(bad(t, new Date(NaN)), 'type');
    assert.equal(bad(t, 1.5), 'type');
  });
});

describe('timestamp', () => {
  const t: FieldType = { kind: 'timestamp' };
  const us = (iso: string): bigint => BigInt(Date.parse(iso)) * 1000n;
  it('parses ISO-8601 / RFC 3339 with every offset form, exact to the microsecond', () => {
    assert.equal(ok(t, '2024-01-31T12:00:00Z'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31T12:00:00.123456Z'), us('2024-01-31T12:00:00.123Z') + 456n);
    assert.equal(ok(t, '2024-01-31T14:00:00+02:00'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31T14:00:00+0200'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31T09:30:00-02:30'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31T14:00:00+02'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31 12:00:00.5'), us('2024-01-31T12:00:00.500Z'));
    assert.equal(ok(t, '2024-01-31t12:00z'), us('2024-01-31T12:00:00Z'));
  });
  it('reads no offset as UTC, a bare date as midnight UTC', () => {
    assert.equal(ok(t, '2024-01-31 12:00:00'), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, '2024-01-31'), us('2024-01-31T00:00:00Z'));
  });
  it('truncates digits beyond microseconds toward the past, also before 1970', () => {
    assert.equal(ok(t, '2024-01-31T12:00:00.123456999Z'), us('2024-01-31T12:00:00.123Z') + 456n);
    assert.equal(ok(t, '1969-12-31T23:59:59.9999999Z'), -1n);
  });
  it('reads a Date as its milliseconds, a number as Unix seconds (exact), a bigint as microseconds', () => {
    assert.equal(ok(t, new Date('2024-01-31T12:00:00.123Z')), us('2024-01-31T12:00:00.123Z'));
    assert.equal(ok(t, 1706702400), us('2024-01-31T12:00:00Z'));
    assert.equal(ok(t, 1.000001), 1_000_001n);
    assert.equal(ok(t, 1706702400.123456), 1706702400_123456n);
    assert.equal(ok(t, -1.5), -1_500_000n);
    assert.equal(ok(t, 123n), 123n);
  });
  it('refuses impossible times and dates, and years outside 0001-9999', () => {
    for (const s of ['2024-01-31T24:00:00Z', '2024-01-31T12:60:00Z', '2024-01-31T12:00:60Z', '2023-02-29T00:00:00Z', '2024-01-31T12:00:00+25:00']) {
      assert.equal(bad(t, s), 'range', s);
    }
    for (const s of ['2024-01-31T12:00:00.1234567890Z', 'Jan 31 2024', '2024-01-31T12', '2024-01-31T12:00:00 Z', '+2024-01-31']) {
      assert.equal(bad(t, s), 'type', s);
    }
    assert.equal(bad(t, 1e15), 'range');
    assert.equal(bad(t, 10n ** 30n), 'range');
    assert.equal(bad(t, new Date(NaN)), 'type');
  });
});

describe('string, json, binary', () => {
  it('string keeps strings, prints scalars, refuses objects', () => {
    const t: FieldType = { kind: 'string' };
    assert.equal(ok(t, 'x'), 'x');
    assert.equal(ok(t, 12345678901234567890n), '12345678901234567890');
    assert.equal(ok(t, false), 'false');
    assert.equal(ok(t, new Date('2024-01-01T00:00:00Z')), '2024-01-01T00:00:00.000Z');
    assert.equal(bad(t, { a: 1 }), 'type');
    assert.equal(bad(t, [1]), 'type');
  });
  it('json passes text through verbatim and serialises values (bigint exactly)', () => {
    const t: FieldType = { kind: 'json' };
    assert.equal(ok(t, '{"a": 1.10,  "b":2}'), '{"a": 1.10,  "b":2}');
    assert.equal(ok(t, { a: 12345678901234567890n, b: [true, null] }), '{"a":12345678901234567890,"b":[true,null]}');
    assert.equal(ok(t, 3), '3');
  });
  it('binary keeps bytes, decodes \\x hex and strict base64', () => {
    const t: FieldType = { kind: 'binary' };
    const b = new Uint8Array([1, 2, 3]);
    assert.equal(ok(t, b), b);
    assert.deepEqual(ok(t, '\\xdeadBEEF'), new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    assert.deepEqual(ok(t, 'AQID'), new Uint8Array([1, 2, 3]));
    assert.deepEqual(ok(t, 'AQI='), new Uint8Array([1, 2]));
    assert.equal(bad(t, 'AQI'), 'type');
    assert.equal(bad(t, 'not base64!'), 'type');
    assert.equal(bad(t, '\\xabc'), 'type');
    assert.equal(bad(t, 5), 'type');
  });
});

describe('decimal fast and general paths agree', () => {
  it('gives the same text or the same refusal for plain and exponent forms', () => {
    const t: FieldType = { kind: 'decimal', precision: 6, scale: 2 };
    const c = fieldCoercer(t);
    const samples = ['0', '-0', '+1', '1.', '.5', '-.5', '0.10', '00.000', '1234.5', '9999.99', '10000', '-9999.994', '1.001', '1.000', '-0.00', '12.3456'];
    for (const s of samples) {
      const plain = c(s);
      const viaExp = c(`${s === '.' ? '0' : s}e0`);
      const fmt = (x: unknown): string => (x instanceof Bad ? `bad:${x.code}` : String(x));
      assert.equal(fmt(plain), fmt(viaExp), s);
    }
  });
});
