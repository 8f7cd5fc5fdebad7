import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadJob } from '../../../lib/config/index.js';
import { ORDERS_ASSET, problemsOf, tempTree } from './helpers.js';

test('unknown keys at several depths, wrong types and bad enums are all listed at once with file, key and line', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write(
      'job.yaml',
      `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
sorce: {}
source:
  incremental:
    strategy: updated_at
    cursor_feild: updated_at
target:
  warehous: ./wh
  row_group_rows: lots
  connection:
    s3: {bucket: b, secret_key: x}
retry_config: {max_retries: 2, delay: 5}
logging: {level: loud}
schema_validation_mode: lenient
`,
    );
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems, [
      { file: job, key: 'source.incremental.cursor_feild', message: 'unknown key (did you mean "cursor_field"?) (line 8)' },
      { file: job, key: 'target.row_group_rows', message: 'expected number, got string "lots" (line 11)' },
      { file: job, key: 'target.connection.s3.secret_key', message: 'unknown key (line 13)' },
      { file: job, key: 'target.warehous', message: 'unknown key (did you mean "warehouse"?) (line 10)' },
      { file: job, key: 'schema_validation_mode', message: 'Invalid option: expected one of "strict"|"warn" (line 16)' },
      { file: job, key: 'retry_config.delay', message: 'unknown key (line 14)' },
      { file: job, key: 'logging.level', message: 'must be one of trace, debug, info, warn, warning, error, critical, fatal, silent (any case) (line 15)' },
      { file: job, key: 'sorce', message: 'unknown key (did you mean "source"?) (line 4)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('missing required keys', async () => {
  const t = await tempTree();
  try {
    const job = await t.write('job.yaml', 'environment: prod\n');
    assert.deepEqual(await problemsOf(loadJob(job, { cwd: t.dir, env: {} })), [{ file: job, key: 'tenant_id', message: 'required' }]);

    const job2 = await t.write('job2.yaml', 'tenant_id: acme\n');
    assert.deepEqual(await problemsOf(loadJob(job2, { cwd: t.dir, env: {} })), [
      { file: job2, key: 'source_connector_path', message: 'required (or source_connector: <name> for a built-in connector)' },
      { file: job2, key: 'asset_path', message: 'required (the path of the asset definition)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('missing ${VAR}s are named with file and key, in the job and in a recipe, unless the job overrides the recipe key', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const recipe = await t.write(
      'recipes/pg.yaml',
      `name: pg
type: postgres
roles: [source]
connection_template:
  host: "\${PGHOST}"
  user: "\${PGUSER}"
  ssl: {ca: "\${PG_CA}"}
`,
    );
    const job = await t.write(
      'job.yaml',
      `tenant_id: acme
source_connector_path: recipes/pg.yaml
asset_path: orders.yaml
source:
  connection:
    host: db
    ssl: {ca: "\${CA_FILE:-/etc/ca.pem}"}
    password: "\${PGPASSWORD}"
    escaped: "$\${NOT_A_VAR}"
`,
    );
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems, [
      { file: job, key: 'source.connection.password', message: 'variable ${PGPASSWORD} is not set (line 8)' },
      { file: recipe, key: 'connection_template.user', message: 'variable ${PGUSER} is not set (line 6)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('bad YAML syntax names the file and line', async () => {
  const t = await tempTree();
  try {
    const job = await t.write('job.yaml', 'tenant_id: acme\nsource:\n  tables: [a, b\nasset_path: x.yaml\n');
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems, [
      { file: job, key: '', message: 'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ] at line 4, column 1' },
    ]);
    const dup = await t.write('dup.yaml', 'tenant_id: a\ntenant_id: b\n');
    assert.deepEqual(await problemsOf(loadJob(dup, { cwd: t.dir, env: {} })), [
      { file: dup, key: '', message: 'YAML syntax error: Map keys must be unique at line 2, column 1' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('missing recipe and asset files, a recipe with the wrong role, and problems inside the asset are reported together', async () => {
  const t = await tempTree();
  try {
    const asset = await t.write(
      'assets/bad.yaml',
      `name: bad
version: 1
schema:
  - {name: id, type: integer}
  - {name: id, type: varchar}
  - {name: total, type: decimal}
`,
    );
    const target = await t.write('recipes/src_only.yaml', 'name: src_only\ntype: csv\nroles: [source]\n');
    const job = await t.write(
      'jobs/job.yaml',
      `tenant_id: acme
source_connector_path: recipes/nope.yaml
target_connector_path: recipes/src_only.yaml
asset_path: assets/bad.yaml
`,
    );
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems, [
      {
        file: job,
        key: 'source_connector_path',
        message: `recipe file not found: recipes/nope.yaml (looked for ${path.join(t.dir, 'jobs/recipes/nope.yaml')} and ${path.join(t.dir, 'recipes/nope.yaml')}) (line 2)`,
      },
      { file: job, key: 'target_connector_path', message: `connector "src_only" (${target}) does not have the target role (roles: source) (line 3)` },
      { file: asset, key: 'schema[1].name', message: 'duplicate column "id" (first at schema[0])' },
      { file: asset, key: 'schema[1].type', message: 'unknown type "varchar" (expected one of: string, integer, long, bigint, int, int32, float, double, number, boolean, bool, date, timestamp, datetime, timestamptz, json, object, array, binary, bytes, decimal(p,s), numeric(p,s))' },
      { file: asset, key: 'schema[2].type', message: '"decimal" needs a precision and scale, e.g. decimal(18,2)' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('a schema failure in the job still reports the problems of the files it names', async () => {
  const t = await tempTree();
  try {
    const asset = await t.write('a.yaml', 'name: a\nversion: 1\nschema: [{name: x, type: strng}]\n');
    const job = await t.write('job.yaml', 'tenant_id: acme\nsource_connector: csv\nasset_path: a.yaml\ntypo: 1\n');
    assert.deepEqual(await problemsOf(loadJob(job, { cwd: t.dir, env: {} })), [
      { file: job, key: 'typo', message: 'unknown key (line 4)' },
      { file: asset, key: 'schema[0].type', message: 'unknown type "strng" (expected one of: string, integer, long, bigint, int, int32, float, double, number, boolean, bool, date, timestamp, datetime, timestamptz, json, object, array, binary, bytes, decimal(p,s), numeric(p,s))' },
    ]);
  } finally {
    await t.cleanup();
  }
});

test('a schema failure in the job still reports an unknown incremental strategy', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET);
    const job = await t.write('job.yaml', 'tenant_id: acme\nsource_connector: csv\nasset_path: orders.yaml\nsource: {incremental: {strategy: bogus}}\nschema_validation_mode: sometimes\n');
    const problems = await problemsOf(loadJob(job, { cwd: t.dir, env: {} }));
    assert.deepEqual(problems.map((p) => p.key).sort(), ['schema_validation_mode', 'source.incremental.strategy']);
    assert.match(problems.find((p) => p.key === 'source.incremental.strategy')!.message, /^unknown strategy "bogus" \(expected one of: created, updated, .*\) \(line 4\)$/);
  } finally {
    await t.cleanup();
  }
});

test('incremental and target resolution problems: unknown strategy, cursor strategy without cursor, S3 without bucket or catalog uri, nessie without uri', async () => {
  const t = await tempTree();
  try {
    await t.write('orders.yaml', ORDERS_ASSET.replace('primary_key: [id]', ''));
    const a = await t.write('a.yaml', `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
source: {incremental: {strategy: sometimes}}
`);
    assert.deepEqual(await problemsOf(loadJob(a, { cwd: t.dir, env: {} })), [
      {
        file: a,
        key: 'source.incremental.strategy',
        message:
          'unknown strategy "sometimes" (expected one of: created, updated, updated_at, updated_after, cursor_field, incremental, id, append, incremental_id, file_modified, file_modified_time, spreadsheet_modified_time, modified, source_state, tap_state) (line 4)',
      },
    ]);
    const b = await t.write('b.yaml', `tenant_id: acme
source_connector: example_api
asset_path: orders.yaml
source: {incremental: {strategy: created}}
target_connector: iceberg
target:
  connection: {s3: {endpoint: "http://x"}}
`);
    assert.deepEqual(await problemsOf(loadJob(b, { cwd: t.dir, env: {} })), [
      {
        file: b,
        key: 'source.incremental.cursor_field',
        message: `strategy "created" needs a cursor column: set source.incremental.cursor_field, a table's cursor_field or the asset's cursor_field`,
      },
      { file: b, key: 'target.connection.s3.bucket', message: 'required for an S3 warehouse' },
    ]);
    const c = await t.write('c.yaml', `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
target_connector: iceberg
target:
  warehouse: s3://lake/x
`);
    assert.deepEqual(await problemsOf(loadJob(c, { cwd: t.dir, env: {} })), [
      {
        file: c,
        key: 'target.catalog',
        message: 'an S3 warehouse needs a shared catalog: set target.catalog.uri (postgres://… or sqlite:/abs/path/catalog.db)',
      },
    ]);
    const d = await t.write('d.yaml', `tenant_id: acme
source_connector: csv
asset_path: orders.yaml
target: {catalog: nessie}
`);
    assert.deepEqual(await problemsOf(loadJob(d, { cwd: t.dir, env: {} })), [
      { file: d, key: 'target.connection.nessie.uri', message: 'required for the nessie catalog (e.g. http://nessie:19120)' },
    ]);
  } finally {
    await t.cleanup();
  }
});
