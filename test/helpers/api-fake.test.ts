/**
 * The shared parts of the API fakes (test/helpers/api-fake.ts): faults are
 * answered in order to as many matching requests as asked, a window counter
 * lets `limit` requests through per window and key, and a fake serves on a
 * free loopback port.
 */
import assert from 'node:assert/strict';
import type http from 'node:http';
import { it } from 'node:test';
import { FaultQueue, LoopbackFake, WindowCounter } from './api-fake.js';
import { sendJson, type SeenRequest } from './http-server.js';

const req = (path: string, query = ''): SeenRequest => ({ method: 'GET', path, query: new URLSearchParams(query), headers: {}, at: 0, body: '' });

it('faults: first match in order, by path prefix, query values and predicate, counted down by times', () => {
  const q = new FaultQueue();
  q.push({ path: '/v1/charges', status: 500, times: 2 });
  q.push({ status: 429, query: { alt: 'media' } });
  q.push({ status: 503, match: (r) => r.query.get('created[lt]') === '5' });
  assert.equal(q.take(req('/v1/customers')), undefined);
  assert.equal(q.take(req('/v1/customers', 'alt=media'))?.status, 429);
  assert.equal(q.take(req('/v1/customers', 'alt=media')), undefined, 'times defaults to 1');
  assert.equal(q.take(req('/v1/charges'))?.status, 500);
  assert.equal(q.take(req('/v1/charges/x'))?.status, 500);
  assert.equal(q.take(req('/v1/charges')), undefined);
  assert.equal(q.take(req('/v1/refunds', 'created[lt]=4')), undefined);
  assert.equal(q.take(req('/v1/refunds', 'created[lt]=5'))?.status, 503);
  assert.equal(q.size, 0);
  q.push({ status: 429, times: Number.POSITIVE_INFINITY });
  for (let i = 0; i < 50; i++) assert.equal(q.take(req('/x'))?.status, 429);
  q.clear();
  assert.equal(q.take(req('/x')), undefined);
});

it('window counter: limit requests per window and key, then a new window', () => {
  const c = new WindowCounter(3);
  assert.deepEqual([1000, 1100, 1200, 1300, 1999].map((t) => c.over('', t)), [false, false, false, true, true]);
  assert.equal(c.over('other', 1999), false, 'each key its own count');
  assert.equal(c.over('', 2000), false, 'a new second');
  const ten = new WindowCounter(2, 10_000);
  assert.deepEqual([0, 5000, 9999, 10_000].map((t) => ten.over('t', t)), [false, false, true, false]);
});

class Echo extends LoopbackFake {
  protected async handle(r: SeenRequest, res: http.ServerResponse): Promise<void> {
    sendJson(res, 200, { path: r.path });
  }
}

it('a fake serves on a free loopback port, records requests, and stops listening on close', async () => {
  const f = await new Echo().start();
  try {
    assert.match(f.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${f.url}/a?b=1`);
    assert.deepEqual(await res.json(), { path: '/a' });
    assert.equal(f.requests.length, 1);
    assert.equal(f.requests[0]!.query.get('b'), '1');
    assert.ok(f.openConnections() >= 1, 'the keep-alive connection is counted');
  } finally {
    await f.close();
  }
  await assert.rejects(fetch(`${f.url}/a`));
});
