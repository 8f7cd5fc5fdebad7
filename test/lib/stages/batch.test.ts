import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { batch, BatchAccumulator, estimateRowBytes } from '../../../lib/stages/batch.js';
import type { Row } from '../../../lib/types.js';

describe('estimateRowBytes', () => {
  it('counts string length, 8 per number or bigint, byteLength of bytes, 1 per null', () => {
    assert.equal(estimateRowBytes({ s: 'abcd', n: 1, b: 2n, t: true, z: null, u: new Uint8Array(100) }), 4 + 8 + 8 + 1 + 1 + 100);
    assert.equal(estimateRowBytes({}), 0);
  });
});

describe('BatchAccumulator', () => {
  it('emits a batch when the row bound is reached, and the rest on flush', () => {
    const acc = new BatchAccumulator({ maxRows: 3 });
    const out: Row[][] = [];
    for (let i = 0; i < 7; i++) {
      const b = acc.add({ i });
      if (b) out.push(b);
    }
    const rest = acc.flush();
    if (rest) out.push(rest);
    assert.deepEqual(out.map((b) => b.map((r) => r.i)), [[0, 1, 2], [3, 4, 5], [6]]);
    assert.equal(acc.flush(), undefined);
  });
  it('emits a batch when the byte bound is reached, a huge row alone', () => {
    const acc = new BatchAccumulator({ maxRows: 1000, maxBytes: 100 });
    assert.equal(acc.add({ s: 'x'.repeat(60) }), undefined);
    assert.equal(acc.bytes, 60);
    assert.equal(acc.add({ s: 'y'.repeat(40) })?.length, 2);
    assert.equal(acc.add({ s: 'z'.repeat(500) })?.length, 1);
    assert.equal(acc.rows, 0);
  });
  it('defaults to 10,000 rows and 16 MiB', () => {
    const acc = new BatchAccumulator();
    assert.equal(acc.maxRows, 10_000);
    assert.equal(acc.maxBytes, 16 * 1024 * 1024);
  });
});

describe('batch stage', () => {
  it('passes every row once, in order, in bounded batches', async () => {
    const batches: Row[][] = [];
    const rows = Array.from({ length: 2500 }, (_, i) => ({ i }));
    await pipeline(
      Readable.from(rows),
      batch({ maxRows: 1000 }),
      new Writable({ objectMode: true, write: (b: Row[], _e, cb) => (batches.push(b), cb()) }),
    );
    assert.deepEqual(batches.map((b) => b.length), [1000, 1000, 500]);
    assert.deepEqual(batches.flat(), rows);
  });

  it('does not read ahead while the consumer is slow', async () => {
    const total = 100_000;
    let produced = 0;
    const source = new Readable({
      objectMode: true,
      read() {
        if (produced >= total) this.push(null);
        else this.push({ i: produced++ });
      },
    });
    let producedDuringPause = -1;
    let producedAtPause = -1;
    let seen = 0;
    const consumer = new Writable({
      objectMode: true,
      highWaterMark: 1,
      write(b: Row[], _e, cb) {
        seen += b.length;
        if (producedAtPause < 0) {
          producedAtPause = produced;
          // The consumer stalls on its first batch; the source must stall too.
          void sleep(100).then(() => {
            producedDuringPause = produced - producedAtPause;
            cb();
          });
        } else cb();
      },
    });
    await pipeline(source, batch({ maxRows: 100 }), consumer);
    assert.equal(seen, total);
    // In flight at most: one batch in the consumer's buffer, one waiting in
    // batch, one being filled, plus the row buffers (16 + 16).
    assert.ok(producedAtPause + producedDuringPause <= 4 * 100 + 32, `read ahead ${producedAtPause + producedDuringPause} rows`);
    assert.ok(producedDuringPause <= 300, `produced ${producedDuringPause} rows while the consumer was paused`);
  });
});
