import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import { compareCursor, CursorTracker, cursorFromString, cursorToString, MAX_TIE_KEYS } from '../../../lib/records/cursor.js';
import type { CursorState, FieldKind, Row } from '../../../lib/types.js';

const T0 = 1_700_000_000_000_000n; // µs
const SEC = 1_000_000n;

interface Run {
  written: Row[];
  state: CursorState | undefined;
  tracker: CursorTracker;
}

/**
 * One simulated incremental run: the source returns rows with cursor >=
 * saved (when `sourceFilters`) in pages of `page` rows, unsorted within the
 * tie; the tracker sees every page.
 */
function run(
  table: Row[],
  opts: { field?: string; kind?: FieldKind; primaryKey?: string[]; saved?: CursorState; cap?: unknown; sourceFilters?: boolean; page?: number; maxTieKeys?: number },
): Run {
  const field = opts.field ?? 'updated_at';
  const kind = opts.kind ?? 'timestamp';
  const tracker = new CursorTracker({ field, kind, primaryKey: opts.primaryKey ?? ['id'], saved: opts.saved, cap: opts.cap, maxTieKeys: opts.maxTieKeys ?? 10_000 });
  const from = opts.saved === undefined ? undefined : cursorFromString(kind, opts.saved.value);
  const after = opts.saved?.upper === 'inclusive';
  const visible = table.filter(
    (r) => from === undefined || opts.sourceFilters === false || r[field] === null || compareCursor(kind, r[field], from) >= (after ? 1 : 0),
  );
  const written: Row[] = [];
  const page = opts.page ?? 97;
  for (let i = 0; i < visible.length; i += page) {
    for (const row of visible.slice(i, i + page)) if (tracker.accept(row)) written.push(row);
  }
  return { written, state: tracker.result(), tracker };
}

