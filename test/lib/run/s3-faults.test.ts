/**
 * Bad input on the lakehouse path, through the CLI (`dativo run job.yaml
 * --json` in a child process): CSV → Iceberg on S3 (s3rver behind the fault
 * proxy) with the SQL catalog on a Postgres database made for this file.
 * Each case checks the exit code, the message, and that nothing was lost:
 * the table keeps its current snapshot, the state file is byte for byte the
 * same, and no data object of the failed run is left in the bucket.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { loadJob } from '../../../lib/config/index.js';
import type { LoadedTable } from '../../../lib/iceberg/catalog.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { runJob } from '../../../lib/run.js';
import { createS3Storage, type S3Storage } from '../../../lib/storage/s3.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { pgAdmin } from '../../helpers/postgres.js';
import { dativo } from '../cli/helpers.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

const DB = `dativo_s3faults_${randomBytes(4).toString('hex')}`;
const PG_URI = `postgres://postgres@127.0.0.1:5432/${DB}`;
const BUCKET = 'lake';

let dir: string;
let s3: S3rverHandle;
let storage: S3Storage;
let client: S3Client;


before(async () => {
  await pgAdmin(`CREATE DATABASE ${DB}`);
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-s3-faults-'));
  s3 = await startS3rver({ buckets: [BUCKET], conditionalWrites: true });
  storage = createS3Storage(`s3://${BUCKET}/wh`, { bucket: BUCKET, prefix: 'wh', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  await writeFile(
    path.join(dir, 'asset.yaml'),
    eventsAsset('lake'),
  );
});

after(async () => {
  client?.destroy();
  storage?.close();
  await s3?.close();
  await pgAdmin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

/** A CSV → Iceberg-on-S3 job in `<dir>/<name>/job.yaml`; bucket, key id and catalog URI come from the environment. */
async function writeJob(name: string, targetLines: string[] = []): Promise<string> {
  await mkdir(path.join(dir, name, 'data'), { recursive: true });
  await writeFile(
    path.join(dir, name, 'job.yaml'),
    [
      'tenant_id: acme',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: ../asset.yaml',
      'source:',
      '  files: [{path: "data/*.csv", object: events}]',
      '  incremental: {strategy: file_modified_time}',
      'target:',
      `  table: ${name}`,
      ...targetLines.map((l) => `  ${l}`),
      '  catalog: {type: sql, uri: "${CATALOG_URI}"}',
      '  connection:',
      '    s3:',
      '      bucket: ${S3_BUCKET}',
      '      prefix: wh',
      '      endpoint: ${S3_ENDPOINT}',
      '      region: us-east-1',
      '      path_style_access: true',
      '      access_key_id: ${S3_KEY}',
      '      secret_access_key: S3RVER',
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
  return path.join(dir, name);
}

/** Rows `from..from+count-1`; `pad` random hex characters per label make the file big. */
async function writeCsv(jobDir: string, name: string, from: number, count: number, minutesAgo: number, pad = 0): Promise<void> {
  await writeEventsCsv(path.join(jobDir, 'data', name), from, count, { minutesAgo, pad });
}

interface Ran {
  code: number | null;
  stderr: string;
  summary: { exit_code: number; error?: { code: string; message: string }; objects: { name: string; rows_written: number; error?: { code: string; message: string } }[] };
}

/** What the job's `${VAR}`s expand to when a case does not override them. */
function baseEnv(): Record<string, string> {
  return { S3_ENDPOINT: s3.endpoint, S3_BUCKET: BUCKET, S3_KEY: 'S3RVER', CATALOG_URI: PG_URI };
}

async function runCli(jobDir: string, env: Record<string, string> = {}): Promise<Ran> {
  const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: jobDir, env: { ...baseEnv(), ...env } });
  try {
    return { code: ran.code, stderr: ran.stderr, summary: JSON.parse(ran.stdout) as Ran['summary'] };
  } catch {
    throw new Error(`no JSON summary on stdout (exit ${ran.code}): ${ran.stdout}
${ran.stderr}`);
  }
}

