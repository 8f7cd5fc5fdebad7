/**
 * The limiter against a busy process: the real Stripe SDK, 24 windows'
 * worth of concurrent list calls through one limiter (lib/limiter.ts) and
 * the job's retry policy (lib/http.ts withPolicy), against the Stripe-like
 * fake with its 25 requests/s limit, while the event loop stalls right
 * after a 429 pause (as it does behind page decoding, validation and GC),
 * so that the turns of the requests the pause held all come while it is
 * stalled. What leaves the process (the HTTP client's own request-start
 * event) must stay inside the rate in every second, however late the
 * timers fire. Before the gate counted actual send times it let 26-28
 * through in one second here.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import http, { type ClientRequest } from 'node:http';
import { test } from 'node:test';
import Stripe from 'stripe';
import { withPolicy } from '../../lib/http.js';
import { createLimiter, rateLimitsFrom } from '../../lib/limiter.js';
import { definePolicy } from '../../lib/retry.js';
import { startStripeFake } from '../fakes/stripe.js';

const RATE = 25;

/** The most timestamps (ms, sorted) inside any half-open `ms` (default a second). */
function mostInOneSecond(ts: number[], ms = 1000): number {
  let most = 0;
  for (let i = 0, j = 0; i < ts.length; i++) {
    while (ts[i]! - ts[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

test('24 windows through one limiter behind a stalling event loop: never more than the rate in any second', async () => {
  const fake = await startStripeFake({ latencyMs: 200, rateLimit: RATE });
  const agent = new http.Agent({ keepAlive: true });
  const limiter = createLimiter('stripe:busy-loop', rateLimitsFrom({ requests_per_second: RATE, burst: 1, concurrency: 32 }), { onPass: (t) => passes.push(t) });
  const passes: number[] = [];
  const port = new URL(fake.url).port;
  const sent: number[] = [];
  const onStart = (m: unknown): void => {
    const request = (m as { request: ClientRequest }).request;
    if (String(request.getHeader('host') ?? '').endsWith(`:${port}`)) sent.push(performance.now());
  };
  diagnostics.subscribe('http.client.request.start', onStart);
  // The first request is answered 429 (Retry-After 1): the limiter pauses, and
  // bottleneck releases the other requests into the gate meanwhile. 100 ms
  // after the first request past the pause, the event loop stalls 400 ms, so
  // the held requests' turns all come while it is stalled.
  fake.fail({ path: '/v1/customers', status: 429, times: 1, headers: { 'retry-after': '1' } });
  let stall: NodeJS.Timeout | undefined;
  const onSecond = (): void => {
    if (sent.length !== 2 || stall !== undefined) return;
    stall = setTimeout(() => {
      const until = performance.now() + 400;
      while (performance.now() < until);
    }, 100);
  };
  diagnostics.subscribe('http.client.request.start', onSecond);
  try {
    fake.seed('customers', 500, { perSecond: 37 });
    const stripe = new Stripe('sk_test_fake_4242', { host: '127.0.0.1', port, protocol: 'http', httpAgent: agent, maxNetworkRetries: 0, telemetry: false });
    const policy = definePolicy({ maxAttempts: 3, minDelayMs: 20, maxDelayMs: 50 });
    // 24 windows, each 5 pages one after the other: 120 requests (and the retry), demand far above 25/s at 200 ms latency.
    const windows = Array.from({ length: 24 }, async (_, w) => {
      let after: string | undefined;
      for (let page = 0; page < 5; page++) {
        const list = await withPolicy(limiter, () => stripe.customers.list({ limit: 3, ...(after !== undefined ? { starting_after: after } : {}) }), { policy, object: `w${w}` });
        after = list.data.at(-1)?.id;
      }
    });
    await Promise.all(windows);
  } finally {
    clearTimeout(stall);
    diagnostics.unsubscribe('http.client.request.start', onSecond);
    diagnostics.unsubscribe('http.client.request.start', onStart);
    await limiter.close();
    agent.destroy();
    await fake.close();
  }
  sent.sort((a, b) => a - b);
  assert.equal(sent.length, fake.requests.length, 'every request sent reached the fake');
  assert.ok(stall !== undefined, 'the stall came');
  assert.ok(sent.length >= 121, `${sent.length} requests`);
  // The gate: at most the rate in any second, on the limiter's own clock.
  const gate = mostInOneSecond(passes);
  assert.equal(passes.length, sent.length);
  assert.ok(gate <= RATE, `${gate} requests passed the gate within one second (rate ${RATE})`);
  // On the wire: the SDK takes a few ms from the gate to the socket, not always the same; a second of the
  // wire holds at most the rate less that spread (before the gate counted actual times, 26-28 left in one second).
  const delays = sent.map((t, i) => t + performance.timeOrigin - passes[i]!);
  const spread = Math.max(...delays) - Math.min(...delays);
  const most = mostInOneSecond(sent, 1000 - spread);
  assert.ok(most <= RATE, `${most} requests left within ${Math.round(1000 - spread)} ms (rate ${RATE}; gate to wire ${Math.round(Math.min(...delays))}-${Math.round(Math.max(...delays))} ms)`);
});
