/**
 * `dativo schedule --redis` through the CLI: two instances started at once
 * register each schedule once, a restart changes nothing, a schedule dropped
 * from runner.yaml is removed; Redis unreachable at start is exit 2
 * (QUEUE_UNAVAILABLE) after the bounded wait; a private redis-server killed
 * and restarted mid-schedule: the schedule keeps ticking (the scheduler
 * registers again, the worker reconnects); and two real `dativo worker`s on
 * a CSV → Iceberg job, the one running it SIGKILLed before its commit.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { queueName } from '../../../lib/schedule/redis.js';
import { freePort, ready, sleep, space, spawnProc, startWorker, stopProc, until, type Proc } from '../schedule/redis-helpers.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { dativo, dativoArgv, project, type Project } from './helpers.js';

const JOB = (tenant: string): string =>
  [`tenant_id: ${tenant}`, 'source_connector: csv', 'target_connector: iceberg', 'asset_path: asset.yaml', 'source:', `  files: [{path: "data/${tenant}/*.csv", object: events}]`, 'target:', '  warehouse: wh', `state: {path: state/${tenant}.json}`, ''].join('\n');
const ASSET = 'apiVersion: v3.0.2\nkind: DataContract\nname: events\nversion: "1.0"\ndomain: sched\nschema:\n  - {name: id, type: long, required: true}\n';

const procs: Proc[] = [];
const projects: Project[] = [];
after(async () => {
  for (const p of procs) await stopProc(p);
  for (const p of projects) await p.cleanup();
});

async function proj(): Promise<Project> {
  const pr = await project('sched-redis');
  projects.push(pr);
  await pr.write('asset.yaml', ASSET);
  await pr.write('a.yaml', JOB('ta'));
  await pr.write('b.yaml', JOB('tb'));
  return pr;
}

function schedule(pr: Project, args: string[]): Proc {
  const p = spawnProc(process.execPath, dativoArgv(['schedule', ...args]), { cwd: pr.dir });
  procs.push(p);
  return p;
}

const registered = (p: Proc): Promise<void> => until(() => p.lines().some((l) => l['event_type'] === 'schedules_registered'), 'the schedules to be registered');

describe('dativo schedule --redis', () => {
  it('two instances at once register each schedule once; a restart keeps them; a dropped schedule is removed', async () => {
    const s = await space('two-schedulers');
    try {
      const pr = await proj();
      await pr.write('runner.yaml', 'schedules:\n  - {name: a_every, config: a.yaml, interval_seconds: 3600}\n  - {name: b_cron, config: b.yaml, cron: "0 3 * * *", timezone: Europe/Berlin}\n');
      const args = ['runner.yaml', '--redis', 'redis://127.0.0.1:6379', '--prefix', s.prefix];
      const [x, y] = [schedule(pr, args), schedule(pr, args)];
      await Promise.all([registered(x), registered(y)]);
      const check = async (): Promise<void> => {
        const a = await s.queue('ta').getJobSchedulers();
        const b = await s.queue('tb').getJobSchedulers();
        assert.deepEqual(a.map((j) => [j.key, j.every]), [['a_every', 3_600_000]]);
        assert.deepEqual(b.map((j) => [j.key, j.pattern, j.tz]), [['b_cron', '0 3 * * *', 'Europe/Berlin']]);
        // One job per schedule: the every one waits for a worker, the cron one for 03:00 in Berlin.
        const ta = await s.queue('ta').getJobCounts('wait', 'delayed');
        assert.equal(ta['wait']! + ta['delayed']!, 1, JSON.stringify(ta));
        assert.equal((await s.queue('tb').getJobCounts('delayed')).delayed, 1);
        assert.equal(await s.redis.hget(`${s.prefix}:${queueName('ta')}:meta`, 'concurrency'), '1');
      };
      await check();
      x.child.kill('SIGTERM');
      assert.equal((await x.exited).code, 0, x.stderr());
      const z = schedule(pr, args);
      await registered(z);
      await check();
      for (const p of [y, z]) {
        p.child.kill('SIGTERM');
        assert.equal((await p.exited).code, 0);
      }
      await pr.write('runner.yaml', 'schedules:\n  - {name: a_every, config: a.yaml, interval_seconds: 3600}\n');
      const w = schedule(pr, args);
      await registered(w);
      assert.deepEqual((await s.queue('tb').getJobSchedulers()).length, 0);
      assert.equal((await s.queue('tb').getJobCounts('delayed')).delayed, 0);
      assert.ok(w.lines().some((l) => l['event_type'] === 'schedule_removed' && l['schedule'] === 'b_cron'));
      w.child.kill('SIGTERM');
      await w.exited;
    } finally {
      await s.close();
    }
  });

  it('Redis unreachable at start: retries for --redis-wait-seconds, then exit 2 QUEUE_UNAVAILABLE, the password not printed', async () => {
    const pr = await proj();
    await pr.write('runner.yaml', 'schedules:\n  - {name: a_every, config: a.yaml, interval_seconds: 60}\n');
    const port = await freePort();
    const url = `redis://:s3cret-pass@127.0.0.1:${port}`;
    for (const args of [['schedule', 'runner.yaml'], ['worker'], ['runs']]) {
      const r = await dativo([...args, '--redis', url, '--redis-wait-seconds', '2'], { cwd: pr.dir });
      assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, /error \[QUEUE_UNAVAILABLE\]: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? unreachable after 2 s/);
      assert.ok(!r.stderr.includes('s3cret-pass'), r.stderr);
    }
    const w = await dativo(['worker', '--redis', url, '--concurrency', '0'], { cwd: pr.dir });
    assert.equal(w.code, 3);
    assert.match(w.stderr, /--concurrency must be a positive integer/);
  });

  it('a private Redis killed and restarted mid-schedule: the scheduler registers again, the worker reconnects, the schedule keeps ticking', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const startRedis = (): ChildProcess => spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    let server = startRedis();
    try {
      await sleep(500);
      const s = await space('restart', url);
      try {
        const pr = await proj();
        await pr.write('runner.yaml', 'schedules:\n  - {name: a_every, config: a.yaml, interval_seconds: 1}\n');
        const sched = schedule(pr, ['runner.yaml', '--redis', url, '--prefix', s.prefix, '--redis-wait-seconds', '20']);
        await registered(sched);
        const w = startWorker({ redis: url, prefix: s.prefix, dir: s.dir, steps: { a: '0' } });
        procs.push(w);
        await ready(w);
        await until(async () => (await s.runs()).filter((r) => r.status === 'succeeded').length >= 2, 'two runs before the restart');
        server.kill('SIGKILL');
        await new Promise((r) => server.once('exit', r));
        await sleep(1500);
        server = startRedis();
        // The restarted Redis is empty: every run recorded from now on is after the restart.
        await until(async () => (await s.runs().catch(() => [])).filter((r) => r.status === 'succeeded').length >= 2, 'two runs after the restart', 120_000);
        assert.ok(sched.lines().some((l) => l['event_type'] === 'schedules_registered' && l['reason'] === 'reconnected'), sched.stderr());
        assert.equal((await s.queue('ta').getJobSchedulers()).length, 1);
        sched.child.kill('SIGTERM');
        assert.equal((await sched.exited).code, 0);
        await stopProc(w);
      } finally {
        await s.close();
      }
    } finally {
      server.kill('SIGKILL');
    }
  });
});

describe('dativo worker through the CLI, real CSV → Iceberg runs', () => {
  it('two dativo workers; the one running the job is SIGKILLed with its run before the commit: the other runs it after the lock expired, every row lands once', async () => {
    const s = await space('cli-kill');
    try {
      const pr = await proj();
      await pr.write('data/ta/a.csv', 'id\n1\n2\n3\n');
      await pr.write('runner.yaml', 'schedules:\n  - {name: a_every, config: a.yaml, interval_seconds: 3600}\n');
      const redis = ['--redis', 'redis://127.0.0.1:6379', '--prefix', s.prefix];
      const env: NodeJS.ProcessEnv = { ...process.env, DATIVO_PAUSE_AT: 'before_commit', DATIVO_PAUSE_MS: '3000' };
      delete env['DATIVO_STATE_DIR'];
      const workers = [0, 1].map(() => {
        const p = spawnProc(process.execPath, dativoArgv(['worker', ...redis, '--lock-seconds', '2']), { cwd: pr.dir, env });
        procs.push(p);
        return p;
      });
      const sched = schedule(pr, ['runner.yaml', ...redis]);
      await registered(sched);
      let victim: Proc | undefined;
      await until(() => (victim = workers.find((w) => w.stderr().includes('paused at before_commit'))) !== undefined, 'a run to pause before its commit');
      const running = (await s.runs()).find((r) => r.status === 'running')!;
      assert.equal(running.scheduler!.pid, victim!.child.pid);
      victim!.child.kill('SIGKILL');
      process.kill(-running.pid!, 'SIGKILL');
      const other = workers.find((w) => w !== victim)!;
      await until(async () => (await s.runs()).some((r) => r.status === 'succeeded'), 'the other worker to run it', 120_000);
      const ids = (await readWarehouseTable(pr.p('wh'), 'ta.sched', 'events')).map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : 1));
      assert.deepEqual(ids, [1n, 2n, 3n]);
      const runs = await dativo(['runs', ...redis, '--json'], { cwd: pr.dir });
      assert.equal(runs.code, 0, runs.stderr);
      const out = JSON.parse(runs.stdout) as { runs: { status: string; rows_written?: number; scheduler: { pid: number } }[] };
      assert.deepEqual(
        out.runs.map((r) => [r.status, r.rows_written ?? null]),
        [
          ['lost', null],
          ['succeeded', 3],
        ],
      );
      assert.equal(out.runs[1]!.scheduler.pid, other.child.pid);
      for (const p of [sched, other]) {
        p.child.kill('SIGTERM');
        assert.equal((await p.exited).code, 0, p.stderr());
      }
    } finally {
      await s.close();
    }
  });
});