async function loadTable(name: string): Promise<LoadedTable | undefined> {
  const c = (await openCatalog({ type: 'sql', name: 'dativo', uri: PG_URI }, storage))!;
  try {
    return await c.loadTable({ namespace: ['acme', 'lake'], name });
  } finally {
    await c.close();
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  const out = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

/** A job that already ran once (rows 1..100): what a failed second run must leave exactly as it was. */
async function committedOnce(name: string, targetLines: string[] = []): Promise<{ jobDir: string; table: LoadedTable; state: string; keys: string[] }> {
  const jobDir = await writeJob(name, targetLines);
  await writeCsv(jobDir, 'a.csv', 1, 100, 120);
  // In process (a CLI start costs seconds): this run only sets the scene.
  const plan = await loadJob(path.join(jobDir, 'job.yaml'), { env: { ...process.env, ...baseEnv() }, cwd: jobDir });
  const first = await runJob(plan);
  assert.equal(first.exit_code, 0, JSON.stringify(first.error));
  assert.equal(first.objects[0]?.rows_written, 100);
  const table = (await loadTable(name))!;
  return { jobDir, table, state: await readFile(path.join(jobDir, 'state/job.json'), 'utf8'), keys: await keysUnder(`wh/acme/lake/${name}/`) };
}

async function assertUnchanged(name: string, before: { jobDir: string; table: LoadedTable; state: string; keys: string[] }): Promise<void> {
  const t = (await loadTable(name))!;
  assert.equal(t.metadataLocation, before.table.metadataLocation, 'the table has the same metadata');
  assert.equal(t.metadata['current-snapshot-id'], before.table.metadata['current-snapshot-id'], 'the table has the same current snapshot');
  assert.equal(await readFile(path.join(before.jobDir, 'state/job.json'), 'utf8'), before.state, 'the state file is unchanged');
  assert.deepEqual(await keysUnder(`wh/acme/lake/${name}/`), before.keys, 'no object of the failed run is left');
}

test('missing bucket: exit 3 naming the bucket; no table, no state', async () => {
  const jobDir = await writeJob('no_bucket');
  await writeCsv(jobDir, 'a.csv', 1, 10, 60);
  const r = await runCli(jobDir, { S3_BUCKET: 'no-such-bucket' });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.summary.exit_code, 3);
  assert.equal(r.summary.error?.code, 'STORAGE_NOT_WRITABLE');
  assert.match(r.summary.error?.message ?? '', /bucket "no-such-bucket" does not exist/);
  assert.match(r.stderr, /no-such-bucket/);
  assert.equal(await loadTable('no_bucket'), undefined);
  await assert.rejects(readFile(path.join(jobDir, 'state/job.json')), { code: 'ENOENT' });
});

test('wrong credentials (unknown access key id): exit 3 saying the credentials were refused; table and state unchanged', async () => {
  const before = await committedOnce('bad_key');
  await writeCsv(before.jobDir, 'b.csv', 101, 10, 60);
  const r = await runCli(before.jobDir, { S3_KEY: 'AKIAWRONGWRONGWRONG0' });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.summary.error?.code, 'AUTH_FAILED');
  assert.match(r.summary.error?.message ?? '', /S3 refused the credentials for s3:\/\/lake \(.*HTTP 403\)/);
  await assertUnchanged('bad_key', before);
});

test('S3 answers 500 to every UploadPart: retried, then exit 2; the multipart upload is aborted, table and state unchanged', async () => {
  // Uncompressed, so that about 10 MB of CSV make a Parquet file of more than one 8 MiB part.
  const before = await committedOnce('part_500', ['compression: uncompressed']);
  await writeCsv(before.jobDir, 'big.csv', 101, 20_000, 60, 500);
  const mark = s3.requests.length;
  s3.setFaults((req) =>
    req.method === 'PUT' && req.query.has('partNumber')
      ? { status: 500, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>injected</Message><RequestId>1</RequestId></Error>', headers: { 'content-type': 'application/xml' } }
      : undefined,
  );
  let r: Ran;
  try {
    r = await runCli(before.jobDir);
  } finally {
    s3.setFaults(undefined);
  }
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.summary.error?.code, 'STORAGE_IO');
  assert.match(r.summary.error?.message ?? '', /UploadPart .*InternalError \(HTTP 500\)/);

  const seen = s3.requests.slice(mark);
  const parts = seen.filter((q) => q.method === 'PUT' && q.query.has('partNumber'));
  const created = seen.filter((q) => q.method === 'POST' && q.query.has('uploads'));
  assert.equal(created.length, 1, 'one multipart upload was started');
  const key = decodeURIComponent(created[0]!.path.slice(`/${BUCKET}/`.length));
  assert.match(key, /^wh\/acme\/lake\/part_500\/data\/ingest_date=\d{4}-\d{2}-\d{2}\/part-.*\.parquet$/);
  assert.ok(parts.length >= 3, `UploadPart was retried (${parts.length} attempts)`);
  assert.ok(parts.every((q) => q.status === 500));
  assert.ok(
    seen.some((q) => q.method === 'DELETE' && q.query.has('uploadId') && decodeURIComponent(q.path) === `/${BUCKET}/${key}`),
    'AbortMultipartUpload was sent for the key',
  );
  assert.equal(seen.filter((q) => q.method === 'POST' && q.query.has('uploadId')).length, 0, 'the upload was never completed');
  await assert.rejects(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })), { name: 'NotFound' });
  await assertUnchanged('part_500', before);
});

test('catalog database down (Postgres URI on a closed port): exit 2; nothing written, no state', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const jobDir = await writeJob('catalog_down');
  await writeCsv(jobDir, 'a.csv', 1, 10, 60);
  const r = await runCli(jobDir, { CATALOG_URI: `postgres://postgres@127.0.0.1:${port}/nope` });
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.summary.error?.code, 'CATALOG_UNAVAILABLE');
  assert.match(r.summary.error?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${port}`));
  await assert.rejects(readFile(path.join(jobDir, 'state/job.json')), { code: 'ENOENT' });
  assert.deepEqual(await keysUnder('wh/acme/lake/catalog_down/'), []);
});
