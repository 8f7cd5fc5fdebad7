import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import {
  arrowSchema,
  buildRecordBatch,
  compareCodePoints,
  decimalToUnscaled,
  finishColumnStats,
  mergeColumnStats,
  FIELD_ID_KEY,
  formatUnscaled,
} from '../../../lib/parquet/arrow.js';
import type { AssetField } from '../../../lib/types.js';
import { ALL_FIELDS, CONSTANTS, edgeRows, field, prng } from './fixtures.js';

const code = (e: unknown): string | undefined => (isDativoError(e) ? e.code : undefined);

describe('decimalToUnscaled', () => {
  it('parses canonical decimal strings exactly', () => {
    assert.equal(decimalToUnscaled('-12.50', 12, 2), -1250n);
    assert.equal(decimalToUnscaled('0.00', 12, 2), 0n);
    assert.equal(decimalToUnscaled('-0.000000001', 38, 9), -1n);
    assert.equal(decimalToUnscaled('99999999999999999999999999999.999999999', 38, 9), 10n ** 38n - 1n);
    assert.equal(decimalToUnscaled('12.5', 12, 2), 1250n, 'short fraction is padded');
    assert.equal(decimalToUnscaled('12.500', 12, 2), 1250n, 'extra zeros are accepted');
    assert.equal(decimalToUnscaled('7', 5, 0), 7n);
    assert.equal(decimalToUnscaled('+.5', 5, 1), 5n);
  });

  it('formats unscaled values back to canonical text', () => {
    assert.equal(formatUnscaled(-1250n, 2), '-12.50');
    assert.equal(formatUnscaled(-1n, 9), '-0.000000001');
    assert.equal(formatUnscaled(0n, 2), '0.00');
    assert.equal(formatUnscaled(7n, 0), '7');
    assert.equal(formatUnscaled(10n ** 38n - 1n, 9), '99999999999999999999999999999.999999999');
  });

  it('refuses what would be rounded, overflow or garbage', () => {
    assert.throws(() => decimalToUnscaled('12.345', 12, 2), (e) => code(e) === 'INTERNAL');
    assert.throws(() => decimalToUnscaled('100000000000.00', 12, 2), (e) => code(e) === 'INTERNAL');
    assert.throws(() => decimalToUnscaled('1e5', 12, 2), (e) => code(e) === 'INTERNAL');
    assert.throws(() => decimalToUnscaled('', 12, 2), (e) => code(e) === 'INTERNAL');
    assert.throws(() => decimalToUnscaled('-', 12, 2), (e) => code(e) === 'INTERNAL');
  });
});

describe('compareCodePoints', () => {
  it('orders by code point (UTF-8 byte order), not UTF-16 code unit', () => {
    const words = ['\uff66', '😀', 'a', '', 'ab', 'é', '\u0000', '中'];
    const byBytes = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    assert.deepEqual([...words].sort(compareCodePoints), byBytes);
    assert.ok('\uff66' > '😀', 'JS order differs here');
    assert.ok(compareCodePoints('\uff66', '😀') < 0);
  });
});

describe('arrowSchema', () => {
  it('carries field ids, nullability and UTC microsecond timestamps', () => {
    const schema = arrowSchema(ALL_FIELDS);
    assert.deepEqual(
      schema.fields.map((f) => [f.name, f.nullable, f.metadata.get(FIELD_ID_KEY)]),
      ALL_FIELDS.map((f) => [f.name, !f.required, String(f.fieldId)]),
    );
    assert.equal(String(schema.fields[9]!.type), 'Timestamp<MICROSECOND, UTC>');
    assert.equal(String(schema.fields[8]!.type), 'Date32<DAY>');
    const dec = schema.fields[5]!.type as unknown as { precision: number; scale: number; bitWidth: number };
    assert.deepEqual([dec.precision, dec.scale, dec.bitWidth], [38, 9, 128]);
  });
});

