/**
 * The commit is the checkpoint, on the lakehouse path: a `dativo run` process
 * writing to an S3 warehouse (s3rver) with the SQL catalog on Postgres is
 * killed (SIGKILL) after its upload and before the commit, and after the
 * commit and before the state save; each rerun ends with exactly the source
 * rows, once, read back by icebird from the bucket.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { createS3Storage, type S3Storage } from '../../../lib/storage/s3.js';
import { readIcebergVia } from '../../helpers/iceberg-read.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { pgAdmin } from '../../helpers/postgres.js';
import { dativo, type Ran } from '../cli/helpers.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

const DB = `dativo_s3crash_${randomBytes(4).toString('hex')}`;
const PG_URI = `postgres://postgres@127.0.0.1:5432/${DB}`;

let dir: string;
let s3: S3rverHandle;
let storage: S3Storage;


before(async () => {
  await pgAdmin(`CREATE DATABASE ${DB}`);
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-s3-crash-'));
  s3 = await startS3rver({ buckets: ['lake'], conditionalWrites: true });
  storage = createS3Storage('s3://lake/wh', { bucket: 'lake', prefix: 'wh', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
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
      // Named: the table is `crash.events` at crash/events (not the tenant-scoped crash.crash.events).
      '  namespace: crash',
      `  catalog: {type: sql, uri: "${PG_URI}"}`,
      '  connection:',
      '    s3: {bucket: lake, prefix: wh, endpoint: "${S3_ENDPOINT}", region: us-east-1, path_style_access: true, access_key_id: S3RVER, secret_access_key: S3RVER}',
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
});

after(async () => {
  storage?.close();
  await s3?.close();
  await pgAdmin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

async function writeCsv(name: string, from: number, count: number, minutesAgo: number): Promise<void> {
  await writeEventsCsv(path.join(dir, 'data', name), from, count, { minutesAgo });
}

/** `dativo run job.yaml --json`; with `pauseAt`, SIGKILL it once it reports the pause. */
function runCli(pauseAt?: 'before_commit' | 'before_state_save'): Promise<Ran> {
  return dativo(['run', 'job.yaml', '--json'], {
    cwd: dir,
    env: { S3_ENDPOINT: s3.endpoint, ...(pauseAt ? { DATIVO_PAUSE_AT: pauseAt } : {}) },
    ...(pauseAt ? { killOnStderr: `paused at ${pauseAt}` } : {}),
  });
}

/** Ids in the table (icebird, from the bucket), sorted; [] before the first commit. */
async function tableIds(): Promise<bigint[]> {
  const catalog = (await openCatalog({ type: 'sql', name: 'dativo', uri: PG_URI }, storage))!;
  try {
    const t = await catalog.loadTable({ namespace: ['crash'], name: 'events' });
    if (!t || String(t.metadata['current-snapshot-id'] ?? '-1') === '-1') return [];
    const rows = await readIcebergVia({
      location: String(t.metadata.location),
      metadataLocation: t.metadataLocation,
      rewrite: (u) => u.replace(/^https:\/\/lake\.s3\.amazonaws\.com\//, `${s3.endpoint}/lake/`),
    });
    return rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } finally {
    await catalog.close();
  }
}

const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(from + i));

test('S3 + Postgres catalog: killed after the upload and before the commit, then after the commit and before the state save; every row once', async () => {
  await writeCsv('a.csv', 1, 400, 120);
  const killed = await runCli('before_commit');
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.deepEqual(await tableIds(), [], 'nothing is committed by the killed run');
  const uploaded = await storage.list('crash/events/data/');
  assert.equal(uploaded.filter((k) => k.endsWith('.parquet')).length, 1, 'its file was uploaded (and is not part of the table)');

  const rerun = await runCli();
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.equal((JSON.parse(rerun.stdout) as { objects: { rows_written: number }[] }).objects[0]?.rows_written, 400);
  assert.deepEqual(await tableIds(), range(1, 400));
  const afterRerun = (await storage.list('crash/events/data/')).filter((k) => k.endsWith('.parquet'));
  assert.equal(afterRerun.length, 1, 'the killed run’s upload was removed by the rerun');
  assert.ok(!afterRerun.includes(uploaded.find((k) => k.endsWith('.parquet'))!));
  assert.match(rerun.stderr, /orphans_removed/);

  await writeCsv('b.csv', 401, 250, 60);
  const stateBefore = await readFile(path.join(dir, 'state/job.json'), 'utf8');
  const killed2 = await runCli('before_state_save');
  assert.equal(killed2.signal, 'SIGKILL', killed2.stderr);
  assert.deepEqual(await tableIds(), range(1, 650), 'the commit landed');
  assert.equal(await readFile(path.join(dir, 'state/job.json'), 'utf8'), stateBefore, 'the state store is behind the table');

  const rerun2 = await runCli();
  assert.equal(rerun2.code, 0, rerun2.stderr);
  assert.equal((JSON.parse(rerun2.stdout) as { objects: { rows_written: number }[] }).objects[0]?.rows_written, 0, 'b.csv is not read again');
  assert.match(rerun2.stderr, /state_reconciled/);
  assert.deepEqual(await tableIds(), range(1, 650));
  assert.equal((await storage.list('crash/events/data/')).filter((k) => k.endsWith('.parquet')).length, 2, 'the committed file of the run killed after its commit is kept');
});

test('S3: tables gc lists and removes orphans (never a live file), expires snapshots; tables files lists the live s3:// files', async () => {
  const env = { S3_ENDPOINT: s3.endpoint };
  const stray = ['crash/events/data/ingest_date=2026-01-01/part-20260101T000000Z-abcdef-events-00001.parquet', 'crash/events/metadata/0b1c2d3e-aaaa-4bbb-8ccc-000000000000-m0.avro'];
  for (const k of stray) await storage.writeAtomic(k, 'not committed');
  const files = await dativo(['tables', 'files', 'crash.events', 'job.yaml'], { cwd: dir, env });
  assert.equal(files.code, 0, files.stderr);
  const live = files.stdout.trim().split('\n');
  assert.equal(live.length, 2);
  for (const f of live) assert.match(f, /^s3:\/\/lake\/wh\/crash\/events\/data\/ingest_date=[-\d]+\/part-.*\.parquet$/);

  const dry = await dativo(['tables', 'gc', 'crash.events', 'job.yaml', '--older-than', '0s', '--dry-run', '--json'], { cwd: dir, env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.deepEqual((JSON.parse(dry.stdout) as { orphan_files: { path: string }[] }).orphan_files.map((f) => f.path).sort(), [...stray].sort());
  for (const k of stray) assert.ok(await storage.exists(k), `${k} kept by --dry-run`);

  const gc = await dativo(['tables', 'gc', 'crash.events', 'job.yaml', '--older-than', '0s', '--retain-last', '1', '--json'], { cwd: dir, env });
  assert.equal(gc.code, 0, gc.stderr);
  const res = JSON.parse(gc.stdout) as { expired_snapshots: string[]; orphan_files: unknown[] };
  assert.equal(res.expired_snapshots.length, 1);
  assert.equal(res.orphan_files.length, 2);
  for (const k of stray) assert.equal(await storage.exists(k), false, `${k} removed`);
  for (const f of live) assert.ok(await storage.exists(f.slice('s3://lake/wh/'.length)), `live ${f} kept`);
  assert.deepEqual(await tableIds(), range(1, 650));
});
