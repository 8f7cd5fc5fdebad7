/**
 * Config errors through the CLI: each exits 3, names the file and the key,
 * lists every problem at once, and leaves the data and state of an earlier
 * good run byte-identical.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dativo, jsonLine, ordersProject, snapshot, type Project } from './helpers.js';

let pr: Project;
let before1: Record<string, string>;

before(async () => {
  pr = await ordersProject('cfg');
  const good = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
  assert.equal(good.code, 0, good.stderr);
  await pr.write('data/b.csv', 'id,amount,at,day,note\n3,30.00,2024-01-03T00:00:00Z,2024-01-03,new\n');

  await pr.write(
    'unknown-keys.yaml',
    [
      'tenant_id: t1',
      'source_connector: csv',
      'asset_path: asset.yaml',
      'bogus: 1',
      'source:',
      '  files: [{path: "data/*.csv", object: orders}]',
      '  incremental: {strategy: file_modified_time, wat: 2}',
      'target:',
      '  warehous: wh',
      'state: {path: state/job.json}',
      '',
    ].join('\n'),
  );
  await pr.write('no-tenant.yaml', 'source_connector: csv\nasset_path: asset.yaml\ntarget: {warehouse: wh}\nstate: {path: state/job.json}\n');
  await pr.write('nope.yaml', 'tenant_id: t1\nsource_connector: nope\nasset_path: asset.yaml\ntarget: {warehouse: wh}\nstate: {path: state/job.json}\n');
  await pr.write('bad-asset.yaml', 'name: orders\nversion: "1.0"\nschema:\n  - {name: id, type: long}\n  - {name: x, type: varchar}\n');
  await pr.write(
    'bad-type.yaml',
    'tenant_id: t1\nsource_connector: csv\nasset_path: bad-asset.yaml\nsource:\n  files: ["data/*.csv"]\ntarget: {warehouse: wh}\nstate: {path: state/job.json}\n',
  );
  await pr.write(
    'missing-var.yaml',
    [
      'tenant_id: t1',
      'source_connector: csv',
      'asset_path: asset.yaml',
      'source:',
      '  files: ["data/*.csv"]',
      '  connection: {password: "${DATIVO_TEST_NOPE_PW}"}',
      'target: {warehouse: wh}',
      'state: {path: state/job.json}',
      '',
    ].join('\n'),
  );
  before1 = { ...(await snapshot(pr.p('wh'))), ...(await snapshot(pr.p('state'))) };
});

after(async () => {
  await pr?.cleanup();
});

async function untouched(): Promise<void> {
  assert.deepEqual({ ...(await snapshot(pr.p('wh'))), ...(await snapshot(pr.p('state'))) }, before1, 'warehouse and state are byte-identical');
  assert.deepEqual(await snapshot(pr.p('rejects')), {}, 'no reject file');
}

describe('dativo run with a bad config', { concurrency: 3 }, () => {
  it('unknown keys at the top level and nested are all listed, with file, key and line; exit 3', async () => {
    const r = await dativo(['run', 'unknown-keys.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const file = pr.p('unknown-keys.yaml');
    assert.match(r.stderr, /error \[CONFIG_INVALID\]/);
    assert.ok(r.stderr.includes(`${file}: bogus: unknown key (line 4)`), r.stderr);
    assert.ok(r.stderr.includes(`${file}: source.incremental.wat: unknown key (line 7)`), r.stderr);
    assert.ok(r.stderr.includes(`${file}: target.warehous: unknown key (did you mean "warehouse"?) (line 9)`), r.stderr);
    assert.equal(r.stdout, '');
  });

  it('a missing required key names file and key', async () => {
    const r = await dativo(['run', 'no-tenant.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(`${pr.p('no-tenant.yaml')}: tenant_id: required`), r.stderr);
  });

  it('an unknown connector names the job file and lists the known ones', async () => {
    const r = await dativo(['run', 'nope.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /error \[CONNECTOR_UNKNOWN\]: nope\.yaml: unknown connector "nope"; known connectors: [^\n]*\bcsv\b[^\n]*\bpostgres\b/);
  });

  it('an unknown asset type names the asset file, the column key and the type', async () => {
    const r = await dativo(['run', 'bad-type.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(`${pr.p('bad-asset.yaml')}: schema[1].type: unknown type "varchar"`), r.stderr);
  });

  it('a missing ${VAR} is named with file, key and line', async () => {
    const r = await dativo(['run', 'missing-var.yaml'], { cwd: pr.dir, env: { DATIVO_TEST_NOPE_PW: undefined } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^error \[CONFIG_MISSING_VAR\]: /m, 'the code docs/errors.md gives for an unset variable');
    const v = await dativo(['validate', 'missing-var.yaml', '--json'], { cwd: pr.dir, env: { DATIVO_TEST_NOPE_PW: undefined } });
    assert.equal(v.code, 3);
    assert.equal((JSON.parse(v.stdout) as { results: { error: { code: string } }[] }).results[0]?.error.code, 'CONFIG_MISSING_VAR');
    assert.ok(r.stderr.includes(`${pr.p('missing-var.yaml')}: source.connection.password: variable \${DATIVO_TEST_NOPE_PW} is not set (line 6)`), r.stderr);
  });

  it('--mode cloud refuses a connector that reads the local disk (run and validate), exit 3', async () => {
    const [r, v] = await Promise.all([
      dativo(['run', 'job.yaml', '--mode', 'cloud'], { cwd: pr.dir }),
      dativo(['validate', 'job.yaml', '--mode', 'cloud'], { cwd: pr.dir }),
    ]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /error \[CONNECTOR_NOT_ALLOWED\]: connector "csv" .*not allowed in --mode cloud/);
    assert.equal(v.code, 3, v.stderr);
    assert.match(v.stderr, /invalid: job\.yaml\n {2}\[CONNECTOR_NOT_ALLOWED\]/);
  });

  it('--json: one line with exit code 3 and every problem as {file, key, message}', async () => {
    const r = await dativo(['run', 'unknown-keys.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.exit_code, 3);
    assert.equal(s.error?.code, 'CONFIG_INVALID');
    assert.deepEqual(
      s.error?.problems?.map((p) => [p.file, p.key]).sort(),
      [
        [pr.p('unknown-keys.yaml'), 'bogus'],
        [pr.p('unknown-keys.yaml'), 'source.incremental.wat'],
        [pr.p('unknown-keys.yaml'), 'target.warehous'],
      ],
    );
  });
});

describe('dativo validate', { concurrency: true }, () => {
  it('a good job: exit 0, one "ok" line, nothing written', async () => {
    const r = await dativo(['validate', 'job.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: job\.yaml \(csv → parquet, 1 object\(s\), incremental_append\)\n$/);
  });

  it('good and bad jobs together: exit 3, every problem of every bad file listed', async () => {
    const r = await dativo(['validate', 'job.yaml', 'unknown-keys.yaml', 'missing-var.yaml', 'bad-type.yaml', 'nope.yaml'], {
      cwd: pr.dir,
      env: { DATIVO_TEST_NOPE_PW: undefined },
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /^ok: job\.yaml/);
    for (const f of ['unknown-keys.yaml', 'missing-var.yaml', 'bad-type.yaml', 'nope.yaml']) assert.ok(r.stderr.includes(`invalid: ${f}\n`), f);
    for (const key of ['bogus', 'source.incremental.wat', 'target.warehous', 'source.connection.password', 'schema[1].type']) {
      assert.ok(r.stderr.includes(`: ${key}: `), `${key} in\n${r.stderr}`);
    }
    assert.match(r.stderr, /\[CONNECTOR_UNKNOWN\] unknown connector "nope"/);
  });
});

describe('after the failures', () => {
  it('the warehouse and state of the good run are byte-identical and the pending file is still new', async () => {
    await untouched();
    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonLine(r.stdout).objects[0]?.rows_written, 1, 'b.csv is read by the next good run');
  });
});
