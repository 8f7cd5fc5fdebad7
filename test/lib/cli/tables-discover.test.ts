/**
 * `dativo tables list|show` over the embedded SQLite catalog a job wrote, and
 * `dativo discover` turning a real Postgres table into an asset the job then
 * runs with as is.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { dativo, project, type Project } from './helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: events
version: "1.0"
domain: shop
schema:
  - {name: id, type: long, required: true}
  - {name: label, type: string}
primary_key: [id]
team: {owner: data@example.com}
`;

describe('dativo tables', () => {
  let p: Project;
  before(async () => {
    p = await project('tables');
    await p.write('asset.yaml', ASSET);
    await p.write('data/a.csv', 'id,label\n1,one\n2,two\n3,\n');
    await p.write(
      'job.yaml',
      'tenant_id: t1\nsource_connector: csv\ntarget_connector: iceberg\nasset_path: asset.yaml\nsource:\n  files: [{path: data/a.csv, object: events}]\n  incremental: {strategy: file_modified_time}\ntarget: {warehouse: wh}\nstate: {path: state.json}\n',
    );
    const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p.dir });
    assert.equal(ran.code, 0, ran.stderr);
  });
  after(() => p.cleanup());

  it('list: every table of the catalog with its row count (from the job, or --warehouse)', async () => {
    const byJob = await dativo(['tables', 'list', 'job.yaml'], { cwd: p.dir });
    assert.equal(byJob.code, 0, byJob.stderr);
    assert.match(byJob.stdout, /^t1\.shop\.events\t3 rows\tfile:\/\/.*\/wh\/t1\/shop\/events\n$/);
    const json = await dativo(['tables', 'list', '--warehouse', 'wh', '--json'], { cwd: p.dir });
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as { table: string; 'total-records': string }[];
    assert.deepEqual(rows.map((r) => [r.table, r['total-records']]), [['t1.shop.events', '3']]);
  });

  it('show: schema with field ids (system columns included) and the snapshot with its run id', async () => {
    const shown = await dativo(['tables', 'show', 't1.shop.events', '--warehouse', 'wh', '--json'], { cwd: p.dir });
    assert.equal(shown.code, 0, shown.stderr);
    const d = JSON.parse(shown.stdout) as { schema: { id: number; name: string; type: string; required: boolean }[]; snapshots: Record<string, string>[] };
    assert.deepEqual(
      d.schema.map((f) => [f.id, f.name, f.type, f.required]),
      [
        [1, 'id', 'long', true],
        [2, 'label', 'string', false],
        [3, '_dativo_ingested_at', 'timestamptz', true],
        [4, '_dativo_run_id', 'string', true],
      ],
    );
    assert.equal(d.snapshots.length, 1);
    assert.equal(d.snapshots[0]?.['operation'], 'append');
    assert.equal(d.snapshots[0]?.['total-records'], '3');
    assert.match(d.snapshots[0]?.['run-id'] ?? '', /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    const human = await dativo(['tables', 'show', 't1.shop.events', 'job.yaml'], { cwd: p.dir });
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^table t1\.shop\.events\n/);
    assert.match(human.stdout, /\n +1 {2}id {2}long {2}required\n/);
  });

  it('show of a table that does not exist, or with no catalog there: exit 3 with the reason', async () => {
    const missing = await dativo(['tables', 'show', 'shop.nope', '--warehouse', 'wh'], { cwd: p.dir });
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /SOURCE_NOT_FOUND.*shop\.nope/);
    const noCatalog = await dativo(['tables', 'list', '--warehouse', 'elsewhere'], { cwd: p.dir });
    assert.equal(noCatalog.code, 3);
    assert.match(noCatalog.stderr, /no catalog at .*elsewhere\/catalog\.db/);
  });
});

describe('dativo discover (Postgres)', () => {
  const db = `dativo_discover_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  let p: Project;
  before(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${db}`);
    const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: db });
    await c.connect();
    await c.query(`CREATE TABLE public.items (
      id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), seen_at timestamptz NOT NULL, meta jsonb, raw bytea, d date)`);
    await c.query(`INSERT INTO items VALUES (9007199254740993, 'zoë', 12.50, '2026-01-02 03:04:05.123456+00', '{"a": 12345678901234567890}', '\\x00ff', '1969-12-31'),
                                            (2, '', NULL, '2026-01-02 03:04:05+00', NULL, NULL, NULL)`);
    await c.end();
    p = await project('discover');
    await p.write(
      'job.yaml',
      `tenant_id: t1\nsource_connector: postgres\nasset_path: items.yaml\nsource:\n  tables: [{name: public.items, object: items}]\n  connection: {host: 127.0.0.1, port: 5432, user: postgres, database: ${db}}\ntarget: {warehouse: wh}\n`,
    );
    // A placeholder asset so the job loads; discover replaces it.
    await p.write('items.yaml', 'apiVersion: v3.0.2\nkind: DataContract\nname: items\nversion: "0"\nschema:\n  - {name: id, type: long}\nteam: {owner: a@example.com}\n');
  });
  after(async () => {
    await p.cleanup();
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await admin.end();
  });

  it('prints an asset YAML (types, nullability, primary key) that the job runs with as is', async () => {
    const found = await dativo(['discover', 'job.yaml'], { cwd: p.dir });
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /kind: DataContract/);
    assert.match(found.stdout, /name: id\n\s+type: long\n\s+required: true/);
    assert.match(found.stdout, /name: price\n\s+type: decimal\(12,2\)\n\s+required: false/);
    assert.match(found.stdout, /name: seen_at\n\s+type: timestamp\n\s+required: true/);
    assert.match(found.stdout, /primary_key:\n\s+- id/);
    await p.write('items.yaml', found.stdout);
    const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p.dir });
    assert.equal(ran.code, 0, ran.stderr);
    const summary = JSON.parse(ran.stdout) as { objects: { rows_written: number }[] };
    assert.equal(summary.objects[0]?.rows_written, 2);
  });
});
