import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { cursorToString } from '../../../lib/records/cursor.js';
import { batch } from '../../../lib/stages/batch.js';
import { track } from '../../../lib/stages/track.js';
import type { CursorState, Row } from '../../../lib/types.js';

const T = 1_704_067_200_000_000n;

async function runThrough(rows: Row[], saved?: CursorState, maxTieKeys = 5000): Promise<{ written: Row[]; state: CursorState | undefined; dropped: number }> {
  const t = track({ field: 'at', kind: 'timestamp', primaryKey: ['id'], saved, maxTieKeys });
  const written: Row[] = [];
  await pipeline(
    Readable.from(rows),
    t,
    batch({ maxRows: 64 }),
    new Writable({ objectMode: true, write: (b: Row[], _e, cb) => (written.push(...b), cb()) }),
  );
  return { written, state: t.result(), dropped: t.dropped };
}

describe('track stage', () => {
  it('drops rows written by the previous run and saves the cursor of the rest, through batches', async () => {
    const rows: Row[] = [];
    for (let i = 0; i < 2000; i++) rows.push({ id: BigInt(i), at: T });
    const first = await runThrough(rows);
    assert.equal(first.written.length, 2000);
    assert.equal(first.state?.value, cursorToString('timestamp', T));
    for (let i = 2000; i < 2100; i++) rows.push({ id: BigInt(i), at: i % 2 === 0 ? T : T + 1n });
    const second = await runThrough(rows, first.state);
    assert.equal(second.dropped, 2000);
    assert.deepEqual(
      second.written.map((r) => Number(r.id)),
      Array.from({ length: 100 }, (_, k) => 2000 + k),
    );
    assert.equal(second.state?.value, '2024-01-01T00:00:00.000001Z');
    assert.equal(second.state?.written.length, 50);
  });

  it('past the tie-key limit the state stays small and no row is lost (overflow: the rows at the value are written again)', async () => {
    const rows: Row[] = [];
    for (let i = 0; i < 20_000; i++) rows.push({ id: BigInt(i), at: T });
    const first = await runThrough(rows, undefined, 1000);
    assert.equal(first.written.length, 20_000);
    assert.deepEqual(first.state, { field: 'at', value: cursorToString('timestamp', T), written: [], overflow: 20_000 });
    for (let i = 20_000; i < 20_010; i++) rows.push({ id: BigInt(i), at: T });
    const second = await runThrough(rows, first.state, 1000);
    assert.equal(second.written.length, 20_010, 'the new tie rows are written (with the old ones again)');
    assert.ok(JSON.stringify(second.state).length < 200);
  });

  it('fails the stream with STATE_CORRUPT when constructed from a bad saved cursor', () => {
    assert.throws(() => track({ field: 'at', kind: 'timestamp', primaryKey: [], saved: { field: 'at', value: 'x', written: [] } }), /STATE_CORRUPT|not a timestamp/);
  });
});
