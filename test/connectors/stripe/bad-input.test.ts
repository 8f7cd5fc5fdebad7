/**
 * Bad input for the Stripe source, through the `dativo` CLI as a user runs
 * it, against the Stripe-like fake: a revoked key, an unknown object, a
 * response missing required fields, a page cursor that repeats, a 429 that
 * never ends. Exit codes as DESIGN.md says; the key never printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readFile, readdir } from 'node:fs/promises';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { dativo, snapshot } from '../../lib/cli/helpers.js';
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
    const r = await run();
    assert.equal(r.code, 3, r.stderr);
    const out = r.stdout + r.stderr;
    assert.match(out, /AUTH_FAILED/);
    assert.match(out, /stripe customers/);
    assert.match(out, /source\.connection\.api_key/);
    assert.ok(!out.includes(key), 'the key is never printed');
    assert.ok(!out.includes('revoked_9876543210'), 'not even most of it');
  });

  it('an unknown object: exit 3 at validate time, listing the valid ones, nothing read (run too)', async () => {
    await p.job({ object: 'customerz' });
    const before = fake.requests.length;
    const valid = /source\.objects\[0\]: unknown Stripe object "customerz"; valid objects: balance_transactions, charges, customers, invoices, payment_intents, prices, products, refunds, subscriptions/;
    const v = await run(['validate', 'job.yaml']);
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, valid);
    const r = await run();
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout + r.stderr, valid);
    assert.equal(fake.requests.length, before, 'no request was made');
  });

  it('bad connection options: every problem with its key at validate time, exit 3, the key never printed', async () => {
    await p.job({ connection: ['account: not-an-account', 'api_version: latest', 'timeout_seconds: -1'] });
    const v = await run(['validate', 'job.yaml']);
    assert.equal(v.code, 3, v.stderr);
    for (const k of ['source.connection.account', 'source.connection.api_version', 'source.connection.timeout_seconds']) assert.ok(v.stderr.includes(k), `${k} in ${v.stderr}`);
    assert.ok(!v.stderr.includes(TEST_KEY));
    await p.job();
    const ok = await run(['validate', 'job.yaml']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('a response missing a required field: strict stops with the object id (exit 3), warn rejects it and lands the rest', async () => {
    const victim = fake.objects('customers')[17]!.id;
    fake.omit('customers', ['created'], [victim]);
    const snap = await snapshot(p.p('wh'));
    await p.job({ mode: 'strict' });
    const strict = await run();
    assert.equal(strict.code, 3, strict.stdout + strict.stderr);
    assert.match(strict.stdout + strict.stderr, new RegExp(`VALIDATION_FAILED.*id ${victim}`));
    assert.deepEqual(await snapshot(p.p('wh')), snap, 'strict: nothing landed');

    await p.job({ mode: 'warn' });
    const warn = await run();
    assert.equal(warn.code, 1, warn.stderr);
    const rows = await p.rows();
    assert.equal(rows.length, 249);
    const files = (await readdir(p.p('rejects'), { recursive: true })).filter((f) => f.endsWith('.ndjson') || f.endsWith('.jsonl'));
    assert.equal(files.length, 2, 'one reject file per run');
    for (const f of files) {
      const lines = (await readFile(p.p(`rejects/${f}`), 'utf8')).trim().split('\n');
      assert.equal(lines.length, 1);
      const reject = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal((reject['location'] as Record<string, unknown>)['id'], victim, 'the reject names the object id');
      assert.deepEqual(reject['fields'], ['created']);
    }
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
    const after = await snapshot(p.dir);
    for (const f of Object.keys({ ...after, ...snap })) if (f.startsWith('wh/') || f === 'state.json') assert.equal(after[f], snap[f], `${f} unchanged`);
    assert.ok(!(r.stdout + r.stderr).includes(TEST_KEY));
  });
});