function ids(rows: Row[]): number[] {
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

describe('CursorTracker', () => {
  it('keeps at most MAX_TIE_KEYS (1,000) tie keys by default', () => {
    assert.equal(MAX_TIE_KEYS, 1000);
    const table: Row[] = [];
    for (let i = 0; i < 1000; i++) table.push({ id: i, updated_at: T0 });
    const tracker = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'] });
    for (const r of table) tracker.accept(r);
    assert.equal(tracker.result()?.written.length, 1000, '1,000 ties: exact keys');
    tracker.accept({ id: 1000, updated_at: T0 });
    assert.deepEqual(tracker.result(), { field: 'updated_at', value: cursorToString('timestamp', T0), written: [], overflow: 1001 });
  });

  it('past the limit, a timestamp value older than the cap is settled: no keys, the next run reads after it', () => {
    const table: Row[] = [];
    for (let i = 0; i < 50_000; i++) table.push({ id: i, updated_at: T0 });
    const first = run(table, { cap: T0 + 60n * SEC, maxTieKeys: 1000 });
    assert.equal(first.written.length, 50_000);
    assert.deepEqual(first.state, { field: 'updated_at', value: cursorToString('timestamp', T0), written: [], upper: 'inclusive' });
    for (let i = 50_000; i < 50_010; i++) table.push({ id: i, updated_at: T0 + SEC });
    for (const sourceFilters of [true, false]) {
      const second = run(table, { saved: first.state, cap: T0 + 120n * SEC, maxTieKeys: 1000, sourceFilters });
      assert.deepEqual(ids(second.written), Array.from({ length: 10 }, (_, k) => 50_000 + k));
      assert.equal(second.state?.written.length, 10);
    }
  });

  it('past the limit with nothing to settle at (no cap, or ties above it): overflow, the rows at the value are written again, never lost', () => {
    const table: Row[] = [];
    for (let i = 0; i < 5000; i++) table.push({ id: i, updated_at: T0 });
    for (const cap of [undefined, T0 - SEC]) {
      const first = run(table, { cap, maxTieKeys: 1000 });
      const value = cursorToString('timestamp', cap === undefined ? T0 : (cap as bigint));
      assert.deepEqual(first.state, { field: 'updated_at', value, written: [], overflow: 5000 });
      const second = run([...table, { id: 9999, updated_at: T0 }], { saved: first.state, cap, maxTieKeys: 1000 });
      assert.equal(second.written.length, 5001, 'the new tie row is written, the old ones again');
    }
  });

  it('a record validate rejected moves the cursor: the next run drops it before the reject file', () => {
    const keyFields = [
      { name: 'id', type: { kind: 'long' as const }, typeName: 'long', required: true, fieldId: 1 },
      { name: 'updated_at', type: { kind: 'timestamp' as const }, typeName: 'timestamp', required: false, fieldId: 2 },
    ];
    const at = '2024-05-05T05:05:05.000000Z';
    const t1 = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'], keyFields });
    assert.equal(t1.accept({ id: 1n, updated_at: cursorFromString('timestamp', at) }), true);
    // The raw record, as the source gave it (validate refused another column of it).
    assert.equal(t1.acceptRejected({ id: '2', updated_at: at, amount: 'not a number' }), true);
    const state = t1.result()!;
    assert.equal(state.value, at);
    assert.equal(state.written.length, 2, 'the rejected row is remembered at the tie like a written one');
    const t2 = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'], keyFields, saved: state });
    assert.equal(t2.acceptRejected({ id: '2', updated_at: at, amount: 'not a number' }), false, 'not rejected again');
    assert.equal(t2.droppedRejects, 1);
    assert.equal(t2.acceptRejected({ id: '3', updated_at: at, amount: 'bad' }), true, 'a new bad row at the tie is rejected');
    assert.equal(t2.acceptRejected({ id: '4', updated_at: 'garbage' }), true, 'a row whose cursor is invalid cannot be placed: rejected');
  });

  it('a reported window is the state: no tie keys; the tie keys of an old state still drop their rows once', () => {
    const legacy: CursorState = { field: 'updated_at', value: cursorToString('timestamp', T0), written: [`${cursorToString('timestamp', T0)}\u0000[1]`] };
    const t = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'], saved: legacy });
    const to = cursorToString('timestamp', T0 + 60n * SEC);
    t.window({ field: 'updated_at', from: legacy.value, fromInclusive: true, to, upper: 'exclusive', basis: 'test', below: 7 });
    assert.equal(t.accept({ id: 1, updated_at: T0 }), false, 'written by the earlier version');
    assert.equal(t.accept({ id: 2, updated_at: T0 }), true);
    assert.deepEqual(t.result(), { field: 'updated_at', value: to, written: [], upper: 'exclusive', below: 7 });
    // An empty window keeps the saved state.
    const e = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'], saved: legacy });
    e.window({ field: 'updated_at', from: legacy.value, upper: 'exclusive', basis: 'test' });
    assert.deepEqual(e.result(), legacy);
    assert.throws(() => t.window({ field: 'updated_at', upper: 'exclusive', basis: 'late' }), { code: 'INTERNAL' });
  });

  it('writes thousands of rows sharing one cursor value exactly once across two runs (late rows at the tie)', () => {
    const table: Row[] = [];
    for (let i = 0; i < 500; i++) table.push({ id: i, updated_at: T0 - BigInt(i + 1) * SEC });
    for (let i = 500; i < 3500; i++) table.push({ id: i, updated_at: T0 });
    const first = run(table, {});
    assert.equal(first.written.length, 3500);
    assert.equal(first.state?.value, cursorToString('timestamp', T0));
    assert.equal(first.state?.written.length, 3000);

    // Rows committed late at the tie, plus newer rows, appear before run 2.
    for (let i = 3500; i < 5000; i++) table.push({ id: i, updated_at: T0 });
    for (let i = 5000; i < 5100; i++) table.push({ id: i, updated_at: T0 + SEC });
    for (const sourceFilters of [true, false]) {
      const second = run(table, { saved: first.state, sourceFilters, page: 13 });
      assert.deepEqual(ids(second.written), Array.from({ length: 1600 }, (_, k) => 3500 + k));
      assert.deepEqual(ids([...first.written, ...second.written]), Array.from({ length: 5100 }, (_, k) => k));
      assert.equal(second.tracker.dropped, sourceFilters ? 3000 : 3500);
      assert.equal(second.state?.value, cursorToString('timestamp', T0 + SEC));
      assert.equal(second.state?.written.length, 100);
      // A third run over the same table writes nothing and keeps the state.
      const third = run(table, { saved: second.state, sourceFilters });
      assert.equal(third.written.length, 0);
      assert.deepEqual(third.state, second.state);
    }
  });

  it('carries saved tie identities forward while the cursor stays at the tie', () => {
    const table: Row[] = [{ id: 1, updated_at: T0 }];
    const first = run(table, {});
    table.push({ id: 2, updated_at: T0 });
    const second = run(table, { saved: first.state });
    assert.deepEqual(ids(second.written), [2]);
    assert.equal(second.state?.written.length, 2);
    table.push({ id: 3, updated_at: T0 });
    const third = run(table, { saved: second.state });
    assert.deepEqual(ids(third.written), [3]);
  });

  it('keeps an updated row: same key, newer cursor is a new identity', () => {
    const table: Row[] = [
      { id: 1, v: 'a', updated_at: T0 },
      { id: 2, v: 'b', updated_at: T0 },
    ];
    const first = run(table, {});
    table[0] = { id: 1, v: 'a2', updated_at: T0 + SEC };
    const second = run(table, { saved: first.state });
    assert.deepEqual(second.written, [{ id: 1, v: 'a2', updated_at: T0 + SEC }]);
    assert.equal(second.tracker.dropped, 1);
  });

  it('caps the cursor: rows after the cap are written, remembered, re-read next run and dropped', () => {
    const cap = T0 + 10n * SEC;
    const table: Row[] = [];
    for (let s = 0; s < 20; s++) table.push({ id: s, updated_at: T0 + BigInt(s) * SEC });
    const first = run(table, { cap });
    assert.equal(first.written.length, 20);
    assert.equal(first.state?.value, cursorToString('timestamp', cap));
    assert.equal(first.state?.written.length, 10); // ids 10..19, cursor >= cap
    table.push({ id: 21, updated_at: T0 + 12n * SEC }); // committed late, inside the lag window
    const second = run(table, { saved: first.state, cap: T0 + 100n * SEC });
    assert.deepEqual(ids(second.written), [21]);
    assert.equal(second.tracker.dropped, 10);
    // Re-read rows known as written advance the cursor too, which keeps `written` short.
    assert.equal(second.state?.value, cursorToString('timestamp', T0 + 19n * SEC));
    assert.deepEqual(second.state?.written, [`${cursorToString('timestamp', T0 + 19n * SEC)}\u0000[19]`]);
  });

  it('never moves the cursor backwards when the cap is below the saved value', () => {
    const first = run([{ id: 1, updated_at: T0 }], {});
    const second = run([{ id: 1, updated_at: T0 }, { id: 2, updated_at: T0 + SEC }], { saved: first.state, cap: T0 - 60n * SEC });
    assert.deepEqual(ids(second.written), [2]);
    assert.equal(second.state?.value, cursorToString('timestamp', T0));
    assert.equal(second.state?.written.length, 2);
  });

  it('tracks an id cursor (long) with exact bigint comparison', () => {
    const big = 9007199254740993n;
    const table: Row[] = [{ id: big - 1n }, { id: big }];
    const first = run(table, { field: 'id', kind: 'long' });
    assert.deepEqual(first.state, { field: 'id', value: '9007199254740993', written: ['9007199254740993\u0000[9007199254740993]'] });
    table.push({ id: big + 1n }, { id: big + 10n });
    const second = run(table, { field: 'id', kind: 'long', saved: first.state, sourceFilters: false });
    assert.deepEqual(second.written, [{ id: big + 1n }, { id: big + 10n }]);
    assert.equal(second.tracker.dropped, 2);
    assert.equal(second.state?.value, '9007199254741003');
  });

  it('falls back to whole-row identity without a primary key', () => {
    const table: Row[] = [
      { name: 'a', n: 1, updated_at: T0 },
      { name: 'b', n: 2, updated_at: T0 },
    ];
    const first = run(table, { primaryKey: [] });
    assert.equal(first.state?.written.length, 2);
    assert.ok(first.state?.written.every((w) => /^2023-11-14T22:13:20\.000000Z\u0000sha1:[0-9a-f]{40}$/.test(w)));
    table.push({ name: 'a', n: 99, updated_at: T0 }); // same cursor, different content
    const second = run(table, { primaryKey: [] });
    assert.equal(second.written.length, 3);
    const third = run(table, { primaryKey: [], saved: first.state });
    assert.deepEqual(third.written, [{ name: 'a', n: 99, updated_at: T0 }]);
  });

  it('passes rows with a null cursor without moving it, and keeps the saved state when nothing new passed', () => {
    const saved: CursorState = { field: 'updated_at', value: '2024-01-01T00:00:00.000000Z', written: ['2024-01-01T00:00:00.000000Z\u0000[1]'] };
    const r = run(
      [
        { id: 1, updated_at: cursorFromString('timestamp', saved.value) },
        { id: 2, updated_at: null },
      ],
      { saved },
    );
    assert.deepEqual(ids(r.written), [2]);
    assert.equal(r.tracker.nullCursor, 1);
    assert.deepEqual(r.state, saved);
    assert.equal(run([{ id: 1, updated_at: null }], {}).state, undefined);
  });

  it('refuses a saved cursor that does not parse as STATE_CORRUPT', () => {
    for (const saved of [
      { field: 'updated_at', value: 'yesterday', written: [] },
      { field: 'updated_at', value: '2024-01-01T00:00:00Z', written: ['no-separator'] },
    ]) {
      assert.throws(
        () => new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: ['id'], saved }),
        (e) => isDativoError(e) && e.code === 'STATE_CORRUPT',
      );
    }
    assert.throws(() => new CursorTracker({ field: 'b', kind: 'boolean', primaryKey: [] }), (e) => isDativoError(e) && e.code === 'CONFIG_INVALID');
  });

  it('refuses a saved cursor of another column, and raw (uncoerced) cursor values', () => {
    assert.throws(
      () => new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: [], saved: { field: 'created_at', value: '2024-01-01', written: [] } }),
      (e) => isDativoError(e) && e.code === 'CONFIG_INVALID',
    );
    const t = new CursorTracker({ field: 'updated_at', kind: 'timestamp', primaryKey: [] });
    assert.throws(() => t.accept({ updated_at: '2024-01-01T00:00:00Z' }), (e) => isDativoError(e) && e.code === 'INTERNAL');
  });
});

