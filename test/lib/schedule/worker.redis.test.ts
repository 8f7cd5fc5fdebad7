/**
 * The BullMQ workers (lib/schedule/worker.ts) on the real Redis, two worker
 * processes at a time (queue-worker-child.ts: the QueueWorker of `dativo
 * worker` whose runs are fake-job.mjs exit-code sequences): retries by exit
 * code with the configured backoff, a worker SIGKILLed mid-run, the tenant
 * cap across workers and a tenant with a thousand queued runs. Each test has
 * its own key prefix; nothing asserts a duration from above but generously.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { RunRecord } from '../../../lib/schedule/run-log.js';
import { maxOverlap, ready, sleep, space, startWorker, stopProc, until, type Proc, type Space, type WorkerConfig } from './redis-helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(name: string): Promise<Space> {
  const s = await space(name);
  cleanups.push(() => s.close());
  return s;
}

function worker(s: Space, o: Partial<WorkerConfig> = {}): Proc {
  const w = startWorker({ prefix: s.prefix, dir: s.dir, ...o });
  cleanups.push(() => stopProc(w));
  return w;
}

const byAttempt = (rs: RunRecord[]): RunRecord[] => [...rs].sort((a, b) => a.attempt - b.attempt || (a.started_at < b.started_at ? -1 : 1));
const ms = (iso: string | undefined): number => Date.parse(iso!);

describe('dativo worker on Redis: retries by exit code', () => {
  it('a job exiting 2, 2, then 0 runs three times, with the configured backoff between, on either of two workers', async () => {
    const s = await setup('retry');
    const steps = { flaky: '2,2,0' };
    const [a, b] = [worker(s, { steps, tenants: ['t'] }), worker(s, { steps, tenants: ['t'] })];
    await Promise.all([ready(a), ready(b)]);
    const id = await s.add('t', 'flaky', { retry: { maxRetries: 3, delaySeconds: 1, backoffFactor: 3, maxDelaySeconds: 100 } });
    await until(async () => (await s.runs()).some((r) => r.status === 'succeeded'), 'the third attempt to succeed');
    const rs = byAttempt(await s.runs());
    assert.deepEqual(
      rs.map((r) => [r.attempt, r.status, r.exit_code]),
      [
        [1, 'retrying', 2],
        [2, 'retrying', 2],
        [3, 'succeeded', 0],
      ],
    );
    // Waits of 1 s, then 3 s (delay × factor^(n-1)); BullMQ starts the retry no earlier.
    const gap1 = ms(rs[1]!.started_at) - ms(rs[0]!.ended_at);
    const gap2 = ms(rs[2]!.started_at) - ms(rs[1]!.ended_at);
    assert.ok(gap1 >= 950 && gap1 < 30_000, `first wait ${gap1} ms`);
    assert.ok(gap2 >= 2950 && gap2 < 30_000, `second wait ${gap2} ms`);
    assert.equal(ms(rs[0]!.next_retry_at) - ms(rs[0]!.ended_at), 1000);
    assert.equal(ms(rs[1]!.next_retry_at) - ms(rs[1]!.ended_at), 3000);
    assert.equal(rs[2]!.rows_written, 30);
    const job = await s.queue('t').getJob(id);
    assert.equal(await job!.getState(), 'completed');
    assert.equal(job!.attemptsMade, 3);
    // One "run finished" line per attempt, with the fields to alert on.
    const fin = [...a.lines(), ...b.lines()].filter((l) => l.msg === 'run finished');
    assert.deepEqual(fin.map((l) => [l['attempt'], l['exit_code']]).sort(), [[1, 2], [2, 2], [3, 0]]);
    for (const l of fin) for (const k of ['job', 'tenant', 'duration_ms', 'rows_written']) assert.ok(k in l, `${k} in ${JSON.stringify(l)}`);
  });

  it('exit 3 runs once; exit 1 is retried only with retry_on_partial', async () => {
    const s = await setup('codes');
    const steps = { permanent: '3,0', partial: '1,0', partial_retried: '1,0' };
    const w = worker(s, { steps, concurrency: 3 });
    await s.redis.sadd(`${s.prefix}:_dativo:tenants`, 't');
    await ready(w);
    const fast = { maxRetries: 3, delaySeconds: 0.2, backoffFactor: 1, maxDelaySeconds: 1 };
    const ids = {
      permanent: await s.add('t', 'permanent', { retry: fast }),
      partial: await s.add('t', 'partial', { retry: fast }),
      partial_retried: await s.add('t', 'partial_retried', { retry: { ...fast, retryOnPartial: true } }),
    };
    await until(async () => (await s.runs()).filter((r) => r.status !== 'running' && r.status !== 'retrying').length === 3, 'three runs to end');
    // Time for a wrong retry to show up.
    await sleep(2000);
    const rs = await s.runs();
    const of = (job: string) => byAttempt(rs.filter((r) => r.job === job)).map((r) => [r.attempt, r.status, r.exit_code]);
    assert.deepEqual(of('permanent'), [[1, 'failed', 3]]);
    assert.deepEqual(of('partial'), [[1, 'partial', 1]]);
    assert.deepEqual(of('partial_retried'), [
      [1, 'retrying', 1],
      [2, 'succeeded', 0],
    ]);
    const state = async (job: keyof typeof ids) => (await s.queue('t').getJob(ids[job]))!.getState();
    assert.equal(await state('permanent'), 'failed');
    assert.equal((await s.queue('t').getJob(ids.permanent))!.attemptsMade, 1);
    assert.equal(await state('partial'), 'completed');
    assert.equal(await state('partial_retried'), 'completed');
    assert.ok(w.lines().some((l) => l.msg === 'run failed permanently' && l['job'] === 'permanent'));
  });

  it('a hanging run is killed at its timeout and retried', async () => {
    const s = await setup('timeout');
    const w = worker(s, { steps: { hangs: 'hang,0' }, tenants: ['t'] });
    await ready(w);
    // 3 s: the child is surely past its start-up (and counted its attempt) on a loaded machine.
    await s.add('t', 'hangs', { timeoutSeconds: 3, retry: { maxRetries: 1, delaySeconds: 0.2, maxDelaySeconds: 1 } });
    await until(async () => (await s.runs()).some((r) => r.status === 'succeeded'), 'the retry to succeed');
    const rs = byAttempt(await s.runs());
    assert.deepEqual(
      rs.map((r) => [r.attempt, r.status, r.error_code ?? null]),
      [
        [1, 'retrying', 'RUN_TIMEOUT'],
        [2, 'succeeded', null],
      ],
    );
    assert.ok(w.lines().some((l) => l.msg === 'run timed out'));
  });
});

describe('dativo worker on Redis: a worker killed mid-run', () => {
  it('SIGKILL of the worker (and its run) mid-run: the run is picked up by the other worker once its lock expired, and done once', async () => {
    const s = await setup('kill');
    const steps = { long: 'wait,0' };
    const [a, b] = [worker(s, { steps, tenants: ['t'], lockSeconds: 2 }), worker(s, { steps, tenants: ['t'], lockSeconds: 2 })];
    await Promise.all([ready(a), ready(b)]);
    const id = await s.add('t', 'long');
    let first: RunRecord | undefined;
    await until(async () => (first = (await s.runs()).find((r) => r.status === 'running')) !== undefined, 'the run to start');
    await until(() => existsSync(path.join(s.dir, 'long.0.started')), 'the child to be under way');
    const victim = [a, b].find((w) => w.child.pid === first!.scheduler!.pid)!;
    const other = victim === a ? b : a;
    // The machine is lost: the worker and its child die at once, the child never releases.
    victim.child.kill('SIGKILL');
    process.kill(-first!.pid!, 'SIGKILL');
    await victim.exited;
    await until(async () => (await s.runs()).some((r) => r.status === 'succeeded'), 'the run to be picked up again', 120_000);
    const rs = await s.runs();
    const done = rs.filter((r) => r.status === 'succeeded');
    assert.equal(done.length, 1, JSON.stringify(rs));
    assert.equal(done[0]!.scheduler!.pid, other.child.pid);
    assert.equal(done[0]!.attempt, 1, 'a stalled run is the same attempt again');
    // The killed attempt: its worker is gone, so the run log shows it lost.
    assert.deepEqual(rs.filter((r) => r.id !== done[0]!.id).map((r) => r.status), ['lost']);
    assert.ok(other.lines().some((l) => l.msg === 'run finished' && l['exit_code'] === 0));
    const job = await s.queue('t').getJob(id);
    assert.equal(await job!.getState(), 'completed');
    // fake-job ran twice in all (the killed start, the resumed one), and nothing more comes.
    await sleep(3000);
    assert.deepEqual((await s.events()).filter((e) => e.startsWith('start')), ['start long 0', 'start long 1']);
  });

  it('a tick that finds its job running waits for it (one pending run), never two runs of one job at once', async () => {
    const s = await setup('overlap');
    // Two tenants' caps would allow overlap; the job key (one state file) does not.
    await s.queue('t').setGlobalConcurrency(4);
    const key = path.join(s.dir, 'shared.json');
    const w = worker(s, { steps: { one: 'sleep1500' }, tenants: ['t'], concurrency: 4 });
    await ready(w);
    for (let i = 0; i < 4; i++) await s.add('t', 'one', { key });
    await until(async () => (await s.runs()).filter((r) => r.status === 'succeeded').length >= 2, 'two runs');
    await sleep(4000);
    const ev = await s.events();
    assert.equal(maxOverlap(ev, 'one'), 1, ev.join('\n'));
    const lines = w.lines();
    assert.ok(lines.some((l) => l.msg === 'tick deferred'));
    assert.ok(lines.some((l) => l.msg === 'tick coalesced'));
    // The first run, one pending run after it; the other two ticks folded into it.
    assert.equal((await s.runs()).filter((r) => r.status === 'succeeded').length, 2);
  });
});

describe('dativo worker on Redis: tenants', () => {
  it('concurrency_per_tenant holds across two workers, and both tenants run side by side', async () => {
    const s = await setup('cap');
    await s.queue('a').setGlobalConcurrency(2);
    await s.queue('b').setGlobalConcurrency(2);
    const steps: Record<string, string> = {};
    for (let i = 0; i < 8; i++) steps[`a${i}`] = 'sleep600';
    for (let i = 0; i < 4; i++) steps[`b${i}`] = 'sleep600';
    const [x, y] = [worker(s, { steps, tenants: ['a', 'b'], concurrency: 3 }), worker(s, { steps, tenants: ['a', 'b'], concurrency: 3 })];
    await Promise.all([ready(x), ready(y)]);
    for (let i = 0; i < 8; i++) await s.add('a', `a${i}`);
    for (let i = 0; i < 4; i++) await s.add('b', `b${i}`);
    await until(async () => (await s.runs()).filter((r) => r.status === 'succeeded').length === 12, 'all twelve runs', 120_000);
    const ev = await s.events();
    assert.ok(maxOverlap(ev, 'a') <= 2, `tenant a ran ${maxOverlap(ev, 'a')} at once:\n${ev.join('\n')}`);
    assert.ok(maxOverlap(ev, 'b') <= 2, `tenant b ran ${maxOverlap(ev, 'b')} at once`);
    // b did not wait for a's backlog: its last run ended before a's last.
    const lastEnd = (p: string) => ev.map((e, i) => [e, i] as const).filter(([e]) => e.startsWith(`end ${p}`)).at(-1)![1];
    assert.ok(lastEnd('b') < lastEnd('a'), ev.join('\n'));
    const pids = new Set((await s.runs()).map((r) => r.scheduler!.pid));
    assert.equal(pids.size, 2, 'both workers ran runs');
  });

  it('a tenant with a thousand queued runs does not delay another tenant’s next run', async () => {
    const s = await setup('fair');
    await s.queue('big').setGlobalConcurrency(1);
    await s.queue('small').setGlobalConcurrency(1);
    const bulk = Array.from({ length: 1000 }, (_, i) => ({ name: `big${i}`, data: { v: 1 as const, schedule: 'big', config: path.join(s.dir, 'big.yaml'), tenant: 'big', job: 'big', key: path.join(s.dir, `big${i}.json`), retry: { maxRetries: 0, delaySeconds: 1, backoffFactor: 1, maxDelaySeconds: 1, retryOnPartial: false }, timeoutSeconds: 60, killGraceSeconds: 1 } }));
    await s.queue('big').addBulk(bulk.map((b) => ({ ...b, opts: { attempts: 1, backoff: { type: 'dativo' }, removeOnComplete: true } })));
    const steps = { big: 'sleep300', small: '0' };
    const [x, y] = [worker(s, { steps, tenants: ['big', 'small'], concurrency: 2 }), worker(s, { steps, tenants: ['big', 'small'], concurrency: 2 })];
    await Promise.all([ready(x), ready(y)]);
    await until(async () => (await s.runs()).some((r) => r.tenant === 'big' && r.status === 'succeeded'), 'big to be running its backlog');
    await s.add('small', 'small');
    await until(async () => (await s.runs()).some((r) => r.tenant === 'small' && r.status === 'succeeded'), 'the small tenant’s run');
    const rs = await s.runs();
    const small = rs.find((r) => r.tenant === 'small')!;
    const bigBefore = rs.filter((r) => r.tenant === 'big' && r.started_at < small.started_at).length;
    const waiting = await s.queue('big').getWaitingCount();
    // The small run started at once: behind at most the big run(s) already going, not behind the backlog.
    assert.ok(bigBefore < 30, `${bigBefore} big runs started before the small one`);
    assert.ok(waiting > 900, `big still has ${waiting} queued`);
    assert.ok(maxOverlap(await s.events(), 'big') <= 1, 'big ran one at a time across both workers');
  });
});

describe('dativo worker on Redis: shutdown', () => {
  it('SIGTERM: the running run gets the grace period, then is stopped and put back for another worker', async () => {
    const s = await setup('stop');
    const steps = { held: 'hang,0' };
    const a = worker(s, { steps, tenants: ['t'], graceSeconds: 0.5 });
    await ready(a);
    await s.add('t', 'held');
    await until(async () => (await s.runs()).some((r) => r.status === 'running'), 'the run to start');
    a.child.kill('SIGTERM');
    assert.equal((await a.exited).code, 0, a.stderr());
    const lines = a.lines();
    assert.ok(lines.some((l) => l.msg === 'run stopping' && l['reason'] === 'grace period over'));
    assert.ok(lines.some((l) => l.msg === 'run put back in its queue'));
    assert.deepEqual((await s.runs()).map((r) => [r.status, r.error_code]), [['stopped', 'ABORTED']]);
    const b = worker(s, { steps, tenants: ['t'] });
    await until(async () => (await s.runs()).some((r) => r.status === 'succeeded'), 'another worker to run it');
    assert.equal((await s.runs()).find((r) => r.status === 'succeeded')!.attempt, 1, 'a stopped attempt is not counted');
    await writeFile(path.join(s.dir, 'unused'), '');
    await stopProc(b);
  });
});
