/**
 * The in-process scheduler on a virtual clock (test/helpers/fake-clock.ts)
 * with real child processes (fake-job.mjs: a given exit-code sequence, a
 * hang, a wait for a release file): backoff delays are exact virtual
 * times, and nothing depends on how fast the machine is.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { createLogger } from '../../../lib/log.js';
import type { Schedule } from '../../../lib/schedule/config.js';
import { DEFAULT_RUN_RETRY, type RunRetryPolicy } from '../../../lib/schedule/policy.js';
import { fileRunLog, type RunRecord } from '../../../lib/schedule/run-log.js';
import { Scheduler, type SchedulerConfig } from '../../../lib/schedule/scheduler.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const FAKE_JOB = path.join(import.meta.dirname, 'fake-job.mjs');
/** One second before 2026-01-01T00:00:00Z: an hourly interval ticks at T0 + 1 s. */
const T0 = Date.UTC(2026, 0, 1) - 1000;
const TICK = T0 + 1000;

type Line = Record<string, unknown> & { msg: string };

interface Spec {
  tenant: string;
  steps: string;
  /** Job name (default: the schedule name); two schedules with one job share it. */
  job?: string;
  retry?: Partial<RunRetryPolicy>;
  timeoutSeconds?: number;
  intervalSeconds?: number;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function harness(specs: Record<string, Spec>, cfg: Partial<SchedulerConfig> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-sched-'));
  const clock = new FakeClock(T0);
  const lines: Line[] = [];
  const childLines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Line);
        cb();
      },
    }),
  });
  const steps = new Map<string, string>();
  const schedules: Schedule[] = Object.entries(specs).map(([name, s]) => {
    const job = s.job ?? name;
    steps.set(job, s.steps);
    return {
      name,
      config: path.join(dir, `${job}.yaml`),
      trigger: { kind: 'interval', seconds: s.intervalSeconds ?? 3600 },
      enabled: true,
      tags: {},
      retry: { ...DEFAULT_RUN_RETRY, ...s.retry },
      timeoutSeconds: s.timeoutSeconds ?? 600,
      job: { tenant: s.tenant, name: job, key: path.join(dir, s.tenant, `${job}.json`), objects: ['o'] },
      at: `schedules.${name}`,
    };
  });
  const runLog = fileRunLog(path.join(dir, 'runs.ndjson'));
  const sched = new Scheduler(
    { schedules, concurrencyPerTenant: 1, maxConcurrentRuns: 4, shutdownGraceSeconds: 30, killGraceSeconds: 5, ...cfg },
    {
      log,
      runLog,
      clock,
      command: (s) => ({ file: process.execPath, args: [FAKE_JOB, dir, s.job.name, steps.get(s.job.name)!], requireSummary: true }),
      onChildLine: (l) => childLines.push(l),
    },
  );
  cleanups.push(async () => {
    sched.stopNow('test over');
    await clock.advanceTo(clock.t + 3_600_000);
    await sched.done;
    await rm(dir, { recursive: true, force: true });
  });
  const finished = (job?: string): Line[] => lines.filter((l) => l.msg === 'run finished' && (job === undefined || l['job'] === job));
  const msgs = (msg: string, job?: string): Line[] => lines.filter((l) => l.msg === msg && (job === undefined || l['job'] === job));
  return { dir, clock, lines, childLines, sched, runLog, finished, msgs };
}

/** Poll `cond` (real time) until it holds; generous bound, for a loaded machine. */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const records = async (h: { runLog: { list(): Promise<RunRecord[]> } }, job?: string): Promise<RunRecord[]> =>
  (await h.runLog.list()).filter((r) => job === undefined || r.job === job);

