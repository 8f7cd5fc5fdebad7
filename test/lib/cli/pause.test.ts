/**
 * The crash tests' fault-injection hook `DATIVO_PAUSE_AT` cannot hang a run:
 * the pause lasts `DATIVO_PAUSE_MS` (default 30 s), then the run goes on and
 * finishes as it would have.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { dativo, jsonLine, ordersProject, parquetFiles, type Project } from './helpers.js';

let pr: Project;

before(async () => {
  pr = await ordersProject('pause');
});

after(async () => {
  await pr?.cleanup();
});

it('DATIVO_PAUSE_AT with DATIVO_PAUSE_MS=300: paused, then the run completes, commits and saves its state', async () => {
  const t0 = Date.now();
  const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir, env: { DATIVO_PAUSE_AT: 'before_state_save', DATIVO_PAUSE_MS: '300' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^dativo: paused at before_state_save \(orders\) for 300 ms$/m);
  assert.ok(Date.now() - t0 >= 300);
  assert.equal(jsonLine(r.stdout).objects[0]?.rows_written, 2);
  assert.equal((await parquetFiles(pr.p('wh'))).length, 1);
  await access(pr.p('state/job.json'));
});

it('without DATIVO_PAUSE_MS the pause is bounded too (30 s), not forever', async () => {
  const r = await dativo(['run', 'job.yaml'], { cwd: pr.dir, env: { DATIVO_PAUSE_AT: 'before_state_save' }, killOnStderr: 'paused at before_state_save' });
  assert.match(r.stderr, /^dativo: paused at before_state_save \(orders\) for 30000 ms$/m);
});
