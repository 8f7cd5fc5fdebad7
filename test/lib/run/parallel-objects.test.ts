/**
 * `source.parallel_objects`: the objects of one job read and committed at
 * once through the run's one limiter, against the Stripe-like fake with
 * latency (the real `stripe` SDK), into one Iceberg table of the embedded
 * catalog: requests of different objects in flight together, every row
 * once, every object's commit and state in the table (none lost to the
 * other's commit), a failing object isolated, a full refresh of several
 * objects keeping them all; and the commit step one object at a time.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadJob } from '../../../lib/config/index.js';
import { isDativoError } from '../../../lib/errors.js';
import { RunCheckpoints } from '../../../lib/run/object.js';
import { runJobFile } from '../../../lib/run/file.js';
import type { JobState } from '../../../state/index.js';
import { startStripeFake, type StripeFake, type StripeResourceName } from '../../fakes/stripe.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { project, repo, type Project } from '../cli/helpers.js';

const LATENCY_MS = 40;
const OBJECTS: StripeResourceName[] = ['charges', 'refunds', 'balance_transactions'];

/** Paths of the requests that were in flight at the same time as one of another path (the fake answers `LATENCY_MS` after arrival). */
function overlappingPaths(fake: StripeFake, from: number): Set<string> {
  const reqs = fake.requests.slice(from);
  const out = new Set<string>();
  for (const a of reqs) for (const b of reqs) if (a.path !== b.path && Math.abs(a.at - b.at) < LATENCY_MS) out.add(a.path);
  return out;
}

const ids = (rows: Record<string, unknown>[]): Map<string, number> => {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r['id'] as string, (m.get(r['id'] as string) ?? 0) + 1);
  return m;
};

