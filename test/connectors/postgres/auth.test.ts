/**
 * A wrong password is AUTH_FAILED (exit 3), checked against a private cluster
 * with scram-sha-256 auth: the shared test server trusts every connection, so
 * only an unknown role can fail there (see check-discover.test.ts).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import pgConnector from '../../../connectors/postgres/index.js';
import { ExitCode, isDativoError } from '../../../lib/errors.js';
import { silentLogger } from '../../../lib/log.js';
import { startPrivatePostgres, type PrivatePostgres } from '../../helpers/private-postgres.js';
import { dativo, jsonLine, project, snapshot, type Project } from '../../lib/cli/helpers.js';
import { makeAsset, makePlan } from './helpers.js';

const ROLE = 'dativo_pw';
const RIGHT = 'right-pass';
const WRONG = 'wr0ng-Pass-7f3a';

const opts = () => ({ signal: new AbortController().signal, log: silentLogger() });

describe('postgres: password authentication (private scram-sha-256 cluster)', () => {
  let server: PrivatePostgres | undefined;
  let p: Project | undefined;
  const connection = (password: string): Record<string, unknown> => ({
    host: server!.host,
    port: server!.port,
    user: ROLE,
    password,
    database: 'postgres',
  });
  const plan = (password: string) =>
    makePlan({ type: 'postgres', connection: connection(password), tables: [{ name: 'public.items', object: 'items' }], asset: makeAsset([['id', 'long', true], ['name', 'string']]) });

  before(async () => {
    server = await startPrivatePostgres();
    const admin = new pg.Client({ host: server.host, port: server.port, user: server.user, password: server.password, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${RIGHT}'`);
      await admin.query(`CREATE TABLE public.items (id bigint PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a'), (2, 'b')`);
      await admin.query(`GRANT SELECT ON public.items TO ${ROLE}`);
    } finally {
      await admin.end();
    }
    p = await project('pg-auth');
    await p.write('items.yaml', 'apiVersion: v3.0.2\nkind: DataContract\nname: items\nversion: "1.0"\nschema:\n  - {name: id, type: long, required: true}\n  - {name: name, type: string}\nprimary_key: [id]\n');
    await p.write(
      'job.yaml',
      [
        'tenant_id: t1',
        'source_connector: postgres',
        'asset_path: items.yaml',
        'source:',
        '  tables: [{name: public.items, object: items}]',
        `  connection: {host: ${server.host}, port: ${server.port}, user: ${ROLE}, database: postgres, password: "\${PG_TEST_PASSWORD}"}`,
        'target: {warehouse: wh}',
        'state: {path: state/job.json}',
        'reject_dir: rejects',
        '',
      ].join('\n'),
    );
  });
  after(async () => {
    await p?.cleanup();
    await server?.stop();
  });

  it('check() passes with the right password', async () => {
    await pgConnector.check!(plan(RIGHT), opts());
  });

  it('check() with a wrong password is AUTH_FAILED (fatal, exit 3) and does not show the password', async () => {
    await assert.rejects(pgConnector.check!(plan(WRONG), opts()), (e: unknown) => {
      assert.ok(isDativoError(e), `not a DativoError: ${String(e)}`);
      assert.equal(e.code, 'AUTH_FAILED');
      assert.equal(e.disposition, 'fatal');
      assert.equal(e.exitCode, ExitCode.PERMANENT);
      assert.equal(e.context['sqlstate'], '28P01');
      assert.match(e.message, /password authentication failed/);
      assert.ok(!e.message.includes(WRONG), e.message);
      assert.ok(!JSON.stringify(e.context).includes(WRONG));
      return true;
    });
  });

  it('dativo run with a wrong ${PG_TEST_PASSWORD} exits 3, prints no password, writes no state and no data', async () => {
    const before = await snapshot(p!.dir);
    const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p!.dir, env: { PG_TEST_PASSWORD: WRONG } });
    assert.equal(ran.code, 3, ran.stderr);
    const summary = jsonLine(ran.stdout);
    assert.equal(summary.exit_code, 3);
    assert.equal(summary.error?.code, 'AUTH_FAILED', ran.stdout);
    assert.equal(summary.objects[0]?.error?.code, 'AUTH_FAILED', ran.stdout);
    assert.equal(summary.objects[0]?.rows_written, 0);
    assert.ok(!ran.stdout.includes(WRONG), ran.stdout);
    assert.ok(!ran.stderr.includes(WRONG), ran.stderr);
    assert.deepEqual(await snapshot(p!.dir), before, 'the run wrote files');
    assert.deepEqual(await snapshot(p!.p('state')), {});
    assert.deepEqual(await snapshot(p!.p('wh')), {});
  });

  it('the same job with the right password runs (the failure above is the password only)', async () => {
    const ran = await dativo(['run', 'job.yaml', '--json'], { cwd: p!.dir, env: { PG_TEST_PASSWORD: RIGHT } });
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(jsonLine(ran.stdout).objects[0]?.rows_written, 2);
  });
});