describe('buildRecordBatch', () => {
  it('builds values readable back through apache-arrow and leaves the rows untouched', () => {
    const rows = edgeRows(40);
    const before = JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    const { batch, stats } = buildRecordBatch(ALL_FIELDS, rows, CONSTANTS);
    assert.equal(JSON.stringify(rows, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)), before);
    assert.equal(batch.numRows, 40);
    for (let i = 0; i < 40; i++) {
      const r = batch.get(i)!.toJSON() as Record<string, unknown>;
      assert.equal(r.id, rows[i]!.id);
      assert.equal(r.big ?? null, rows[i]!.big);
      assert.equal(r.s ?? null, rows[i]!.s);
      assert.equal(r._dativo_run_id, CONSTANTS._dativo_run_id);
    }
    assert.equal(stats.length, ALL_FIELDS.length);
  });

  it('computes stats per column and merges them across batches', () => {
    const fields: AssetField[] = [
      field('d', { kind: 'decimal', precision: 12, scale: 2 }, 1),
      field('x', { kind: 'float' }, 2),
      field('b', { kind: 'boolean' }, 3),
      field('bin', { kind: 'binary' }, 4),
      field('s', { kind: 'string' }, 5),
      field('c', { kind: 'string' }, 6, true),
    ];
    const a = buildRecordBatch(fields, [
      { d: '-9.50', x: Number.NaN, b: true, bin: new Uint8Array([1, 0]), s: '😀' },
      { d: '-10.00', x: 0.1, b: null, bin: null, s: null },
    ], { c: 'k' });
    const b = buildRecordBatch(fields, [
      { d: '2.0', x: -3, b: true, bin: new Uint8Array([1]), s: '\uff66' },
      { d: null, x: null, b: true, bin: new Uint8Array([]), s: 'z' },
    ], { c: 'k' });
    for (let i = 0; i < fields.length; i++) mergeColumnStats(a.stats[i]!, b.stats[i]!);
    const out = a.stats.map(finishColumnStats);
    assert.deepEqual(out[0], { fieldId: 1, valueCount: 4, nullCount: 1, min: '-10.00', max: '2.00' });
    assert.deepEqual(out[1], { fieldId: 2, valueCount: 4, nullCount: 1, min: -3, max: Math.fround(0.1), nanCount: 1 });
    assert.deepEqual(out[2], { fieldId: 3, valueCount: 4, nullCount: 1, min: true, max: true });
    assert.deepEqual(out[3], { fieldId: 4, valueCount: 4, nullCount: 1, min: new Uint8Array([]), max: new Uint8Array([1, 0]) });
    assert.deepEqual(out[4], { fieldId: 5, valueCount: 4, nullCount: 1, min: 'z', max: '😀' });
    assert.deepEqual(out[5], { fieldId: 6, valueCount: 4, nullCount: 0, min: 'k', max: 'k' });
  });

  it('writes decimals as 128-bit two\'s complement on both the fast (number) and the exact (BigInt) path', () => {
    const f = field('d', { kind: 'decimal', precision: 18, scale: 2 }, 1);
    const values = [
      '0.00', '-0.00', '0.01', '-0.01', '-1.5', '+7', '.5', '42949672.95', '-42949672.96', '42949672.96',
      '9999999999999.99', '-9999999999999.99', '99999999999999.99', '-99999999999999.99',
      '9999999999999999.99', '-9999999999999999.99', '1.500', '0000012.30',
    ];
    const { batch, stats } = buildRecordBatch([f], values.map((d) => ({ d })));
    const words = batch.getChildAt(0)!.data[0]!.values as Uint32Array;
    values.forEach((v, i) => {
      const u = decimalToUnscaled(v, 18, 2);
      const expected = [0, 1, 2, 3].map((w) => Number(BigInt.asUintN(32, u >> BigInt(32 * w))));
      assert.deepEqual([...words.subarray(4 * i, 4 * i + 4)], expected, v);
    });
    const s = finishColumnStats(stats[0]!);
    assert.equal(s.min, '-9999999999999999.99');
    assert.equal(s.max, '9999999999999999.99');
    for (const bad of ['1.234', '1e3', '', '-', '.', '1.2.3', ' 1.00', '10000000000000000.00']) {
      assert.throws(() => buildRecordBatch([f], [{ d: bad }]), (e: unknown) => code(e) === 'INTERNAL', JSON.stringify(bad));
    }
  });

  it('constant columns of every kind equal the same values given row by row', () => {
    const n = 1001;
    for (const sampleRow of [edgeRows(9)[3]!, edgeRows(9)[8]!, { id: 5n }]) {
      const fields = ALL_FIELDS.filter((f) => f.name !== '_dativo_ingested_at' && f.name !== '_dativo_run_id');
      const constants = Object.fromEntries(fields.map((f) => [f.name, sampleRow[f.name] ?? null]));
      const rows = Array.from({ length: n }, () => ({ ...constants }));
      const fromConstants = buildRecordBatch(fields, rows.map(() => ({})), constants);
      const fromRows = buildRecordBatch(fields, rows);
      fields.forEach((f, c) => {
        const x = fromConstants.batch.getChildAt(c)!.data[0]!;
        const y = fromRows.batch.getChildAt(c)!.data[0]!;
        assert.equal(x.length, n, f.name);
        assert.equal(x.nullCount, y.nullCount, f.name);
        for (let i = 0; i < n; i++) assert.equal(x.getValid(i), y.getValid(i), `${f.name} validity ${i}`);
        if (y.nullCount === 0) {
          assert.deepEqual(x.values, y.values, `${f.name} values`);
          assert.deepEqual(x.valueOffsets, y.valueOffsets, `${f.name} offsets`);
        }
        assert.deepEqual(finishColumnStats(fromConstants.stats[c]!), finishColumnStats(fromRows.stats[c]!), `${f.name} stats`);
      });
    }
  });

  it('string bounds follow UTF-8 byte order for any mix of ASCII, BMP and astral text', () => {
    const parts = ['a', 'z', 'A', '~', '\u0000', 'é', '中', '\ue000', '\uff66', '\uffff', '😀', '𝄞', 'x'.repeat(40)];
    const f = field('s', { kind: 'string' }, 1);
    for (let seed = 1; seed <= 30; seed++) {
      const rnd = prng(seed);
      const values = Array.from({ length: 200 }, () => {
        let v = '';
        const len = Math.floor(rnd() * 4);
        for (let k = 0; k < len; k++) v += parts[Math.floor(rnd() * parts.length)];
        return v;
      });
      const sorted = [...values].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const st = finishColumnStats(buildRecordBatch([f], values.map((v) => ({ s: v }))).stats[0]!);
      assert.equal(st.min, sorted[0], `seed ${seed} min`);
      assert.equal(st.max, sorted.at(-1), `seed ${seed} max`);
      const { batch } = buildRecordBatch([f], values.map((v) => ({ s: v })));
      values.forEach((v, i) => assert.equal(batch.get(i)!.toJSON().s, v));
    }
  });

  it('an all-null column has counts but no bounds', () => {
    const { stats } = buildRecordBatch([field('t', { kind: 'timestamp' }, 7)], [{ t: null }, {}]);
    assert.deepEqual(finishColumnStats(stats[0]!), { fieldId: 7, valueCount: 2, nullCount: 2 });
  });

  it('refuses non-canonical values instead of corrupting them', () => {
    const cases: Array<[AssetField, unknown]> = [
      [field('l', { kind: 'long' }, 1), 2n ** 63n],
      [field('l', { kind: 'long' }, 1), 1.5],
      [field('l', { kind: 'long' }, 1), '12'],
      [field('i', { kind: 'int' }, 1), 2 ** 31],
      [field('i', { kind: 'int' }, 1), 1.25],
      [field('t', { kind: 'timestamp' }, 1), new Date()],
      [field('s', { kind: 'string' }, 1), 12],
      [field('b', { kind: 'binary' }, 1), 'bytes'],
      [field('d', { kind: 'decimal', precision: 4, scale: 2 }, 1), '123.45'],
      [field('d', { kind: 'decimal', precision: 4, scale: 2 }, 1), 1.5],
      [field('r', { kind: 'string' }, 1, true), null],
    ];
    for (const [f, v] of cases) {
      assert.throws(
        () => buildRecordBatch([f], [{ [f.name]: v }]),
        (e: unknown) => code(e) === 'INTERNAL' && (e as { context: { column: string } }).context.column === f.name,
        `${f.type.kind} ${String(v)}`,
      );
    }
  });
});
