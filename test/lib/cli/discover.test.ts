/**
 * `dativo discover` needs nothing but the source: a job whose asset file does
 * not exist yet (or that names no asset at all) is discovered, the YAML goes
 * to stdout, `--write` puts it at the job's asset_path (never over an
 * existing file). The asset it writes accepts every value the columns hold:
 * on real MariaDB, BIGINT UNSIGNED 18446744073709551615 and TINYINT(1) 127
 * and -128 (BOOL is TINYINT(1) there) land exactly, read back by DuckDB; on
 * Postgres, numeric(20,0) and smallint do the same.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { createTestMysql, type TestMysql } from '../../connectors/mysql/db.js';
import { createTestPg, type TestPg } from '../../connectors/postgres/db.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { dativo, jsonLine, parquetFiles, project, type Project } from './helpers.js';

type Column = { name: string; type: string; required: boolean; description?: string };

const job = (connector: string, connection: Record<string, unknown>, table: string, assetLine: string | undefined): string =>
  [
    'tenant_id: t1',
    `source_connector: ${connector}`,
    ...(assetLine !== undefined ? [assetLine] : []),
    'source:',
    `  tables: [{name: ${table}, object: nums}]`,
    `  connection: ${JSON.stringify(connection)}`,
    'target: {warehouse: wh}',
    'state: {path: state/job.json}',
    'reject_dir: rejects',
    '',
  ].join('\n');

/** discover → stdout; discover --write → the asset file; run → DuckDB rows by id. */
async function roundTrip(pr: Project): Promise<{ columns: Record<string, Column>; rows: Map<string, Record<string, unknown>> }> {
  const shown = await dativo(['discover', 'job.yaml'], { cwd: pr.dir });
  assert.equal(shown.code, 0, shown.stderr);
  await assert.rejects(access(pr.p('assets/nums.yaml')), 'without --write nothing is written');
  const written = await dativo(['discover', 'job.yaml', '--write'], { cwd: pr.dir });
  assert.equal(written.code, 0, written.stderr);
  assert.equal(written.stdout, shown.stdout, 'the same YAML on stdout');
  assert.equal(written.stderr, `wrote ${pr.p('assets/nums.yaml')}\n`);
  assert.equal(await readFile(pr.p('assets/nums.yaml'), 'utf8'), shown.stdout);

  const again = await dativo(['discover', 'job.yaml', '--write'], { cwd: pr.dir });
  assert.equal(again.code, 3, 'an existing asset is never replaced');
  assert.match(again.stderr, /^error \[CONFIG_INVALID\]: .*assets\/nums\.yaml exists: discover --write never replaces an asset/);

  const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
  assert.equal(ran.code, 0, ran.stderr);
  const s = jsonLine(ran.stdout);
  assert.deepEqual([s.objects[0]?.rows_read, s.objects[0]?.rows_written, s.objects[0]?.rows_rejected], [3, 3, 0], ran.stdout);
  const files = await parquetFiles(pr.p('wh'));
  assert.equal(files.length, 1);
  const back = await readParquetWithDuckDB(files[0]!);
  const asset = parse(shown.stdout) as { schema: Column[] };
  return {
    columns: Object.fromEntries(asset.schema.map((c) => [c.name, c])),
    rows: new Map(back.rows.map((r) => [String(r['id']), r])),
  };
}