describe('scheduler: exit codes and retries', () => {
  it('a job exiting 2, 2, then 0 runs three times with the configured backoff delays', async () => {
    const h = await harness({ flaky: { tenant: 'a', steps: '2,2,0', retry: { maxRetries: 3, delaySeconds: 10, backoffFactor: 3, maxDelaySeconds: 1000 } } });
    h.sched.start();
    assert.equal(await h.clock.runNext(), TICK);
    await until(() => h.finished().length === 1, 'attempt 1');
    // The retry is due 10 s later (the next hourly tick is further away).
    assert.equal(h.clock.nextAt(), TICK + 10_000);
    await h.clock.runNext();
    await until(() => h.finished().length === 2, 'attempt 2');
    assert.equal(h.clock.nextAt(), TICK + 10_000 + 30_000);
    await h.clock.runNext();
    await until(() => h.finished().length === 3, 'attempt 3');
    await until(async () => (await records(h)).filter((r) => r.status !== 'running').length === 3, 'run log');

    const runs = await records(h);
    assert.deepEqual(
      runs.map((r) => [r.attempt, r.started_at, r.exit_code, r.status, r.next_retry_at ?? null]),
      [
        [1, '2026-01-01T00:00:00.000Z', 2, 'retrying', '2026-01-01T00:00:10.000Z'],
        [2, '2026-01-01T00:00:10.000Z', 2, 'retrying', '2026-01-01T00:00:40.000Z'],
        [3, '2026-01-01T00:00:40.000Z', 0, 'succeeded', null],
      ],
    );
    assert.deepEqual(runs.map((r) => r.error_code ?? null), ['SOURCE_UNAVAILABLE', 'SOURCE_UNAVAILABLE', null]);
    // The "run finished" line carries what an operator greps for.
    const last = h.finished()[2]!;
    for (const k of ['job', 'tenant', 'exit_code', 'attempt', 'duration_ms', 'rows_written']) assert.ok(k in last, k);
    assert.equal(last['job'], 'flaky');
    assert.equal(last['tenant'], 'a');
    assert.equal(last['exit_code'], 0);
    assert.equal(last['attempt'], 3);
    assert.equal(last['rows_written'], 30);
    assert.deepEqual(h.msgs('retry scheduled').map((l) => l['delay_ms']), [10_000, 30_000]);
    // Nothing else is pending but the next tick.
    assert.deepEqual(h.clock.pending().filter((t) => t < TICK + 3_600_000), []);
  });

  it('an exit-3 job runs once: failed permanently, no retry', async () => {
    const h = await harness({ bad: { tenant: 'a', steps: '3', retry: { maxRetries: 5, delaySeconds: 1 } } });
    h.sched.start();
    await h.clock.runNext();
    await until(() => h.finished().length === 1, 'the run');
    assert.equal(h.finished()[0]!['status'], 'failed');
    assert.equal(h.msgs('run failed permanently').length, 1);
    assert.equal(h.msgs('retry scheduled').length, 0);
    assert.deepEqual(h.clock.pending(), [TICK + 3_600_000]);
    await until(async () => (await records(h))[0]?.status === 'failed', 'run log');
    const [r] = await records(h);
    assert.equal(r?.exit_code, 3);
    assert.equal(r?.error_code, 'AUTH_FAILED');
    assert.equal(r?.attempt, 1);
  });

  it('an exit-1 job is retried only with retry_on_partial', async () => {
    const h = await harness({
      plain: { tenant: 'a', steps: '1,0', retry: { delaySeconds: 1 } },
      eager: { tenant: 'b', steps: '1,0', retry: { delaySeconds: 1, retryOnPartial: true } },
    });
    h.sched.start();
    await h.clock.runNext();
    await until(() => h.finished().length === 2, 'first attempts');
    await h.clock.advanceTo(TICK + 1000);
    await until(() => h.finished('eager').length === 2, 'the retry of eager');
    assert.deepEqual(h.finished('plain').map((l) => [l['exit_code'], l['status']]), [[1, 'partial']]);
    assert.deepEqual(h.finished('eager').map((l) => [l['exit_code'], l['status']]), [[1, 'retrying'], [0, 'succeeded']]);
    assert.equal(h.finished('plain')[0]!['rows_rejected'], 1);
  });

  it('a crash (exit 1 without a summary) counts as retryable, and the scheduler lives on', async () => {
    const h = await harness({ crashy: { tenant: 'a', steps: 'crash,0', retry: { delaySeconds: 2 } } });
    h.sched.start();
    await h.clock.runNext();
    await until(() => h.finished().length === 1, 'the crash');
    const first = h.finished()[0]!;
    assert.equal(first['outcome'], 'crashed');
    assert.equal(first['exit_code'], 2);
    assert.equal(first['error_code'], 'RUN_CRASHED');
    assert.match(String(first['error_message']), /^exit code 1 without a run summary; last stderr: Error: fake crash$/);
    await h.clock.runNext();
    await until(() => h.finished().length === 2, 'the retry');
    assert.equal(h.finished()[1]!['status'], 'succeeded');
    // The child's own log lines were handed on.
    assert.ok(h.childLines.some((l) => l.includes('fake job started')));
  });
});

