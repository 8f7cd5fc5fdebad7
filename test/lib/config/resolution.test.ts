import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { builtinRecipePath, loadJob, loadRecipe, packageRoot } from '../../../lib/config/index.js';
import { ORDERS_ASSET, problemsOf, tempTree } from './helpers.js';

test('relative paths: job folder first, then cwd (Python jobs were cwd-relative); job-relative outputs', async () => {
  const t = await tempTree();
  try {
    // Recipe and asset exist only relative to cwd; data file only next to the job.
    await t.write('connectors/csv.yaml', 'name: csv\ntype: csv\nroles: [source]\n');
    await t.write('assets/orders.yaml', ORDERS_ASSET);
    await t.write('jobs/acme/in/a.csv', 'id\n');
    await t.write('data/b.csv', 'id\n');
    // The job-folder copy wins when both exist.
    await t.write('jobs/acme/connectors/tgt.yaml', 'name: tgt\ntype: parquet\ncatalog: none\n');
    await t.write('connectors/tgt.yaml', 'name: other\ntype: other\n');
    const job = await t.write(
      'jobs/acme/orders.yaml',
      `tenant_id: acme
source_connector_path: connectors/csv.yaml
target_connector_path: connectors/tgt.yaml
asset_path: assets/orders.yaml
source:
  files: [in/a.csv, data/b.csv, "in/*.csv", "s3://bucket/x.csv", /abs/c.csv]
target: {warehouse: ../../wh}
reject_dir: rejects
state: {path: state/orders.json}
`,
    );
    const plan = await loadJob(job, { cwd: t.dir, env: {} });
    const jobDir = path.join(t.dir, 'jobs/acme');
    assert.equal(plan.source.type, 'csv');
    assert.equal(plan.target.type, 'parquet');
    assert.equal(plan.asset.file, path.join(t.dir, 'assets/orders.yaml'));
    assert.deepEqual(plan.source.objects, [
      {
        name: 'orders',
        config: {
          files: [
            { path: path.join(jobDir, 'in/a.csv') },
            { path: path.join(t.dir, 'data/b.csv') },
            { path: path.join(jobDir, 'in/*.csv') },
            { path: 's3://bucket/x.csv' },
            { path: '/abs/c.csv' },
          ],
        },
      },
    ]);
    assert.equal(plan.target.warehouse, pathToFileURL(path.join(t.dir, 'wh')).href);
    assert.equal(plan.rejectDir, path.join(jobDir, 'rejects'));
    assert.deepEqual(plan.state, { kind: 'file', path: path.join(jobDir, 'state/orders.json') });
  } finally {
    await t.cleanup();
  }
});

test('built-in recipes by name: iceberg target gets the embedded SQLite catalog and ingest_date partitioning', async () => {
  assert.equal(builtinRecipePath('iceberg'), path.join(packageRoot(), 'connectors/iceberg/recipe.yaml'));
  assert.equal(builtinRecipePath('../etc'), undefined);
  const iceberg = await loadRecipe(builtinRecipePath('iceberg')!);
  assert.deepEqual([iceberg.type, iceberg.roles, iceberg.partitioning_default], ['iceberg', ['target'], ['ingest_date']]);
  const parquet = await loadRecipe(builtinRecipePath('parquet')!);
  assert.deepEqual([parquet.type, parquet.catalog], ['parquet', { type: 'none' }]);

  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write(
      'j.yaml',
      `tenant_id: acme
source_connector: postgres
target_connector: iceberg
asset_path: orders.yaml
target: {warehouse: lake, namespace: raw, table: orders, parquet_target_size_mb: 64, row_group_rows: 5000, batch_rows: 2500, compression: snappy}
`,
    );
    const plan = await loadJob(job, { cwd: t.dir, env: {} });
    assert.equal(plan.source.type, 'postgres');
    assert.deepEqual(plan.source.objects, [{ name: 'orders', config: {} }]);
    assert.equal(plan.target.type, 'iceberg');
    assert.equal(plan.target.warehouse, pathToFileURL(path.join(t.dir, 'lake')).href);
    assert.deepEqual(plan.target.catalog, { type: 'sql', name: 'dativo', uri: `sqlite:${path.join(t.dir, 'lake', 'catalog.db')}` });
    assert.deepEqual(plan.target.partitioning, ['ingest_date']);
    assert.deepEqual(
      [plan.target.namespace, plan.target.table, plan.target.targetFileSizeBytes, plan.target.rowGroupRows, plan.target.batchRows, plan.target.compression],
      ['raw', 'orders', 64 * 1024 * 1024, 5000, 2500, 'snappy'],
    );
  } finally {
    await t.cleanup();
  }
});

