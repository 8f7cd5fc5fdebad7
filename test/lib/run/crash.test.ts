/**
 * The commit is the checkpoint: a job process killed (SIGKILL) after its files
 * are uploaded but before the commit, or after the commit but before the
 * state save, is rerun and the table ends with exactly the source rows, once.
 */
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { dativo, type Ran } from '../cli/helpers.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-crash-'));
  await mkdir(path.join(dir, 'data'));
  await writeFile(
    path.join(dir, 'asset.yaml'),
    eventsAsset('crash'),
  );
  await writeFile(
    path.join(dir, 'job.yaml'),
    [
      'tenant_id: crash',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: asset.yaml',
      'source:',
      '  files: [{path: "data/*.csv", object: events}]',
      '  incremental: {strategy: file_modified_time}',
      'target:',
      '  warehouse: wh',
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeCsv(name: string, from: number, count: number): Promise<void> {
  await writeEventsCsv(path.join(dir, 'data', name), from, count);
}

/** Run `dativo run job.yaml --json`; with `pauseAt`, SIGKILL it once it reports the pause. */
function runCli(pauseAt?: 'before_commit' | 'before_state_save'): Promise<Ran> {
  return dativo(['run', 'job.yaml', '--json'], {
    cwd: dir,
    ...(pauseAt ? { env: { DATIVO_PAUSE_AT: pauseAt }, killOnStderr: `paused at ${pauseAt}` } : {}),
  });
}

async function tableIds(): Promise<bigint[]> {
  const rows = await readWarehouseTable(path.join(dir, 'wh'), 'crash.crash', 'events');
  return rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(from + i));

test('killed after the upload and before the commit: the rerun writes every row once', async () => {
  await writeCsv('a.csv', 1, 500);
  const killed = await runCli('before_commit');
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableIds(), [], 'nothing is committed by the killed run');

  const rerun = await runCli();
  assert.equal(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout) as { exit_code: number; objects: { rows_written: number }[] };
  assert.equal(summary.objects[0]?.rows_written, 500);
  assert.deepEqual(await tableIds(), range(1, 500));
});

test('killed after the commit and before the state save: the rerun takes its state from the table', async () => {
  await writeCsv('b.csv', 501, 300);
  const killed = await runCli('before_state_save');
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableIds(), range(1, 800), 'the commit landed');
  const state = JSON.parse(await readFile(path.join(dir, 'state/job.json'), 'utf8')) as { objects: Record<string, { files?: Record<string, unknown> }> };
  assert.equal(Object.keys(state.objects['events']?.files ?? {}).length, 1, 'the state store still only knows a.csv');

  const rerun = await runCli();
  assert.equal(rerun.code, 0, rerun.stderr);
  const summary = JSON.parse(rerun.stdout) as { objects: { rows_written: number }[] };
  assert.equal(summary.objects[0]?.rows_written, 0, 'b.csv is not read again');
  assert.match(rerun.stderr, /state_reconciled/);
  assert.deepEqual(await tableIds(), range(1, 800));

  const again = await runCli();
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await tableIds(), range(1, 800));
});
