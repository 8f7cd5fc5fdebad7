/**
 * pipelines/acme/stripe_charges_refunds.yaml runs as shipped against the
 * Stripe-like fake (its base_url and key from the environment): charges and
 * refunds read together into one Iceberg table, each once, then only what
 * is new, updated or deleted.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJobFile } from '../../../lib/run/file.js';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { repo } from '../../lib/cli/helpers.js';
import { TEST_KEY } from './helpers.js';

describe('pipelines/acme/stripe_charges_refunds.yaml runs as documented', () => {
  let fake: StripeFake;
  let dir: string;
  before(async () => {
    fake = await startStripeFake({ latencyMs: 20 });
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-acme-stripe-'));
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lands charges and refunds in one table, each once, then the changes', async () => {
    const env = { ...process.env, STRIPE_API_KEY: TEST_KEY, STRIPE_BASE_URL: fake.url, DATIVO_WAREHOUSE: path.join(dir, 'wh'), DATIVO_STATE_DIR: path.join(dir, 'state') };
    const job = path.join(repo, 'pipelines/acme/stripe_charges_refunds.yaml');
    const charges = fake.seed('charges', 260, { perSecond: 13 });
    const refunds = fake.seed('refunds', 140, { perSecond: 13 });
    const r1 = await runJobFile(job, { env, cwd: dir });
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.objects.map((o) => o.error)));
    assert.deepEqual(r1.objects.map((o) => [o.name, o.rows_written]), [['charges', 260], ['refunds', 140]]);
    const table = () => readWarehouseTable(path.join(dir, 'wh'), 'acme_payments', 'stripe_payments');
    const rows = await table();
    assert.equal(rows.length, 400);
    assert.equal(new Set(rows.map((r) => r['id'])).size, 400);
    assert.equal(rows.filter((r) => r['object'] === 'refund').length, 140);
    const ch = rows.find((r) => r['id'] === charges[0]!.id)!;
    assert.equal(ch['amount'], BigInt(charges[0]!['amount'] as number), 'money: integer minor units');
    assert.equal(rows.find((r) => r['id'] === refunds[0]!.id)!['charge'], refunds[0]!['charge']);

    fake.advance(60);
    fake.create('charges');
    fake.update('refunds', refunds[3]!.id, { status: 'failed' });
    fake.remove('charges', charges[9]!.id);
    fake.advance(60);
    const r2 = await runJobFile(job, { env, cwd: dir });
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.objects.map((o) => o.error)));
    assert.deepEqual(r2.objects.map((o) => [o.name, o.rows_written]), [['charges', 2], ['refunds', 1]]);
    const after2 = await table();
    assert.equal(after2.length, 403);
    assert.ok(after2.some((r) => r['id'] === charges[9]!.id && r['_dativo_deleted'] === true), 'the deleted charge as a deletion row');
  });
});
