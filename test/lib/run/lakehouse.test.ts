/**
 * The lakehouse end to end through `loadJob` + `runJob`: CSV files → Iceberg
 * tables on an S3 warehouse (s3rver on loopback), with the SQL catalog on a
 * Postgres database made for this file, and with the loopback REST catalog
 * (plain and Nessie-style). Every table is read back whole by icebird from
 * the bucket and compared with the source rows; data files are checked for
 * their place (`<table location>/data/ingest_date=YYYY-MM-DD/`) and their S3
 * object metadata. Also: full refresh (overwrite snapshot), a table made by
 * another engine with columns we do not know, and a two-object job whose
 * checkpoints survive on a catalog that shows no snapshot history.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadJob } from '../../../lib/config/index.js';
import type { Catalog, LoadedTable, TableIdent, TableMetadata } from '../../../lib/iceberg/catalog.js';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { createRestCatalog } from '../../../lib/iceberg/rest.js';
import { currentSnapshot, snapshotsOf } from '../../../lib/iceberg/metadata.js';
import { assertFullHistory, expireSnapshots } from '../../../lib/iceberg/maintenance.js';
import type { DativoError } from '../../../lib/errors.js';
import { runJob, type RunOptions, type RunSummary } from '../../../lib/run.js';
import { stateSummaryKey } from '../../../lib/table-target.js';
import { createS3Storage, type S3Storage } from '../../../lib/storage/s3.js';
import { readIcebergVia } from '../../helpers/iceberg-read.js';
import { startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { pgAdmin } from '../../helpers/postgres.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

const DB = `dativo_lakehouse_${randomBytes(4).toString('hex')}`;
const PG_URI = `postgres://postgres@127.0.0.1:5432/${DB}`;
const BUCKET = 'lake';
/** Summary key of an object's state: every job here is tenant `acme`, job `job` (the file stem). */
const stateKey = (object: string): string => stateSummaryKey({ tenant: 'acme', job: 'job' }, object);

let dir: string;
let s3: S3rverHandle;
let storage: S3Storage;
let client: S3Client;
let rest: RestCatalogServer;
let nessie: RestCatalogServer;