describe('source.parallel_objects: objects of one job at once, through one limiter', () => {
  let fake: StripeFake;
  let p: Project;
  before(async () => {
    fake = await startStripeFake({ latencyMs: LATENCY_MS });
    p = await project('parallel-objects');
    await p.write('assets/payments.yaml', '');
    await copyFile(path.join(repo, 'schemas/acme/v1.0/stripe_payments.yaml'), p.p('assets/payments.yaml'));
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  beforeEach(async () => {
    fake.reset();
    for (const f of ['wh', 'state.json', 'rejects']) await rm(p.p(f), { recursive: true, force: true });
  });

  const job = (lines: { parallel?: number | string; sync?: 'full_refresh'; objects?: string[] } = {}): Promise<string> =>
    p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        'source_connector: stripe',
        'target_connector: iceberg',
        'asset_path: assets/payments.yaml',
        'source:',
        `  objects: [${(lines.objects ?? OBJECTS).join(', ')}]`,
        ...(lines.parallel !== undefined ? [`  parallel_objects: ${lines.parallel}`] : []),
        ...(lines.sync === 'full_refresh' ? [] : ['  incremental: {strategy: created, cursor_field: created, lag_seconds: 0}']),
        '  connection:',
        '    api_key: sk_test_fake_4242',
        `    base_url: ${fake.url}`,
        ...(lines.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        'target: {warehouse: wh, namespace: stripe, table: payments}',
        'state: {path: state.json}',
        'reject_dir: rejects',
        '',
      ].join('\n'),
    );
  const run = async (lines: Parameters<typeof job>[0] = {}) => runJobFile(await job(lines), { cwd: p.dir });
  const rows = () => readWarehouseTable(p.p('wh'), 'stripe', 'payments');
  const seedAll = () => {
    const seeded = new Map<string, number>();
    // Several pages each, equal created seconds across page boundaries.
    for (const [i, o] of OBJECTS.entries()) for (const s of fake.seed(o, 230 + 40 * i, { perSecond: 23 })) seeded.set(s.id, 0);
    return seeded;
  };

  it('reads three objects together, lands every row once, commits each object with its state', async () => {
    const seeded = seedAll();
    const started = fake.requests.length;
    const r1 = await run({ parallel: 3 });
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.objects.map((o) => o.error)));
    assert.deepEqual(r1.objects.map((o) => o.name), OBJECTS, 'summary in the order listed');
    assert.deepEqual([...overlappingPaths(fake, started)].sort(), OBJECTS.map((o) => `/v1/${o}`).sort(), 'requests of all three objects in flight together');
    const got = ids(await rows());
    assert.equal(got.size, seeded.size);
    assert.ok([...got.values()].every((n) => n === 1), 'every row once');
    const snapshots = new Set(r1.objects.map((o) => o.snapshot_id));
    assert.equal(snapshots.size, 3, 'one commit per object, none lost');
    assert.deepEqual(r1.objects.map((o) => o.api_calls), [3, 3, 4], 'limit=100 pages, nothing more');

    // Every object's state is in the table: without the state file, the next
    // run takes all three from the table and reads only what is new.
    await rm(p.p('state.json'));
    fake.advance(30);
    const fresh = [fake.create('charges'), fake.create('refunds'), fake.create('refunds'), fake.create('balance_transactions')];
    fake.advance(5);
    const r2 = await run({ parallel: 3 });
    assert.equal(r2.exit_code, 0, JSON.stringify(r2.objects.map((o) => o.error)));
    assert.deepEqual(r2.objects.map((o) => o.rows_written), [1, 2, 1]);
    const after2 = ids(await rows());
    assert.equal(after2.size, seeded.size + fresh.length);
    assert.ok([...after2.values()].every((n) => n === 1));
    const state = JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState;
    assert.deepEqual(Object.keys(state.objects).sort(), [...OBJECTS].sort(), 'state saved for every object');
  });

  it('isolates a failing object: the others commit, exit 1, the failed one keeps no state', async () => {
    const seeded = seedAll();
    fake.fail({ path: '/v1/refunds', status: 400, times: Number.POSITIVE_INFINITY, body: { error: { type: 'invalid_request_error', message: 'No such thing' } } });
    const r = await run({ parallel: 3 });
    assert.equal(r.exit_code, 1, 'partial');
    assert.equal(r.objects.find((o) => o.name === 'refunds')?.error?.code, 'SOURCE_ERROR');
    const ok = r.objects.filter((o) => o.name !== 'refunds');
    assert.ok(ok.every((o) => o.error === undefined && o.snapshot_id !== undefined));
    const landed = await rows();
    assert.equal(landed.length, [...seeded.keys()].filter((id) => !id.startsWith('re_')).length);
    const state = JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState;
    assert.deepEqual(Object.keys(state.objects).sort(), ['balance_transactions', 'charges']);
  });

  it('a full refresh of several objects replaces the table once: every object stays', async () => {
    const seeded = seedAll();
    for (let round = 0; round < 2; round++) {
      const r = await run({ parallel: 2, sync: 'full_refresh' });
      assert.equal(r.exit_code, 0, JSON.stringify(r.objects.map((o) => o.error)));
      const got = ids(await rows());
      assert.equal(got.size, seeded.size, `round ${round}: rows of every object`);
      assert.ok([...got.values()].every((n) => n === 1), `round ${round}: each once (the old rows replaced)`);
    }
  });

  it('reads one object after the other by default', async () => {
    seedAll();
    const started = fake.requests.length;
    const r = await run();
    assert.equal(r.exit_code, 0);
    assert.equal(overlappingPaths(fake, started).size, 0, 'no two objects in flight together');
  });

  it('rejects a parallel_objects that is not an integer in 1..16 (exit 3, the key named)', async () => {
    for (const bad of [0, 17, 1.5, '"many"']) {
      await job({ parallel: bad });
      await assert.rejects(loadJob(p.p('job.yaml'), { cwd: p.dir }), (err: unknown) => {
        assert.ok(isDativoError(err) && err.code === 'CONFIG_INVALID' && err.exitCode === 3);
        assert.ok(err.problems.some((q) => q.key === 'source.parallel_objects'), JSON.stringify(err.problems));
        return true;
      });
    }
  });
});

describe('RunCheckpoints: one commit step at a time', () => {
  it('runs steps in order, never two at once, a failed step not blocking the next', async () => {
    const c = new RunCheckpoints();
    let active = 0;
    let peak = 0;
    const order: number[] = [];
    const step = (i: number, fail = false) => async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5 * (4 - i)));
      order.push(i);
      active--;
      if (fail) throw new Error(`step ${i}`);
      return i;
    };
    const results = await Promise.allSettled([c.serial(step(1)), c.serial(step(2, true)), c.serial(step(3))]);
    assert.equal(peak, 1);
    assert.deepEqual(order, [1, 2, 3]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  });
});
