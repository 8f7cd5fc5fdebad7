/**
 * runJob with an API connector built on ReadContext's HTTP layer, against a
 * real loopback server: each object's summary carries its API call count;
 * an API answering 429 forever ends the run with RATE_LIMITED, exit 2, and
 * nothing committed or saved; rate_limits / retry_config with impossible
 * values are config errors naming the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { Readable } from 'node:stream';
import { loadJob } from '../../../lib/config/index.js';
import type { Connector } from '../../../lib/connector.js';
import { DativoError } from '../../../lib/errors.js';
import { Paginator } from '../../../lib/paginate.js';
import { runJob } from '../../../lib/run.js';
import { networkOf } from '../../../lib/run/network.js';
import { fakeApi, sendJson } from '../../helpers/http-server.js';
import { project } from '../cli/helpers.js';

const ASSET = `apiVersion: v3.0.2
kind: DataContract
name: customers
version: "1.0"
domain: crm
dataProduct: api
schema:
  - {name: id, type: long, required: true}
  - {name: email, type: string}
primary_key: [id]
team: {owner: crm@example.com}
`;

type Page = { data: { id: number; email: string }[]; next?: string };

/** A minimal API connector: pages of customers through `networkOf(ctx).http`. */
const fakeConnector: Connector = {
  descriptor: Object.freeze({ name: 'fakeapi', roles: ['source'] as const, allowedInCloud: true, incrementalStrategies: [], sortedByCursor: false, description: 'test API' }),
  read(ctx) {
    const base = String((ctx.plan.source.options['connection'] as Record<string, unknown>)['base_url']);
    const key = String((ctx.plan.source.options['credentials'] as Record<string, unknown>)['api_key']);
    const http = networkOf(ctx).http({ baseUrl: base, headers: { authorization: `Bearer ${key}` }, credentialKey: 'source.credentials.api_key' });
    const pager = new Paginator<Page>({ next: (p) => p.next, what: `fakeapi ${ctx.object.name}` });
    return Readable.from(
      (async function* () {
        while (pager.hasMore) {
          const page = await http.json<Page>(`/v1/${ctx.object.name}`, { query: { after: pager.token } });
          yield* page.data;
          pager.advance(page);
        }
      })(),
    );
  },
};

async function setup(jobExtra: string) {
  const p = await project('net-run');
  await p.write('asset.yaml', ASSET);
  await p.write('fakeapi.yaml', 'name: fakeapi\ntype: fakeapi\nroles: [source]\nrate_limits: {requests_per_second: 50, burst: 2, retry: {max_retries: 3, max_backoff_seconds: 0.05}}\n');
  return {
    p,
    job: (url: string) =>
      p.write(
        'job.yaml',
        `tenant_id: t1\nsource_connector_path: fakeapi.yaml\ntarget_connector: iceberg\nasset_path: asset.yaml\nsource:\n  objects: [customers]\n  connection: {base_url: "${url}"}\n  credentials: {api_key: "\${FAKE_KEY}"}\ntarget: {warehouse: wh}\nstate: {path: state.json}\n${jobExtra}`,
      ),
  };
}

test('runJob: api_calls per object in the summary (retries counted)', async () => {
  const api = await fakeApi((req, res, n) => {
    if (n === 1) return sendJson(res, 429, {}, { 'retry-after': '0' });
    const after = req.query.get('after');
    if (after === null) return sendJson(res, 200, { data: [{ id: 1, email: 'a@x' }, { id: 2, email: 'b@x' }], next: 'c2' });
    if (after === 'c2') return sendJson(res, 200, { data: [{ id: 3, email: 'c@x' }], next: 'c3' });
    sendJson(res, 200, { data: [{ id: 4, email: 'd@x' }] });
  });
  const { p, job } = await setup('');
  try {
    await job(api.url);
    const plan = await loadJob(p.p('job.yaml'), { env: { FAKE_KEY: 'sk_secret_value_1' } });
    const summary = await runJob(plan, { connector: fakeConnector });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    assert.equal(summary.objects[0]?.rows_written, 4);
    assert.equal(summary.objects[0]?.api_calls, 4, 'three pages, one retried 429');
    assert.equal(api.requests[0]?.headers.authorization, 'Bearer sk_secret_value_1');
  } finally {
    await api.close();
    await p.cleanup();
  }
});

