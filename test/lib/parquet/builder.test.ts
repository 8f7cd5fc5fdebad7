import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import { arrowSchema, buildRecordBatch, finishColumnStats, RecordBatchBuilder } from '../../../lib/parquet/arrow.js';
import { ALL_FIELDS, CONSTANTS, edgeRows, field } from './fixtures.js';

const code = (e: unknown): string | undefined => (isDativoError(e) ? e.code : undefined);

/** Every Arrow buffer of every column, for an exact comparison. */
function buffers(built: ReturnType<typeof buildRecordBatch>): unknown[] {
  return ALL_FIELDS.map((f, c) => {
    const d = built.batch.getChildAt(c)!.data[0]!;
    const valid = Array.from({ length: d.length }, (_, i) => d.getValid(i));
    return { name: f.name, length: d.length, nulls: d.nullCount, valid, values: d.values, offsets: d.valueOffsets };
  });
}

describe('RecordBatchBuilder', () => {
  it('appending row by row through several builds equals building each slice at once, buffers and stats', () => {
    const rows = edgeRows(3000);
    // Capacity 1: every buffer grows by doubling many times, and grown buffers are reused after each build.
    const b = new RecordBatchBuilder(ALL_FIELDS, CONSTANTS, arrowSchema(ALL_FIELDS), 1);
    for (const [start, end] of [[0, 1], [1, 1200], [1200, 1201], [1201, 3000]] as const) {
      for (let i = start; i < end; i++) b.append(rows[i]!);
      assert.equal(b.length, end - start);
      assert.ok(b.byteLength > 0);
      const got = b.build();
      assert.equal(b.length, 0);
      assert.equal(b.byteLength, 0, 'empty after build');
      const want = buildRecordBatch(ALL_FIELDS, rows.slice(start, end), CONSTANTS);
      assert.equal(got.batch.numRows, end - start);
      assert.deepEqual(buffers(got), buffers(want), `rows ${start}..${end}`);
      // Stats of one build never include rows of an earlier one.
      assert.deepEqual(got.stats.map(finishColumnStats), want.stats.map(finishColumnStats), `stats ${start}..${end}`);
      assert.equal(got.byteLength, want.byteLength);
    }
  });

  it('with reused buffers, each batch is exact when consumed before the next append (nulls, bits and offsets rewritten)', () => {
    const rows = edgeRows(2000);
    const b = new RecordBatchBuilder(ALL_FIELDS, CONSTANTS, arrowSchema(ALL_FIELDS), 8, true);
    // Sizes that leave partial bitmap bytes, shrink and grow again.
    for (const [start, end] of [[0, 1000], [1000, 1003], [1003, 1013], [1013, 2000]] as const) {
      for (let i = start; i < end; i++) b.append(rows[i]!);
      const got = b.build();
      const want = buildRecordBatch(ALL_FIELDS, rows.slice(start, end), CONSTANTS);
      assert.deepEqual(buffers(got), buffers(want), `rows ${start}..${end}`);
      assert.deepEqual(got.stats.map(finishColumnStats), want.stats.map(finishColumnStats), `stats ${start}..${end}`);
    }
  });

  it('a built batch keeps its values when the builder goes on', () => {
    const f = [field('s', { kind: 'string' }, 1), field('l', { kind: 'long' }, 2), field('d', { kind: 'decimal', precision: 12, scale: 2 }, 3)];
    const b = new RecordBatchBuilder(f, {}, arrowSchema(f), 2);
    b.append({ s: 'first', l: 1n, d: '1.00' });
    const first = b.build();
    b.append({ s: 'second!', l: 2n, d: '2.00' });
    b.append({ s: null, l: null, d: null });
    const second = b.build();
    assert.equal(first.batch.get(0)!.toJSON()['s'], 'first');
    assert.equal(second.batch.get(0)!.toJSON()['s'], 'second!');
    assert.equal(second.batch.get(1)!.toJSON()['s'] ?? null, null);
    assert.deepEqual(finishColumnStats(first.stats[0]!), { fieldId: 1, valueCount: 1, nullCount: 0, min: 'first', max: 'first' });
    assert.deepEqual(finishColumnStats(second.stats[1]!), { fieldId: 2, valueCount: 2, nullCount: 1, min: 2n, max: 2n });
    assert.deepEqual(finishColumnStats(second.stats[2]!), { fieldId: 3, valueCount: 2, nullCount: 1, min: '2.00', max: '2.00' });
  });

  it('a build with no rows gives an empty batch with empty stats', () => {
    const f = [field('s', { kind: 'string' }, 1)];
    const b = new RecordBatchBuilder(f);
    b.append({ s: 'x' });
    b.build();
    const empty = b.build();
    assert.equal(empty.batch.numRows, 0);
    assert.deepEqual(finishColumnStats(empty.stats[0]!), { fieldId: 1, valueCount: 0, nullCount: 0 });
  });

  it('names the column and the row of a non-canonical value', () => {
    const f = [field('a', { kind: 'int' }, 1), field('l', { kind: 'long' }, 2)];
    const b = new RecordBatchBuilder(f);
    b.append({ a: 1, l: 1n });
    b.append({ a: 2, l: 2n });
    assert.throws(
      () => b.append({ a: 3, l: 2n ** 64n }),
      (e: unknown) => code(e) === 'INTERNAL' && (e as { context: { column: string; row: number } }).context.column === 'l' && (e as { context: { row: number } }).context.row === 2,
    );
  });
});
