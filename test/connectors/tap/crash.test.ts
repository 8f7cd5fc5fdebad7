/**
 * Exactly once through the commit, with the real CLI killed (SIGKILL):
 * a Singer job of two streams is killed while the tap is streaming, right
 * after the first stream's commit (before its state save), and between the
 * two streams' commits; every rerun ends with each record in the table
 * once. Each stream's run carries its own tap state in its own commit, so
 * a kill between two commits leaves each stream consistent on its own.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { dativo, type Ran } from '../../lib/cli/helpers.js';
import { keys, tableKeys, tapProject, type TapProject } from './helpers.js';

let p: TapProject;
before(async () => {
  p = await tapProject('tap-crash');
});
after(() => p.cleanup());

const all = (c: number, o: number): string[] => [...keys('customers', 1, c), ...keys('orders', 1, o)].sort();

function runCli(name: string, o: { env?: Record<string, string>; killOn?: string } = {}): Promise<Ran> {
  return dativo(['run', `${name}.yaml`, '--json'], { cwd: p.dir, ...(o.env ? { env: o.env } : {}), ...(o.killOn ? { killOnStderr: o.killOn } : {}) });
}

const job = (name: string, extra: Record<string, unknown> = {}): Promise<string> =>
  p.job(name, { protocol: 'singer', config: { streams: { customers: 1500, orders: 1000 }, batch: 250, ...extra }, objects: ['customers', 'orders'] });

test('killed while the tap streams: nothing committed, and the rerun writes every record once', async () => {
  await job('mid', { halfway_marker: 750, delay_ms: 100 });
  const killed = await runCli('mid', { killOn: 'tap halfway' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableKeys(p.dir, 'mid'), [], 'nothing of the killed run is committed');
  const orphaned = (await p.seen()).map((s) => s.dir);

  await job('mid');
  const rerun = await runCli('mid');
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.deepEqual(await tableKeys(p.dir, 'mid'), all(1500, 1000));
  assert.ok(orphaned.every((d) => !existsSync(d)), 'the next run removed the killed run\'s tap folder (the tap config with its secrets)');
});

test('killed after the first stream committed, before its state save: the rerun takes the tap state from the table', async () => {
  await job('after');
  const killed = await runCli('after', { env: { DATIVO_PAUSE_AT: 'before_state_save' }, killOn: 'paused at before_state_save (customers)' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableKeys(p.dir, 'after'), keys('customers', 1, 1500), 'customers committed, orders not yet');

  const rerun = await runCli('after');
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stderr, /state_reconciled/);
  const summary = JSON.parse(rerun.stdout) as { objects: { name: string; rows_written: number }[] };
  assert.deepEqual(summary.objects.map((o) => [o.name, o.rows_written]), [['customers', 0], ['orders', 1000]]);
  assert.deepEqual(await tableKeys(p.dir, 'after'), all(1500, 1000));
});

test('killed between the two streams\' commits: each stream resumes from its own committed state', async () => {
  await job('between');
  const killed = await runCli('between', { env: { DATIVO_PAUSE_AT: 'before_commit', DATIVO_PAUSE_MS: '2000' }, killOn: 'paused at before_commit (orders)' });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableKeys(p.dir, 'between'), keys('customers', 1, 1500));

  // (The pause at customers' commit ends after 2 s; the one at orders' commit is where it dies.)
  // More data meanwhile: customers resumes after its bookmark, orders from the start.
  await p.job('between', { protocol: 'singer', config: { streams: { customers: 1800, orders: 1100 }, batch: 250 }, objects: ['customers', 'orders'] });
  const rerun = await runCli('between');
  assert.equal(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout) as { objects: { name: string; rows_written: number }[] };
  assert.deepEqual(summary.objects.map((o) => [o.name, o.rows_written]), [['customers', 300], ['orders', 1100]]);
  assert.deepEqual(await tableKeys(p.dir, 'between'), all(1800, 1100));
});
