/**
 * The Stripe source end to end: the real `stripe` SDK against the
 * Stripe-like fake, through runJobFile into an Iceberg table read back with
 * icebird. Thousands of customers sharing `created` seconds across page
 * boundaries, then creates, updates and deletes between runs (Events API),
 * events of other types ignored and counted, past-retention full refresh,
 * Connect accounts, the test-mode budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rateLimits } from '../../../connectors/stripe/index.js';
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/index.js';
import { silentLogger } from '../../../lib/log.js';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { stripeProject, TEST_KEY, type StripeProject } from './helpers.js';

const byId = (rows: Record<string, unknown>[]): Map<string, Record<string, unknown>[]> => {
  const m = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) m.set(r['id'] as string, [...(m.get(r['id'] as string) ?? []), r]);
  return m;
};

describe('stripe: incremental by created, updates and deletions from events', () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake();
    p = await stripeProject(fake);
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('lands every customer once, then new ones, updated versions and deletion rows', async () => {
    // 2,500 customers, 37 per second: equal created values straddle every 100-row page.
    const seeded = fake.seed('customers', 2500, { perSecond: 37 });
    const r1 = await p.run();
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.error ?? r1.summary.objects[0]?.error));
    const o1 = r1.summary.objects[0]!;
    assert.equal(o1.rows_written, 2500);
    assert.equal(o1.api_calls, 25, 'limit=100: 25 pages, not one request more');
    const rows1 = await p.rows();
    assert.equal(rows1.length, 2500);
    assert.equal(byId(rows1).size, 2500, 'no duplicates at equal created values');
    const c0 = rows1.find((r) => r['id'] === seeded[0]!.id)!;
    assert.equal((c0['created'] as Date).getTime(), seeded[0]!.created * 1000, 'created: a timestamp (µs UTC) of the unix seconds');
    assert.equal(c0['_dativo_deleted'], false);
    assert.equal(c0['balance'], 0n);
    assert.deepEqual(JSON.parse(c0['address'] as string), seeded[0]!['address'], 'nested objects as JSON text');
    const window = r1.logs.find((l) => l['event_type'] === 'cursor_window')!;
    assert.equal(window['to'], new Date(fake.now * 1000).toISOString().replace('.000Z', '.000000Z'), "watermark: Stripe's clock (Date header)");

    const state1 = await p.state();
    assert.equal(state1.objects['customers']?.cursor?.field, 'created');
    assert.deepEqual(state1.objects['customers']?.cursor?.written, [], 'no tie keys');
    assert.equal(state1.objects['customers']?.stripe_events?.from, fake.now, 'events cursor beside the created cursor');

    // Between runs: 3 created, 2 updated (one twice), 2 deleted, and events of other types.
    fake.advance(10);
    const fresh = [fake.create('customers'), fake.create('customers'), fake.create('customers')];
    fake.update('customers', seeded[5]!.id, { email: 'first@example.com' });
    fake.advance(1);
    fake.update('customers', seeded[5]!.id, { email: 'second@example.com' });
    fake.update('customers', seeded[1234]!.id, { name: 'Renamed' });
    fake.update('customers', fresh[0]!.id, { name: 'updated right after creation' });
    fake.remove('customers', seeded[7]!.id);
    fake.remove('customers', seeded[2499]!.id);
    fake.otherEvent('coupon.created', { id: 'co_1', object: 'coupon' });
    fake.otherEvent('invoice.paid', { id: 'in_1', object: 'invoice' });
    fake.advance(5);
    const r2 = await p.run();
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.objects[0]?.error));
    assert.equal(r2.summary.objects[0]!.rows_written, 3 + 2 + 2);
    const read = r2.logs.find((l) => l['event_type'] === 'stripe_read')!;
    assert.equal(read['events_ignored'], 2, 'events of objects the job does not sync: ignored, counted');
    assert.deepEqual(read['events_ignored_types'], { 'coupon.created': 1, 'invoice.paid': 1 });
    assert.equal(read['updated'], 2);
    assert.equal(read['deleted'], 2);

    const all = byId(await p.rows());
    assert.equal(all.size, 2503);
    const v5 = all.get(seeded[5]!.id)!;
    assert.equal(v5.length, 2, 'an update lands as a new row version');
    assert.deepEqual(v5.map((r) => r['email']).sort(), ['c6@example.com', 'second@example.com'], 'the newest version of the window');
    const del = all.get(seeded[7]!.id)!;
    assert.deepEqual(del.map((r) => r['_dativo_deleted']).sort(), [false, true]);
    assert.equal(del.find((r) => r['_dativo_deleted'] === true)!['id'], seeded[7]!.id);
    assert.equal(all.get(fresh[0]!.id)!.length, 1, 'created and updated in the same window: one row, its current state');
    assert.equal(all.get(fresh[0]!.id)![0]!['name'], 'updated right after creation');

    // The events call came first and carried both bounds; so did the list.
    const calls = fake.requests.slice(-2);
    assert.equal(calls[0]!.path, '/v1/events');
    assert.equal(calls[1]!.path, '/v1/customers');
    assert.equal(calls[1]!.query.get('created[gte]'), String(state1.objects['customers']!.stripe_events!.from));
    assert.equal(calls[1]!.query.get('created[lt]'), String(fake.now));

    // Nothing new: nothing written, the cursor and the events cursor move on.
    fake.advance(3);
    const r3 = await p.run();
    assert.equal(r3.summary.objects[0]!.rows_written, 0);
    assert.equal((await p.state()).objects['customers']?.stripe_events?.from, fake.now);
  });

  it('an events cursor past the 30-day retention is a logged full refresh that replaces the rows', async () => {
    fake.advance(31 * 86_400);
    fake.remove('customers', fake.objects('customers')[0]!.id);
    const r = await p.run();
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const warn = r.logs.find((l) => l['event_type'] === 'stripe_events_expired');
    assert.ok(warn, 'the full refresh is logged');
    const rows = await p.rows();
    assert.equal(rows.length, fake.objects('customers').length, 'the table holds exactly the live customers');
    assert.equal(byId(rows).size, rows.length);
    assert.ok(rows.every((x) => x['_dativo_deleted'] === false));
  });
});

describe('stripe: parallel created windows inside one budget', () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake({ latencyMs: 40 });
    p = await stripeProject(fake, 'stripe-par');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('parallel_windows: 4 reads every customer once, with requests in flight together, then only the new ones', async () => {
    const seeded = fake.seed('customers', 2000, { perSecond: 41 });
    let inFlight = 0;
    let peak = 0;
    const handle = fake.latencyMs;
    assert.ok(handle > 0);
    const started = fake.requests.length;
    const r1 = await (async () => {
      const t = setInterval(() => {
        // Requests that arrived but are not answered yet (the fake answers after latencyMs).
        const now = performance.now();
        inFlight = fake.requests.slice(started).filter((q) => now - q.at < handle).length;
        peak = Math.max(peak, inFlight);
      }, 5);
      try {
        return await p.run({ source: ['parallel_windows: 4'] });
      } finally {
        clearInterval(t);
      }
    })();
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.objects[0]?.error));
    const rows = await p.rows();
    assert.equal(rows.length, 2000);
    assert.equal(byId(rows).size, 2000, 'each customer once across window and page boundaries');
    assert.ok(peak >= 2, `windows read concurrently (peak ${peak} requests in flight)`);
    const lists = fake.requests.slice(started).filter((q) => q.path === '/v1/customers');
    assert.ok(lists.every((q) => q.query.get('limit') === '100'), 'no separate clock call: every list call is a page');
    assert.equal(lists[0]!.query.get('created[lt]'), null, "the first page goes without the upper bound: its Date header is Stripe's clock");
    const pages = lists.slice(1);
    assert.ok(pages.every((q) => Number(q.query.get('created[lt]')) <= fake.now), 'every later window page is bounded by the watermark');
    assert.ok(new Set(pages.map((q) => q.query.get('created[lt]'))).size >= 4, 'the windows split where the data is');

    fake.advance(20);
    const fresh = [fake.create('customers'), fake.create('customers')];
    fake.update('customers', seeded[10]!.id, { name: 'changed' });
    fake.advance(5);
    const r2 = await p.run({ source: ['parallel_windows: 4'] });
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.objects[0]?.error));
    assert.equal(r2.summary.objects[0]!.rows_written, 3);
    const all = byId(await p.rows());
    assert.equal(all.size, 2002);
    for (const f of fresh) assert.equal(all.get(f.id)!.length, 1);
    assert.equal(all.get(seeded[10]!.id)!.length, 2);
  });
});

describe('stripe: a parallel read destroyed in the middle', () => {
  it('stops its windows and closes its connections', async () => {
    const fake = await startStripeFake({ latencyMs: 20 });
    const p = await stripeProject(fake, 'stripe-destroy');
    try {
      fake.seed('customers', 3000, { perSecond: 50 });
      await p.job({ source: ['parallel_windows: 6'], sync: 'full_refresh' });
      const plan = await loadJob(p.p('job.yaml'), { cwd: p.dir });
      const c = await getConnector('stripe');
      const stream = c.read({ plan, object: plan.source.objects[0]!, state: undefined, fullRefresh: true, runId: 't', runStartedAt: new Date(), signal: new AbortController().signal, log: silentLogger(), rejects: { reject: () => undefined, count: 0 } });
      const it = stream[Symbol.asyncIterator]();
      assert.equal((await it.next()).done, false);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(fake.openConnections() > 0);
      stream.destroy();
      const seen = fake.requests.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(fake.openConnections(), 0, 'connections closed');
      assert.ok(fake.requests.length - seen <= 6, 'no new pages after the destroy (at most those already on their way)');
    } finally {
      await fake.close();
      await p.cleanup();
    }
  });
});

describe('stripe: connection settings', () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake();
    p = await stripeProject(fake, 'stripe-conn');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('sends Stripe-Account for Connect, the pinned API version, bearer auth; no SDK retries', async () => {
    fake.seed('products', 30);
    fake.fail({ status: 500, times: 1 });
    const r = await p.run({ object: 'products', connection: ['account: acct_1Connected'] });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    assert.equal(r.summary.objects[0]!.rows_written, 30);
    assert.equal(r.summary.objects[0]!.api_calls, 2, 'one 500 retried by our policy, counted');
    const last = fake.requests.at(-1)!;
    assert.equal(last.headers['stripe-account'], 'acct_1Connected');
    assert.equal(last.headers['stripe-version'], '2026-10-28.endive');
    assert.equal(last.headers['authorization'], `Bearer ${TEST_KEY}`);
  });

  it('reads balance transactions with money as integer minor units', async () => {
    const [t] = fake.seed('balance_transactions', 3);
    const r = await p.run({ object: 'balance_transactions' });
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.objects[0]?.error));
    const rows = await p.rows('balance_transactions');
    const row = rows.find((x) => x['id'] === t!.id)!;
    assert.equal(row['amount'], BigInt(t!['amount'] as number));
    assert.equal(row['currency'], 'eur');
    assert.equal(JSON.parse(row['fee_details'] as string)[0].amount, 59);
  });

  it('a test-mode key gets the 25 requests/s budget, a live key the recipe 100, keyed by the key', async () => {
    const plan = async (key: string) => {
      await p.job({ key });
      return loadJob(p.p('job.yaml'), { cwd: p.dir });
    };
    const test = rateLimits(await plan(TEST_KEY))!;
    assert.equal(test['requests_per_second'], 25);
    const live = rateLimits(await plan('sk_live_abc123'))!;
    assert.equal(live['requests_per_second'], 100);
    assert.notEqual(test['account'], live['account']);
    assert.ok(!String(live['account']).includes('sk_live'), 'the budget key never holds the API key');
  });
});
