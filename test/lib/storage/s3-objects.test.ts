import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Storage, parseS3Uri, type S3Storage } from '../../../lib/storage/s3.js';
import { isDativoError } from '../../../lib/errors.js';
import type { S3Settings } from '../../../lib/plan.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';

let srv: S3rverHandle;
let storage: S3Storage;

function settings(endpoint: string, extra: Partial<S3Settings> = {}): S3Settings {
  return {
    bucket: 'lake',
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    ...extra,
  };
}

before(async () => {
  srv = await startS3rver({ buckets: ['lake'] });
  storage = createS3Storage('s3://lake/wh/', settings(srv.endpoint, { prefix: 'wh' }));
});
after(async () => {
  storage.close();
  await srv.close();
});

test('root, uri and keys; paths that are empty, absolute or contain . or .. are refused', () => {
  assert.equal(storage.root, 's3://lake/wh');
  assert.equal(storage.uri('t/metadata/v1.metadata.json'), 's3://lake/wh/t/metadata/v1.metadata.json');
  for (const bad of ['', '/abs', 'a/../b', './a', 'a//b', 'a/']) {
    assert.throws(() => storage.uri(bad), (e: unknown) => isDativoError(e) && e.code === 'INTERNAL', bad);
  }
  assert.deepEqual(parseS3Uri('s3a://b/p/q/'), { bucket: 'b', prefix: 'p/q' });
  assert.deepEqual(parseS3Uri('s3://b'), { bucket: 'b', prefix: '' });
  assert.throws(() => parseS3Uri('https://b/p'), (e: unknown) => isDativoError(e) && e.code === 'CONFIG_INVALID');
});

test('settings that contradict the warehouse URI, or half credentials, are CONFIG_INVALID', () => {
  const ep = srv.endpoint;
  const invalid = (e: unknown): boolean => isDativoError(e) && e.code === 'CONFIG_INVALID' && e.problems.length === 1;
  assert.throws(() => createS3Storage('s3://lake/wh', settings(ep, { bucket: 'other' })), invalid);
  assert.throws(() => createS3Storage('s3://lake/wh', settings(ep, { prefix: 'elsewhere' })), invalid);
  const { secretAccessKey: _, ...noSecret } = settings(ep);
  assert.throws(() => createS3Storage('s3://lake/wh', noSecret), invalid);
});

test('writeAtomic, read, exists, delete round trip, with metadata and content type', async () => {
  await storage.writeAtomic('t/metadata/v1.metadata.json', '{"format-version":2}', { metadata: { 'Run-Id': 'r1' } });
  await storage.writeAtomic('t/bytes.bin', new Uint8Array([0, 1, 2, 255]));
  assert.equal((await storage.read('t/metadata/v1.metadata.json')).toString('utf8'), '{"format-version":2}');
  assert.deepEqual([...(await storage.read('t/bytes.bin'))], [0, 1, 2, 255]);
  const h = await storage.client.send(new HeadObjectCommand({ Bucket: 'lake', Key: 'wh/t/metadata/v1.metadata.json' }));
  assert.equal(h.ContentType, 'application/json');
  assert.deepEqual(h.Metadata, { 'run-id': 'r1' });
  assert.equal(await storage.exists('t/bytes.bin'), true);
  assert.equal(await storage.exists('t/nope.bin'), false);
  // Overwrite without ifNotExists replaces the object.
  await storage.writeAtomic('t/bytes.bin', 'new');
  assert.equal((await storage.read('t/bytes.bin')).toString(), 'new');
  await storage.delete('t/bytes.bin');
  await storage.delete('t/bytes.bin');
  assert.equal(await storage.exists('t/bytes.bin'), false);
  await assert.rejects(storage.read('t/bytes.bin'), (e: unknown) => {
    assert.ok(isDativoError(e));
    assert.equal(e.code, 'SOURCE_NOT_FOUND');
    assert.equal(e.context.bucket, 'lake');
    assert.equal(e.context.key, 'wh/t/bytes.bin');
    return true;
  });
});

