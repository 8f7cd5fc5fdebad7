import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadJob } from '../../../lib/config/index.js';
import { tempTree } from './helpers.js';

// A job as the Python tool's users wrote it: recipe with *_default keys and a
// connection_template, env vars with defaults, secrets in the tenant folder.
test('a Python-style job loads, merges the recipe deeply and expands variables from env and secrets', async () => {
  const t = await tempTree();
  try {
    await t.write(
      'connectors/sources/postgres.yaml',
      `name: postgres
type: postgres
description: Postgres source
default_engine: {type: meltano, options: {meltano: {tap: tap-postgres}}}
credentials: {type: basic, file_template: "/secrets/{tenant}/postgres.env"}
incremental: {strategy: updated_at, cursor_field_default: changed_at, lookback_days_default: 1}
rate_limits: {rps_default: 5}
connection_template:
  host: "\${PGHOST:-localhost}"
  port: "\${PGPORT:-5432}"
  database: "\${PGDATABASE}"
  user: "\${PGUSER}"
  password: "\${PGPASSWORD}"
  options: {sslmode: prefer, application_name: dativo}
`,
    );
    await t.write(
      'connectors/targets/iceberg.yaml',
      `name: iceberg
type: iceberg
default_engine: {type: native, options: {native: {library: pyiceberg}}}
connection_template:
  s3:
    endpoint: "\${S3_ENDPOINT}"
    access_key_id: "\${AWS_ACCESS_KEY_ID}"
    secret_access_key: "\${AWS_SECRET_ACCESS_KEY}"
    region: eu-west-1
    path_style_access: true
file_format: parquet
partitioning_default: [ingest_date]
`,
    );
    await t.write('assets/postgres/v1.0/invoices.yaml', `
apiVersion: v3.0.2
kind: DataContract
name: pg-invoices
version: 1.0
domain: finance
dataProduct: billing
source_type: postgres
object: invoices
schema:
  - {name: invoice_id, type: integer, required: true, primaryKey: true}
  - {name: customer_email, type: string, classification: PII}
  - {name: changed_at, type: timestamp, required: true}
team: {owner: fin@example.com}
finops: {cost_center: FIN-9}
`);
    await t.write('secrets/globex/postgres.env', '# db creds\nPGUSER=reader\nPGPASSWORD="s3cr3t pw"\nexport PGDATABASE=billing # inline comment\n');
    await t.write('secrets/globex/aws.json', JSON.stringify({ AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtn' }));
    await t.write('secrets/globex/s3_endpoint', '  http://127.0.0.1:9000\n');
    const job = await t.write(
      'jobs/globex/pg_invoices.yaml',
      `tenant_id: globex
environment: staging
source_connector: postgres
source_connector_path: connectors/sources/postgres.yaml
target_connector: iceberg
target_connector_path: connectors/targets/iceberg.yaml
asset: pg_invoices
asset_path: assets/postgres/v1.0/invoices.yaml
source:
  tables:
    - {name: billing.invoices, object: invoices}
  incremental:
    lookback_days: 2
  connection:
    host: "\${PGHOST:-db.internal}"
    options: {sslmode: require}
target:
  warehouse: s3://globex-lake/raw
  catalog: {type: sql, uri: "postgres://cat:\${CATALOG_PW}@db/catalog"}
  connection:
    s3:
      endpoint: "\${s3_endpoint}"
classification_overrides: {customer_email: SENSITIVE}
governance_overrides: {retention_days: 30}
schema_validation_mode: warn
retry_config: {max_retries: 2, retry_delay_seconds: 30}
logging: {level: WARNING, redaction: true}
`,
    );
    const plan = await loadJob(job, {
      cwd: t.dir,
      secretsDir: path.join(t.dir, 'secrets'),
      env: { PGHOST: '', CATALOG_PW: 'catpw', DATIVO_STATE_DIR: 'var/state' },
    });

    assert.equal(plan.name, 'pg_invoices');
    assert.equal(plan.tenantId, 'globex');
    assert.equal(plan.environment, 'staging');
    assert.equal(plan.mode, 'self_hosted');
    assert.equal(plan.syncMode, 'incremental_append');
    assert.equal(plan.validationMode, 'warn');
    assert.equal(plan.source.type, 'postgres');
    // *_default keys mapped; the job's lookback wins over the recipe's default.
    assert.deepEqual(plan.source.incremental, { strategy: 'updated', cursorField: 'changed_at', lookbackDays: 2, lagSeconds: 60 });
    assert.deepEqual(plan.source.options['incremental'], { strategy: 'updated_at', cursor_field: 'changed_at', lookback_days: 2 });
    // Deep merge: the job's connection.options.sslmode does not drop application_name.
    assert.deepEqual(plan.source.options['connection'], {
      host: 'db.internal', // PGHOST is empty, so the :-default applies
      port: '5432',
      database: 'billing',
      user: 'reader',
      password: 's3cr3t pw',
      options: { sslmode: 'require', application_name: 'dativo' },
    });
    assert.deepEqual(plan.source.options['engine'], { type: 'meltano', options: { meltano: { tap: 'tap-postgres' } } });
    assert.deepEqual(plan.source.rateLimits, { rps_default: 5 });
    assert.deepEqual(plan.source.objects, [{ name: 'invoices', config: { name: 'billing.invoices', object: 'invoices' } }]);

    assert.equal(plan.asset.name, 'pg-invoices');
    assert.equal(plan.asset.version, '1');
    assert.deepEqual(plan.asset.primaryKey, ['invoice_id']);
    assert.equal(plan.asset.fields[1]!.classification, 'SENSITIVE');
    assert.equal((plan.asset.raw['compliance'] as Record<string, unknown>)['retention_days'], 30);

    // Deep merge of the target: the template's keys survive the job's s3.endpoint.
    assert.equal(plan.target.type, 'iceberg');
    assert.equal(plan.target.warehouse, 's3://globex-lake/raw');
    assert.deepEqual(plan.target.s3, {
      bucket: 'globex-lake',
      prefix: 'raw',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-west-1',
      forcePathStyle: true,
      accessKeyId: 'AKIAEXAMPLE',
      secretAccessKey: 'wJalrXUtn',
    });
    assert.deepEqual(plan.target.catalog, { type: 'sql', name: 'dativo', uri: 'postgres://cat:catpw@db/catalog' });
    assert.equal(plan.target.namespace, 'globex.finance');
    assert.equal(plan.target.table, 'pg_invoices');
    assert.deepEqual(plan.target.partitioning, ['ingest_date']);
    assert.equal(plan.target.targetFileSizeBytes, 128 * 1024 * 1024);
    assert.equal(plan.target.rowGroupRows, 100_000);
    assert.equal(plan.target.compression, 'zstd');

    assert.deepEqual(plan.retry, { maxRetries: 2, initialDelaySeconds: 30, maxDelaySeconds: 300, backoffMultiplier: 2, retryableExitCodes: [1, 2], request: { maxAttempts: 3, minDelayMs: 30_000 } });
    assert.deepEqual(plan.logging, { level: 'warn', redaction: true });
    assert.deepEqual(plan.state, { kind: 'file', path: path.join(t.dir, 'var/state/globex/pg_invoices.json') });
    assert.equal(plan.rejectDir, path.join(t.dir, '.local/rejects/globex/pg_invoices'));
    // Everything from the secrets dir, plus values under secret-looking keys.
    assert.deepEqual(new Set(plan.secrets), new Set(['billing', 'reader', 's3cr3t pw', 'http://127.0.0.1:9000', 'AKIAEXAMPLE', 'wJalrXUtn']));
  } finally {
    await t.cleanup();
  }
});

test('a job with only built-in names: csv source, default parquet target, local warehouse and defaults', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', (await import('./helpers.js')).ORDERS_ASSET);
    await t.write('data/a.csv', 'id\n1\n');
    const job = await t.write(
      'demo.yml',
      `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
source:
  files:
    - path: data/a.csv
    - {file: data/*.csv, object: more}
`,
    );
    const plan = await loadJob(job, { cwd: t.dir, env: {}, mode: 'cloud' });
    assert.equal(plan.name, 'demo');
    assert.equal(plan.mode, 'cloud');
    assert.equal(plan.source.type, 'csv');
    assert.equal(plan.syncMode, 'full_refresh');
    assert.equal(plan.source.incremental, undefined);
    assert.deepEqual(plan.source.objects, [
      { name: 'orders', config: { files: [{ path: path.join(t.dir, 'data/a.csv') }] } },
      { name: 'more', config: { files: [{ file: path.join(t.dir, 'data/*.csv'), object: 'more' }] } },
    ]);
    assert.equal(plan.target.type, 'parquet');
    assert.deepEqual(plan.target.catalog, { type: 'none' });
    assert.equal(plan.target.warehouse, pathToFileURL(path.join(t.dir, 'warehouse')).href);
    assert.equal(plan.target.s3, undefined);
    assert.deepEqual(plan.target.partitioning, ['ingest_date']);
    assert.equal(plan.target.namespace, 'acme.sales');
    assert.equal(plan.target.table, 'orders_main');
    assert.equal(plan.validationMode, 'strict');
    assert.deepEqual(plan.retry, { maxRetries: 3, initialDelaySeconds: 5, maxDelaySeconds: 300, backoffMultiplier: 2, retryableExitCodes: [1, 2], request: {} });
    assert.deepEqual(plan.logging, { level: 'info', redaction: true });
    assert.deepEqual(plan.state, { kind: 'file', path: path.join(t.dir, '.local/state/acme/demo.json') });
    assert.deepEqual(plan.secrets, []);
  } finally {
    await t.cleanup();
  }
});

// A table's own cursor column beats the recipe's default (the Python merge
// let the recipe's cursor_field_default win and tracked the wrong column).
test('cursor precedence: job incremental.cursor_field > table cursor_field > asset cursor_field > recipe default', async () => {
  const t = await tempTree();
  try {
    await t.write('pg.yaml', 'name: postgres\ntype: postgres\nroles: [source]\nincremental: {strategy: updated_at, cursor_field_default: updated_at, lookback_days_default: 1}\n');
    await t.write(
      'asset.yaml',
      'apiVersion: v3.0.2\nkind: DataContract\nname: orders\nversion: "1.0"\nschema:\n  - {name: id, type: long, required: true}\n  - {name: created_at, type: timestamp}\n  - {name: updated_at, type: timestamp}\n  - {name: seen_at, type: timestamp}\ncursor_field: seen_at\nteam: {owner: a@example.com}\n',
    );
    const job = (extra: string, table: string): string =>
      `tenant_id: acme\nsource_connector_path: pg.yaml\nasset_path: asset.yaml\nsource:\n  tables: [{name: public.orders, object: orders${table}}]\n  incremental: {lookback_days: 2${extra}}\n`;
    await t.write('table.yaml', job('', ', cursor_field: created_at'));
    await t.write('explicit.yaml', job(', cursor_field: updated_at', ', cursor_field: created_at'));
    await t.write('asset-only.yaml', job('', ''));
    const cursor = async (f: string): Promise<string | undefined> => (await loadJob(path.join(t.dir, f), { cwd: t.dir, env: {} })).source.incremental?.cursorField;
    assert.equal(await cursor('table.yaml'), 'created_at');
    assert.equal(await cursor('explicit.yaml'), 'updated_at');
    assert.equal(await cursor('asset-only.yaml'), 'seen_at');
  } finally {
    await t.cleanup();
  }
});
