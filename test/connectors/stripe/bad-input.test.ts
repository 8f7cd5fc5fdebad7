/**
 * Bad input for the Stripe source, through the `dativo` CLI as a user runs
 * it, against the Stripe-like fake: a revoked key, an unknown object, a
 * response missing required fields, a page cursor that repeats, a 429 that
 * never ends. Exit codes as DESIGN.md says; the key never printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { dativo, snapshot } from '../../lib/cli/helpers.js';
import { assertAuthFailed, assertBadOptions, assertMissingFieldsRejected, assertUnchanged, assertUnknownObject } from '../api-helpers.js';
import { stripeProject, TEST_KEY, type StripeProject } from './helpers.js';

describe('stripe: bad input', () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake();
    fake.seed('customers', 250, { perSecond: 9 });
    p = await stripeProject(fake, 'stripe-bad');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  const run = (args: string[] = ['run', 'job.yaml']) => dativo(args, { cwd: p.dir });

  it('a revoked key: exit 3 naming connector, object and the key setting, never the key', async () => {
    const key = 'sk_test_revoked_9876543210';
    fake.keys.add(key);
    fake.revoked.add(key);
    await p.job({ key });
    assertAuthFailed(await run(), { what: 'stripe customers', key: 'source.connection.api_key', secret: key, secretTail: 'revoked_9876543210' });
  });

  it('an unknown object: exit 3 at validate time, listing the valid ones, nothing read (run too)', async () => {
    await p.job({ object: 'customerz' });
    const valid = /source\.objects\[0\]: unknown Stripe object "customerz"; valid objects: balance_transactions, charges, customers, invoices, payment_intents, prices, products, refunds, subscriptions/;
    await assertUnknownObject(run, valid, () => fake.requests.length);
  });

  it('bad connection options: every problem with its key at validate time, exit 3, the key never printed', async () => {
    await p.job({ connection: ['account: not-an-account', 'api_version: latest', 'timeout_seconds: -1'] });
    await assertBadOptions(run, ['source.connection.account', 'source.connection.api_version', 'source.connection.timeout_seconds'], TEST_KEY);
    await p.job();
    const ok = await run(['validate', 'job.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('a response missing a required field: strict stops with the object id (exit 3), warn rejects it and lands the rest', async () => {
    const victim = fake.objects('customers')[17]!.id;
    fake.omit('customers', ['created'], [victim]);
    await assertMissingFieldsRejected(p, run, { victim, fields: ['created'], landed: 249 });
    fake.omitted.clear();
  });

  it('a page cursor that repeats: loop detected, exit 2, state and table unchanged', async () => {
    fake.seed('charges', 350);
    fake.loopCursor = true;
    await p.job({ object: 'charges' });
    const snap = await snapshot(p.dir);
    const r = await run();
    fake.loopCursor = false;
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /same page token twice/);
    assert.match(r.stdout + r.stderr, /stripe charges/);
    const after = await snapshot(p.dir);
    assert.equal(after['state.json'], snap['state.json'], 'state unchanged');
    assert.deepEqual(await p.rows('charges'), [], 'nothing committed');
  });

  it('a 429 that never ends: gives up at the policy cap, exit 2, state and table unchanged', async () => {
    fake.create('customers');
    const snap = await snapshot(p.dir);
    fake.fail({ status: 429, times: Number.POSITIVE_INFINITY, headers: { 'retry-after': '0', 'stripe-should-retry': 'false' } });
    await p.job({ extra: ['retry_config: {max_retries: 3, initial_delay_seconds: 0.02, max_delay_seconds: 0.05}'] });
    const before = fake.requests.length;
    const r = await run();
    fake.clearFaults();
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout + r.stderr, /RATE_LIMITED/);
    assert.equal(fake.requests.length - before, 4, 'max_retries 3: four attempts, retried although Stripe-Should-Retry said false');
    await assertUnchanged(p.dir, snap, (f) => f.startsWith('wh/') || f === 'state.json');
    assert.ok(!(r.stdout + r.stderr).includes(TEST_KEY));
  });
});
