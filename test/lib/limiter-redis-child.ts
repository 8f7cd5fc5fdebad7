/**
 * One process of the shared-budget test: makes `count` requests to `url`
 * through a Redis-clustered limiter `id` and prints what it saw as JSON.
 * argv: redisUrl id url count rps
 */
import { HttpClient } from '../../lib/http.js';
import { createLimiter, rateLimitsFrom } from '../../lib/limiter.js';
import { definePolicy } from '../../lib/retry.js';

const [redis, id, url, count, rps] = process.argv.slice(2) as [string, string, string, string, string];
const limiter = createLimiter('fakeapi:shared', rateLimitsFrom({ requests_per_second: Number(rps), concurrency: 4, redis }), { id });
const http = new HttpClient({ connector: 'fakeapi', baseUrl: url, limiter, policy: definePolicy({ maxAttempts: 5, minDelayMs: 20, maxDelayMs: 50 }) });
try {
  // Both processes start at once: wait for the parent's go (a line on stdin).
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Number(count) }, (_, i) => http.json(`/r/${process.pid}/${i}`)));
  process.stdout.write(`${JSON.stringify({ pid: process.pid, ms: Date.now() - t0, started: limiter.started })}\n`);
} finally {
  await limiter.close();
  process.stdin.destroy();
}
