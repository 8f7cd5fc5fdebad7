import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeBound, truncateStringUpper, twosComplementMinBytes, unscaledDecimal } from '../../../lib/iceberg/values.js';

const hex = (b: Buffer | undefined) => (b === undefined ? undefined : b.toString('hex'));

test('Appendix D vectors: int, long, date, boolean, string', () => {
  assert.equal(hex(encodeBound('int', 1, 'lower')), '01000000');
  assert.equal(hex(encodeBound('long', 1n, 'lower')), '0100000000000000');
  assert.equal(hex(encodeBound('long', 1_000_000_000_000n, 'lower')), '0010a5d4e8000000');
  assert.equal(hex(encodeBound('date', 20089, 'lower')), '794e0000');
  assert.equal(hex(encodeBound('timestamptz', -1n, 'upper')), 'ffffffffffffffff');
  assert.equal(hex(encodeBound('boolean', true, 'lower')), '01');
  assert.equal(hex(encodeBound('string', 'abc', 'lower')), '616263');
  // a long column written by an int asset (table type wins)
  assert.equal(hex(encodeBound('long', 7, 'lower')), '0700000000000000');
});

test('decimal bounds are minimum-byte big-endian two\'s complement of the unscaled value', () => {
  assert.equal(hex(encodeBound('decimal(9,2)', '12.34', 'lower')), '04d2');
  assert.equal(hex(encodeBound('decimal(9, 2)', '1.28', 'lower')), '0080');
  assert.equal(hex(encodeBound('decimal(9,2)', '-0.01', 'lower')), 'ff');
  assert.equal(hex(encodeBound('decimal(38,0)', '-128', 'lower')), '80');
  assert.equal(hex(encodeBound('decimal(38,0)', '-129', 'lower')), 'ff7f');
  assert.equal(unscaledDecimal('-12.50', 2), -1250n);
  assert.equal(unscaledDecimal('3', 2), 300n);
  assert.equal(unscaledDecimal('1.001', 2), undefined);
  assert.equal(hex(twosComplementMinBytes(0n)), '00');
  assert.equal(hex(twosComplementMinBytes(32767n)), '7fff');
  assert.equal(hex(twosComplementMinBytes(32768n)), '008000');
});

test('floats: little-endian IEEE, no NaN bound, zero bounds safe for both signs', () => {
  assert.equal(hex(encodeBound('double', 1.5, 'lower')), '000000000000f83f');
  assert.equal(hex(encodeBound('float', 1.5, 'upper')), '0000c03f');
  assert.equal(encodeBound('double', Number.NaN, 'lower'), undefined);
  assert.equal(hex(encodeBound('double', 0, 'lower')), '0000000000000080'); // -0.0
  assert.equal(hex(encodeBound('double', -0, 'upper')), '0000000000000000'); // +0.0
});

test('strings truncate to 16 code points; the upper bound is incremented', () => {
  const long = 'abcdefghijklmnopqrstuvwxyz';
  assert.equal(encodeBound('string', long, 'lower')!.toString('utf8'), 'abcdefghijklmnop');
  assert.equal(encodeBound('string', long, 'upper')!.toString('utf8'), 'abcdefghijklmnoq');
  // astral-plane characters count as one code point each
  const astral = '😀'.repeat(20);
  assert.equal(Array.from(encodeBound('string', astral, 'lower')!.toString('utf8')).length, 16);
  assert.equal(truncateStringUpper('😀'.repeat(20)), '😀'.repeat(15) + '😁');
  // U+D7FF increments past the surrogate range; U+10FFFF cannot be incremented
  assert.equal(truncateStringUpper('\uD7FF'.repeat(17)), '\uD7FF'.repeat(15) + '\uE000');
  assert.equal(truncateStringUpper('\u{10FFFF}'.repeat(17)), undefined);
  assert.equal(encodeBound('string', '\u{10FFFF}'.repeat(17), 'upper'), undefined);
});

test('binary truncates to 16 bytes; upper increments the last byte below 0xFF', () => {
  const b = new Uint8Array(20).fill(0xff);
  b[3] = 0x10;
  assert.equal(hex(encodeBound('binary', b, 'lower')), b.subarray(0, 16).reduce((s, x) => s + x.toString(16).padStart(2, '0'), ''));
  assert.equal(hex(encodeBound('binary', b, 'upper')), 'ffffff11');
  assert.equal(encodeBound('binary', new Uint8Array(17).fill(0xff), 'upper'), undefined);
});
