/**
 * A `dativo worker` process for the Redis tests whose runs are fake-job.mjs
 * (an exit-code sequence per job) instead of `dativo run`: the same
 * QueueWorker, connection and run log as the CLI, only the child differs.
 *   node --import tsx queue-worker-child.ts '<json config>'
 * SIGTERM stops it gracefully (exit 0).
 */
import path from 'node:path';
import { createLogger } from '../../../lib/log.js';
import { connectRedis, redisRunLog } from '../../../lib/schedule/redis.js';
import { QueueWorker } from '../../../lib/schedule/worker.js';

interface Config {
  redis: string;
  prefix: string;
  /** fake-job.mjs's folder (count, started and events files). */
  dir: string;
  /** Steps per job name (fake-job.mjs); default "0". */
  steps: Record<string, string>;
  concurrency: number;
  tenants?: string[];
  lockSeconds: number;
  graceSeconds?: number;
  waitSeconds?: number;
}

const cfg = JSON.parse(process.argv[2]!) as Config;
const FAKE_JOB = path.join(import.meta.dirname, 'fake-job.mjs');
const log = createLogger({ level: 'info', destination: 2 });
const redis = await connectRedis(cfg.redis, { waitSeconds: cfg.waitSeconds ?? 10, log });
const worker = new QueueWorker({
  redis,
  prefix: cfg.prefix,
  tenants: cfg.tenants,
  concurrency: cfg.concurrency,
  lockSeconds: cfg.lockSeconds,
  shutdownGraceSeconds: cfg.graceSeconds ?? 5,
  log,
  runLog: redisRunLog(redis, cfg.prefix),
  command: (d) => ({ file: process.execPath, args: [FAKE_JOB, cfg.dir, d.job, cfg.steps[d.job] ?? '0'], requireSummary: true }),
  pollMs: 200,
  deferSeconds: 1,
});
worker.start();
process.on('SIGTERM', () => void worker.stop());
await worker.done;
redis.disconnect();
