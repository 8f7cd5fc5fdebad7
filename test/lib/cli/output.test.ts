/**
 * What the CLI prints: `--json` is exactly one JSON line on stdout and
 * nothing else there; pino logs on stderr carry tenant, job, object and
 * run_id; secrets from `--secrets-dir` never reach stdout or stderr, not even
 * inside an error message that quotes them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dativo, jsonLine, logLines, ordersProject, type Project } from './helpers.js';

const SECRET = 'sEcr3t-T0ken-4a9f';
let pr: Project;

before(async () => {
  pr = await ordersProject('out');
  await pr.write('secrets/t1/x.env', `# tenant t1\nAPI_TOKEN=${SECRET}\n`);
  // Each job its own state (and so its own lock): the suite runs two tests at once.
  const secretJob = (files: string, warehouse: string, state: string): string =>
    [
      'tenant_id: t1',
      'source_connector: csv',
      'asset_path: asset.yaml',
      'source:',
      `  files: [{path: "${files}", object: orders}]`,
      '  credentials: {token: "${API_TOKEN}"}',
      '  connection: {password: "${API_TOKEN}"}',
      '  incremental: {strategy: file_modified_time}',
      'target:',
      `  warehouse: "${warehouse}"`,
      `state: {path: state/${state}.json}`,
      'reject_dir: rejects',
      '',
    ].join('\n');
  // The secret ends up in a path, so the errors quote it.
  await pr.write('secret-source.yaml', secretJob('data/${API_TOKEN}.csv', 'wh', 'secret-source'));
  await pr.write('blocker', 'a file\n');
  await pr.write('secret-target.yaml', secretJob('data/*.csv', 'blocker/${API_TOKEN}', 'secret-target'));
  // A config error that quotes the value it refused.
  await pr.write('secret-config.yaml', secretJob('data/*.csv', 'wh', 'secret-config').replace('file_modified_time}', 'file_modified_time, lookback_days: "${API_TOKEN}"}'));
});

after(async () => {
  await pr?.cleanup();
});

describe('CLI output', { concurrency: 2 }, () => {
  it('--json: one line {run_id, exit_code, objects:[{name, rows_read, rows_written, rows_rejected, files, cursor}]}; logs on stderr carry tenant/job/object/run_id', async () => {
    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 0, r.stderr);
    const s = jsonLine(r.stdout);
    assert.match(s.run_id, /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.equal(s.exit_code, 0);
    assert.equal(s.objects.length, 1);
    const o = s.objects[0]!;
    assert.deepEqual(Object.keys(o).filter((k) => ['name', 'rows_read', 'rows_written', 'rows_rejected', 'files', 'cursor'].includes(k)).sort(), [
      'cursor',
      'files',
      'name',
      'rows_read',
      'rows_rejected',
      'rows_written',
    ]);
    assert.deepEqual([o.name, o.rows_read, o.rows_written, o.rows_rejected, o.cursor], ['orders', 2, 2, 0, null]);
    assert.equal(o.files.length, 1);
    assert.match(o.files[0]!, new RegExp(`^file://.*/wh/t1/shop/orders/data/ingest_date=\\d{4}-\\d{2}-\\d{2}/part-${s.run_id}-orders-00001\\.parquet$`));

    const logs = logLines(r.stderr);
    assert.equal(logs.length, r.stderr.trim().split('\n').length, 'stderr holds only JSON log lines');
    assert.ok(logs.length >= 3);
    for (const l of logs) assert.deepEqual([l['tenant'], l['job'], l['run_id']], ['t1', 'job', s.run_id], JSON.stringify(l));
    const objectLines = logs.filter((l) => l['event_type'] === 'object_started' || l['event_type'] === 'object_finished');
    assert.equal(objectLines.length, 2);
    for (const l of objectLines) assert.equal(l['object'], 'orders');
  });

  it('without --json: a readable summary on stdout, --log-level warn silences info logs', async () => {
    const own = await ordersProject('out-text', { rows: ['3,3.00,2024-01-03T00:00:00Z,2024-01-03,c'] });
    const r = await dativo(['run', 'job.yaml', '--log-level', 'warn'], { cwd: own.dir }).finally(() => own.cleanup());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^run \d{8}T\d{6}Z-[0-9a-f]{6} of t1\/job: exit 0 in [\d.]+ s\n {2}orders: 1 read, 1 written, 0 rejected, 1 file\(s\)\n$/);
  });

  it('several jobs with --json: one line {exit_code: worst, runs: [...]}', async () => {
    const own = await ordersProject('out-multi');
    await own.write('nope.yaml', 'tenant_id: t1\nsource_connector: nope\nasset_path: asset.yaml\n');
    const r = await dativo(['run', 'job.yaml', 'nope.yaml', '--json'], { cwd: own.dir }).finally(() => own.cleanup());
    assert.equal(r.code, 3, r.stderr);
    const out = jsonLine<{ exit_code: number; runs: { exit_code: number; objects: unknown[]; error?: { code: string } }[] }>(r.stdout);
    assert.equal(out.exit_code, 3);
    assert.deepEqual(
      out.runs.map((x) => [x.exit_code, x.objects.length, x.error?.code]),
      [
        [0, 1, undefined],
        [3, 0, 'CONNECTOR_UNKNOWN'],
      ],
    );
  });

  it('a CSV column the asset does not have: one warning per column, every log key once', async () => {
    const own = await ordersProject('out-extra');
    await own.write('data/a.csv', 'id,amount,extra\n1,1.00,x\n2,2.00,y\n');
    const r = await dativo(['run', 'job.yaml'], { cwd: own.dir }).finally(() => own.cleanup());
    assert.equal(r.code, 0, r.stderr);
    const warnings = logLines(r.stderr).filter((l) => l['event_type'] === 'unknown_column');
    assert.deepEqual(warnings.map((w) => [w['object'], w['column']]), [['orders', 'extra']]);
    for (const line of r.stderr.trim().split('\n')) assert.ok((line.match(/"object":/g) ?? []).length <= 1, line);
  });

  for (const job of ['secret-source.yaml', 'secret-target.yaml']) {
    it(`a secret quoted by an error (${job}) is redacted on stdout and stderr, with --json and without`, async () => {
      // One after the other: a second run of a running job exits at once with JOB_LOCKED.
      const runs = [
        await dativo(['run', job, '--secrets-dir', 'secrets', '--log-level', 'debug'], { cwd: pr.dir }),
        await dativo(['run', job, '--secrets-dir', 'secrets', '--json'], { cwd: pr.dir }),
      ];
      for (const r of runs) {
        assert.equal(r.code, 3, r.stderr);
        assert.ok(!r.stdout.includes(SECRET), `stdout: ${r.stdout}`);
        assert.ok(!r.stderr.includes(SECRET), `stderr: ${r.stderr}`);
        assert.match(r.stdout, /\[REDACTED\]/, 'the error is reported, with the secret masked');
      }
      const s = jsonLine(runs[1]!.stdout);
      assert.equal(s.error?.code, job === 'secret-source.yaml' ? 'SOURCE_NOT_FOUND' : 'STORAGE_NOT_WRITABLE');
      assert.match(runs[0]!.stderr, /\[REDACTED\]/, 'the log line is there, masked');
    });
  }

  it('a config error quoting a secret value masks it (run and validate, with --json and without)', async () => {
    const runs = await Promise.all([
      dativo(['run', 'secret-config.yaml', '--secrets-dir', 'secrets'], { cwd: pr.dir }),
      dativo(['run', 'secret-config.yaml', '--secrets-dir', 'secrets', '--json'], { cwd: pr.dir }),
      dativo(['validate', 'secret-config.yaml', '--secrets-dir', 'secrets'], { cwd: pr.dir }),
      dativo(['validate', 'secret-config.yaml', '--secrets-dir', 'secrets', '--json'], { cwd: pr.dir }),
    ]);
    for (const r of runs) {
      assert.equal(r.code, 3, r.stderr);
      const all = `${r.stdout}${r.stderr}`;
      assert.ok(!all.includes(SECRET), all);
      assert.match(all, /source\.incremental\.lookback_days: expected number, got string \\?"\[REDACTED\]\\?"/);
    }
  });

  it('validate and state show do not print secrets either', async () => {
    const [v, st] = await Promise.all([
      dativo(['validate', 'secret-source.yaml', '--secrets-dir', 'secrets'], { cwd: pr.dir }),
      dativo(['state', 'show', 'secret-source.yaml', '--secrets-dir', 'secrets'], { cwd: pr.dir }),
    ]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(st.code, 0, st.stderr);
    for (const r of [v, st]) assert.ok(!`${r.stdout}${r.stderr}`.includes(SECRET));
  });
});
