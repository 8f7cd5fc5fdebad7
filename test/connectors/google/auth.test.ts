/**
 * The shared Google module (connectors/google): the three credentials
 * against the Google fake through the real @googleapis/drive client, the
 * key-file checks, and the mapping of Google's errors (not shared, quota
 * 403/429 retried under our policy with Retry-After, revoked tokens).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { googleCall } from '../../../connectors/google/call.js';
import { driveFile, googleRateLimits, openGoogleSession, DRIVE_READONLY_SCOPE } from '../../../connectors/google/session.js';
import { DativoError } from '../../../lib/errors.js';
import { createLimiter } from '../../../lib/limiter.js';
import { HttpClient } from '../../../lib/http.js';
import type { JobPlan } from '../../../lib/plan.js';
import { definePolicy } from '../../../lib/retry.js';
import { GoogleFake, USER_RATE_LIMIT_403, type FakeServiceAccount } from '../../fakes/google.js';

const fake = new GoogleFake();
let dir: string;
let account: FakeServiceAccount;

function plan(source: Record<string, unknown>, extra: Partial<JobPlan> = {}): JobPlan {
  return {
    file: path.join(dir, 'job.yaml'),
    name: 'job',
    tenantId: 'acme',
    mode: 'self_hosted',
    source: { type: 'gdrive_csv', options: source, objects: [] },
    secrets: [],
    retry: {},
    secretsDir: path.join(dir, 'secrets'),
    ...extra,
  } as unknown as JobPlan;
}

const conn = (): Record<string, unknown> => ({ base_url: fake.url });

async function open(p: JobPlan, http?: (e: object) => HttpClient) {
  return openGoogleSession(p, { connector: 'gdrive_csv', secret: 'gdrive', scopes: [DRIVE_READONLY_SCOPE], ...(http ? { http } : {}) });
}

async function rejectsWith(promise: Promise<unknown>, code: string, check?: (e: DativoError) => void): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof DativoError, `a DativoError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    check?.(err);
    return true;
  });
}

describe('connectors/google auth', () => {
  before(async () => {
    await fake.start();
    dir = await mkdtemp(path.join(tmpdir(), 'google-auth-'));
    account = fake.serviceAccount('reader@acme-data.iam.gserviceaccount.com');
    await mkdir(path.join(dir, 'secrets', 'acme'), { recursive: true });
    await writeFile(path.join(dir, 'secrets', 'acme', 'gdrive.json'), JSON.stringify(account.key, null, 2));
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => fake.reset());

  it('a service-account key in <secrets-dir>/<tenant>/gdrive.json: a signed JWT for a token, then the file', async () => {
    const f = fake.addFile({ name: 'orders.csv', content: Buffer.from('a\n1\n') }, [account.email]);
    const s = await open(plan({ connection: conn() }));
    assert.equal(s.auth.email, account.email);
    const meta = await driveFile(s, f.id, { connector: 'gdrive_csv' });
    assert.equal(meta.name, 'orders.csv');
    assert.equal(meta.size, '4');
    const token = fake.requests.find((r) => r.path === '/token')!;
    assert.equal(new URLSearchParams(token.body).get('grant_type'), 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    const claims = JSON.parse(Buffer.from(new URLSearchParams(token.body).get('assertion')!.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims['scope'], DRIVE_READONLY_SCOPE);
    assert.equal(claims['aud'], fake.tokenUrl);
    // One token for many calls.
    await driveFile(s, f.id, { connector: 'gdrive_csv' });
    assert.equal(fake.requests.filter((r) => r.path === '/token').length, 1);
  });

  it('a malformed key file is CONFIG_INVALID naming the file, never quoting the key', async () => {
    const bad = path.join(dir, 'bad.json');
    const broken = JSON.stringify(account.key).replace('"client_email"', 'client_email');
    await writeFile(bad, broken);
    await rejectsWith(open(plan({ connection: conn(), credentials: { service_account_file: bad } })), 'CONFIG_INVALID', (e) => {
      assert.match(e.message, /bad\.json/);
      assert.match(e.message, /not valid JSON/);
      assert.doesNotMatch(e.message, /PRIVATE KEY|MII/);
      assert.equal(e.problems[0]?.file, bad);
    });
    await writeFile(bad, JSON.stringify({ ...account.key, private_key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n' }));
    await rejectsWith(open(plan({ connection: conn(), credentials: { service_account_file: bad } })), 'CONFIG_INVALID', (e) => {
      assert.match(e.message, /private_key .*not a PEM private key/);
      assert.doesNotMatch(e.message, /not a key/);
    });
    await writeFile(bad, JSON.stringify({ type: 'authorized_user', client_id: 'x' }));
    await rejectsWith(open(plan({ connection: conn(), credentials: { service_account_file: bad } })), 'CONFIG_INVALID', (e) => assert.match(e.message, /not a service-account key/));
    await rejectsWith(open(plan({ connection: conn(), credentials: { file_template: path.join(dir, '{tenant}', 'missing.json') } })), 'CONFIG_INVALID', (e) =>
      assert.match(e.message, /acme\/missing\.json: cannot read the service-account key file \(ENOENT\)/),
    );
    await rejectsWith(open(plan({ connection: conn() }, { secretsDir: undefined } as Partial<JobPlan>)), 'CONFIG_INVALID', (e) => assert.match(e.message, /--secrets-dir/));
  });

  it('a key Google no longer accepts is AUTH_FAILED naming the service account', async () => {
    const other = fake.serviceAccount('gone@acme-data.iam.gserviceaccount.com');
    const file = path.join(dir, 'gone.json');
    await writeFile(file, JSON.stringify(other.key));
    other.revoked = true;
    const s = await open(plan({ connection: conn(), credentials: { service_account_file: file } }));
    await rejectsWith(s.auth.headers(), 'AUTH_FAILED', (e) => {
      assert.match(e.message, /gone@acme-data\.iam\.gserviceaccount\.com/);
      assert.match(e.message, /invalid_grant/);
    });
  });

  it('an OAuth refresh token; revoked, it is AUTH_FAILED (exit 3) naming source.credentials.refresh_token, never its value', async () => {
    const client = fake.oauthClient('ana@acme.example');
    const f = fake.addFile({ name: 'mine.csv', content: Buffer.from('a\n') }, ['ana@acme.example']);
    const p = plan({ connection: conn(), credentials: { client_id: client.clientId, client_secret: client.clientSecret, refresh_token: client.refreshToken } });
    const s = await open(p);
    assert.equal(s.auth.kind, 'oauth2');
    assert.equal((await driveFile(s, f.id, { connector: 'gdrive_csv' })).name, 'mine.csv');
    fake.revokeRefreshToken(client.refreshToken);
    const again = await open(p);
    await rejectsWith(driveFile(again, f.id, { connector: 'gdrive_csv' }), 'AUTH_FAILED', (e) => {
      assert.match(e.message, /expired or revoked/);
      assert.match(e.message, /source\.credentials\.refresh_token/);
      assert.ok(!e.message.includes(client.refreshToken) && !e.message.includes(client.clientSecret));
    });
    await rejectsWith(open(plan({ connection: conn(), credentials: { refresh_token: 'x' } })), 'CONFIG_INVALID', (e) => assert.match(e.message, /client_id.*client_secret/s));
  });

  it('an API key reads a public file; a private one is not found, saying it must be shared publicly', async () => {
    const key = fake.apiKey();
    const pub = fake.addFile({ name: 'public.csv', content: Buffer.from('a\n'), public: true });
    const priv = fake.addFile({ name: 'private.csv', content: Buffer.from('a\n') }, [account.email]);
    const s = await open(plan({ connection: { ...conn(), api_key: key } }));
    assert.equal(s.auth.kind, 'api_key');
    assert.equal((await driveFile(s, pub.id, { connector: 'gdrive_csv' })).name, 'public.csv');
    await rejectsWith(driveFile(s, priv.id, { connector: 'gdrive_csv' }), 'SOURCE_NOT_FOUND', (e) => {
      assert.match(e.message, /anyone with the link/);
      assert.ok(!e.message.includes(key));
    });
    assert.ok(fake.requests.every((r) => r.path !== '/token'));
  });

  it('a file not shared with the service account: SOURCE_NOT_FOUND naming it and the e-mail to share it with', async () => {
    const f = fake.addFile({ name: 'secret.csv', content: Buffer.from('a\n') });
    const s = await open(plan({ connection: conn() }));
    await rejectsWith(driveFile(s, f.id, { connector: 'gdrive_csv', kind: 'folder' }), 'SOURCE_NOT_FOUND', (e) => {
      assert.match(e.message, new RegExp(`folder ${f.id} does not exist or is not shared with the service account ${account.email}`));
      assert.match(e.message, new RegExp(`share it with ${account.email.replace(/\./g, '\\.')} \\(Viewer is enough\\)`));
      assert.equal(e.context['shareWith'], account.email);
    });
  });

  it('403 userRateLimitExceeded and 429 are retried under our policy (Retry-After honoured, the limiter paused); the client never retries on its own', async () => {
    const f = fake.addFile({ name: 'x.csv', content: Buffer.from('a\n') }, [account.email]);
    const p = plan({ connection: conn() });
    const limiter = createLimiter('gdrive_csv:test', { burst: 1, concurrency: 4 });
    const policy = definePolicy({ maxAttempts: 4, minDelayMs: 1, maxDelayMs: 5, jitter: 'none' });
    const factory = (e: object): HttpClient => new HttpClient({ ...e, connector: 'gdrive_csv', policy, limiter });
    try {
      const s = await open(p, factory);
      fake.fail({ path: '/drive/v3/files', status: 403, body: USER_RATE_LIMIT_403 });
      fake.fail({ path: '/drive/v3/files', status: 429, headers: { 'retry-after': '1' }, body: { error: { code: 429, message: 'Rate Limit Exceeded', errors: [{ reason: 'rateLimitExceeded' }] } } });
      const t0 = Date.now();
      assert.equal((await driveFile(s, f.id, { connector: 'gdrive_csv' })).name, 'x.csv');
      assert.ok(Date.now() - t0 >= 900, `waited the Retry-After (${Date.now() - t0} ms)`);
      assert.equal(fake.requests.filter((r) => r.path.startsWith('/drive/')).length, 3, 'two refusals, one success: our retries only');
      // Spent: RATE_LIMITED (exit 2).
      fake.fail({ path: '/drive/v3/files', status: 403, body: USER_RATE_LIMIT_403, times: 10 });
      await rejectsWith(driveFile(s, f.id, { connector: 'gdrive_csv' }), 'RATE_LIMITED');
      // A 500 once, with the client's own retry left on it would retry too: we see exactly our attempts.
      fake.reset();
      const g = fake.addFile({ name: 'y.csv', content: Buffer.from('a\n') }, [account.email]);
      fake.fail({ path: '/drive/v3/files', status: 500, times: 2 });
      await googleCall(s.http, s.auth, { connector: 'gdrive_csv', what: 'files.get' }, (o) => s.drive.files.get({ fileId: g.id }, o));
      assert.equal(fake.requests.filter((r) => r.path.startsWith('/drive/')).length, 3);
    } finally {
      await limiter.close();
    }
  });

  it('rate limits are keyed by the service account, whatever the tenant', () => {
    const file = path.join(dir, 'secrets', 'acme', 'gdrive.json');
    const a = googleRateLimits(plan({ connection: conn() }), 'gdrive_csv', 'gdrive');
    const b = googleRateLimits(plan({ connection: conn(), credentials: { service_account_file: file } }, { tenantId: 'globex' }), 'gdrive_csv', 'gdrive');
    assert.match(String(a?.['account']), /^google\.[0-9a-f]{12}$/);
    assert.equal(a?.['account'], b?.['account']);
    assert.equal(googleRateLimits(plan({ connection: conn(), rate_limits: {} }, { source: { type: 'x', options: {}, objects: [], rateLimits: { account: 'mine' } } } as Partial<JobPlan>), 'gdrive_csv', 'gdrive')?.['account'], 'mine');
  });
});
