/**
 * runJobFile: load → run → redact, the one entry point the CLI calls. A
 * library user gets the summary `dativo run --json` prints, secrets masked;
 * a job that does not load returns a not-started summary (exit 3) and
 * touches nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { loadJob, runJob, runJobFile } from '../../../lib/index.js';
import { stringifyJson } from '../../../lib/json.js';
import { dativo, jsonLine, ordersJob, ordersProject, type Project } from '../cli/helpers.js';

const SECRET = 'pw-9c1e-Zq77x-Lk42Vb'; // long enough to be masked anywhere (LONG_SECRET)
let pr: Project;

before(async () => {
  pr = await ordersProject('runjobfile');
  // The password of the connection also names the file, so the read error quotes it.
  await pr.write(
    'secret.yaml',
    ordersJob({ lines: [] })
      .replace('files: [{path: "data/*.csv", object: orders}]', 'files: [{path: "data/${DB_PASSWORD}.csv", object: orders}]\n  connection: {password: "${DB_PASSWORD}"}')
      .replace('warehouse: wh', 'warehouse: wh-secret')
      .replace('state/job.json', 'state/secret.json'),
  );
  await pr.write('bad.yaml', ordersJob().replace('warehouse: wh', 'warehouse: wh-bad').replace('tenant_id: t1', 'tenant_id: t1\nschema_validation_mode_typo: 1'));
});

after(async () => {
  await pr?.cleanup();
});

describe('runJobFile', () => {
  it('runs a job file and returns its summary (exit 0, rows written)', async () => {
    const s = await runJobFile(pr.p('job.yaml'));
    assert.equal(s.exit_code, 0, stringifyJson(s));
    assert.equal(s.job, 'job');
    assert.equal(s.tenant, 't1');
    assert.match(s.run_id, /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.deepEqual(s.objects.map((o) => [o.name, o.rows_written]), [['orders', 2]]);
  });

  it('a secret of the connection quoted by an error is redacted in the summary, as the CLI prints it', async () => {
    const env = { ...process.env, DB_PASSWORD: SECRET };
    const s = await runJobFile(pr.p('secret.yaml'), { env });
    assert.equal(s.exit_code, 3);
    assert.equal(s.error?.code, 'SOURCE_NOT_FOUND');
    const text = stringifyJson(s);
    assert.ok(!text.includes(SECRET), text);
    assert.match(s.error?.message ?? '', /\[REDACTED\]/);
    // The same job through runJob: the raw summary does quote it (so the masking above is runJobFile's).
    const raw = await runJob(await loadJob(pr.p('secret.yaml'), { env }));
    assert.ok(stringifyJson(raw).includes(SECRET));
    // And the CLI prints the same summary (apart from the run's own id and times).
    const r = await dativo(['run', 'secret.yaml', '--json'], { cwd: pr.dir, env: { DB_PASSWORD: SECRET } });
    const cli = jsonLine(r.stdout);
    assert.equal(cli.error?.message.replace(pr.dir, '<dir>'), s.error?.message.replace(pr.dir, '<dir>'));
    assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
  });

  it('a job that does not load: not started (empty run_id), exit 3 with every problem, nothing created', async () => {
    const s = await runJobFile(pr.p('bad.yaml'));
    assert.equal(s.run_id, '');
    assert.equal(s.exit_code, 3);
    assert.equal(s.error?.code, 'CONFIG_INVALID');
    assert.ok((s.error?.problems ?? []).length >= 1);
    assert.match(stringifyJson(s.error?.problems), /schema_validation_mode_typo/);
    assert.deepEqual(s.objects, []);
    assert.equal(existsSync(pr.p('wh-bad')), false, 'no warehouse folder');
  });

  it('log may be a function of the plan (how the CLI builds its logger)', async () => {
    let seen: string | undefined;
    const { silentLogger } = await import('../../../lib/log.js');
    const s = await runJobFile(pr.p('job.yaml'), {
      log: (plan) => {
        seen = plan.tenantId;
        return silentLogger();
      },
    });
    assert.equal(s.exit_code, 0);
    assert.equal(seen, 't1');
  });
});
