/**
 * `dativo schedule` end to end: the real CLI schedules real `dativo run`
 * children over CSV jobs into Iceberg tables (two tenants), records them in
 * the run log that `dativo runs` reads, and stops on SIGTERM — waiting for a
 * run within the grace period, or stopping one paused before its commit, so
 * nothing lands and the next run writes every row once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { dativo, dativoArgv, jsonLine, logLines, project, type Project } from './helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: events
version: "1.0"
domain: sched
schema:
  - {name: id, type: long, required: true}
  - {name: label, type: string}
primary_key: [id]
`;

function job(tenant: string): string {
  return [
    `tenant_id: ${tenant}`,
    'source_connector: csv',
    'target_connector: iceberg',
    'asset_path: asset.yaml',
    'source:',
    `  files: [{path: "data/${tenant}/*.csv", object: events}]`,
    '  incremental: {strategy: file_modified_time}',
    '  settle_seconds: 0',
    'target:',
    '  warehouse: wh',
    `state: {path: state/${tenant}.json}`,
    'reject_dir: rejects',
    '',
  ].join('\n');
}

interface Started {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startSchedule(pr: Project, runner: string, env: Record<string, string> = {}): Started {
  const inherited: Record<string, string | undefined> = { ...process.env };
  delete inherited['DATIVO_STATE_DIR'];
  delete inherited['DATIVO_REJECT_DIR'];
  delete inherited['DATIVO_PAUSE_AT'];
  delete inherited['DATIVO_RUN_LOG'];
  const child = spawn(process.execPath, dativoArgv(['schedule', runner]), { cwd: pr.dir, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  // Never leave a scheduler behind a failed assertion.
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void exited.then(() => clearTimeout(guard));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Rec {
  schedule: string;
  job: string;
  tenant: string;
  attempt: number;
  status: string;
  exit_code?: number;
  rows_written?: number;
  error_code?: string;
}

async function runLog(pr: Project): Promise<Rec[]> {
  const text = existsSync(pr.p('runs.ndjson')) ? await readFile(pr.p('runs.ndjson'), 'utf8') : '';
  const byId = new Map<string, Rec>();
  for (const l of text.split('\n')) if (l !== '') byId.set((JSON.parse(l) as { id: string }).id, JSON.parse(l) as Rec);
  return [...byId.values()];
}

const ids = async (pr: Project, tenant: string): Promise<bigint[]> =>
  (await readWarehouseTable(pr.p('wh'), `${tenant}.sched`, 'events')).map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : 1));

let pr: Project;

before(async () => {
  pr = await project('schedule-cli');
  await pr.write('asset.yaml', ASSET);
  await pr.write('t1.yaml', job('t1'));
  await pr.write('t2.yaml', job('t2'));
  await pr.write('data/t1/a.csv', 'id,label\n1,one\n2,two\n');
  await pr.write('data/t2/a.csv', 'id,label\n10,ten\n11,eleven\n12,twelve\n');
  await pr.write('broken.yaml', job('t3').replace('source_connector: csv', 'source_connector: csv\nsourse: {}'));
});
after(() => pr.cleanup());

describe('dativo schedule', () => {
  it('an invalid runner file: every problem with file and key, exit 3, nothing run', async () => {
    await pr.write(
      'bad-runner.yaml',
      'run_log: bad-runs.ndjson\nschedules:\n  - {name: a, config: t1.yaml, cron: "not a cron"}\n  - {name: a, config: missing.yaml, interval_seconds: 60, timezone: Nowhere/City}\n',
    );
    const r = await dativo(['schedule', 'bad-runner.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const f = pr.p('bad-runner.yaml');
    assert.match(r.stderr, /error \[CONFIG_INVALID\]/);
    for (const key of ['schedules[0].cron', 'schedules[1].name', 'schedules[1].timezone', 'schedules[1].config']) assert.ok(r.stderr.includes(`${f}: ${key}: `), `${key} in ${r.stderr}`);
    assert.equal(existsSync(pr.p('bad-runs.ndjson')), false);
  });

  it('runs real jobs of two tenants as child processes, records them, skips an invalid job, stops on SIGTERM', async () => {
    await pr.write(
      'runner.yaml',
      [
        'run_log: runs.ndjson',
        'concurrency_per_tenant: 1',
        // Later ticks' runs (reading nothing) may still be going at SIGTERM: stopped, not waited for.
        'shutdown_grace_seconds: 0.5',
        'schedules:',
        '  - {name: t1_events, config: t1.yaml, interval_seconds: 1}',
        '  - {name: t2_events, config: t2.yaml, interval_seconds: 1, tags: {tier: gold}}',
        '  - {name: t3_broken, config: broken.yaml, interval_seconds: 1}',
        '',
      ].join('\n'),
    );
    const s = startSchedule(pr, 'runner.yaml');
    await until(async () => {
      const recs = await runLog(pr);
      return ['t1', 't2'].every((t) => recs.some((r) => r.tenant === t && r.status === 'succeeded' && r.rows_written! > 0));
    }, 'a successful run of each job');
    s.child.kill('SIGTERM');
    const { code } = await s.exited;
    assert.equal(code, 0, s.stderr());

    assert.match(s.stderr(), /skipped schedule "t3_broken" \(schedules\[2\]\): its job file does not load/);
    assert.match(s.stderr(), /sourse: unknown key/);
    const lines = logLines(s.stderr());
    const finished = lines.filter((l) => l['msg'] === 'run finished');
    const first = (t: string) => finished.find((l) => l['tenant'] === t && Number(l['rows_written']) > 0)!;
    assert.deepEqual([first('t1')['job'], first('t1')['exit_code'], first('t1')['attempt'], first('t1')['rows_written']], ['t1', 0, 1, 2]);
    assert.deepEqual([first('t2')['job'], first('t2')['rows_written']], ['t2', 3]);
    assert.equal(typeof first('t1')['duration_ms'], 'number');
    assert.ok(lines.some((l) => l['msg'] === 'scheduler stopped'));
    // The children's own log lines came through (job_started of `dativo run`).
    assert.ok(lines.some((l) => l['event_type'] === 'job_started' && l['tenant'] === 't1'));
    // Whatever number of ticks ran, each row is in its tenant's table once.
    assert.deepEqual(await ids(pr, 't1'), [1n, 2n]);
    assert.deepEqual(await ids(pr, 't2'), [10n, 11n, 12n]);
    const recs = await runLog(pr);
    assert.ok(
      // A later run stopped at SIGTERM aborted (or died of the signal while starting up: also ABORTED).
      recs.every((r) => (r.status === 'succeeded' && r.exit_code === 0) || (r.status === 'stopped' && r.error_code === 'ABORTED')),
      JSON.stringify(recs),
    );
    assert.equal(recs.filter((r) => r.tenant === 't3').length, 0);

    // `dativo runs` reads that log: filters, JSON and a table.
    const json = await dativo(['runs', 'runner.yaml', '--tenant', 't2', '--json'], { cwd: pr.dir });
    assert.equal(json.code, 0, json.stderr);
    const out = jsonLine<{ run_log: string; runs: Rec[] }>(json.stdout);
    assert.equal(out.run_log, pr.p('runs.ndjson'));
    assert.ok(out.runs.length >= 1 && out.runs.every((r) => r.tenant === 't2' && r.schedule === 't2_events'));
    const table = await dativo(['runs', '--run-log', 'runs.ndjson', '--job', 't1'], { cwd: pr.dir });
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trim().split('\n');
    assert.match(rows[0]!, /^STARTED\s+SCHEDULE\s+TENANT\s+ATTEMPT\s+STATUS\s+EXIT\s+ROWS\s+DURATION\s+ERROR\s+NEXT RETRY$/);
    assert.equal(rows.length, 1 + recs.filter((r) => r.job === 't1').length);
    assert.ok(rows.some((r) => /t1_events \(t1\)\s+t1\s+1\s+succeeded\s+0\s+2\s+\d+\.\d s$/.test(r)), table.stdout);
    const newest = await dativo(['runs', '--run-log', 'runs.ndjson', '--limit', '1'], { cwd: pr.dir });
    assert.equal(newest.stdout.trim().split('\n').length, 2);
    const bad = await dativo(['runs', '--run-log', 'runs.ndjson', '--limit', 'x'], { cwd: pr.dir });
    assert.equal(bad.code, 3);
  });

  it('SIGTERM during a run past the grace period: the run is stopped before its commit, and the next run writes every row once', async () => {
    await pr.write('data/t9/a.csv', 'id,label\n100,a\n101,b\n');
    await pr.write('t9.yaml', job('t9'));
    await pr.write(
      'stop-runner.yaml',
      ['run_log: stop-runs.ndjson', 'shutdown_grace_seconds: 0.5', 'kill_grace_seconds: 30', 'schedules:', '  - {name: t9_events, config: t9.yaml, interval_seconds: 1}', ''].join('\n'),
    );
    const s = startSchedule(pr, 'stop-runner.yaml', { DATIVO_PAUSE_AT: 'before_commit', DATIVO_PAUSE_MS: '120000' });
    await until(() => s.stderr().includes('paused at before_commit'), 'the run to pause before its commit');
    s.child.kill('SIGTERM');
    const { code } = await s.exited;
    assert.equal(code, 0, s.stderr());
    const lines = logLines(s.stderr());
    assert.ok(lines.some((l) => l['msg'] === 'run stopping' && l['reason'] === 'grace period over'));
    const fin = lines.filter((l) => l['msg'] === 'run finished');
    assert.equal(fin.length, 1);
    assert.deepEqual([fin[0]!['status'], fin[0]!['exit_code'], fin[0]!['error_code']], ['stopped', 2, 'ABORTED']);
    assert.equal(lines.filter((l) => l['msg'] === 'retry scheduled').length, 0);
    // Nothing committed, no state saved.
    assert.equal(existsSync(pr.p('state/t9.json')), false);
    const again = await dativo(['run', 't9.yaml', '--json'], { cwd: pr.dir });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(await ids(pr, 't9'), [100n, 101n]);
  });
});
