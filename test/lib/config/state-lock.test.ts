/** The `state` and `lock` blocks of a job: file or Postgres, their defaults, every problem named by key, the URL's password a secret. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadJob } from '../../../lib/config/index.js';
import { ORDERS_ASSET, problemsOf, tempTree } from './helpers.js';

const HEAD = `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
source: {files: [a.csv]}
target: {warehouse: ./wh}
`;

test('state: {kind: postgres, url} → a Postgres state, an advisory lock on the same database, the password redacted from logs', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write('job.yaml', `${HEAD}state: {kind: postgres, url: "postgres://app:\${PGPW}@db:5432/ops"}\n`);
    const plan = await loadJob(job, { cwd: t.dir, env: { PGPW: 'p@ss w0rd' } });
    assert.deepEqual(plan.state, { kind: 'postgres', url: 'postgres://app:p@ss w0rd@db:5432/ops', table: 'dativo_state' });
    assert.deepEqual(plan.lock, { kind: 'postgres', url: 'postgres://app:p@ss w0rd@db:5432/ops' });
    assert.ok(plan.secrets.includes('p@ss w0rd'));

    const encoded = await t.write('enc.yaml', `${HEAD}state: {kind: postgres, url: "postgres://app:p%40ss@db/ops", table: ops.dativo_state}\n`);
    const p2 = await loadJob(encoded, { cwd: t.dir, env: {} });
    assert.deepEqual(p2.state, { kind: 'postgres', url: 'postgres://app:p%40ss@db/ops', table: 'ops.dativo_state' });
    assert.ok(p2.secrets.includes('p@ss') && p2.secrets.includes('p%40ss'));
  } finally {
    await t.cleanup();
  }
});

test('defaults: a file state and a file lock beside it; DATIVO_STATE_URL puts every job without a state block in Postgres', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write('job.yaml', HEAD);
    const plan = await loadJob(job, { cwd: t.dir, env: {} });
    assert.deepEqual(plan.state, { kind: 'file', path: path.join(t.dir, '.local/state/acme/job.json') });
    assert.deepEqual(plan.lock, { kind: 'file', path: path.join(t.dir, '.local/state/acme/job.lock') });
    const fromEnv = await loadJob(job, { cwd: t.dir, env: { DATIVO_STATE_URL: 'postgres://db/ops' } });
    assert.deepEqual(fromEnv.state, { kind: 'postgres', url: 'postgres://db/ops', table: 'dativo_state' });
    // A file state with a lock that holds across machines.
    const both = await t.write('both.yaml', `${HEAD}state: {path: st/both.json}\nlock: {kind: postgres, url: "postgres://db/locks"}\n`);
    const p3 = await loadJob(both, { cwd: t.dir, env: {} });
    assert.deepEqual(p3.state, { kind: 'file', path: path.join(t.dir, 'st/both.json') });
    assert.deepEqual(p3.lock, { kind: 'postgres', url: 'postgres://db/locks' });
  } finally {
    await t.cleanup();
  }
});

test('every problem of state and lock is listed with its key', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const cases: [string, string[]][] = [
      ['state: {kind: postgres}', ['state.url: is required for kind: postgres']],
      ['state: {kind: postgres, url: "mysql://db/x", path: s.json, table: "Bad-Name"}', ['state.table: must be a lower-case SQL name', 'state.url: must be a postgres://', 'state.path: only for kind: file']],
      ['state: {path: s.json, url: "postgres://db/x"}', ['state.url: only for kind: postgres']],
      ['state: {kind: redis}', ['state.kind:']],
      ['lock: {kind: postgres}', ['lock.url: is required when the state is not in Postgres']],
      ['state: {kind: postgres, url: "postgres://db/x"}\nlock: {kind: file}', ['lock.kind: a file lock only holds on one machine']],
      ['lock: {kind: file, url: "postgres://db/x"}', ['lock.url: only for kind: postgres']],
    ];
    for (const [block, expected] of cases) {
      const job = await t.write('job.yaml', `${HEAD}${block}\n`);
      const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
      const lines = problems.map((p) => `${p.key}: ${p.message}`);
      for (const e of expected) assert.ok(lines.some((l) => l.startsWith(e)), `${block}: expected "${e}" among ${JSON.stringify(lines)}`);
    }
  } finally {
    await t.cleanup();
  }
});
