/**
 * `dativo rejects replay`: rows rejected by a run land once the asset is
 * fixed, exactly once — replayed twice, interrupted before its commit,
 * interrupted after its commit and before the files moved, or two replays
 * at once without the lock. Rows that still fail stay rejected, counted.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { loadJob } from '../../lib/config/index.js';
import { openCatalog } from '../../lib/iceberg/index.js';
import { currentSnapshot } from '../../lib/iceberg/metadata.js';
import { replayRejects, type ReplaySummary } from '../../lib/replay.js';
import { runJob } from '../../lib/run.js';
import { openStorage } from '../../lib/storage/index.js';
import { readIcebergTable } from '../helpers/iceberg-read.js';
import { dativo, project, type Project } from './cli/helpers.js';

let pr: Project;

const asset = (labelRequired: boolean): string =>
  [
    'apiVersion: v3.0.2',
    'kind: DataContract',
    'name: events',
    'version: "1.0"',
    'domain: replay',
    'schema:',
    '  - {name: id, type: long, required: true}',
    `  - {name: label, type: string, required: ${labelRequired}}`,
    'primary_key: [id]',
    'team: {owner: data@example.com}',
    '',
  ].join('\n');

before(async () => {
  pr = await project('replay');
});
after(() => pr.cleanup());

/** A job in `<name>/` reading `<name>/data/*.csv` in warn mode into the embedded catalog. */
async function setup(name: string): Promise<string> {
  await pr.write(`${name}/asset.yaml`, asset(true));
  await pr.write(
    `${name}/job.yaml`,
    [
      'tenant_id: acme',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: asset.yaml',
      'schema_validation_mode: warn',
      'source:',
      '  files: [{path: "data/*.csv", object: events}]',
      '  incremental: {strategy: file_modified_time}',
      'target:',
      '  warehouse: wh',
      '  namespace: replay',
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
  // ids 1..6: 2 and 5 have no label (rejected while label is required), 7 has a bad id (always rejected).
  await pr.write(`${name}/data/a.csv`, 'id,label\n1,a\n2,\n3,c\nx7,g\n4,d\n5,\n6,f\n');
  return pr.p(`${name}/job.yaml`);
}

const fixAsset = (name: string): Promise<string> => pr.write(`${name}/asset.yaml`, asset(false));

async function ids(name: string): Promise<{ ids: number[]; summary: Record<string, string> }> {
  const wh = pr.p(`${name}/wh`);
  const storage = await openStorage(pathToFileURL(wh).href);
  const catalog = (await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${path.join(wh, 'catalog.db')}` }, storage))!;
  try {
    const t = (await catalog.loadTable({ namespace: ['replay'], name: 'events' }))!;
    const rows = await readIcebergTable({ warehouseDir: wh, location: t.metadata.location, metadataLocation: t.metadataLocation });
    return { ids: rows.map((r) => Number(r['id'])).sort((a, b) => a - b), summary: currentSnapshot(t.metadata)!.summary };
  } finally {
    await catalog.close();
  }
}

const rejectFiles = async (name: string): Promise<string[]> => (await readdir(pr.p(`${name}/rejects/events`)).catch(() => [])).sort();
const lines = async (file: string): Promise<Record<string, unknown>[]> =>
  (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

async function firstRun(name: string): Promise<{ job: string; runId: string }> {
  const job = await setup(name);
  const r = await runJob(await loadJob(job, { cwd: pr.p(name) }));
  assert.equal(r.exit_code, 1, JSON.stringify(r.error));
  assert.equal(r.objects[0]?.rows_written, 4);
  assert.equal(r.objects[0]?.rows_rejected, 3);
  assert.deepEqual((await ids(name)).ids, [1, 3, 4, 6]);
  return { job, runId: r.run_id };
}

async function replay(job: string, name: string, opts: Parameters<typeof replayRejects>[1] = {}): Promise<ReplaySummary> {
  return replayRejects(await loadJob(job, { cwd: pr.p(name) }), opts);
}

test('after the asset is fixed the rejected rows land once; the one that still fails stays rejected; a second replay lands nothing', async () => {
  const name = 'basic';
  const { job, runId } = await firstRun(name);
  await fixAsset(name);
  const r = await dativo(['rejects', 'replay', 'job.yaml', '--json'], { cwd: pr.p(name) });
  assert.equal(r.code, 1, r.stderr);
  const s = JSON.parse(r.stdout) as ReplaySummary;
  const o = s.objects[0]!;
  assert.deepEqual([o.rows_read, o.rows_written, o.rows_rejected], [3, 2, 1]);
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6]);
  const replayed = JSON.parse((await ids(name)).summary['dativo.replayed']!) as { file: string; lines: string }[];
  assert.deepEqual(replayed, [{ file: `acme/job/events/${runId}.ndjson`, lines: '1-3' }]);
  assert.deepEqual(await rejectFiles(name), [`${runId}.ndjson.replayed`, `${s.run_id}.ndjson`].sort());
  const still = await lines(o.reject_file!);
  assert.equal(still.length, 1);
  assert.equal((still[0]!['record'] as Record<string, unknown>)['id'], 'x7');
  assert.equal((still[0]!['location'] as Record<string, unknown>)['rejected_in'], `${runId}.ndjson:2`);
  assert.equal(still[0]!['run_id'], s.run_id);

  // Again: the row that still fails is re-validated, still fails, nothing changes.
  const again = await replay(job, name);
  assert.equal(again.exit_code, 1);
  assert.deepEqual([again.objects[0]!.rows_written, again.objects[0]!.rows_rejected], [0, 1]);
  assert.deepEqual(await rejectFiles(name), [`${runId}.ndjson.replayed`, `${s.run_id}.ndjson`].sort());
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6]);
  // A normal run afterwards reads nothing new, and the cursor was not touched by the replay.
  const run = await runJob(await loadJob(job, { cwd: pr.p(name) }));
  assert.equal(run.objects[0]?.rows_written, 0);

  // --run naming a run without a reject file: exit 3.
  const none = await replay(job, name, { run: '20000101T000000Z-000000' });
  assert.equal(none.exit_code, 3);
  assert.equal(none.error?.code, 'SOURCE_NOT_FOUND');
});

test('a replay interrupted before its commit lands nothing; the next lands every row once', async () => {
  const name = 'before-commit';
  const { job, runId } = await firstRun(name);
  await fixAsset(name);
  const crashed = await replay(job, name, { hooks: { beforeCommit: async () => Promise.reject(new Error('killed before the commit')) } });
  assert.equal(crashed.exit_code, 3);
  assert.deepEqual((await ids(name)).ids, [1, 3, 4, 6]);
  assert.deepEqual(await rejectFiles(name), [`${runId}.ndjson`]);
  const r = await replay(job, name);
  assert.equal(r.objects[0]?.rows_written, 2, JSON.stringify(r));
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(await readdir(pr.p(`${name}/rejects/.replay/events`)), [], 'the interrupted replay’s pending file is gone');
});

test('a replay interrupted after its commit and before the files moved: the next one only moves them', async () => {
  const name = 'after-commit';
  const { job, runId } = await firstRun(name);
  await fixAsset(name);
  const crashed = await replay(job, name, { hooks: { beforeMove: async () => Promise.reject(new Error('killed after the commit')) } });
  assert.equal(crashed.exit_code, 3);
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6], 'the commit landed');
  assert.deepEqual(await rejectFiles(name), [`${runId}.ndjson`], 'the reject file was not moved yet');
  const r = await replay(job, name);
  assert.equal(r.exit_code, 1, JSON.stringify(r));
  assert.deepEqual(r.objects[0]?.finished, [pr.p(`${name}/rejects/events/${runId}.ndjson`)]);
  assert.equal(r.objects[0]?.rows_written, 0, 'nothing landed twice');
  assert.equal(r.objects[0]?.rows_rejected, 1, 'the promoted still-rejected row was re-validated');
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(await rejectFiles(name), [`${runId}.ndjson.replayed`, `${crashed.run_id}.ndjson`].sort());
});

test('two replays at once without the lock: the commit record lets one land', async () => {
  const name = 'concurrent';
  const { job } = await firstRun(name);
  await fixAsset(name);
  const both = await Promise.all([replay(job, name, { lock: false }), replay(job, name, { lock: false })]);
  const landed = both.reduce((n, s) => n + (s.objects[0]?.rows_written ?? 0), 0);
  assert.equal(landed, 2, JSON.stringify(both.map((s) => [s.exit_code, s.error, s.objects])));
  assert.deepEqual((await ids(name)).ids, [1, 2, 3, 4, 5, 6]);
});
