import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DativoError } from '../../lib/errors.js';
import { ApiCallCounter, HttpClient, sdkError, withPolicy, type HttpClientOptions } from '../../lib/http.js';
import { createLimiter, rateLimitsFrom } from '../../lib/limiter.js';
import { Paginator, pages } from '../../lib/paginate.js';
import { definePolicy } from '../../lib/retry.js';
import { fakeApi, sendJson } from '../helpers/http-server.js';

const SECRET = 'sk_test_51SuperSecretValue';
/** Fast backoff so the tests measure Retry-After and the limiter, not the default waits. */
const fast = definePolicy({ maxAttempts: 4, minDelayMs: 20, maxDelayMs: 50 });

function client(url: string, extra: Partial<HttpClientOptions> = {}): HttpClient {
  return new HttpClient({
    connector: 'fakeapi',
    object: 'customers',
    baseUrl: url,
    headers: { authorization: `Bearer ${SECRET}` },
    credentialKey: 'source.credentials.api_key',
    secrets: [SECRET],
    policy: fast,
    ...extra,
  });
}

const dativo = (code: string, check?: (e: DativoError) => void) => (e: unknown) => {
  assert.ok(e instanceof DativoError, `expected a DativoError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  check?.(e);
  return true;
};

test('429 with Retry-After in seconds: waits at least that long, then succeeds', async () => {
  const api = await fakeApi((_req, res, n) => (n === 0 ? sendJson(res, 429, { error: { message: 'slow down' } }, { 'retry-after': '1' }) : sendJson(res, 200, { ok: true })));
  try {
    const counter = new ApiCallCounter();
    assert.deepEqual(await client(api.url, { counter }).json('/v1/customers'), { ok: true });
    assert.equal(api.requests.length, 2);
    const gap = api.requests[1]!.at - api.requests[0]!.at;
    assert.ok(gap >= 950, `gap ${gap} ms`);
    assert.ok(gap < 2500, `gap ${gap} ms`);
    assert.equal(counter.count('customers'), 2, 'both attempts are API calls');
  } finally {
    await api.close();
  }
});

test('429 with Retry-After as an HTTP date: waits until then', async () => {
  let until = 0;
  const api = await fakeApi((_req, res, n) => {
    if (n > 0) return sendJson(res, 200, { ok: true });
    // An HTTP date has second resolution: two seconds ahead waits 1-2 s.
    until = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    sendJson(res, 429, {}, { 'retry-after': new Date(until).toUTCString() });
  });
  try {
    await client(api.url).json('/v1/customers');
    assert.equal(api.requests.length, 2);
    const gap = api.requests[1]!.at - api.requests[0]!.at;
    assert.ok(gap >= 900, `gap ${gap} ms`);
    assert.ok(gap < 2600, `gap ${gap} ms`);
  } finally {
    await api.close();
  }
});

test('429 forever: gives up at the policy cap with RATE_LIMITED (exit 2); garbage Retry-After ignored', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 429, { error: { message: 'Too many requests' } }, { 'retry-after': 'whenever' }));
  try {
    const counter = new ApiCallCounter();
    await assert.rejects(
      client(api.url, { counter, policy: definePolicy({ maxAttempts: 3, minDelayMs: 10, maxDelayMs: 20 }) }).json('/v1/customers'),
      dativo('RATE_LIMITED', (e) => {
        assert.equal(e.exitCode, 2);
        assert.equal(e.context.status, 429);
        assert.equal(e.context.attempts, 3);
        assert.equal(e.context.retriesExhausted, 'attempts');
        assert.match(e.message, /Too many requests/);
      }),
    );
    assert.equal(api.requests.length, 3);
    assert.equal(counter.count('customers'), 3);
  } finally {
    await api.close();
  }
});

test('5xx then success: retried with backoff', async () => {
  const api = await fakeApi((_req, res, n) => (n < 2 ? sendJson(res, n === 0 ? 503 : 502, { message: 'upstream' }) : sendJson(res, 200, { data: [1] })));
  try {
    assert.deepEqual(await client(api.url).json('/v1/customers'), { data: [1] });
    assert.equal(api.requests.length, 3);
  } finally {
    await api.close();
  }
});

test('5xx forever: SOURCE_UNAVAILABLE, exit 2', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 500, { message: 'boom' }));
  try {
    await assert.rejects(client(api.url).json('/x'), dativo('SOURCE_UNAVAILABLE', (e) => assert.equal(e.exitCode, 2)));
    assert.equal(api.requests.length, fast.maxAttempts);
  } finally {
    await api.close();
  }
});

test('ECONNRESET mid-response (socket destroyed after the headers): retried', async () => {
  const api = await fakeApi((_req, res, n) => {
    if (n > 0) return sendJson(res, 200, { ok: n });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"data": [');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  try {
    assert.deepEqual(await client(api.url).json('/v1/customers'), { ok: 1 });
    assert.equal(api.requests.length, 2);
  } finally {
    await api.close();
  }
});

test('401: AUTH_FAILED naming the credential key, never its value (even when the API echoes it)', async () => {
  const api = await fakeApi((req, res) => sendJson(res, 401, { error: { message: `Invalid API Key provided: ${String(req.headers.authorization).slice(7)}` } }));
  try {
    await assert.rejects(
      client(api.url).json('/v1/customers'),
      dativo('AUTH_FAILED', (e) => {
        assert.equal(e.exitCode, 3);
        assert.match(e.message, /source\.credentials\.api_key/);
        assert.doesNotMatch(e.message, /SuperSecret/);
        assert.doesNotMatch(JSON.stringify(e.toJSON()), /SuperSecret/);
      }),
    );
    assert.equal(api.requests.length, 1, 'not retried');
  } finally {
    await api.close();
  }
});

test('404: SOURCE_NOT_FOUND, not retried; accept:[404] hands it to the caller', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 404, { error: { message: 'No such customer: cus_1' } }));
  try {
    await assert.rejects(client(api.url).json('/v1/customers/cus_1'), dativo('SOURCE_NOT_FOUND', (e) => assert.match(e.message, /No such customer/)));
    assert.equal(api.requests.length, 1);
    const r = await client(api.url).request('/v1/customers/cus_1', { accept: [404] });
    assert.equal(r.status, 404);
  } finally {
    await api.close();
  }
});

test('400: fatal SOURCE_ERROR carrying the API message', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 400, { status: 'error', message: 'Invalid input JSON on line 1', category: 'VALIDATION_ERROR' }));
  try {
    await assert.rejects(
      client(api.url).json('/crm/v3/objects/contacts/search', { method: 'POST', body: { limit: 500 } }),
      dativo('SOURCE_ERROR', (e) => {
        assert.equal(e.disposition, 'fatal');
        assert.equal(e.exitCode, 3);
        assert.match(e.message, /Invalid input JSON on line 1/);
        assert.match(e.message, /POST \/crm\/v3\/objects\/contacts\/search/);
      }),
    );
    assert.equal(api.requests.length, 1);
    assert.equal(api.requests[0]!.body, '{"limit":500}');
  } finally {
    await api.close();
  }
});

test('Google quota 403 (userRateLimitExceeded) is a rate limit, not an auth failure', async () => {
  const body = { error: { code: 403, message: 'User Rate Limit Exceeded', errors: [{ reason: 'userRateLimitExceeded', domain: 'usageLimits' }] } };
  const api = await fakeApi((_req, res, n) => (n === 0 ? sendJson(res, 403, body) : sendJson(res, 200, { files: [] })));
  try {
    assert.deepEqual(await client(api.url).json('/drive/v3/files'), { files: [] });
    assert.equal(api.requests.length, 2);
  } finally {
    await api.close();
  }
});

test('pagination: tokens followed; the same token twice is a fatal error, not a loop', async () => {
  const api = await fakeApi((req, res) => {
    const token = req.query.get('pageToken');
    if (token === null) return sendJson(res, 200, { items: [1, 2], nextPageToken: 'p2' });
    if (token === 'p2') return sendJson(res, 200, { items: [3], nextPageToken: 'p3' });
    sendJson(res, 200, { items: [4], nextPageToken: 'p2' });
  });
  try {
    const http = client(api.url);
    const pager = new Paginator<{ items: number[]; nextPageToken?: string }>({ next: (p) => p.nextPageToken, what: 'fakeapi files' });
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const page of pages(pager, (token) => http.json<{ items: number[]; nextPageToken?: string }>('/files', { query: { pageToken: token } }))) seen.push(...page.items);
      })(),
      dativo('SOURCE_ERROR', (e) => {
        assert.equal(e.disposition, 'fatal');
        assert.match(e.message, /same page token twice/);
      }),
    );
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(api.requests.length, 3);

    const ok = new Paginator<{ next?: string }>({ next: (p) => p.next, what: 'x' });
    ok.advance({ next: 'a' });
    ok.advance({});
    assert.equal(ok.hasMore, false);
    assert.equal(ok.pages, 2);

    const api2 = new Paginator<{ next?: string }>({ next: (p) => p.next, what: 'an API', disposition: 'retryable' });
    api2.advance({ next: 'a' });
    assert.throws(
      () => api2.advance({ next: 'a' }),
      dativo('SOURCE_ERROR', (e) => {
        assert.equal(e.disposition, 'retryable', "an API connector's loop is a server fault: exit 2");
        assert.equal(e.context.event_type, 'page_loop');
      }),
    );
  } finally {
    await api.close();
  }
});

test('abort mid-request: ABORTED at once, no retry', async () => {
  const api = await fakeApi((_req, res) => {
    setTimeout(() => sendJson(res, 200, {}), 5000).unref();
  });
  try {
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(client(api.url, { signal: ac.signal }).json('/slow'), dativo('ABORTED'));
    assert.ok(performance.now() - t0 < 1500);
    assert.equal(api.requests.length, 1);
  } finally {
    await api.close();
  }
});

test('limiter: 10 requests per second spaces 11 requests over ~1 s', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 200, {}));
  const limiter = createLimiter('fakeapi:rate', rateLimitsFrom({ requests_per_second: 10, concurrency: 4 }));
  try {
    const http = client(api.url, { limiter });
    await Promise.all(Array.from({ length: 11 }, (_, i) => http.json(`/r/${i}`)));
    const at = api.requests.map((r) => r.at).sort((a, b) => a - b);
    const span = at[10]! - at[0]!;
    assert.ok(span >= 900 && span < 1800, `11 requests took ${span} ms`);
    // Starts are 100 ms apart; arrivals jitter on a loaded box, but no half second holds more than 6.
    for (const t of at) assert.ok(at.filter((u) => u >= t && u < t + 500).length <= 6, 'burst above the rate');
    assert.equal(limiter.started, 11);
  } finally {
    await limiter.close();
    await api.close();
  }
});

test('limiter: a burst goes out at once, then the steady rate', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 200, {}));
  const limiter = createLimiter('fakeapi:burst', rateLimitsFrom({ requests_per_second: 10, burst: 5, concurrency: 10 }));
  try {
    const http = client(api.url, { limiter });
    await Promise.all(Array.from({ length: 10 }, (_, i) => http.json(`/r/${i}`)));
    const at = api.requests.map((r) => r.at - api.requests[0]!.at).sort((a, b) => a - b);
    // Without the burst the fifth would start 400 ms in; 250 ms leaves room for loopback jitter on a loaded box.
    assert.ok(at[4]! < 250, `first five within ${at[4]} ms`);
    assert.ok(at[9]! >= 400 && at[9]! < 1000, `last at ${at[9]} ms`);
  } finally {
    await limiter.close();
    await api.close();
  }
});

test('a 429 pauses the whole limiter: requests queued behind it wait for Retry-After', async () => {
  let limitedAt = 0;
  const api = await fakeApi((req, res, n) => {
    if (n === 0) {
      limitedAt = req.at;
      return sendJson(res, 429, {}, { 'retry-after': '1' });
    }
    sendJson(res, 200, { n });
  });
  // 5/s: the second request starts 200 ms in, after the 429 came back; 3 in flight allowed.
  const limiter = createLimiter('fakeapi:gate', rateLimitsFrom({ requests_per_second: 5, concurrency: 3 }));
  try {
    const http = client(api.url, { limiter });
    await Promise.all(Array.from({ length: 6 }, (_, i) => http.json(`/r/${i}`)));
    assert.equal(api.requests.length, 7, 'six requests, one retried');
    const after = api.requests.slice(1).map((r) => r.at - limitedAt);
    // Without the gate, the queued requests would go out 200 ms apart right after the 429.
    for (const d of after) assert.ok(d >= 950, `a request went out ${Math.round(d)} ms after the 429`);
    assert.ok(await limiter.pausedUntil() > 0);
  } finally {
    await limiter.close();
    await api.close();
  }
});

test('after a 429 pause the held requests go out at the steady rate, not in a burst', async () => {
  let limitedAt = 0;
  const api = await fakeApi((req, res, n) => {
    if (n === 0) {
      limitedAt = req.at;
      return sendJson(res, 429, {}, { 'retry-after': '1' });
    }
    sendJson(res, 200, { n });
  });
  // 10/s with 8 in flight allowed: during the 1 s pause bottleneck releases the other requests into the gate.
  const limiter = createLimiter('fakeapi:resume', rateLimitsFrom({ requests_per_second: 10, concurrency: 8 }));
  try {
    const http = client(api.url, { limiter });
    await Promise.all(Array.from({ length: 7 }, (_, i) => http.json(`/r/${i}`)));
    const after = api.requests.slice(1).map((r) => r.at - limitedAt).sort((a, b) => a - b);
    assert.equal(after.length, 7, 'seven requests after the 429 (one of them the retry)');
    assert.ok(after[0]! >= 950, 'none before Retry-After');
    // Seven held requests at 10/s: the last goes out 600 ms after the first (a burst would send them within a few ms).
    assert.ok(after[6]! - after[0]! >= 500, `held requests spaced: ${after.map((d) => Math.round(d)).join(', ')} ms after the 429`);
  } finally {
    await limiter.close();
    await api.close();
  }
});

test('withPolicy: an SDK call (Stripe-shaped error with statusCode and headers) runs under policy and limiter', async () => {
  const limiter = createLimiter('stripe:acct', rateLimitsFrom({ concurrency: 1 }));
  const counter = new ApiCallCounter();
  let calls = 0;
  try {
    const out = await withPolicy(
      limiter,
      async () => {
        calls++;
        if (calls === 1) throw Object.assign(new Error('Rate limit'), { type: 'StripeRateLimitError', statusCode: 429, headers: { 'retry-after': '0' } });
        if (calls === 2) throw Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) });
        return 'customers';
      },
      { policy: fast, counter, object: 'customers' },
    );
    assert.equal(out, 'customers');
    assert.equal(calls, 3);
    assert.equal(counter.count('customers', 'stripe'), 3);
    await assert.rejects(
      withPolicy(limiter, async () => {
        throw Object.assign(new Error('Invalid API Key provided: sk_live_x'), { type: 'StripeAuthenticationError', statusCode: 401 });
      }),
      dativo('AUTH_FAILED'),
    );
  } finally {
    await limiter.close();
  }
  // Without a limiter at all: policy only.
  assert.equal(await withPolicy(undefined, async () => 7), 7);
  assert.equal(sdkError(Object.assign(new Error('nope'), { code: 404 }), 'hubspot').code, 'SOURCE_NOT_FOUND');
});

test('abort while queued behind the limiter: ABORTED at once, the queued request never reaches the server', async () => {
  const api = await fakeApi((_req, res) => {
    setTimeout(() => sendJson(res, 200, {}), 300);
  });
  const limiter = createLimiter('fakeapi:queued', rateLimitsFrom({ concurrency: 1 }));
  try {
    const http = client(api.url, { limiter });
    const first = http.json('/first');
    const ac = new AbortController();
    const queued = http.json('/second', { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    await assert.rejects(queued, dativo('ABORTED'));
    assert.ok(performance.now() - t0 < 200, 'did not wait for the slot');
    await first;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(api.requests.map((r) => r.path), ['/first']);
  } finally {
    await limiter.close();
    await api.close();
  }
});
