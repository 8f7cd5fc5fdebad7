/**
 * The Postgres advisory job lock on the real server, in process and through
 * the real CLI with the state in Postgres: two runs at once → one JOB_LOCKED
 * (exit 2) naming the holder; the holder SIGKILLed → the next run proceeds at
 * once (the server ends the session and frees the lock); a lock whose
 * session is ended under it aborts its signal.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { DativoError } from '../../lib/errors.js';
import { advisoryKey, postgresJobLock } from '../../lib/lock-postgres.js';
import { PG_ADMIN_URI, pgAdmin } from '../helpers/postgres.js';
import { dativo, dativoArgv, jsonLine, ordersProject, type Project } from './cli/helpers.js';

const SUFFIX = randomBytes(4).toString('hex');
const TABLE = `dativo_state_l${SUFFIX}`;
const projects: Project[] = [];

after(async () => {
  await pgAdmin(`DROP TABLE IF EXISTS ${TABLE}`);
  await Promise.all(projects.map((p) => p.cleanup()));
});

function lockedError(e: unknown): DativoError {
  assert.ok(e instanceof DativoError, String(e));
  assert.equal(e.code, 'JOB_LOCKED');
  assert.equal(e.exitCode, 2);
  return e;
}

describe('Postgres advisory job lock', () => {
  it('one holder per (tenant, job); the refusal names pid, host and run; other jobs are free; release frees it', async () => {
    const job = { tenant: 't1', job: `j${SUFFIX}` };
    const a = postgresJobLock(PG_ADMIN_URI, job);
    const b = postgresJobLock(PG_ADMIN_URI, job);
    const heldA = await a.acquire({ runId: 'run-a' });
    try {
      await assert.rejects(b.acquire({ runId: 'run-b' }), (e: unknown) => {
        const err = lockedError(e);
        assert.equal(err.context['pid'], process.pid);
        assert.equal(err.context['runId'], 'run-a');
        assert.equal(err.context['key'], advisoryKey(job));
        assert.match(err.message, new RegExp(`pid ${process.pid} on \\S+ since \\d{4}-.*, run run-a`));
        return true;
      });
      const other = await postgresJobLock(PG_ADMIN_URI, { tenant: 't2', job: job.job }).acquire({});
      await other.release();
    } finally {
      await heldA.release();
    }
    const heldB = await b.acquire({ runId: 'run-b' });
    await heldB.release();
    await heldB.release(); // idempotent
  });

  it('a lock whose session is ended under it aborts its signal with JOB_LOCKED, and the lock is free again', async () => {
    const job = { tenant: 't1', job: `lost${SUFFIX}` };
    const held = await postgresJobLock(PG_ADMIN_URI, job).acquire({ runId: 'victim' });
    const aborted = new Promise<unknown>((resolve) => held.signal?.addEventListener('abort', () => resolve(held.signal?.reason), { once: true }));
    await pgAdmin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'dativo-lock ${process.pid} victim %'`);
    lockedError(await aborted);
    const again = await postgresJobLock(PG_ADMIN_URI, job).acquire({});
    await again.release();
    await held.release();
  });

  it('an unreachable server: STORAGE_IO (exit 2), the password never in the message', async () => {
    await assert.rejects(postgresJobLock('postgres://app:pw-s3cr3t@127.0.0.1:1/test', { tenant: 't', job: 'j' }).acquire({}), (e: unknown) => {
      assert.ok(e instanceof DativoError);
      assert.equal(e.code, 'STORAGE_IO');
      assert.ok(!e.message.includes('pw-s3cr3t'), e.message);
      return true;
    });
  });
});

/** A project whose job keeps its state (and so its lock) in Postgres. */
async function pgProject(prefix: string): Promise<Project> {
  const pr = await ordersProject(prefix);
  projects.push(pr);
  const job = (await pr.read('job.yaml')).toString().replace('state: {path: state/job.json}', `state: {kind: postgres, url: "${PG_ADMIN_URI}", table: ${TABLE}}`);
  // One job name per project: each test has its own lock and state row.
  await pr.write(`${prefix}.yaml`, job);
  return pr;
}

/** Start `dativo run` paused before its commit (holding the lock); resolves once it is paused. */
function startPaused(pr: Project, file: string, pauseMs: number): { child: ChildProcess; paused: Promise<void>; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, dativoArgv(['run', file, '--json']), {
    cwd: pr.dir,
    env: { ...process.env, DATIVO_PAUSE_AT: 'before_commit', DATIVO_PAUSE_MS: String(pauseMs), DATIVO_STATE_DIR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onPaused: () => void = () => undefined;
  const paused = new Promise<void>((resolve) => (onPaused = resolve));
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
    if (stderr.includes('dativo: paused at before_commit')) onPaused();
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, paused, done };
}

describe('dativo run with the state in Postgres takes the advisory lock', () => {
  it('a second run while the first holds the lock exits 2 JOB_LOCKED naming it; SIGKILL of the holder → the next run proceeds and lands the rows once', async () => {
    const pr = await pgProject('pglock');
    const a = startPaused(pr, 'pglock.yaml', 60_000);
    await Promise.race([a.paused, a.done.then((r) => assert.fail(`first run ended before pausing: ${r.stderr}`))]);
    const b = await dativo(['run', 'pglock.yaml', '--json'], { cwd: pr.dir });
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, /JOB_LOCKED/);
    assert.match(b.stderr, new RegExp(`another run of this job is running \\(pid ${a.child.pid} on `));
    a.child.kill('SIGKILL');
    const killed = await a.done;
    assert.equal(killed.signal, 'SIGKILL');
    // No wait for a lease: the server ended the dead holder's session.
    const c = await dativo(['run', 'pglock.yaml', '--json'], { cwd: pr.dir });
    assert.equal(c.code, 0, c.stderr);
    const summary = jsonLine(c.stdout);
    assert.equal(summary.objects[0]?.rows_written, 2);
    const rows = await rowsOf(`SELECT document FROM ${TABLE} WHERE tenant = 't1' AND job = 'pglock'`);
    assert.equal(rows.length, 1);
    assert.equal(JSON.parse(rows[0]?.document ?? '{}').objects.orders.runId, summary.run_id, 'the state row is the proceeding run\'s');
    const d = await dativo(['run', 'pglock.yaml', '--json'], { cwd: pr.dir });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(jsonLine(d.stdout).objects[0]?.rows_written, 0, 'the state in Postgres carried the files seen');
  });

  it('two runs started at once: exactly one exits 2 JOB_LOCKED, the other lands', async () => {
    const pr = await pgProject('pgtwo');
    // Both pause before committing, so they surely overlap; the pause is short so the winner finishes.
    const runs = [startPaused(pr, 'pgtwo.yaml', 4_000), startPaused(pr, 'pgtwo.yaml', 4_000)];
    const results = await Promise.all(runs.map((r) => r.done));
    const codes = results.map((r) => r.code).sort();
    assert.deepEqual(codes, [0, 2], results.map((r) => r.stderr).join('\n---\n'));
    const loser = results.find((r) => r.code === 2);
    assert.match(loser?.stderr ?? '', /JOB_LOCKED/);
  });
});

async function rowsOf(text: string): Promise<{ document: string }[]> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URI });
  await c.connect();
  try {
    return (await c.query(text)).rows as { document: string }[];
  } finally {
    await c.end();
  }
}