test('catalogs: nessie via its Iceberg REST endpoint (branch main by default), rest with token, sqlite path relative to the job', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const head = 'tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\ntarget_connector: iceberg\n';
    const nessie = await t.write('n.yaml', `${head}target:\n  catalog: nessie\n  connection: {nessie: {uri: "http://nessie:19120/api/v1/"}}\n`);
    assert.deepEqual((await loadJob(nessie, { cwd: t.dir, env: {} })).target.catalog, {
      type: 'rest',
      name: 'nessie',
      uri: 'http://nessie:19120/iceberg',
      prefix: 'main',
    });
    const branch = await t.write('b.yaml', `${head}target:\n  catalog: nessie\n  branch: dev\n  connection: {nessie: {uri: "http://nessie:19120"}}\n`);
    const bc = (await loadJob(branch, { cwd: t.dir, env: {} })).target.catalog;
    assert.deepEqual(bc, { type: 'rest', name: 'nessie', uri: 'http://nessie:19120/iceberg', prefix: 'dev' });
    const envUri = await t.write('e.yaml', `${head}target: {catalog: nessie}\n`);
    assert.deepEqual((await loadJob(envUri, { cwd: t.dir, env: { NESSIE_URI: 'http://n:19120/iceberg/' } })).target.catalog, {
      type: 'rest',
      name: 'nessie',
      uri: 'http://n:19120/iceberg',
      prefix: 'main',
    });

    const rest = await t.write('r.yaml', `${head}target:\n  catalog: {type: rest, uri: "https://cat", token: "\${CAT_TOKEN}", warehouse: wh1, prefix: p}\n`);
    const rp = await loadJob(rest, { cwd: t.dir, env: { CAT_TOKEN: 'tok-123' } });
    assert.deepEqual(rp.target.catalog, { type: 'rest', name: 'rest', uri: 'https://cat', prefix: 'p', warehouse: 'wh1', token: 'tok-123' });
    assert.deepEqual(rp.secrets, ['tok-123']);

    const sqlite = await t.write('sub/s.yaml', `tenant_id: acme\nsource_connector: csv\nasset_path: ../orders.yaml\ntarget: {catalog: {type: sqlite, uri: "sqlite:cat/c.db"}}\n`);
    assert.deepEqual((await loadJob(sqlite, { cwd: t.dir, env: {} })).target.catalog, { type: 'sql', name: 'dativo', uri: `sqlite:${path.join(t.dir, 'sub/cat/c.db')}` });
  } finally {
    await t.cleanup();
  }
});

test('S3: flat connection block, env credentials and region fallback, path style default from endpoint', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const flat = await t.write(
      'f.yaml',
      `tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\ntarget:\n  connection: {bucket: lake, prefix: /a/b/, endpoint: "http://127.0.0.1:9000"}\n`,
    );
    const plan = await loadJob(flat, { cwd: t.dir, env: { AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: 'SK', AWS_REGION: 'eu-central-1' } });
    assert.equal(plan.target.warehouse, 's3://lake/a/b');
    assert.deepEqual(plan.target.s3, {
      bucket: 'lake',
      prefix: 'a/b',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-central-1',
      forcePathStyle: true,
      accessKeyId: 'AK',
      secretAccessKey: 'SK',
    });
    assert.deepEqual(plan.secrets, ['SK']);
    // An explicit local warehouse wins over an S3 connection.
    const local = await t.write('l.yaml', `tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\ntarget:\n  warehouse: wh\n  connection: {s3: {endpoint: "http://x"}}\n`);
    const lp = await loadJob(local, { cwd: t.dir, env: {} });
    assert.deepEqual([lp.target.warehouse, lp.target.s3], [pathToFileURL(path.join(t.dir, 'wh')).href, undefined]);
    // s3a:// is read as s3://.
    const s3a = await t.write('s3a.yaml', `tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\ntarget: {warehouse: "s3a://lake/p/"}\n`);
    const sp = await loadJob(s3a, { cwd: t.dir, env: {} });
    assert.deepEqual([sp.target.warehouse, sp.target.s3], ['s3://lake/p', { bucket: 'lake', prefix: 'p', region: 'us-east-1', forcePathStyle: false }]);
    const aws = await t.write('a.yaml', `tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\ntarget:\n  connection: {s3: {bucket: lake}}\n`);
    assert.deepEqual((await loadJob(aws, { cwd: t.dir, env: {} })).target.s3, { bucket: 'lake', region: 'us-east-1', forcePathStyle: false });
    assert.deepEqual((await loadJob(aws, { cwd: t.dir, env: { AWS_ENDPOINT_URL: 'http://minio:9000' } })).target.s3, {
      bucket: 'lake',
      region: 'us-east-1',
      endpoint: 'http://minio:9000',
      forcePathStyle: true,
    });
  } finally {
    await t.cleanup();
  }
});