describe('dativo discover needs nothing but the source', { concurrency: 2 }, () => {
  let my: TestMysql;
  let pg: TestPg;
  const projects: Project[] = [];
  const own = async (prefix: string): Promise<Project> => {
    const p = await project(prefix);
    projects.push(p);
    return p;
  };

  before(async () => {
    [my, pg] = await Promise.all([createTestMysql('dativo_disc'), createTestPg('dativo_disc')]);
    await my.conn.query(`CREATE TABLE nums (id INT PRIMARY KEY, big_u BIGINT UNSIGNED NOT NULL, tiny1 TINYINT(1), flag BOOL, note VARCHAR(10));
      INSERT INTO nums VALUES (1, 18446744073709551615, 127, 1, 'max'), (2, 0, -128, 0, 'min'), (3, 9223372036854775808, 0, NULL, NULL)`);
    await pg.client.query(`CREATE TABLE nums (id int PRIMARY KEY, big_u numeric(20,0) NOT NULL, small smallint, note text);
      INSERT INTO nums VALUES (1, 18446744073709551615, 127, 'max'), (2, 0, -128, 'min'), (3, 9223372036854775808, 0, NULL)`);
  });

  after(async () => {
    for (const p of projects) await p.cleanup();
    await Promise.all([my?.drop(), pg?.drop()]);
  });

  it('MariaDB: asset file not there yet → discover, --write, run: 18446744073709551615, 127 and -128 land exactly', async () => {
    const pr = await own('disc-my');
    await pr.write('job.yaml', job('mysql', my.connection, 'nums', 'asset_path: assets/nums.yaml'));
    const { columns, rows } = await roundTrip(pr);
    assert.deepEqual(
      Object.values(columns).map((c) => [c.name, c.type, c.required]),
      [
        ['id', 'int', true],
        ['big_u', 'decimal(20,0)', true],
        ['tiny1', 'int', false],
        ['flag', 'int', false],
        ['note', 'string', false],
      ],
    );
    assert.equal(columns['big_u']?.description, 'Source column type: bigint(20) unsigned (mysql).');
    assert.equal(columns['tiny1']?.description, 'Source column type: tinyint(1) (mysql).');
    assert.deepEqual([rows.get('1')?.['big_u'], rows.get('1')?.['tiny1'], rows.get('1')?.['flag']], ['18446744073709551615', 127, 1]);
    assert.deepEqual([rows.get('2')?.['big_u'], rows.get('2')?.['tiny1'], rows.get('2')?.['flag']], ['0', -128, 0]);
    assert.deepEqual([rows.get('3')?.['big_u'], rows.get('3')?.['tiny1'], rows.get('3')?.['flag']], ['9223372036854775808', 0, null]);
  });

  it('Postgres: asset file not there yet → discover, --write, run: numeric(20,0) and smallint land exactly', async () => {
    const pr = await own('disc-pg');
    await pr.write('job.yaml', job('postgres', pg.connection, 'public.nums', 'asset_path: assets/nums.yaml'));
    const { columns, rows } = await roundTrip(pr);
    assert.deepEqual([columns['big_u']?.type, columns['small']?.type], ['decimal(20,0)', 'int']);
    assert.equal(columns['big_u']?.description, 'Source column type: numeric(20,0) (postgres).');
    assert.deepEqual([rows.get('1')?.['big_u'], rows.get('1')?.['small']], ['18446744073709551615', 127]);
    assert.deepEqual([rows.get('2')?.['big_u'], rows.get('2')?.['small']], ['0', -128]);
  });

  it('a job that names no asset at all: discover prints the asset; --write says where it would need to write', async () => {
    const pr = await own('disc-none');
    await pr.write('job.yaml', job('mysql', my.connection, 'nums', undefined));
    const shown = await dativo(['discover', 'job.yaml'], { cwd: pr.dir });
    assert.equal(shown.code, 0, shown.stderr);
    const asset = parse(shown.stdout) as { name: string; object: string; tenant: string; primary_key: string[] };
    assert.deepEqual([asset.name, asset.object, asset.tenant, asset.primary_key], ['nums', 'nums', 't1', ['id']]);
    const write = await dativo(['discover', 'job.yaml', '--write'], { cwd: pr.dir });
    assert.equal(write.code, 3);
    assert.match(write.stderr, /CONFIG_INVALID.*--write needs the job's asset_path/);
    // run still needs the asset, and says so.
    const ran = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
    assert.equal(ran.code, 3);
    assert.match(ran.stderr, /asset_path: required/);
  });
});
