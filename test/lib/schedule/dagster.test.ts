/**
 * `dativo dagster export`: the file compiles (`python3 -m py_compile`) and
 * holds what the runner says. Dagster itself cannot be installed here, so a
 * recording stand-in for the `dagster` module (stub-dagster/) lets Python
 * import the file and report every definition it builds, and run its assets:
 * each asset run calls the real `dativo run --json` over CSV jobs, and the
 * exit-code mapping (0, 1 with rejects, 3 → no retry) is checked in Python.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dagsterCron, py } from '../../../lib/schedule/dagster.js';
import type { Schedule } from '../../../lib/schedule/config.js';
import { bin, dativo, project, type Project } from '../cli/helpers.js';

const STUB = path.join(import.meta.dirname, 'stub-dagster');

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: events
version: "1.0"
domain: dg
schema:
  - {name: id, type: long, required: true}
  - {name: label, type: string}
primary_key: [id]
`;

function job(tenant: string, files: string, mode: 'warn' | 'strict', state: string): string {
  return [
    `tenant_id: ${tenant}`,
    'source_connector: csv',
    'target_connector: iceberg',
    'asset_path: asset.yaml',
    'source:',
    `  files: ${files}`,
    '  settle_seconds: 0',
    'target:',
    '  warehouse: wh',
    `state: {path: state/${state}.json}`,
    'reject_dir: rejects',
    `schema_validation_mode: ${mode}`,
    '',
  ].join('\n');
}

const RUNNER = `concurrency_per_tenant: 1
max_concurrent_runs: 3
timeout_seconds: 120
retry_policy: {max_retries: 2, delay_seconds: 30}
schedules:
  - name: acme_events
    config: acme.yaml
    cron: "0 6 * * 1-5"
    timezone: Europe/Berlin
    tags: {tier: gold}
  - name: acme_events_nightly
    config: acme.yaml
    cron: "0 30 2 * * *"
    enabled: false
  - name: globex-two-objects
    config: globex.yaml
    interval_seconds: 300
    retry_policy: {max_retries: 0, delay_seconds: 5, retry_on_partial: true}
  - name: initech_strict
    config: initech.yaml
    interval_seconds: 45
  - name: broken
    config: broken.yaml
    interval_seconds: 60
`;

let pr: Project;

before(async () => {
  pr = await project('dagster');
  await pr.write('asset.yaml', ASSET);
  await pr.write('acme.yaml', job('acme', '[{path: data/acme.csv, object: events}]', 'strict', 'acme'));
  await pr.write('globex.yaml', job('globex', '[{path: data/g1.csv, object: first}, {path: data/g2.csv, object: second}]', 'warn', 'globex'));
  await pr.write('initech.yaml', job('initech', '[{path: data/i.csv, object: events}]', 'strict', 'initech'));
  await pr.write('broken.yaml', job('x', '[]', 'warn', 'x').replace('tenant_id: x', 'tenant_id: x\nbogus_key: 1'));
  await pr.write('data/acme.csv', 'id,label\n1,one\n2,two\n');
  await pr.write('data/g1.csv', 'id,label\n10,ten\n');
  await pr.write('data/g2.csv', 'id,label\n20,twenty\nnot-a-number,bad\n');
  await pr.write('data/i.csv', 'id,label\nxx,bad\n');
  await pr.write('runner.yaml', RUNNER);
});
after(() => pr.cleanup());

function python(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('python3', args, { cwd: pr.dir, env: { ...process.env, PYTHONPATH: STUB, PYTHONDONTWRITEBYTECODE: '1', ...env }, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Described {
  assets: { name: string; keys: string[][]; groups: string[]; skippable: boolean[]; retry: { max_retries: number; delay: number; backoff: string }; op_tags: Record<string, string> }[];
  jobs: { name: string; selection: string[][]; tags: Record<string, string> }[];
  schedules: { name: string; job: string; cron_schedule: string; execution_timezone: string; default_status: string; tags: Record<string, string> }[];
}

describe('dativo dagster export', () => {
  it('writes a code location that compiles and holds what the runner says', async () => {
    const r = await dativo(['dagster', 'export', 'runner.yaml', '-o', 'definitions.py'], { cwd: pr.dir });
    // The broken job is left out, said on stderr: exit 1 (partial).
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /skipped schedule "broken"/);
    assert.match(r.stderr, /note: schedule initech_strict: interval_seconds 45 has no exact 5-field cron; exported as "\*\/1 \* \* \* \*"/);
    assert.match(r.stderr, /wrote .*definitions\.py \(4 schedule\(s\)\); load it with: dagster dev -f definitions\.py/);
    const compiled = python(['-m', 'py_compile', 'definitions.py']);
    assert.equal(compiled.code, 0, compiled.stderr);

    const d = python([path.join(STUB, 'describe.py'), 'definitions.py']);
    assert.equal(d.code, 0, d.stderr);
    const defs = JSON.parse(d.stdout) as Described;
    assert.deepEqual(
      defs.assets.map((a) => [a.name, a.keys, a.groups, a.skippable]),
      [
        ['acme__acme', [['dativo', 'acme', 'acme']], ['acme'], [false]],
        ['globex__globex', [['dativo', 'globex', 'globex__first'], ['dativo', 'globex', 'globex__second']], ['globex', 'globex'], [true, true]],
        ['initech__initech', [['dativo', 'initech', 'initech']], ['initech'], [false]],
      ],
    );
    assert.deepEqual(defs.assets.map((a) => a.retry), [
      { max_retries: 2, delay: 30, backoff: 'EXPONENTIAL' },
      { max_retries: 0, delay: 5, backoff: 'EXPONENTIAL' },
      { max_retries: 2, delay: 30, backoff: 'EXPONENTIAL' },
    ]);
    assert.deepEqual(defs.assets[0]!.op_tags, { 'dativo/tenant': 'acme' });
    assert.deepEqual(
      defs.schedules.map((s) => [s.name, s.job, s.cron_schedule, s.execution_timezone, s.default_status]),
      [
        ['acme_events', 'acme_events_job', '0 6 * * 1-5', 'Europe/Berlin', 'RUNNING'],
        ["acme_events_nightly", "acme_events_nightly_job", "30 2 * * *", "UTC", "STOPPED"],
        ['globex_two_objects', 'globex_two_objects_job', '*/5 * * * *', 'UTC', 'RUNNING'],
        ['initech_strict', 'initech_strict_job', '*/1 * * * *', 'UTC', 'RUNNING'],
      ],
    );
    assert.deepEqual(defs.schedules[0]!.tags, { tier: 'gold', 'dativo/tenant': 'acme', 'dativo/schedule': 'acme_events' });
    // Both acme schedules select the one acme asset; the run queue limits runs by the tenant tag.
    assert.deepEqual(defs.jobs.map((j) => [j.name, j.selection, j.tags['dativo/tenant']]), [
      ['acme_events_job', [['dativo', 'acme', 'acme']], 'acme'],
      ['acme_events_nightly_job', [['dativo', 'acme', 'acme']], 'acme'],
      ['globex_two_objects_job', [['dativo', 'globex', 'globex__first'], ['dativo', 'globex', 'globex__second']], 'globex'],
      ['initech_strict_job', [['dativo', 'initech', 'initech']], 'initech'],
    ]);
    const text = (await pr.read('definitions.py')).toString();
    assert.match(text, /tag_concurrency_limits:\n {10}- key: "dativo\/tenant"\n {12}value: \{applyLimitPerUniqueValue: true\}\n {12}limit: 1/);
    assert.match(text, /max_concurrent_runs: 3/);
  });

  it('its assets run `dativo run --json` and map the exit codes', async () => {
    const cli = `${JSON.stringify(process.execPath)} --import ${JSON.stringify(import.meta.resolve('tsx'))} ${JSON.stringify(bin)}`;
    const r = python([path.join(STUB, 'materialize.py'), 'definitions.py', 'acme__acme', 'globex__globex', 'initech__initech'], { DATIVO_CLI: cli });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as Record<string, { results?: { key: string[]; metadata: Record<string, unknown> }[]; warnings: string[]; failure?: { description: string; allow_retries: boolean | null; metadata: Record<string, unknown> } }>;
    // 0: materialised with rows, snapshot id and run id.
    const acme = out['acme__acme']!;
    assert.equal(acme.failure, undefined, JSON.stringify(acme));
    assert.deepEqual(acme.results!.map((x) => x.key), [['dativo', 'acme', 'acme']]);
    const m = acme.results![0]!.metadata;
    assert.deepEqual([m['dativo/rows_written'], m['dativo/rows_rejected'], m['dativo/exit_code']], [['int', 2], ['int', 0], ['int', 0]]);
    assert.match(String((m['dativo/snapshot_id'] as unknown[])[1]), /^\d+$/);
    assert.match(String((m['dativo/run_id'] as unknown[])[1]), /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
    assert.deepEqual(acme.warnings, []);
    // 1 with retry_on_partial and no retries left: materialised with a warning and the rejected count.
    const globex = out['globex__globex']!;
    assert.equal(globex.failure, undefined, JSON.stringify(globex));
    assert.deepEqual(globex.results!.map((x) => [x.key[2], x.metadata['dativo/rows_written'], x.metadata['dativo/rows_rejected']]), [
      ['globex__first', ['int', 1], ['int', 0]],
      ['globex__second', ['int', 1], ['int', 1]],
    ]);
    assert.ok(globex.warnings.some((w) => /was partial: 1 record\(s\) rejected/.test(w)), JSON.stringify(globex.warnings));
    // 3 (strict mode met a bad record): a Failure that is not retried.
    const initech = out['initech__initech']!;
    assert.equal(initech.results?.length ?? 0, 0);
    assert.equal(initech.failure?.allow_retries, false);
    assert.match(initech.failure!.description, /failed permanently: \[VALIDATION_FAILED\]/);
    assert.equal(initech.failure!.metadata['dativo/exit_code'], 3);
  });

  it('py() writes Python literals; intervals become the cron they equal', () => {
    assert.equal(py({ a: [1, true, null, 'x"\\\n\u2028'] }), '{"a": [1, True, None, "x\\"\\\\\\n\u2028"]}');
    const s = (seconds: number) => dagsterCron({ trigger: { kind: 'interval', seconds } } as Schedule);
    assert.deepEqual(s(60), { cron: '* * * * *', timezone: 'UTC', exact: true });
    assert.deepEqual(s(900), { cron: '*/15 * * * *', timezone: 'UTC', exact: true });
    assert.deepEqual(s(7200), { cron: '0 */2 * * *', timezone: 'UTC', exact: true });
    assert.deepEqual(s(86400), { cron: '0 0 * * *', timezone: 'UTC', exact: true });
    assert.deepEqual(s(420), { cron: '*/7 * * * *', timezone: 'UTC', exact: false });
  });
});