describe('scheduler: concurrency and fairness', () => {
  it('two tenants run in parallel while one tenant runs its jobs one at a time', async () => {
    const h = await harness({ a1: { tenant: 'A', steps: 'wait' }, a2: { tenant: 'A', steps: 'wait' }, b1: { tenant: 'B', steps: 'wait' } });
    h.sched.start();
    await h.clock.runNext();
    const started = (job: string, n = 0): boolean => existsSync(path.join(h.dir, `${job}.${n}.started`));
    await until(() => started('a1') && started('b1'), 'a1 and b1 running together');
    assert.equal(h.msgs('run started', 'a2').length, 0);
    assert.equal(h.msgs('run queued', 'a2').length, 1);
    assert.deepEqual(h.sched.snapshot(), { running: 2, queued: 1, waiting: 0 });
    await writeFile(path.join(h.dir, 'a1.0.release'), '');
    await until(() => started('a2'), 'a2 after a1');
    // b1 still runs beside a2.
    assert.equal(h.finished('b1').length, 0);
    await writeFile(path.join(h.dir, 'a2.0.release'), '');
    await writeFile(path.join(h.dir, 'b1.0.release'), '');
    await until(() => h.finished().length === 3, 'all three');
    const events = (await readFile(path.join(h.dir, 'events'), 'utf8')).trim().split('\n');
    // a2 started only after a1 ended.
    assert.ok(events.indexOf('end a1 0') < events.indexOf('start a2 0'), events.join('; '));
    assert.ok(events.indexOf('start b1 0') < events.indexOf('end a1 0'), events.join('; '));
  });

  it('the global cap holds across tenants', async () => {
    const h = await harness({ x: { tenant: 'X', steps: 'wait' }, y: { tenant: 'Y', steps: 'wait' }, z: { tenant: 'Z', steps: 'wait' } }, { maxConcurrentRuns: 2 });
    h.sched.start();
    await h.clock.runNext();
    await until(() => h.msgs('run started').length === 2, 'two runs');
    assert.deepEqual(h.sched.snapshot(), { running: 2, queued: 1, waiting: 0 });
    const first = h.msgs('run started').map((l) => String(l['job']));
    await writeFile(path.join(h.dir, `${first[0]}.0.release`), '');
    await until(() => h.msgs('run started').length === 3, 'the third after one ended');
    for (const j of ['x', 'y', 'z']) await writeFile(path.join(h.dir, `${j}.0.release`), '');
    await until(() => h.finished().length === 3, 'all three');
  });

  it('one job never runs twice at once, even from two schedules; ticks while it runs become one pending run', async () => {
    const h = await harness({
      first: { tenant: 'A', steps: 'wait', job: 'shared', intervalSeconds: 60 },
      second: { tenant: 'A', steps: 'wait', job: 'shared', intervalSeconds: 60 },
    });
    h.sched.start();
    await h.clock.runNext();
    await until(() => h.msgs('run started').length === 1, 'the first run');
    // The second schedule's first tick waits; three more ticks of each while it runs fold into it.
    await h.clock.advanceTo(TICK + 180_000);
    assert.equal(h.msgs('run started').length, 1);
    assert.equal(h.msgs('tick deferred').length, 1);
    assert.equal(h.msgs('tick coalesced').length, 6);
    await writeFile(path.join(h.dir, 'shared.0.release'), '');
    await until(() => h.msgs('run started').length === 2, 'the pending run');
    await writeFile(path.join(h.dir, 'shared.1.release'), '');
    await until(() => h.finished().length === 2, 'both runs');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.msgs('run started').length, 2);
  });

  it('a timer that wakes late runs the missed ticks once', async () => {
    const h = await harness({ late: { tenant: 'A', steps: '0', intervalSeconds: 60 } });
    h.sched.start();
    await h.clock.jump(1000 + 5 * 60_000);
    await until(() => h.finished().length === 1, 'one run');
    const tick = h.msgs('tick')[0]!;
    assert.equal(tick['missed_ticks'], 5);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(h.msgs('run started').length, 1);
    // The next tick is the next minute after now, not one of the missed ones.
    assert.equal(h.clock.nextAt(), TICK + 6 * 60_000);
  });
});

