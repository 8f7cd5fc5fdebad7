/**
 * Redaction keeps machine output true: a database password `ties` (from the
 * secrets folder) does not turn the table `ties`, the object `parties` or
 * the file URIs `…/rt/ties/data/…` into `[REDACTED]`, on stdout (`--json`)
 * or in the logs; while a secret of any length is still masked where it
 * appears as a secret (a URI's password, `password=`, a secret key's value).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestPg, type TestPg } from '../../connectors/postgres/db.js';
import { dativo, jsonLine, logLines, project, type Project } from './helpers.js';

const PASSWORD = 'ties';
let db: TestPg;
let pr: Project;

const asset = (name: string): string =>
  `apiVersion: v3.0.2\nkind: DataContract\nname: ${name}\nversion: "1.0"\ndomain: rt\nschema:\n  - {name: id, type: long, required: true}\n  - {name: label, type: string}\nprimary_key: [id]\n`;

before(async () => {
  db = await createTestPg('dativo_redact');
  await db.client.query(`CREATE TABLE ties (id bigint PRIMARY KEY, label text); INSERT INTO ties VALUES (1, 'ties'), (2, 'parties')`);
  await db.client.query(`CREATE TABLE parties (id bigint PRIMARY KEY, label text); INSERT INTO parties VALUES (1, 'x')`);
  pr = await project('redact');
  await pr.write('secrets/t1/db.env', `DB_PASSWORD=${PASSWORD}\n`);
  const c = db.connection;
  for (const [name, table] of [
    ['ties', 'public.ties'],
    ['parties', 'public.parties'],
  ] as const) {
    await pr.write(`${name}.yaml`, asset(name));
    await pr.write(
      `${name}-job.yaml`,
      [
        'tenant_id: t1',
        'source_connector: postgres',
        `asset_path: ${name}.yaml`,
        'source:',
        `  tables: [{name: ${table}, object: ${name}}]`,
        `  connection: {host: "${String(c['host'])}", port: ${String(c['port'])}, user: ${String(c['user'])}, database: ${db.database}, password: "\${DB_PASSWORD}"}`,
        'target: {warehouse: wh}',
        `state: {path: state/${name}.json}`,
        'reject_dir: rejects',
        '',
      ].join('\n'),
    );
  }
});

after(async () => {
  await pr?.cleanup();
  await db?.drop();
});

describe('redaction keeps names and URIs true', { concurrency: 2 }, () => {
  for (const name of ['ties', 'parties']) {
    it(`password "${PASSWORD}", object "${name}": --json names the object and its files as they are, logs too`, async () => {
      const r = await dativo(['run', `${name}-job.yaml`, '--json', '--secrets-dir', 'secrets'], { cwd: pr.dir });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(`${r.stdout}${r.stderr}`, /REDACTED/, 'nothing here is the password');
      const s = jsonLine(r.stdout);
      const o = s.objects[0]!;
      assert.equal(o.name, name);
      assert.equal(o.files.length, 1);
      assert.match(o.files[0]!, new RegExp(`^file://${pr.dir}/wh/t1/rt/${name}/data/ingest_date=\\d{4}-\\d{2}-\\d{2}/part-${s.run_id}-${name}-00001\\.parquet$`));
      const finished = logLines(r.stderr).find((l) => l['event_type'] === 'object_finished');
      assert.equal(finished?.['object'], name);
      assert.equal(finished?.['msg'], `${name}: ${name === 'ties' ? 2 : 1} rows written in 1 file(s)`);
    });
  }

  it('a short secret in a URI, a password= pair or under a secret key is still masked', async () => {
    const own = await project('redact-uri');
    try {
      await own.write('secrets/t1/x.env', 'CAT_PASSWORD=pw\n');
      await own.write('ties.yaml', asset('ties'));
      await own.write('data/a.csv', 'id,label\n1,x\n');
      // A REST catalog nobody listens on, whose URI carries a password: the error quotes the URI.
      await own.write(
        'job.yaml',
        [
          'tenant_id: t1',
          'source_connector: csv',
          'target_connector: iceberg',
          'asset_path: ties.yaml',
          'source: {files: [{path: "data/*.csv", object: ties}]}',
          'target:',
          '  warehouse: wh',
          '  catalog: {type: rest, uri: "http://admin:${CAT_PASSWORD}@127.0.0.1:9/catalog"}',
          'state: {path: state/job.json}',
          '',
        ].join('\n'),
      );
      const r = await dativo(['run', 'job.yaml', '--json', '--secrets-dir', 'secrets'], { cwd: own.dir });
      assert.equal(r.code, 2, r.stderr);
      const s = jsonLine(r.stdout);
      assert.equal(s.error?.code, 'CATALOG_UNAVAILABLE', r.stdout);
      for (const out of [r.stdout, r.stderr]) {
        assert.doesNotMatch(out, /admin:pw@/, out);
        assert.match(out, /admin:\[REDACTED\]@127\.0\.0\.1:9/);
      }
    } finally {
      await own.cleanup();
    }
  });
});
