/**
 * The per-job file lock: O_EXCL create, a live holder refused at once with
 * pid/host/since, a lock left by a dead process (or by a pid now reused)
 * taken over and logged, and racing takeovers where exactly one wins.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isDativoError } from '../../lib/errors.js';
import { fileJobLock, jobLockPath } from '../../lib/lock.js';
import { createLogger } from '../../lib/log.js';
import { Writable } from 'node:stream';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-lock-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((r) => child.on('exit', r));
  return child.pid!;
}

function capture(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c.toString());
      cb();
    },
  });
  const log = createLogger({ level: 'info', destination: stream });
  return { log, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

test('the lock path sits next to the state file', () => {
  assert.equal(jobLockPath('/s/acme/orders.json'), '/s/acme/orders.lock');
  assert.equal(jobLockPath('/s/acme/orders.state'), '/s/acme/orders.state.lock');
});

test('a second acquire while held fails at once with JOB_LOCKED naming pid, host and since; release frees it', async () => {
  const p = path.join(dir, 'a', 'job.lock');
  const lock = fileJobLock(p);
  const held = await lock.acquire({ runId: 'r1' });
  const onDisk = JSON.parse(await readFile(p, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(onDisk, { pid: process.pid, host: hostname(), since: held.holder.since, runId: 'r1' });
  await assert.rejects(lock.acquire({ runId: 'r2' }), (err: unknown) => {
    assert.ok(isDativoError(err));
    assert.equal(err.code, 'JOB_LOCKED');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, new RegExp(`pid ${process.pid} on ${hostname()} since ${held.holder.since}, run r1`));
    assert.deepEqual([err.context['pid'], err.context['host'], err.context['since']], [process.pid, hostname(), held.holder.since]);
    return true;
  });
  await held.release();
  await held.release();
  const again = await lock.acquire({});
  await again.release();
});

test('a live holder in another process, and a holder on another host, count as live', async () => {
  const p = path.join(dir, 'b.lock');
  await writeFile(p, JSON.stringify({ pid: process.ppid, host: hostname(), since: new Date().toISOString() }));
  await assert.rejects(fileJobLock(p).acquire({}), /pid \d+ on/);
  await writeFile(p, JSON.stringify({ pid: await deadPid(), host: 'elsewhere.example', since: new Date().toISOString() }));
  await assert.rejects(fileJobLock(p).acquire({}), /on elsewhere\.example since/);
});

test('a lock left by a dead process on this host is taken over and logged; so is one whose pid now belongs to a younger process', async () => {
  const p = path.join(dir, 'c.lock');
  const pid = await deadPid();
  await writeFile(p, JSON.stringify({ pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  const { log, lines } = capture();
  const held = await fileJobLock(p, log).acquire({ runId: 'r3' });
  assert.equal((JSON.parse(await readFile(p, 'utf8')) as { pid: number }).pid, process.pid);
  const ev = lines().find((l) => l['event_type'] === 'lock_taken_over');
  assert.ok(ev, 'logged');
  assert.equal(ev['stale_pid'], pid);
  await held.release();

  // The pid of a running process that started long after the lock was taken (pid reuse).
  await writeFile(p, JSON.stringify({ pid: process.ppid, host: hostname(), since: '2000-01-01T00:00:00.000Z' }));
  const reused = await fileJobLock(p).acquire({});
  await reused.release();
  // Our own pid, not held by this process: a previous process with the same pid (a restarted container).
  await writeFile(p, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  const own = await fileJobLock(p).acquire({});
  await own.release();
});

test('processes racing to take over one stale lock: exactly one holds it', async () => {
  const p = path.join(dir, 'd.lock');
  const script = `
    const { fileJobLock } = await import(${JSON.stringify(path.resolve(import.meta.dirname, '../../lib/lock.ts'))});
    try {
      const held = await fileJobLock(${JSON.stringify(p)}).acquire({});
      process.stdout.write('held');
      await new Promise((r) => setTimeout(r, 4000));
      await held.release();
    } catch (err) {
      process.stdout.write(err.code);
    }`;
  for (let round = 0; round < 2; round++) {
    await writeFile(p, JSON.stringify({ pid: await deadPid(), host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
    const outs = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise<string>((resolve) => {
            const c = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            c.stdout.on('data', (d: Buffer) => (out += d.toString()));
            c.on('exit', () => resolve(out));
          }),
      ),
    );
    assert.equal(outs.filter((o) => o === 'held').length, 1, `round ${round}: ${outs.join(', ')}`);
    assert.equal(outs.filter((o) => o === 'JOB_LOCKED').length, 3);
  }
});