describe('cursor text', () => {
  it('round-trips canonical values of every cursor kind', () => {
    const cases: [FieldKind, unknown, string][] = [
      ['timestamp', 1_704_067_200_123_456n, '2024-01-01T00:00:00.123456Z'],
      ['timestamp', -1n, '1969-12-31T23:59:59.999999Z'],
      ['timestamp', -62135596800000000n, '0001-01-01T00:00:00.000000Z'],
      ['long', -12345678901234567890n, '-12345678901234567890'],
      ['int', 42, '42'],
      ['date', 19782, '2024-02-29'],
      ['string', 'abc', 'abc'],
      ['decimal', '12.50', '12.50'],
      ['double', 0.1, '0.1'],
    ];
    for (const [kind, value, text] of cases) {
      assert.equal(cursorToString(kind, value), text, kind);
      assert.deepEqual(cursorFromString(kind, text), value, kind);
    }
  });
  it('compares values, not texts', () => {
    assert.ok(compareCursor('long', 9n, 10n) < 0);
    assert.ok(compareCursor('decimal', '9.5', '10.00') < 0);
    assert.equal(compareCursor('decimal', '1.50', '1.5'), 0);
    assert.ok(compareCursor('decimal', '-2', '-1.5') < 0);
    assert.ok(compareCursor('timestamp', 2n ** 60n, 2n ** 60n + 1n) < 0);
    assert.ok(compareCursor('string', '\uffff', '\u{1F600}') < 0); // code-point order, not UTF-16
  });
});
