/**
 * `dativo discover` on the Stripe source: the shipped asset of each object
 * (types, required, classification kept), the fields of a sample page the
 * shipped asset does not declare added with guessed types, one `limit=100`
 * call per object through the real SDK against the Stripe-like fake; the
 * asset `--write` writes is one a run lands rows with; a revoked key is
 * AUTH_FAILED (exit 3) naming the object, never the key.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { sampledType } from '../../../connectors/stripe/discover.js';
import { dativo } from '../../lib/cli/helpers.js';
import { startStripeFake, type StripeFake } from '../../fakes/stripe.js';
import { stripeProject, TEST_KEY, type StripeProject } from './helpers.js';

type Column = { name: string; type: string; required?: boolean; classification?: string; description?: string };

describe('stripe discover', () => {
  let fake: StripeFake;
  let p: StripeProject;
  before(async () => {
    fake = await startStripeFake();
    p = await stripeProject(fake, 'stripe-discover');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });

  it('prints the shipped asset of every object plus the sampled fields it lacks', async () => {
    fake.reset();
    fake.seed('customers', 30);
    fake.seed('charges', 3, { events: false });
    const file = await p.job();
    await p.write('job.yaml', (await readFile(file, 'utf8')).replace('objects: [customers]', 'objects: [customers, charges]'));
    const started = fake.requests.length;
    const r = await dativo(['discover', file], { cwd: p.dir });
    assert.equal(r.code, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { name: string; object: string; schema: Column[]; primary_key: string[]; cursor_field?: string });
    assert.deepEqual(docs.map((d) => d.object), ['customers', 'charges']);
    const shipped = (parseAllDocuments(await readFile(p.p('assets/customers.yaml'), 'utf8'))[0]!.toJS() as { schema: Column[] }).schema;
    const customers = docs[0]!;
    for (const col of shipped) {
      const got = customers.schema.find((c) => c.name === col.name);
      assert.ok(got, `shipped column ${col.name}`);
      assert.equal(got.type, col.type, col.name);
      assert.equal(got.required, col.required ?? false, col.name);
      assert.equal(got.classification, col.classification, `${col.name}: classification kept`);
    }
    // The fake's customers carry `discount`, which the shipped asset does not declare.
    const discount = customers.schema.find((c) => c.name === 'discount');
    assert.equal(discount?.type, 'json', 'only nulls in the sample: JSON text');
    assert.match(discount?.description ?? '', /not in the shipped asset/);
    assert.deepEqual(customers.primary_key, ['id']);
    assert.equal(customers.cursor_field, 'created');
    const calls = fake.requests.slice(started);
    assert.deepEqual(calls.map((q) => `${q.path}?limit=${q.query.get('limit')}`), ['/v1/customers?limit=100', '/v1/charges?limit=100'], 'one sample page per object');
  });

  it('--write writes an asset a run then lands the rows with', async () => {
    fake.reset();
    fake.seed('customers', 120, { perSecond: 7 });
    const file = await p.job();
    const text = (await readFile(file, 'utf8')).replace('asset_path: assets/customers.yaml', 'asset_path: discovered/customers.yaml');
    await p.write('job.yaml', text);
    const w = await dativo(['discover', file, '--write'], { cwd: p.dir });
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /wrote .*discovered\/customers\.yaml/);
    const run = await dativo(['run', file, '--json'], { cwd: p.dir });
    assert.equal(run.code, 0, run.stderr);
    const summary = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { objects: { rows_written: number }[] };
    assert.equal(summary.objects[0]!.rows_written, 120);
  });

  it('a revoked key: AUTH_FAILED, exit 3, the object named, never the key', async () => {
    fake.reset();
    const key = 'sk_test_revoked_for_discover_9999';
    fake.keys.add(key);
    fake.revoked.add(key);
    const r = await dativo(['discover', await p.job({ key })], { cwd: p.dir });
    assert.equal(r.code, 3);
    assert.match(r.stderr, /AUTH_FAILED/);
    assert.match(r.stderr, /customers/);
    assert.ok(!r.stderr.includes(key) && !r.stdout.includes(key), 'the key never shows');
    assert.notEqual(TEST_KEY, key);
  });

  it('guesses a sampled type conservatively', () => {
    assert.equal(sampledType([1, 2, null]), 'long');
    assert.equal(sampledType([1, 2.5]), 'double');
    assert.equal(sampledType([true, null]), 'boolean');
    assert.equal(sampledType(['a', null]), 'string');
    assert.equal(sampledType(['a', 1]), 'json');
    assert.equal(sampledType([{ a: 1 }]), 'json');
    assert.equal(sampledType([null, undefined]), 'json');
  });
});