describe('scheduler: timeouts and shutdown', () => {
  it('a hanging job is killed at its timeout (SIGTERM, then SIGKILL) and retried', async () => {
    const h = await harness({ hang: { tenant: 'A', steps: 'stubborn,0', timeoutSeconds: 30, retry: { delaySeconds: 5 } } }, { killGraceSeconds: 7 });
    h.sched.start();
    await h.clock.runNext();
    await until(() => existsSync(path.join(h.dir, 'hang.0.started')), 'the run');
    await h.clock.advanceTo(TICK + 30_000);
    assert.equal(h.msgs('run timed out').length, 1);
    await until(async () => (await readFile(path.join(h.dir, 'events'), 'utf8')).includes('ignored SIGTERM hang 0'), 'SIGTERM delivered');
    assert.equal(h.finished().length, 0);
    await h.clock.advanceTo(TICK + 37_000);
    assert.equal(h.msgs('run killed').length, 1);
    await until(() => h.finished().length === 1, 'the killed run');
    const f = h.finished()[0]!;
    assert.deepEqual([f['outcome'], f['exit_code'], f['error_code'], f['status']], ['timeout', 2, 'RUN_TIMEOUT', 'retrying']);
    assert.equal(f['duration_ms'], 37_000);
    await h.clock.runNext();
    await until(() => h.finished().length === 2, 'the retry');
    assert.equal(h.finished()[1]!['status'], 'succeeded');
  });

  it('stop() waits for a running run that ends within the grace period', async () => {
    const h = await harness({ busy: { tenant: 'A', steps: 'wait' } });
    h.sched.start();
    await h.clock.runNext();
    await until(() => existsSync(path.join(h.dir, 'busy.0.started')), 'the run');
    const stopped = h.sched.stop(20_000);
    await h.clock.advanceTo(TICK + 10_000);
    await writeFile(path.join(h.dir, 'busy.0.release'), '');
    await stopped;
    assert.deepEqual(h.finished().map((l) => [l['status'], l['exit_code']]), [['succeeded', 0]]);
    assert.equal(h.msgs('run stopping').length, 0);
    assert.equal(h.msgs('scheduler stopped').length, 1);
    assert.deepEqual(h.clock.pending(), []);
  });

  it('stop() stops a run still going after the grace period, and retries nothing', async () => {
    const h = await harness({ long: { tenant: 'A', steps: 'hang', retry: { delaySeconds: 1 } }, queued: { tenant: 'A', steps: '0' } });
    h.sched.start();
    await h.clock.runNext();
    await until(() => existsSync(path.join(h.dir, 'long.0.started')) || existsSync(path.join(h.dir, 'queued.0.started')), 'a run');
    // Whichever went first, wait for the hanging one to be running.
    await until(() => existsSync(path.join(h.dir, 'long.0.started')), 'the hanging run');
    const stopped = h.sched.stop(15_000);
    await h.clock.advanceTo(TICK + 15_000);
    await stopped;
    const f = h.finished('long')[0]!;
    assert.deepEqual([f['status'], f['exit_code'], f['error_code']], ['stopped', 2, 'ABORTED']);
    assert.equal(h.msgs('retry scheduled').length, 0);
    const rec = (await records(h, 'long'))[0];
    assert.equal(rec?.status, 'stopped');
    assert.equal(rec?.next_retry_at, undefined);
  });
});