test('runJob: an API answering 429 forever → RATE_LIMITED, exit 2, nothing committed or saved', async () => {
  const api = await fakeApi((_req, res) => sendJson(res, 429, { error: { message: 'quota' } }, { 'retry-after': '0' }));
  const { p, job } = await setup('retry_config: {max_retries: 2, initial_delay_seconds: 0.01}\n');
  try {
    await job(api.url);
    const plan = await loadJob(p.p('job.yaml'), { env: { FAKE_KEY: 'sk_secret_value_2' } });
    const summary = await runJob(plan, { connector: fakeConnector });
    assert.equal(summary.exit_code, 2);
    assert.equal(summary.error?.code, 'RATE_LIMITED');
    assert.equal(summary.objects[0]?.error?.code, 'RATE_LIMITED');
    assert.equal(api.requests.length, 3, 'retry_config.max_retries: 2 beats the recipe');
    assert.equal(summary.objects[0]?.api_calls, 3);
    assert.equal(summary.objects[0]?.snapshot_id, undefined);
    assert.equal(existsSync(p.p('state.json')), false, 'no state saved');
  } finally {
    await api.close();
    await p.cleanup();
  }
});

test('config: impossible rate_limits and retry_config values are config errors naming the key', async () => {
  const { p, job } = await setup('retry_config: {max_retries: -1, max_delay_seconds: 0}\n');
  try {
    await job('http://127.0.0.1:9');
    const text = (await p.read('job.yaml')).toString().replace('  objects: [customers]\n', '  objects: [customers]\n  rate_limits: {requests_per_second: 0, burst: -2, concurrency: 0, redis: "localhost:6379", typo: 1}\n');
    await p.write('job.yaml', text);
    await assert.rejects(loadJob(p.p('job.yaml'), { env: { FAKE_KEY: 'k' } }), (e: unknown) => {
      assert.ok(e instanceof DativoError);
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.equal(e.exitCode, 3);
      const keys = e.problems.map((x) => x.key).sort();
      assert.deepEqual(keys, [
        'retry_config.max_delay_seconds',
        'retry_config.max_retries',
        'source.rate_limits.burst',
        'source.rate_limits.concurrency',
        'source.rate_limits.redis',
        'source.rate_limits.requests_per_second',
        'source.rate_limits.typo',
      ]);
      return true;
    });
  } finally {
    await p.cleanup();
  }
});

test('requestPolicy: defaults ← rate_limits.retry ← the keys the job set in retry_config', async () => {
  const { requestPolicy } = await import('../../../lib/run/network.js');
  const { DEFAULT_RETRY_POLICY } = await import('../../../lib/retry.js');
  const base = { source: { rateLimits: { retry: { max_retries: 3, max_backoff_seconds: 0.05 } } }, retry: { request: {} } } as unknown as Parameters<typeof requestPolicy>[0];
  const a = requestPolicy(base);
  assert.equal(a.maxAttempts, 4);
  assert.equal(a.maxDelayMs, 50);
  assert.equal(a.minDelayMs, 50);
  const b = requestPolicy({ ...base, retry: { request: { maxAttempts: 2, minDelayMs: 60_000 } } } as unknown as Parameters<typeof requestPolicy>[0]);
  assert.equal(b.maxAttempts, 2);
  assert.equal(b.minDelayMs, 60_000);
  assert.equal(b.maxDelayMs, 60_000, 'a first wait above the cap raises the cap');
  const c = requestPolicy({ source: {}, retry: {} } as unknown as Parameters<typeof requestPolicy>[0]);
  assert.deepEqual(c, DEFAULT_RETRY_POLICY);
});
