import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createS3Storage, mapS3Error, type S3Storage } from '../../../lib/storage/s3.js';
import { isDativoError, type DativoError } from '../../../lib/errors.js';
import type { S3Settings } from '../../../lib/plan.js';
import { startS3rver, s3Error, type S3rverHandle } from '../../helpers/s3rver.js';

let srv: S3rverHandle;

function open(warehouse: string, extra: Partial<S3Settings> = {}): S3Storage {
  return createS3Storage(warehouse, {
    bucket: '',
    endpoint: srv.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    ...extra,
  });
}

async function use<T>(s: S3Storage, fn: (s: S3Storage) => Promise<T>): Promise<T> {
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

function dativo(code: string, check: (e: DativoError) => void = () => {}): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isDativoError(e), `not a DativoError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    check(e);
    return true;
  };
}

before(async () => {
  srv = await startS3rver({ buckets: ['lake'] });
});
after(async () => {
  srv.setFaults(undefined);
  await srv.close();
});

test('checkWritable passes on a writable bucket and leaves no probe behind', async () => {
  await use(open('s3://lake/wh'), async (s) => {
    await s.checkWritable();
    assert.deepEqual(await s.list(''), []);
    const probePut = srv.requests.find((r) => r.method === 'PUT' && r.path.startsWith('/lake/wh/.dativo-probe-'));
    assert.ok(probePut, 'the probe is written under the prefix');
  });
});

test('unknown access key (s3rver checks the key id) → AUTH_FAILED saying the credentials were refused', async () => {
  await use(open('s3://lake/wh', { accessKeyId: 'AKIANOTAKEY' }), async (s) => {
    await assert.rejects(
      s.checkWritable(),
      dativo('AUTH_FAILED', (e) => {
        assert.equal(e.disposition, 'fatal');
        assert.equal(e.exitCode, 3);
        assert.equal(e.context.bucket, 'lake');
        assert.equal(e.context.status, 403);
        assert.equal(e.context.operation, 'HeadBucket');
        assert.match(e.message, /refused the credentials/);
      }),
    );
    await assert.rejects(s.writeAtomic('x.json', '{}'), dativo('AUTH_FAILED', (e) => assert.equal(e.context.s3Code, 'InvalidAccessKeyId')));
    await assert.rejects(s.read('x.json'), dativo('AUTH_FAILED'));
  });
});

test('wrong secret key: s3rver does not verify SigV4, so S3 answers are injected: SignatureDoesNotMatch, AccessDenied → AUTH_FAILED', async () => {
  await use(open('s3://lake/wh', { secretAccessKey: 'wrong' }), async (s) => {
    srv.setFaults((r) => (r.method === 'PUT' ? s3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.') : undefined));
    await assert.rejects(
      s.checkWritable(),
      dativo('AUTH_FAILED', (e) => {
        assert.equal(e.context.s3Code, 'SignatureDoesNotMatch');
        assert.equal(e.context.operation, 'PutObject');
        assert.match(String(e.context.key), /^wh\/\.dativo-probe-/);
      }),
    );
    srv.setFaults((r) => (r.method === 'GET' ? s3Error(403, 'AccessDenied', 'Access Denied') : undefined));
    await assert.rejects(s.list('t/'), dativo('AUTH_FAILED', (e) => assert.equal(e.context.s3Code, 'AccessDenied')));
  });
  srv.setFaults(undefined);
});

test('missing bucket → STORAGE_NOT_WRITABLE naming the bucket (checkWritable and writeAtomic)', async () => {
  await use(open('s3://no-such-bucket/wh'), async (s) => {
    await assert.rejects(
      s.checkWritable(),
      dativo('STORAGE_NOT_WRITABLE', (e) => {
        assert.equal(e.context.bucket, 'no-such-bucket');
        assert.match(e.message, /no-such-bucket/);
      }),
    );
    await assert.rejects(s.writeAtomic('a.json', '{}'), dativo('STORAGE_NOT_WRITABLE', (e) => assert.equal(e.context.bucket, 'no-such-bucket')));
  });
});

test('endpoint down → retryable STORAGE_IO after the SDK retries', async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const p = (probe.address() as AddressInfo).port;
      probe.close(() => resolve(p));
    });
  });
  await use(open('s3://lake/wh', { endpoint: `http://127.0.0.1:${port}` }), async (s) => {
    await assert.rejects(
      s.checkWritable(),
      dativo('STORAGE_IO', (e) => {
        assert.equal(e.disposition, 'retryable');
        assert.equal(e.exitCode, 2);
        assert.equal(e.context.syscallCode, 'ECONNREFUSED');
        assert.equal(e.context.bucket, 'lake');
      }),
    );
  });
});

test('5xx and dropped connections on small requests → retryable STORAGE_IO after 3 attempts', async () => {
  await use(open('s3://lake/wh'), async (s) => {
    await s.writeAtomic('a.json', '{}');
    srv.setFaults((r) => (r.method === 'GET' && r.path === '/lake/wh/a.json' ? s3Error(503, 'SlowDown', 'Please reduce your request rate.') : undefined));
    const before = srv.requests.length;
    await assert.rejects(
      s.read('a.json'),
      dativo('STORAGE_IO', (e) => {
        assert.equal(e.disposition, 'retryable');
        assert.equal(e.context.status, 503);
        assert.equal(e.context.s3Code, 'SlowDown');
        assert.equal(e.context.key, 'wh/a.json');
      }),
    );
    assert.equal(srv.requests.slice(before).filter((r) => r.path === '/lake/wh/a.json').length, 3);
    srv.setFaults((r) => (r.method === 'HEAD' ? { drop: true } : undefined));
    await assert.rejects(s.exists('a.json'), dativo('STORAGE_IO', (e) => assert.equal(e.disposition, 'retryable')));
    srv.setFaults(undefined);
    assert.equal(await s.exists('a.json'), true);
  });
});

test('mapS3Error: other 4xx are fatal STORAGE_IO; non-S3 errors go through toDativoError', () => {
  const e400 = Object.assign(new Error('bad'), { name: 'InvalidArgument', $metadata: { httpStatusCode: 400 }, $fault: 'client' });
  const m = mapS3Error(e400, { bucket: 'b', key: 'k', operation: 'PutObject' });
  assert.equal(m.code, 'STORAGE_IO');
  assert.equal(m.disposition, 'fatal');
  assert.deepEqual(
    { bucket: m.context.bucket, key: m.context.key, operation: m.context.operation, status: m.context.status },
    { bucket: 'b', key: 'k', operation: 'PutObject', status: 400 },
  );
  assert.equal(m.cause, e400);
  assert.equal(mapS3Error(new TypeError('x is undefined'), { bucket: 'b' }).code, 'INTERNAL');
  const creds = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
  assert.equal(mapS3Error(creds, { bucket: 'b' }).code, 'AUTH_FAILED');
});