test('sync mode and objects: incremental opt-in, {} and enabled:false disable, explicit sync_mode wins, object forms', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    await t.write('stripe.yaml', 'name: example_api\ntype: example_api\nroles: [source]\nincremental: {strategy: created, cursor_field_default: updated_at, lookback_days_default: 1}\n');
    const head = 'tenant_id: acme\nsource_connector_path: stripe.yaml\nasset_path: orders.yaml\n';
    const load = async (name: string, body: string) => loadJob(await t.write(name, head + body), { cwd: t.dir, env: {} });

    // Recipe incremental alone does not turn incremental on (Python: opt-in).
    const off = await load('off.yaml', 'source: {objects: [customers, {name: charges, expand: [x]}]}\n');
    assert.equal(off.syncMode, 'full_refresh');
    assert.equal(off.source.incremental, undefined);
    assert.equal(off.source.options['incremental'], undefined);
    assert.deepEqual(off.source.objects, [
      { name: 'customers', config: { name: 'customers' } },
      { name: 'charges', config: { name: 'charges', expand: ['x'] } },
    ]);
    assert.equal((await load('empty.yaml', 'source: {incremental: {}}\n')).syncMode, 'full_refresh');
    assert.equal((await load('disabled.yaml', 'source: {incremental: {enabled: false, lookback_days: 3}}\n')).syncMode, 'full_refresh');
    assert.equal((await load('fr.yaml', 'source: {incremental: {strategy: full_refresh}}\n')).syncMode, 'full_refresh');

    // The Stripe doc example ({lookback_days: 1}) works: cursor_field_default is mapped.
    const on = await load('on.yaml', 'source: {object: orders, incremental: {lookback_days: 1, lag_seconds: 5}}\n');
    assert.equal(on.syncMode, 'incremental_append');
    assert.deepEqual(on.source.incremental, { strategy: 'created', cursorField: 'updated_at', lookbackDays: 1, lagSeconds: 5 });
    assert.deepEqual(on.source.objects, [{ name: 'orders', config: { name: 'orders' } }]);

    // Recipe spellings in a job are mapped too.
    const spelled = await load('spelled.yaml', 'source: {incremental: {cursor_field_default: id, lookback_days_default: 4}}\n');
    assert.deepEqual(spelled.source.incremental, { strategy: 'created', cursorField: 'id', lookbackDays: 4, lagSeconds: 60 });

    // sync_mode: incremental_append with no job block uses the recipe's defaults,
    // except its lookback_days_default: only the job itself narrows a first run.
    const explicit = await load('ex.yaml', 'sync_mode: incremental_append\n');
    assert.deepEqual(explicit.source.incremental, { strategy: 'created', cursorField: 'updated_at', lookbackDays: 0, lagSeconds: 60 });
    const forced = await load('forced.yaml', 'sync_mode: full_refresh\nsource: {incremental: {strategy: updated_at}}\n');
    assert.equal(forced.syncMode, 'full_refresh');
    assert.equal(forced.source.incremental, undefined);

    // Strategy names map onto ours; the asset's cursor is the last fallback.
    const id = await load('id.yaml', 'source: {tables: [{name: public.orders, object: orders}], incremental: {strategy: append, cursor_field: id}}\n');
    assert.deepEqual(id.source.incremental, { strategy: 'id', cursorField: 'id', lookbackDays: 0, lagSeconds: 60 });
    const files = await load('files.yaml', 'source: {files: [{path: x.csv}], incremental: {strategy: file_modified_time}}\n');
    assert.deepEqual(files.source.incremental, { strategy: 'file_modified', lookbackDays: 0, lagSeconds: 60 });

    const dup = await t.write('dup.yaml', head + 'source: {objects: [a], object: a}\n');
    assert.deepEqual(await problemsOf(loadJob(dup, { cwd: t.dir, env: {} })), [
      { file: dup, key: 'source.object', message: 'object "a" is already read by source.objects[0] (line 4)' },
      { file: dup, key: 'source.object', message: '"a" is not the asset\'s object "orders" (line 4)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('asset: <name> without asset_path finds a single <name>.yaml next to the job or under schemas/', async () => {
  const t = await tempTree();
  try {
    await t.write('schemas/csv/v1.0/orders.yaml', ORDERS_ASSET);
    const job = await t.write('pipelines/acme/j.yaml', 'tenant_id: acme\nsource_connector: csv\nasset: orders\n');
    assert.equal((await loadJob(job, { cwd: t.dir, env: {} })).asset.file, path.join(t.dir, 'schemas/csv/v1.0/orders.yaml'));
    await t.write('schemas/csv/v2.0/orders.yaml', ORDERS_ASSET);
    assert.deepEqual(await problemsOf(loadJob(job, { cwd: t.dir, env: {} })), [
      {
        file: job,
        key: 'asset',
        message: `no asset_path given and "orders" is ambiguous: ${path.join(t.dir, 'schemas/csv/v1.0/orders.yaml')}, ${path.join(t.dir, 'schemas/csv/v2.0/orders.yaml')} (line 3)`,
      },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('a third-party connector module named by path resolves against the job folder; a bare name stays as is', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    await t.write('jobs/my-source.mjs', 'export default {};\n');
    const job = await t.write('jobs/j.yaml', 'tenant_id: acme\nsource_connector: ./my-source.mjs\nasset_path: ../orders.yaml\n');
    assert.equal((await loadJob(job, { cwd: t.dir, env: {} })).source.type, path.join(t.dir, 'jobs/my-source.mjs'));
    const named = await t.write('jobs/k.yaml', 'tenant_id: acme\nsource_connector: no_such_connector\nasset_path: ../orders.yaml\n');
    // Unknown names are the registry's to report.
    assert.equal((await loadJob(named, { cwd: t.dir, env: {} })).source.type, 'no_such_connector');
  } finally {
    await t.cleanup();
  }
});
