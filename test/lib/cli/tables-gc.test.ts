/**
 * No orphans, end to end through the `dativo` binary on the embedded SQLite
 * catalog: a run SIGKILLed after its data files are durable leaves them
 * behind; the next run of the job removes them (and only them); `dativo
 * tables files` lists exactly the live files (DuckDB reads them); `dativo
 * tables gc` lists orphans on --dry-run, removes them otherwise, never a
 * referenced file, and expires snapshots keeping the table readable.
 * Also: an unpartitioned table's files are not put under a partition folder.
 */
import assert from 'node:assert/strict';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { openCatalog } from '../../../lib/iceberg/index.js';
import type { LoadedTable } from '../../../lib/iceberg/catalog.js';
import { snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { openStorage } from '../../../lib/storage/index.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { dativo, jsonLine, logLines, project, snapshot, type Project, type Ran } from './helpers.js';
import { eventsAsset, eventsCsv } from '../../helpers/events.js';

let p: Project;

const ASSET = eventsAsset('gc');

function job(extra: string[] = []): string {
  return [
    'tenant_id: t1',
    'source_connector: csv',
    'target_connector: iceberg',
    'asset_path: asset.yaml',
    'source:',
    '  files: [{path: "data/*.csv", object: events}]',
    '  incremental: {strategy: file_modified_time}',
    'target:',
    '  warehouse: wh',
    // Named: the table is `gc.events` at wh/gc/events (not the tenant-scoped t1.gc.events).
    '  namespace: gc',
    ...extra,
    'state: {path: state/job.json}',
    'reject_dir: rejects',
    '',
  ].join('\n');
}

before(async () => {
  p = await project('gc');
  await p.write('asset.yaml', ASSET);
  await p.write('job.yaml', job());
});
after(async () => {
  await p.cleanup();
});

async function csv(name: string, from: number, count: number): Promise<void> {
  await p.write(`data/${name}`, eventsCsv(from, count));
}

function run(pauseAt?: 'before_commit'): Promise<Ran> {
  return dativo(['run', 'job.yaml', '--json'], { cwd: p.dir, ...(pauseAt ? { env: { DATIVO_PAUSE_AT: pauseAt }, killOnStderr: `paused at ${pauseAt}` } : {}) });
}

const tableDir = () => p.p('wh/gc/events');

async function load(): Promise<LoadedTable> {
  const wh = p.p('wh');
  const storage = await openStorage(pathToFileURL(wh).href);
  const catalog = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${path.join(wh, 'catalog.db')}` }, storage);
  try {
    return (await catalog!.loadTable({ namespace: ['gc'], name: 'events' }))!;
  } finally {
    await catalog!.close();
  }
}

async function icebirdIds(): Promise<bigint[]> {
  const t = await load();
  const rows = await readIcebergTable({ warehouseDir: p.p('wh'), location: String(t.metadata.location), metadataLocation: t.metadataLocation });
  return rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function duckCount(sql: string): Promise<number> {
  const db = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false', threads: '1' });
  const conn = await db.connect();
  try {
    const r = await conn.runAndReadAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT id)::INTEGER AS d FROM (${sql})`);
    const [row] = r.getRowObjectsJS() as { n: number; d: number }[];
    assert.equal(row!.n, row!.d, 'no row twice');
    return row!.n;
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** Every file under the table's data folder (temp files included), relative to it. */
async function dataFiles(): Promise<string[]> {
  return Object.keys(await snapshot(path.join(tableDir(), 'data'))).sort();
}

const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(from + i));

/** The run id of the marker a killed run left (exactly one expected). */
async function markerRunIds(): Promise<string[]> {
  const files = Object.keys(await snapshot(path.join(tableDir(), '.dativo/runs')));
  return files.map((f) => path.basename(f, '.json')).sort();
}

