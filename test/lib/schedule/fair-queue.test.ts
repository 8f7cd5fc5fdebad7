import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairQueue } from '../../../lib/schedule/fair-queue.js';

const item = (tenant: string, n: number) => ({ tenant, n });

describe('FairQueue', () => {
  it("a tenant with a thousand queued runs does not delay another tenant's next run", () => {
    const q = new FairQueue<{ tenant: string; n: number }>(1, 1);
    for (let i = 0; i < 1000; i++) q.push(item('big', i));
    q.push(item('small', 0));
    const first = q.take()!;
    assert.equal(first.tenant, 'big');
    assert.equal(q.take(), undefined); // global cap 1
    q.done(first);
    assert.deepEqual(q.take(), item('small', 0));
  });

  it('serves tenants round-robin under the per-tenant and global caps', () => {
    const q = new FairQueue<{ tenant: string; n: number }>(2, 5);
    for (let i = 0; i < 4; i++) for (const t of ['a', 'b', 'c']) q.push(item(t, i));
    const started = q.takeAll();
    assert.deepEqual(started.map((x) => `${x.tenant}${x.n}`), ['a0', 'b0', 'c0', 'a1', 'b1']);
    assert.equal(q.running, 5);
    assert.equal(q.runningOf('a'), 2);
    q.done(started[0]!); // a0 ended: c may take the freed slot before a runs again
    assert.deepEqual(q.takeAll().map((x) => `${x.tenant}${x.n}`), ['c1']);
    q.done(started[1]!);
    assert.deepEqual(q.takeAll().map((x) => `${x.tenant}${x.n}`), ['a2']);
    assert.equal(q.size, 12 - 7);
  });

  it('drain empties the queue and leaves running counts alone', () => {
    const q = new FairQueue<{ tenant: string; n: number }>(1, 4);
    q.push(item('a', 0));
    q.push(item('a', 1));
    assert.equal(q.take()?.n, 0);
    assert.deepEqual(q.drain(), [item('a', 1)]);
    assert.equal(q.size, 0);
    assert.equal(q.running, 1);
  });
});
