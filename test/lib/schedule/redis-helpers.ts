/**
 * Helpers of the distributed-scheduler tests on the real Redis: a unique key
 * prefix per test (its keys deleted after, never FLUSHALL), worker processes
 * (queue-worker-child.ts), runs added the way the scheduler adds them, a
 * private redis-server on a free port, and polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { runJobOptions, type RunJobData } from '../../../lib/schedule/distributed.js';
import { DEFAULT_RUN_RETRY, type RunRetryPolicy } from '../../../lib/schedule/policy.js';
import { queueName, redisRunLog } from '../../../lib/schedule/redis.js';
import type { RunRecord } from '../../../lib/schedule/run-log.js';

export const REDIS = 'redis://127.0.0.1:6379';
const CHILD = path.join(import.meta.dirname, 'queue-worker-child.ts');

export type Line = Record<string, unknown> & { msg: string };

export function parseLines(text: string): Line[] {
  const out: Line[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Line);
    } catch {
      // not a log line
    }
  }
  return out;
}

/** Poll `cond` until it holds; generous bound, for a loaded machine. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 90_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  stderr(): string;
  lines(): Line[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawn `argv` with a guard that kills it after `guardMs`. */
export function spawnProc(file: string, argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; guardMs?: number } = {}): Proc {
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout!.resume();
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const guard = setTimeout(() => child.kill('SIGKILL'), opts.guardMs ?? 240_000);
  void exited.then(() => clearTimeout(guard));
  return { child, stderr: () => err, lines: () => parseLines(err), exited };
}

export interface WorkerConfig {
  redis?: string;
  prefix: string;
  dir: string;
  steps?: Record<string, string>;
  concurrency?: number;
  tenants?: string[];
  lockSeconds?: number;
  graceSeconds?: number;
}

/** A worker process (queue-worker-child.ts) whose runs are fake-job.mjs. */
export function startWorker(c: WorkerConfig): Proc {
  const cfg = { redis: REDIS, steps: {}, concurrency: 2, lockSeconds: 2, ...c };
  return spawnProc(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(cfg)]);
}

/** Wait until a worker process serves its queues. */
export const ready = (w: Proc): Promise<void> => until(() => w.lines().some((l) => l.msg === 'serving tenants'), 'the worker to serve its tenants');

export async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 20_000);
  await p.exited;
  clearTimeout(t);
}

/** A test's own prefix and a temp folder, cleaned up by `close`. */
export interface Space {
  prefix: string;
  dir: string;
  redis: Redis;
  queue(tenant: string): Queue;
  /** Add one run of `job` for `tenant`, as a job scheduler would. */
  add(tenant: string, job: string, o?: { retry?: Partial<RunRetryPolicy>; timeoutSeconds?: number; key?: string }): Promise<string>;
  runs(): Promise<RunRecord[]>;
  /** fake-job.mjs's events file: `start <job> <n>` / `end <job> <n>` lines in order. */
  events(): Promise<string[]>;
  close(): Promise<void>;
}

export function runData(tenant: string, job: string, dir: string, o: { retry?: Partial<RunRetryPolicy>; timeoutSeconds?: number; key?: string } = {}): RunJobData {
  return {
    v: 1,
    schedule: job,
    config: path.join(dir, `${job}.yaml`),
    tenant,
    job,
    key: o.key ?? path.join(dir, tenant, `${job}.json`),
    retry: { ...DEFAULT_RUN_RETRY, ...o.retry },
    timeoutSeconds: o.timeoutSeconds ?? 120,
    killGraceSeconds: 2,
  };
}

export async function space(name: string, redisUrl = REDIS): Promise<Space> {
  const prefix = `dativo-test-${name}-${randomBytes(4).toString('hex')}`;
  const dir = await mkdtemp(path.join(tmpdir(), `dativo-${name}-`));
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queues = new Map<string, Queue>();
  const queue = (tenant: string): Queue => {
    let q = queues.get(tenant);
    if (q === undefined) {
      q = new Queue(queueName(tenant), { connection: redis, prefix });
      queues.set(tenant, q);
    }
    return q;
  };
  return {
    prefix,
    dir,
    redis,
    queue,
    async add(tenant, job, o = {}) {
      const data = runData(tenant, job, dir, o);
      const j = await queue(tenant).add(job, data, runJobOptions(data.retry));
      return j.id!;
    },
    runs: () => redisRunLog(redis, prefix).list(),
    async events() {
      try {
        return (await readFile(path.join(dir, 'events'), 'utf8')).split('\n').filter((l) => l !== '');
      } catch {
        return [];
      }
    },
    async close() {
      for (const q of queues.values()) await q.close().catch(() => undefined);
      try {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.del(...keys);
        } while (cursor !== '0');
      } catch {
        // a private Redis already gone
      }
      redis.disconnect();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Most runs of `tenant` going at once, from fake-job.mjs's events (`start <job> <n>` / `end <job> <n>`), by job-name prefix. */
export function maxOverlap(events: string[], jobPrefix: string): number {
  let now = 0;
  let max = 0;
  for (const e of events) {
    const [what, job] = e.split(' ');
    if (!job?.startsWith(jobPrefix)) continue;
    if (what === 'start') max = Math.max(max, ++now);
    else if (what === 'end') now--;
  }
  return max;
}
