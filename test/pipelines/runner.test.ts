/**
 * pipelines/runner.yaml, the example schedules, loads: every schedule's job
 * validates (the Stripe job with its key set), its settings are the ones the
 * comments promise, and without STRIPE_API_KEY that one schedule is reported
 * and skipped while the others stay.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { loadRunner } from '../../lib/schedule/config.js';
import { retryDelayMs } from '../../lib/schedule/policy.js';

const repo = path.resolve(import.meta.dirname, '../..');
const file = path.join(repo, 'pipelines/runner.yaml');

it('pipelines/runner.yaml loads with every example job', async () => {
  const r = await loadRunner(file, { cwd: repo, env: { STRIPE_API_KEY: 'sk_test_example' } });
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(
    r.schedules.map((s) => [s.name, s.job.tenant, s.enabled]),
    [
      ['demo_orders', 'demo', true],
      ['examples_customers', 'examples', true],
      ['examples_ndjson', 'examples', true],
      ['acme_postgres_orders', 'acme', true],
      ['acme_mysql_orders', 'acme', false],
      ['acme_stripe_customers', 'acme', true],
    ],
  );
  assert.equal(r.concurrencyPerTenant, 1);
  assert.equal(r.maxConcurrentRuns, 4);
  assert.equal(r.runLog?.path, path.join(repo, '.local/runs/runs.ndjson'));
  const by = new Map(r.schedules.map((s) => [s.name, s]));
  assert.deepEqual([1, 2, 3, 6].map((n) => retryDelayMs(by.get('demo_orders')!.retry, n)), [30_000, 60_000, 120_000, 600_000]);
  assert.deepEqual(by.get('acme_postgres_orders')!.trigger, { kind: 'cron', cron: '*/10 7-19 * * 1-5', timezone: 'Europe/Berlin' });
  assert.equal(by.get('acme_postgres_orders')!.timeoutSeconds, 1800);
  assert.deepEqual(by.get('examples_ndjson')!.retry, { maxRetries: 1, delaySeconds: 30, backoffFactor: 2, maxDelaySeconds: 600, retryOnPartial: true });
  assert.deepEqual(by.get('acme_stripe_customers')!.retry, { maxRetries: 5, delaySeconds: 60, backoffFactor: 2, maxDelaySeconds: 1800, retryOnPartial: false });
});

it('without STRIPE_API_KEY the Stripe schedule is reported and skipped, the others stay', async () => {
  const r = await loadRunner(file, { cwd: repo, env: {} });
  assert.deepEqual(r.skipped.map((s) => [s.name, s.code, s.at]), [['acme_stripe_customers', 'CONFIG_INVALID', 'schedules[5]']]);
  const p = r.skipped[0]!.problems[0]!;
  assert.equal(p.file, path.join(repo, 'pipelines/acme/stripe_customers.yaml'));
  assert.equal(p.key, 'source.connection.api_key');
  assert.match(p.message, /\$\{STRIPE_API_KEY\} is not set/);
  assert.equal(r.schedules.length, 5);
});
