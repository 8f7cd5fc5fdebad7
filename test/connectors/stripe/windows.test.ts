/**
 * Stripe parallel windows (lib/window-pool.ts): the same customers exactly
 * once read in 1 or 4 windows, with many equal `created` seconds across
 * page and window boundaries; a window that fails leaves the rows read
 * committed, the cursor at the contiguous prefix and the windows left in
 * state, and the next run lands the rest exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { stripeProject, type StripeProject } from './helpers.js';

const ids = (rows: Record<string, unknown>[]): string[] => rows.map((r) => r['id'] as string);
const secondsOf = (v: unknown): number => Math.floor((v as Date).getTime() / 1000);

describe('stripe: parallel windows, rows exactly once', { concurrency: 1 }, () => {
  let fake: StripeFake;
  let one: StripeProject;
  let four: StripeProject;
  before(async () => {
    fake = await startStripeFake({ latencyMs: 15 });
    one = await stripeProject(fake, 'stripe-w1');
    four = await stripeProject(fake, 'stripe-w4');
  });
  after(async () => {
    await fake.close();
    await one.cleanup();
    await four.cleanup();
  });

  it('parallel_windows 1 and 4 land the same customers once each, then the same new ones', async () => {
    // 53 per second: every page of 100 ends inside a second, every split too.
    const seeded = fake.seed('customers', 4000, { perSecond: 53 });
    const r1 = await one.run({ source: ['parallel_windows: 1'] });
    const r4 = await four.run({ source: ['parallel_windows: 4'] });
    for (const r of [r1, r4]) assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const a = ids(await one.rows());
    const b = ids(await four.rows());
    assert.equal(a.length, 4000);
    assert.equal(b.length, 4000, 'four windows: no customer twice, none missing');
    assert.equal(new Set(b).size, 4000);
    assert.deepEqual([...b].sort(), [...a].sort());
    assert.deepEqual([...a].sort(), seeded.map((s) => s.id).sort());
    const split = r4.logs.find((l) => l['event_type'] === 'stripe_read');
    assert.ok(split, 'read logged');

    fake.advance(30);
    const fresh = Array.from({ length: 150 }, () => fake.create('customers'));
    fake.advance(5);
    const s1 = await one.run({ source: ['parallel_windows: 1'] });
    const s4 = await four.run({ source: ['parallel_windows: 4'] });
    assert.equal(s1.summary.objects[0]!.rows_written, 150);
    assert.equal(s4.summary.objects[0]!.rows_written, 150, 'the second run reads only the new customers');
    const all = ids(await four.rows());
    assert.equal(all.length, 4150);
    assert.equal(new Set(all).size, 4150);
    for (const f of fresh) assert.ok(all.includes(f.id));
    const st = await four.state();
    assert.equal(st.objects['customers']?.stripe_list, undefined, 'nothing left over after a complete read');
  });
});

describe('stripe: windows split while their page is in flight', { concurrency: 1 }, () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake({ latencyMs: 40 });
    p = await stripeProject(fake, 'stripe-wtail');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('8 windows: the tail splits windows in flight (their pages cut at the split), each customer once', async () => {
    // 7 per second: a page spans about 14 s, so the pages in flight overlap the parts split off below them.
    const seeded = fake.seed('customers', 3000, { perSecond: 7 });
    const r = await p.run({ source: ['parallel_windows: 8'] });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const got = ids(await p.rows());
    assert.equal(got.length, 3000);
    assert.equal(new Set(got).size, 3000, 'no customer twice');
    assert.deepEqual([...got].sort(), seeded.map((s) => s.id).sort());
    const w = r.logs.find((l) => l['event_type'] === 'stripe_windows');
    assert.ok(w, 'windows logged');
    assert.ok(Number(w['windows_split_in_flight']) > 0, `windows split in flight: ${JSON.stringify(w)}`);
    const lists = fake.requests.filter((q) => q.path === '/v1/customers');
    assert.equal(lists[0]!.query.get('created[lt]'), null, 'the first page reads the clock');
    assert.ok(lists.slice(1).every((q) => Number(q.query.get('created[lt]')) <= fake.now));
  });
});

describe('stripe: a window that fails', { concurrency: 1 }, () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake({ latencyMs: 10 });
    p = await stripeProject(fake, 'stripe-wfail');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('commits what was read with the cursor at the contiguous prefix; the rerun lands the rest exactly once', async () => {
    const old = fake.seed('customers', 500, { perSecond: 37 });
    const r0 = await p.run({ source: ['parallel_windows: 4'] });
    assert.equal(r0.summary.exit_code, 0, JSON.stringify(r0.summary.objects[0]?.error));
    const w1 = fake.now;
    fake.advance(200);
    const fresh = fake.seed('customers', 3000, { perSecond: 37, startAt: w1 + 10 });
    fake.advance(100);
    const seeded = [...old, ...fresh];
    // A poisoned customer: every list page that would hold it fails (500, no retries left).
    const poison = fresh[1700]!;
    const listed = [...seeded].reverse(); // newest first (later-created first among equal seconds), as the fake lists
    const reaches = (q: { path: string; query: URLSearchParams }): boolean => {
      if (q.path !== '/v1/customers' || q.query.get('limit') !== '100') return false;
      const gte = Number(q.query.get('created[gte]') ?? 0);
      const lt = Number(q.query.get('created[lt]') ?? Number.POSITIVE_INFINITY);
      let page = listed.filter((s) => s.created >= gte && s.created < lt);
      const after = q.query.get('starting_after');
      if (after !== null) page = page.slice(page.findIndex((s) => s.id === after) + 1);
      return page.slice(0, 100).includes(poison);
    };
    fake.fail({ status: 500, times: Number.POSITIVE_INFINITY, match: reaches });
    const r1 = await p.run({ source: ['parallel_windows: 4'], extra: ['retry_config: {max_retries: 0}'] });
    fake.clearFaults();
    assert.equal(r1.summary.exit_code, 2, 'a 500 without retries left: retryable');
    const o1 = r1.summary.objects[0]!;
    assert.ok(o1.rows_written > 0 && o1.rows_written < 3000, `the rows read before the failure are committed (${o1.rows_written})`);
    assert.ok(r1.logs.some((l) => l['event_type'] === 'object_incomplete'));
    const rows1 = await p.rows();
    assert.equal(rows1.length, 500 + o1.rows_written);
    assert.equal(new Set(ids(rows1)).size, rows1.length, 'no customer twice');

    const st = (await p.state()).objects['customers']!;
    const left = st.stripe_list!;
    assert.ok(left.windows.length > 0, 'the windows left are saved');
    assert.equal(left.to, fake.now, 'below the watermark of the stopped run');
    const cursor = st.cursor!;
    assert.equal(cursor.upper, 'exclusive');
    const prefix = Math.floor(Date.parse(cursor.value) / 1000);
    assert.ok(prefix >= w1 && prefix <= poison.created, `the cursor is at the end of the contiguous prefix (${prefix}), not the watermark`);
    assert.equal(Math.min(...left.windows.map((w) => w.a)), prefix, 'the oldest window left starts where the cursor is');
    assert.ok(left.windows.some((w) => poison.created >= w.a && poison.created < w.b), 'the failed window is left');
    const landed = new Set(ids(rows1));
    const inLeft = (c: number): boolean => left.windows.some((w) => c >= w.a && c < w.b);
    for (const s of seeded) assert.equal(landed.has(s.id), !inLeft(s.created), `${s.id} at ${s.created}: landed exactly when outside the windows left`);

    // Meanwhile: new customers, and an update of one created inside a window left.
    fake.advance(20);
    const newest = fake.create('customers');
    const renamed = seeded.find((s) => inLeft(s.created))!;
    fake.update('customers', renamed.id, { name: 'renamed' });
    fake.advance(5);
    const r2 = await p.run({ source: ['parallel_windows: 4'] });
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.objects[0]?.error));
    const rows2 = await p.rows();
    const all = ids(rows2);
    assert.equal(all.length, 3501, 'every customer exactly once (the update read by the list pass, not twice)');
    assert.equal(new Set(all).size, 3501);
    assert.equal(rows2.find((r) => r['id'] === renamed.id)!['name'], 'renamed');
    assert.ok(all.includes(newest.id));
    const st2 = (await p.state()).objects['customers']!;
    assert.equal(st2.stripe_list, undefined);
    assert.equal(Math.floor(Date.parse(st2.cursor!.value) / 1000), fake.now);
  });
});