test('list follows continuation tokens past 1,000 keys and returns paths relative to the root', async () => {
  const names = Array.from({ length: 1005 }, (_, i) => `many/f${String(i).padStart(4, '0')}.json`);
  await srv.seed('lake', Object.fromEntries(names.map((n) => [`wh/${n}`, '{}'])));
  await storage.writeAtomic('manyother/x.json', '{}');
  assert.equal((await storage.read('many/f1004.json')).toString(), '{}', 'seeded objects are served');
  const before = srv.requests.length;
  const listed = await storage.list('many/');
  assert.equal(listed.length, 1005);
  assert.deepEqual(listed, names);
  const listCalls = srv.requests.slice(before).filter((r) => r.method === 'GET' && r.query.get('list-type') === '2');
  assert.equal(listCalls.length, 2, 'two pages');
  assert.ok(listCalls[1]?.query.has('continuation-token'));
  // S3 prefix semantics, like the local storage: `many` would also match `manyother/`.
  assert.deepEqual(await storage.list('manyo'), ['manyother/x.json']);
  assert.deepEqual(await storage.list('many/f100'), ['many/f1000.json', 'many/f1001.json', 'many/f1002.json', 'many/f1003.json', 'many/f1004.json']);
  assert.deepEqual(await storage.list('nothing-here/'), []);
});

test('a storage at the bucket root lists and writes keys without a prefix', async () => {
  const rootStorage = createS3Storage('s3://lake', settings(srv.endpoint));
  try {
    assert.equal(rootStorage.root, 's3://lake');
    await rootStorage.writeAtomic('top.txt', 'x');
    assert.equal(rootStorage.uri('top.txt'), 's3://lake/top.txt');
    assert.deepEqual(await rootStorage.list('wh/t/metadata/'), ['wh/t/metadata/v1.metadata.json']);
    assert.deepEqual(await rootStorage.list('top'), ['top.txt']);
  } finally {
    rootStorage.close();
  }
});

test('writeAtomic ifNotExists: a second write fails with STORAGE_IO exists and leaves the first; If-None-Match: * is sent', async () => {
  await storage.writeAtomic('t/metadata/v2.metadata.json', 'first', { ifNotExists: true });
  const put = srv.requests.findLast((r) => r.method === 'PUT' && r.path === '/lake/wh/t/metadata/v2.metadata.json');
  assert.equal(put?.headers['if-none-match'], '*');
  await assert.rejects(storage.writeAtomic('t/metadata/v2.metadata.json', 'second', { ifNotExists: true }), (e: unknown) => {
    assert.ok(isDativoError(e));
    assert.equal(e.code, 'STORAGE_IO');
    assert.equal(e.context.exists, true);
    assert.equal(e.context.key, 'wh/t/metadata/v2.metadata.json');
    return true;
  });
  assert.equal((await storage.read('t/metadata/v2.metadata.json')).toString(), 'first');
});

test('writeAtomic ifNotExists race on a store with conditional writes: exactly one of two concurrent writers wins', async () => {
  // s3rver 3.7.1 ignores If-None-Match on PUT; the proxy emulates S3's
  // conditional write (412 PreconditionFailed) so that our handling of the
  // losing writer is exercised. Against plain s3rver both writers could win.
  const cond = await startS3rver({ buckets: ['lake'], conditionalWrites: true });
  const s = createS3Storage('s3://lake', settings(cond.endpoint));
  try {
    for (let round = 0; round < 5; round++) {
      const path = `race/v${round}.metadata.json`;
      const results = await Promise.allSettled([
        s.writeAtomic(path, 'writer-a', { ifNotExists: true }),
        s.writeAtomic(path, 'writer-b', { ifNotExists: true }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, `round ${round}: one winner`);
      assert.equal(lost.length, 1);
      const e: unknown = lost[0]?.reason;
      assert.ok(isDativoError(e));
      assert.equal(e.code, 'STORAGE_IO');
      assert.equal(e.context.exists, true);
      const winner = results[0]?.status === 'fulfilled' ? 'writer-a' : 'writer-b';
      assert.equal((await s.read(path)).toString(), winner);
    }
    // Both writers passed the HeadObject check; the loser was stopped by the condition (412).
    assert.ok(cond.requests.some((r) => r.status === 412 && r.injected));
  } finally {
    s.close();
    await cond.close();
  }
});