before(async () => {
  await pgAdmin(`CREATE DATABASE ${DB}`);
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-lakehouse-'));
  s3 = await startS3rver({ buckets: [BUCKET], conditionalWrites: true });
  const settings = { bucket: BUCKET, prefix: 'wh', endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  storage = createS3Storage(`s3://${BUCKET}/wh`, settings);
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  rest = await startRestCatalog({ warehouse: storage });
  nessie = await startRestCatalog({ warehouse: storage, nessieStyle: true });
  await writeFile(
    path.join(dir, 'asset.yaml'),
    eventsAsset('lake', ['dataProduct: clicks', 'compliance: {classification: [internal], retention_days: 90}'], '1.2'),
  );
});

after(async () => {
  await rest?.close();
  await nessie?.close();
  client?.destroy();
  storage?.close();
  await s3?.close();
  await pgAdmin(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await rm(dir, { recursive: true, force: true });
});

const s3Lines = [
  '  connection:',
  '    s3:',
  `      bucket: ${BUCKET}`,
  '      prefix: wh',
  '      endpoint: ${S3_ENDPOINT}',
  '      region: us-east-1',
  '      path_style_access: true',
  '      access_key_id: S3RVER',
  '      secret_access_key: S3RVER',
];

interface JobSpec {
  name: string;
  catalog: string[];
  namespace?: string;
  /** `[glob, object]` pairs; default one object `events` reading `data/*.csv`. */
  files?: [string, string][];
  fullRefresh?: boolean;
}

/** Write `<dir>/<name>/<file>.yaml` for a CSV → Iceberg-on-S3 job. */
async function writeJob(spec: JobSpec, file = 'job.yaml'): Promise<string> {
  await mkdir(path.join(dir, spec.name, 'data'), { recursive: true });
  const jobFile = path.join(dir, spec.name, file);
  const files = spec.files ?? [['data/*.csv', 'events']];
  await writeFile(
    jobFile,
    [
      'tenant_id: acme',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: ../asset.yaml',
      ...(spec.fullRefresh ? ['sync_mode: full_refresh'] : []),
      'source:',
      `  files: [${files.map(([g, o]) => `{path: "${g}", object: ${o}}`).join(', ')}]`,
      ...(spec.fullRefresh ? [] : ['  incremental: {strategy: file_modified_time}']),
      'target:',
      `  table: ${spec.name}`,
      ...(spec.namespace ? [`  namespace: ${spec.namespace}`] : []),
      '  catalog:',
      ...spec.catalog.map((l) => `    ${l}`),
      ...s3Lines,
      `state: {path: state/${path.basename(file, '.yaml')}.json}`,
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
  return jobFile;
}

/** Source rows `from..from+count-1` as a CSV whose mtime is `minutesAgo` in the past. */
async function writeCsv(job: string, name: string, from: number, count: number, minutesAgo: number): Promise<void> {
  await writeEventsCsv(path.join(dir, job, 'data', name), from, count, { minutesAgo });
}

async function run(jobFile: string, opts: RunOptions = {}): Promise<RunSummary> {
  const plan = await loadJob(jobFile, { env: { ...process.env, S3_ENDPOINT: s3.endpoint }, cwd: path.dirname(jobFile) });
  return runJob(plan, opts);
}

function ok(s: RunSummary): void {
  assert.equal(s.exit_code, 0, JSON.stringify(s.error ?? s.objects.map((o) => o.error)));
}

async function withCatalog<T>(kind: 'sql' | 'rest' | 'nessie', fn: (c: Catalog) => Promise<T>): Promise<T> {
  const c =
    kind === 'sql'
      ? (await openCatalog({ type: 'sql', name: 'dativo', uri: PG_URI }, storage))!
      : await createRestCatalog({ type: 'rest', name: 'check', uri: kind === 'rest' ? rest.uri : nessie.uri, ...(kind === 'nessie' ? { prefix: 'main' } : {}) }, storage);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

async function load(kind: 'sql' | 'rest' | 'nessie', ident: TableIdent): Promise<LoadedTable> {
  const t = await withCatalog(kind, (c) => c.loadTable(ident));
  assert.ok(t, `table ${ident.namespace.join('.')}.${ident.name} exists`);
  return t;
}

/** Every row of the table as icebird reads it from the bucket, sorted by id. */
async function readBack(t: LoadedTable): Promise<Record<string, unknown>[]> {
  const rows = await readIcebergVia({
    location: String(t.metadata.location),
    metadataLocation: t.metadataLocation,
    rewrite: (u) => u.replace(/^https:\/\/lake\.s3\.amazonaws\.com\//, `${s3.endpoint}/${BUCKET}/`).replace(/^s3:\/\/lake\//, `${s3.endpoint}/${BUCKET}/`),
  });
  return rows.sort((a, b) => Number(a['id'] as bigint) - Number(b['id'] as bigint));
}

const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(from + i));
const today = (s: RunSummary): string => s.started_at.slice(0, 10);

/** Each file of the run is under `<location>/data/ingest_date=<day>/` and carries the Python tool's S3 metadata. */
async function checkFiles(t: LoadedTable, s: RunSummary): Promise<void> {
  const location = String(t.metadata.location);
  const files = s.objects.flatMap((o) => o.files);
  assert.ok(files.length > 0);
  for (const uri of files) {
    assert.ok(uri.startsWith(`${location}/data/ingest_date=${today(s)}/part-${s.run_id}-`), `${uri} is not under ${location}/data/ingest_date=${today(s)}/`);
    assert.match(uri, /\.parquet$/);
    const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: uri.slice(`s3://${BUCKET}/`.length) }));
    const m = head.Metadata ?? {};
    assert.equal(m['asset-name'], 'events');
    assert.equal(m['asset-version'], '1.2');
    assert.equal(m['asset-domain'], 'lake');
    assert.equal(m['data-product'], 'clicks');
    assert.equal(m['tenant-id'], 'acme');
    assert.equal(m['run-id'], s.run_id);
    assert.equal(m['partition'], `ingest_date=${today(s)}`);
    assert.equal(m['file-format'], 'parquet');
    assert.equal(m['owner'], 'data@example.com');
    assert.equal(m['retention-days'], '90');
    assert.equal(m['ingest-timestamp'], s.started_at);
  }
}

for (const kind of ['sql', 'rest'] as const) {
  test(`${kind === 'sql' ? 'SQL catalog on Postgres' : 'REST catalog'}: two incremental runs, every source row once, files in place with S3 metadata`, async () => {
    const name = `events_${kind}`;
    const catalog = kind === 'sql' ? ['type: sql', `uri: ${PG_URI}`] : ['type: rest', `uri: ${rest.uri}`];
    const job = await writeJob({ name, catalog });
    await writeCsv(name, 'a.csv', 1, 300, 120);
    const r1 = await run(job);
    ok(r1);
    assert.equal(r1.objects[0]?.rows_written, 300);
    await writeCsv(name, 'b.csv', 301, 200, 60);
    const r2 = await run(job);
    ok(r2);
    assert.equal(r2.objects[0]?.rows_written, 200, 'the second run reads only the new file');

    const t = await load(kind, { namespace: ['acme', 'lake'], name });
    assert.equal(t.metadata.location, `s3://${BUCKET}/wh/acme/lake/clicks/${name}`);
    const rows = await readBack(t);
    assert.deepEqual(rows.map((r) => r['id']), range(1, 500));
    assert.deepEqual(rows.map((r) => r['label']), range(1, 500).map((i) => `row ${i}`));
    assert.deepEqual(rows.map((r) => r['_dativo_run_id']), [...Array(300).fill(r1.run_id), ...Array(200).fill(r2.run_id)]);
    const snaps = snapshotsOf(t.metadata);
    assert.deepEqual(snaps.map((s) => s.summary.operation), ['append', 'append']);
    assert.deepEqual(snaps.map((s) => s.summary['dativo.run-id']), [r1.run_id, r2.run_id]);
    assert.equal(currentSnapshot(t.metadata)?.summary['total-records'], '500');
    assert.equal(JSON.parse(currentSnapshot(t.metadata)!.summary[stateKey('events')]!).runId, r2.run_id);
    await checkFiles(t, r1);
    await checkFiles(t, r2);
    const dataKeys = (await storage.list(`acme/lake/clicks/${name}/data/`)).filter((k) => k.endsWith('.parquet'));
    assert.deepEqual(dataKeys.map((k) => storage.uri(k)).sort(), [...r1.objects[0]!.files, ...r2.objects[0]!.files].sort(), 'no stray data file');

    // A third run with nothing new commits nothing.
    const r3 = await run(job);
    ok(r3);
    assert.equal(r3.objects[0]?.rows_written, 0);
    assert.equal(snapshotsOf((await load(kind, { namespace: ['acme', 'lake'], name })).metadata).length, 2);
  });
}

test('full refresh: an overwrite snapshot, and the table holds exactly the new rows', async () => {
  const name = 'events_refresh';
  const catalog = ['type: sql', `uri: ${PG_URI}`];
  const inc = await writeJob({ name, catalog });
  await writeCsv(name, 'a.csv', 1, 50, 60);
  ok(await run(inc));
  const refresh = await writeJob({ name, catalog, fullRefresh: true }, 'refresh.yaml');
  await rm(path.join(dir, name, 'data', 'a.csv'));
  await writeCsv(name, 'c.csv', 1001, 20, 5);
  const r = await run(refresh);
  ok(r);
  assert.equal(r.objects[0]?.rows_written, 20);
  const t = await load('sql', { namespace: ['acme', 'lake'], name });
  const cur = currentSnapshot(t.metadata)!;
  assert.equal(cur.summary.operation, 'overwrite');
  assert.equal(cur.summary['total-records'], '20');
  assert.equal(cur.summary['deleted-records'], '50');
  assert.equal(cur.summary['dativo.run-id'], r.run_id);
  assert.equal(snapshotsOf(t.metadata).length, 2);
  const rows = await readBack(t);
  assert.deepEqual(rows.map((row) => row['id']), range(1001, 20));
  await checkFiles(t, r);
});

/** Metadata of a table made by another engine: its own ids, columns we do not know, unpartitioned. */
function foreignMetadata(location: string): TableMetadata {
  return {
    'format-version': 2,
    'table-uuid': '0d4ad0f5-2b0e-4a4c-8f0e-5a3f6a0b7c21',
    location,
    'last-sequence-number': 0n,
    'last-updated-ms': 1767225600000n,
    'last-column-id': 14,
    'current-schema-id': 0,
    schemas: [
      {
        type: 'struct',
        'schema-id': 0,
        fields: [
          { id: 10, name: 'id', required: true, type: 'long' },
          { id: 11, name: 'region', required: false, type: 'string', doc: 'written by spark' },
          { id: 12, name: 'label', required: false, type: 'string' },
          { id: 13, name: 'score', required: false, type: 'double' },
          { id: 14, name: 'seen', required: false, type: 'date' },
        ],
      },
    ],
    'default-spec-id': 0,
    'partition-specs': [{ 'spec-id': 0, fields: [] }],
    'last-partition-id': 999,
    'default-sort-order-id': 0,
    'sort-orders': [{ 'order-id': 0, fields: [] }],
    properties: { owner: 'spark', 'write.format.default': 'parquet' },
    'current-snapshot-id': -1n,
    refs: {},
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
  };
}

test('a table made by another engine with columns we do not know: appended under its schema, its columns untouched and null', async () => {
  const name = 'foreign';
  const ident = { namespace: ['ext'], name };
  const location = `s3://${BUCKET}/wh/ext/foreign`;
  const foreign = foreignMetadata(location);
  await withCatalog('sql', async (c) => {
    await c.createNamespaceIfMissing(ident.namespace);
    await c.createTable(ident, { location, metadata: foreign });
  });
  const job = await writeJob({ name, namespace: 'ext', catalog: ['type: sql', `uri: ${PG_URI}`] });
  await writeCsv(name, 'a.csv', 1, 40, 60);
  const r = await run(job);
  ok(r);
  assert.equal(r.objects[0]?.rows_written, 40);

  const t = await load('sql', ident);
  assert.equal(t.metadata.location, location, 'the table keeps its own location');
  assert.equal(t.metadata['table-uuid'], foreign['table-uuid']);
  assert.equal((t.metadata.properties as Record<string, string>)['owner'], 'spark');
  const schemas = t.metadata.schemas as { 'schema-id': number; fields: Record<string, unknown>[] }[];
  const current = schemas.find((s) => s['schema-id'] === t.metadata['current-schema-id'])!;
  const foreignFields = (foreign.schemas as { fields: Record<string, unknown>[] }[])[0]!.fields;
  assert.deepEqual(current.fields.slice(0, foreignFields.length), foreignFields, 'the foreign columns keep ids, types, order and docs');
  assert.deepEqual(
    current.fields.slice(foreignFields.length).map((f) => [f['name'], f['required']]),
    [['_dativo_ingested_at', false], ['_dativo_run_id', false]],
  );
  assert.equal(t.metadata['default-spec-id'], 0);
  // the table is unpartitioned: its files take no partition folder
  for (const uri of r.objects[0]!.files) assert.match(uri, new RegExp(`^${location}/data/part-${r.run_id}-[^/]+\\.parquet$`));

  const rows = await readBack(t);
  assert.deepEqual(rows.map((row) => row['id']), range(1, 40));
  assert.deepEqual(rows.map((row) => row['label']), range(1, 40).map((i) => `row ${i}`));
  for (const row of rows) {
    assert.equal(row['region'] ?? null, null);
    assert.equal(row['score'] ?? null, null);
    assert.equal(row['seen'] ?? null, null);
    assert.equal(row['_dativo_run_id'], r.run_id);
  }
});

describe('two objects into one table on a Nessie-style catalog (metadata shows only the current snapshot)', () => {
  test('each object’s checkpoint is found in the newest snapshot: a crash before one object’s state save neither loses nor duplicates', async () => {
    const name = 'two_objects';
    const ident = { namespace: ['acme', 'lake'], name };
    const job = await writeJob({ name, catalog: ['type: rest', `uri: ${nessie.uri}`, 'prefix: main'], files: [['data/e*.csv', 'events'], ['data/m*.csv', 'more']] });
    await writeCsv(name, 'e1.csv', 1, 100, 120);
    await writeCsv(name, 'm1.csv', 1001, 100, 120);
    const r1 = await run(job);
    ok(r1);
    assert.deepEqual(r1.objects.map((o) => o.rows_written), [100, 100]);

    await writeCsv(name, 'e2.csv', 101, 50, 60);
    await writeCsv(name, 'm2.csv', 1101, 50, 60);
    // `events` commits, then "crashes" before its state save; `more` commits after it.
    const r2 = await run(job, {
      hooks: {
        beforeStateSave: async (object) => {
          if (object === 'events') throw new Error('simulated crash before the state save');
        },
      },
    });
    assert.equal(r2.exit_code, 1, 'partial: one object failed');
    assert.deepEqual(r2.objects.map((o) => o.rows_written), [50, 50]);
    assert.match(r2.objects[0]?.error?.message ?? '', /simulated crash/);

    let t = await load('nessie', ident);
    assert.equal(snapshotsOf(t.metadata).length, 1, 'Nessie style: no history in the metadata');
    const newest = currentSnapshot(t.metadata)!;
    assert.equal(newest.summary['dativo.object'], 'more');
    assert.ok(newest.summary[stateKey('events')], 'the newest snapshot carries the other object’s checkpoint');
    assert.equal(JSON.parse(newest.summary[stateKey('events')]!).runId, r2.run_id);
    assert.equal(JSON.parse(newest.summary[stateKey('more')]!).runId, r2.run_id);

    // The state store still has run 1 for `events`: the table must win, so e2.csv is not read again.
    const r3 = await run(job);
    ok(r3);
    assert.deepEqual(r3.objects.map((o) => o.rows_written), [0, 0]);
    t = await load('nessie', ident);
    const rows = await readBack(t);
    assert.deepEqual(rows.map((r) => r['id']), [...range(1, 150), ...range(1001, 150)]);

    // Maintenance refuses: files other Nessie commits use are invisible in this view.
    await withCatalog('nessie', async (c) => {
      await assert.rejects(expireSnapshots(c, ident, storage, { retainLast: 1 }), (err: DativoError) => err.code === 'CATALOG_INVALID' && /Nessie/.test(err.message));
      assert.throws(() => assertFullHistory(c, 'lake.two_objects'), /Nessie/);
    });
    await withCatalog('rest', async (c) => assertFullHistory(c, 'any'));
  });
});

test('Nessie style: a lost commit response while another job commits to the same table; the run succeeds and every row is there once', async () => {
  const name = 'shared_nessie';
  const ident = { namespace: ['acme', 'lake'], name };
  const catalog = ['type: rest', `uri: ${nessie.uri}`, 'prefix: main'];
  const ours = await writeJob({ name, catalog, files: [['data/*.csv', 'events']] });
  const otherDir = `${name}_other`;
  const other = await writeJob({ name: otherDir, catalog, files: [['data/*.csv', 'others']] });
  // the other job targets the same table
  await writeFile(other, (await readFile(other, 'utf8')).replace(`table: ${otherDir}`, `table: ${name}`));
  await writeCsv(name, 'a.csv', 1, 100, 120);
  ok(await run(ours));
  await writeCsv(name, 'b.csv', 101, 100, 60);
  await writeCsv(otherDir, 'x.csv', 5001, 30, 60);
  let otherRun: RunSummary | undefined;
  // Our commit lands; before its answer is sent the other job commits on top; then our connection drops.
  nessie.addFault({ op: 'commit', when: 'after', action: [{ call: async () => void (otherRun = await run(other)) }, { close: true }] });
  const r = await run(ours);
  ok(r);
  assert.ok(otherRun);
  ok(otherRun);
  assert.equal(r.objects[0]?.rows_written, 100);
  const t = await load('nessie', ident);
  assert.equal(snapshotsOf(t.metadata).length, 1);
  const newest = currentSnapshot(t.metadata)!;
  assert.equal(newest.summary['dativo.run-id'], otherRun.run_id, 'the other job committed last');
  assert.equal(JSON.parse(newest.summary[stateKey('events')]!).runId, r.run_id, 'and carried our checkpoint forward');
  const rows = await readBack(t);
  assert.deepEqual(rows.map((row) => row['id']), [...range(1, 200), ...range(5001, 30)]);
  // our state was saved: nothing is read again
  const again = await run(ours);
  ok(again);
  assert.equal(again.objects[0]?.rows_written, 0);
});