test('a killed run’s files are removed by the next run of the job; referenced files never; tables files reads exactly the live ones', async () => {
  await csv('a.csv', 1, 300);
  const first = await run();
  assert.equal(first.code, 0, first.stderr);
  const committed = await dataFiles();
  assert.equal(committed.length, 1);
  assert.deepEqual(await markerRunIds(), [], 'a finished run leaves no marker');

  await csv('b.csv', 301, 200);
  const killed = await run('before_commit');
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const [killedRun] = await markerRunIds();
  assert.ok(killedRun, 'the killed run left its marker');
  const left = (await dataFiles()).filter((f) => !committed.includes(f));
  assert.equal(left.length, 1);
  assert.ok(path.basename(left[0]!).startsWith(`part-${killedRun}-events-`));
  // What a kill in the middle of a write leaves on local disk: the sink's temp file next to the finished ones.
  const temp = path.join(tableDir(), 'data', path.dirname(left[0]!), `.part-${killedRun}-events-00002.parquet.0f6e1c52-7a1b-4c55-9a0e-3f1d2a9b8c7d.inprogress`);
  await writeFile(temp, 'PAR1 half a file');
  assert.deepEqual(await icebirdIds(), range(1, 300), 'nothing of the killed run is committed');

  const rerun = await run();
  assert.equal(rerun.code, 0, rerun.stderr);
  const removed = logLines(rerun.stderr).find((l) => l['event_type'] === 'orphans_removed');
  assert.ok(removed, rerun.stderr);
  assert.equal(removed['orphan_run_id'], killedRun);
  assert.equal(removed['files'], 2);
  const now = await dataFiles();
  assert.ok(!now.some((f) => path.basename(f).includes(killedRun!)), `the killed run's files are gone: ${now.join(', ')}`);
  for (const f of committed) assert.ok(now.includes(f), `committed file ${f} is kept`);
  assert.equal(now.length, 2);
  assert.deepEqual(await markerRunIds(), []);
  assert.deepEqual(await icebirdIds(), range(1, 500));

  // tables files: exactly the live files; DuckDB over them = the table
  const listed = await dativo(['tables', 'files', 'gc.events', '--warehouse', 'wh'], { cwd: p.dir });
  assert.equal(listed.code, 0, listed.stderr);
  const paths = listed.stdout.trim().split('\n');
  assert.deepEqual(paths.map((f) => path.relative(path.join(tableDir(), 'data'), f)).sort(), now);
  const sql = await dativo(['tables', 'files', 'gc.events', 'job.yaml', '--sql'], { cwd: p.dir });
  assert.equal(sql.code, 0, sql.stderr);
  assert.match(sql.stdout, /^SELECT \* FROM read_parquet\(\[/);
  assert.equal(await duckCount(sql.stdout.trim()), 500);
  const json = await dativo(['tables', 'files', 'gc.events', '--warehouse', 'wh', '--json'], { cwd: p.dir });
  const detail = JSON.parse(json.stdout) as { path: string; records: number }[];
  assert.equal(detail.reduce((n, f) => n + Number(f.records), 0), 500);
});

test('tables gc: --dry-run lists orphans and deletes nothing; gc removes them, never a referenced file; the age threshold holds', async () => {
  await csv('c.csv', 501, 100);
  const killed = await run('before_commit');
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  const [killedRun] = await markerRunIds();
  // an orphan in metadata/ too: a manifest an interrupted commit wrote
  await p.write('wh/gc/events/metadata/0b1c2d3e-aaaa-4bbb-8ccc-000000000000-m0.avro', 'Obj\x01 not committed');
  const live = (await dativo(['tables', 'files', 'gc.events', '--warehouse', 'wh'], { cwd: p.dir })).stdout.trim().split('\n');
  const before = await snapshot(tableDir());

  const young = await dativo(['tables', 'gc', 'gc.events', '--warehouse', 'wh', '--dry-run', '--json'], { cwd: p.dir });
  assert.equal(young.code, 0, young.stderr);
  assert.deepEqual((JSON.parse(young.stdout) as { orphan_files: unknown[] }).orphan_files, [], 'nothing is older than the default 1d');

  const dry = await dativo(['tables', 'gc', 'gc.events', '--warehouse', 'wh', '--older-than', '0s', '--dry-run', '--json'], { cwd: p.dir });
  assert.equal(dry.code, 0, dry.stderr);
  const listed = (JSON.parse(dry.stdout) as { dry_run: boolean; orphan_files: { path: string }[] }).orphan_files.map((f) => f.path).sort();
  assert.deepEqual(listed, ['gc/events/metadata/0b1c2d3e-aaaa-4bbb-8ccc-000000000000-m0.avro', ...(await dataFiles()).filter((f) => f.includes(killedRun!)).map((f) => `gc/events/data/${f}`)].sort());
  for (const f of live) assert.ok(!listed.some((o) => f.endsWith(o)), `live file ${f} is no orphan`);
  assert.deepEqual(await snapshot(tableDir()), before, '--dry-run changes nothing');

  const human = await dativo(['tables', 'gc', 'gc.events', 'job.yaml', '--older-than', '0s'], { cwd: p.dir });
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /removed 2 orphan file\(s\)/);
  const after = await snapshot(tableDir());
  for (const f of listed) assert.equal(after[f.slice('gc/events/'.length)], undefined, `${f} removed`);
  for (const f of Object.keys(before)) if (!listed.includes(`gc/events/${f}`)) assert.equal(after[f], before[f], `${f} kept`);
  assert.deepEqual(await icebirdIds(), range(1, 500));

  const bad = await dativo(['tables', 'gc', 'gc.events', '--warehouse', 'wh', '--older-than', 'soon'], { cwd: p.dir });
  assert.equal(bad.code, 3);
  assert.match(bad.stderr, /--older-than must be a duration/);
});

test('tables gc --retain-last 1 expires old snapshots through the catalog and deletes what only they used; the table stays readable', async () => {
  const rerun = await run(); // picks up c.csv (its killed run committed nothing)
  assert.equal(rerun.code, 0, rerun.stderr);
  const before = await load();
  const snaps = snapshotsOf(before.metadata);
  assert.equal(snaps.length, 3);
  const oldLists = snaps.slice(0, -1).map((s) => s['manifest-list']);

  const dry = await dativo(['tables', 'gc', 'gc.events', '--warehouse', 'wh', '--retain-last', '1', '--dry-run', '--json'], { cwd: p.dir });
  assert.equal(dry.code, 0, dry.stderr);
  const plan = JSON.parse(dry.stdout) as { expired_snapshots: string[]; expired_files: string[] };
  assert.deepEqual(plan.expired_snapshots, snaps.slice(0, -1).map((s) => String(s['snapshot-id'])));
  assert.equal(snapshotsOf((await load()).metadata).length, 3, '--dry-run commits nothing');

  const done = await dativo(['tables', 'gc', 'gc.events', '--warehouse', 'wh', '--retain-last', '1', '--json'], { cwd: p.dir });
  assert.equal(done.code, 0, done.stderr);
  const res = JSON.parse(done.stdout) as { expired_snapshots: string[]; expired_files: string[] };
  assert.deepEqual(res.expired_snapshots, plan.expired_snapshots);
  // the old manifest lists went; data files stay (every one is still live)
  assert.deepEqual(res.expired_files.filter((f) => f.includes('/data/')), []);
  for (const l of oldLists) await assert.rejects(stat(new URL(l)), 'expired manifest list deleted');
  const t = await load();
  assert.deepEqual(snapshotsOf(t.metadata).map((s) => s['snapshot-id']), [snaps.at(-1)!['snapshot-id']]);
  assert.deepEqual((t.metadata['snapshot-log'] as { 'snapshot-id': bigint }[]).map((e) => e['snapshot-id']), [snaps.at(-1)!['snapshot-id']]);
  assert.deepEqual(await icebirdIds(), range(1, 600));
  const sql = await dativo(['tables', 'files', 'gc.events', '--warehouse', 'wh', '--sql'], { cwd: p.dir });
  assert.equal(await duckCount(sql.stdout.trim()), 600);
  // the job still resumes from the table: nothing is read twice
  const again = await run();
  assert.equal(jsonLine(again.stdout).objects[0]!.rows_written, 0, again.stderr);
});

test('an unpartitioned table (partitioning: []) has its files directly under data/; an unsupported partitioning is a config error', async () => {
  const q = await project('unpart');
  try {
    await q.write('asset.yaml', ASSET);
    await q.write('job.yaml', job(['  partitioning: []']));
    await q.write('data/a.csv', 'id,label\n1,one\n2,two\n');
    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: q.dir });
    assert.equal(r.code, 0, r.stderr);
    const files = jsonLine(r.stdout).objects[0]!.files;
    assert.equal(files.length, 1);
    assert.match(files[0]!, /\/wh\/gc\/events\/data\/part-[^/]+\.parquet$/);
    assert.deepEqual(await readdir(q.p('wh/gc/events/data')), [path.basename(files[0]!)]);
    const shown = JSON.parse((await dativo(['tables', 'show', 'gc.events', '--warehouse', 'wh', '--json'], { cwd: q.dir })).stdout) as Record<string, unknown>;
    assert.ok(shown);
    const storage = await openStorage(pathToFileURL(q.p('wh')).href);
    const catalog = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${q.p('wh/catalog.db')}` }, storage);
    const t = (await catalog!.loadTable({ namespace: ['gc'], name: 'events' }))!;
    await catalog!.close();
    assert.deepEqual(t.metadata['partition-specs'], [{ 'spec-id': 0, fields: [] }]);
    assert.equal(t.metadata['last-partition-id'], 999);
    const rows = await readIcebergTable({ warehouseDir: q.p('wh'), location: String(t.metadata.location), metadataLocation: t.metadataLocation });
    assert.deepEqual(rows.map((x) => x['id']).sort(), [1n, 2n]);

    await q.write('bad.yaml', job(['  partitioning: [label]']));
    const bad = await dativo(['run', 'bad.yaml', '--json'], { cwd: q.dir });
    assert.equal(bad.code, 3, bad.stderr);
    const err = jsonLine(bad.stdout).error!;
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.ok(err.problems?.some((x) => x.key === 'target.partitioning' && /"label" is not supported/.test(x.message)), JSON.stringify(err));
  } finally {
    await q.cleanup();
  }
});
