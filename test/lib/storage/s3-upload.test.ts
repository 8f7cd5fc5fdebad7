import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createS3Storage, PART_SIZE, type S3Storage } from '../../../lib/storage/s3.js';
import { isDativoError, type DativoError } from '../../../lib/errors.js';
import { startS3rver, failUploadPart, type S3rverHandle } from '../../helpers/s3rver.js';

const MiB = 1024 * 1024;
let srv: S3rverHandle;
let storage: S3Storage;

function open(warehouse: string, accessKeyId = 'S3RVER'): S3Storage {
  const { bucket } = { bucket: warehouse.slice(5).split('/')[0] ?? '' };
  return createS3Storage(warehouse, {
    bucket,
    endpoint: srv.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    accessKeyId,
    secretAccessKey: 'S3RVER',
  });
}

/** `total` random bytes in 64 KiB chunks; `digest()` gives the sha256 of what was produced. */
function randomSource(total: number): { stream: Readable; digest(): string } {
  const hash = createHash('sha256');
  let left = total;
  const stream = new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(64 * 1024, left);
      left -= n;
      const chunk = randomBytes(n);
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

async function writeBytes(w: Writable, total: number): Promise<void> {
  let left = total;
  while (left > 0) {
    const n = Math.min(64 * 1024, left);
    left -= n;
    if (!w.write(randomBytes(n))) await once(w, 'drain');
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function head(key: string): Promise<{ status: number; metadata?: Record<string, string>; length?: number; contentType?: string }> {
  try {
    const h = await storage.client.send(new HeadObjectCommand({ Bucket: 'lake', Key: key }));
    return { status: 200, metadata: h.Metadata ?? {}, length: h.ContentLength ?? -1, contentType: h.ContentType ?? '' };
  } catch (err) {
    return { status: (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1 };
  }
}

async function sha256Of(key: string): Promise<string> {
  const out = await storage.client.send(new GetObjectCommand({ Bucket: 'lake', Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of out.Body as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function partPuts(key: string): { partNumber: string; status: number }[] {
  return srv.requests
    .filter((r) => r.method === 'PUT' && r.path === `/lake/${key}` && r.query.has('partNumber'))
    .map((r) => ({ partNumber: r.query.get('partNumber') ?? '', status: r.status }));
}

before(async () => {
  srv = await startS3rver({ buckets: ['lake'] });
  storage = open('s3://lake/wh');
});
after(async () => {
  storage.close();
  await srv.close();
});

test('a 30 MB stream is uploaded in 8 MiB parts and reads back byte-identical, with its metadata', async () => {
  const size = 30 * MiB + 12_345;
  const src = randomSource(size);
  const h = storage.createWriteStream('t/data/big.parquet', { metadata: { 'asset-name': 'orders', Owner: 'Zoë <data@x>' } });
  await pipeline(src.stream, h.stream);
  assert.equal((await head('wh/t/data/big.parquet')).status, 404, 'nothing visible before done()');
  const res = await h.done();
  assert.deepEqual(res, { uri: 's3://lake/wh/t/data/big.parquet', size });
  const parts = partPuts('wh/t/data/big.parquet');
  assert.equal(parts.length, Math.ceil(size / PART_SIZE));
  const hd = await head('wh/t/data/big.parquet');
  assert.equal(hd.length, size);
  assert.equal(hd.contentType, 'application/x-parquet');
  assert.deepEqual(hd.metadata, { 'asset-name': 'orders', owner: encodeURIComponent('Zoë <data@x>') });
  assert.equal(await sha256Of('wh/t/data/big.parquet'), src.digest());
});

test('a small stream becomes one PutObject, only at done(); an empty stream is a 0-byte object', async () => {
  const h = storage.createWriteStream('t/small.bin', { contentType: 'application/x-test' });
  h.stream.write(Buffer.from('hello '));
  h.stream.end(Buffer.from('world'));
  await once(h.stream, 'finish');
  assert.equal((await head('wh/t/small.bin')).status, 404);
  assert.deepEqual(await h.done(), { uri: 's3://lake/wh/t/small.bin', size: 11 });
  assert.equal((await storage.read('t/small.bin')).toString(), 'hello world');
  assert.equal((await head('wh/t/small.bin')).contentType, 'application/x-test');
  assert.equal(partPuts('wh/t/small.bin').length, 0);

  const e = storage.createWriteStream('t/empty.bin');
  assert.deepEqual(await e.done(), { uri: 's3://lake/wh/t/empty.bin', size: 0 });
  assert.equal((await head('wh/t/empty.bin')).length, 0);
});

test('abort() mid-upload: no object, the writer sees ABORTED, done() rejects ABORTED, abort is idempotent', async () => {
  const key = 'wh/t/aborted.parquet';
  const h = storage.createWriteStream('t/aborted.parquet');
  await writeBytes(h.stream, 20 * MiB);
  // Parts are in flight or done: the multipart upload exists on the server.
  await waitFor('CreateMultipartUpload', () => srv.requests.some((r) => r.method === 'POST' && r.path === `/lake/${key}` && r.query.has('uploads')));
  const writerError = once(h.stream, 'error').then(([e]) => e as DativoError, () => undefined);
  await h.abort(new Error('user cancelled'));
  await h.abort();
  assert.equal((await writerError)?.code, 'ABORTED');
  await assert.rejects(h.done(), (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
  assert.equal((await head(key)).status, 404);
  // We asked the server to drop the parts (s3rver answers 405 to AbortMultipartUpload, S3 deletes them).
  assert.ok(srv.requests.some((r) => r.method === 'DELETE' && r.path === `/lake/${key}` && r.query.has('uploadId')));
  // The key can be written again afterwards.
  const again = storage.createWriteStream('t/aborted.parquet');
  again.stream.end(Buffer.from('x'));
  assert.equal((await again.done()).size, 1);
});

test('abort() while CompleteMultipartUpload / PutObject is in flight: it waits, then removes what landed', async () => {
  // lib-storage does not cancel requests already sent; our abort waits for them and deletes the object.
  const held = new Set<string>();
  srv.setFaults((r) => {
    const completing = r.method === 'POST' && r.query.has('uploadId');
    const smallPut = r.method === 'PUT' && r.path.endsWith('/late-small.bin');
    if (!completing && !smallPut) return undefined;
    held.add(r.path);
    return { delayMs: 300 };
  });
  try {
    const big = storage.createWriteStream('t/late-big.parquet');
    await writeBytes(big.stream, 17 * MiB);
    const bigDone = big.done();
    await waitFor('CompleteMultipartUpload to be sent', () => held.has('/lake/wh/t/late-big.parquet'));
    await big.abort();
    await assert.rejects(bigDone, (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
    assert.ok(srv.requests.some((r) => r.method === 'POST' && r.path === '/lake/wh/t/late-big.parquet' && r.query.has('uploadId') && r.status === 200), 'the completion landed');
    assert.equal((await head('wh/t/late-big.parquet')).status, 404, 'and was removed');

    const small = storage.createWriteStream('t/late-small.bin');
    small.stream.end(Buffer.from('tiny'));
    const smallDone = small.done();
    await waitFor('PutObject to be sent', () => held.has('/lake/wh/t/late-small.bin'));
    await small.abort();
    await assert.rejects(smallDone, (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
    assert.ok(srv.requests.some((r) => r.method === 'PUT' && r.path === '/lake/wh/t/late-small.bin' && r.status === 200));
    assert.equal((await head('wh/t/late-small.bin')).status, 404);
  } finally {
    srv.setFaults(undefined);
  }
});

test('an AbortSignal aborts the upload: pipeline and done() reject ABORTED, no object', async () => {
  const key = 'wh/t/signal.parquet';
  const ac = new AbortController();
  const h = storage.createWriteStream('t/signal.parquet', { signal: ac.signal });
  const src = randomSource(200 * MiB);
  let sent = 0;
  src.stream.on('data', (c: Buffer) => {
    sent += c.length;
    if (sent >= 12 * MiB && !ac.signal.aborted) ac.abort(new Error('stop'));
  });
  await assert.rejects(pipeline(src.stream, h.stream), (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
  await assert.rejects(h.done(), (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
  assert.ok(sent < 40 * MiB, `writer stopped early (sent ${sent})`);
  assert.equal((await head(key)).status, 404);
});

test('an already-aborted signal aborts at once', async () => {
  const h = storage.createWriteStream('t/pre-aborted.bin', { signal: AbortSignal.abort() });
  await assert.rejects(h.done(), (e: unknown) => isDativoError(e) && e.code === 'ABORTED');
  assert.equal((await head('wh/t/pre-aborted.bin')).status, 404);
});

test('a writer error destroys the stream: the upload is aborted with that error, no object', async () => {
  const h = storage.createWriteStream('t/writer-failed.parquet');
  await writeBytes(h.stream, 10 * MiB);
  h.stream.destroy(new Error('encoder blew up'));
  await assert.rejects(h.done(), (e: unknown) => isDativoError(e) && /encoder blew up/.test(e.message));
  assert.equal((await head('wh/t/writer-failed.parquet')).status, 404);
});

test('one 500 on UploadPart 2 is retried by the SDK and the file is intact', async () => {
  const key = 'wh/t/retried.parquet';
  srv.setFaults(failUploadPart(2, 1));
  try {
    const src = randomSource(20 * MiB);
    const h = storage.createWriteStream('t/retried.parquet');
    await pipeline(src.stream, h.stream);
    await h.done();
    assert.deepEqual(
      partPuts(key).filter((p) => p.partNumber === '2').map((p) => p.status),
      [500, 200],
    );
    assert.equal(await sha256Of(key), src.digest());
  } finally {
    srv.setFaults(undefined);
  }
});

test('UploadPart 2 failing on every attempt → retryable STORAGE_IO naming bucket, key, part; no object', async () => {
  const key = 'wh/t/failed.parquet';
  srv.setFaults(failUploadPart(2));
  try {
    // Large enough that the writer cannot finish before part 2 has failed three times
    // (the other uploader goes on with parts 3, 4, ... meanwhile).
    const src = randomSource(200 * MiB);
    const h = storage.createWriteStream('t/failed.parquet');
    // The writer learns of the failure: the stream is destroyed with the same error.
    const pe = await pipeline(src.stream, h.stream).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal((pe as DativoError | undefined)?.code, 'STORAGE_IO');
    await assert.rejects(h.done(), (e: unknown) => {
      assert.ok(isDativoError(e));
      assert.equal(e.code, 'STORAGE_IO');
      assert.equal(e.disposition, 'retryable');
      assert.equal(e.exitCode, 2);
      assert.equal(e.context.bucket, 'lake');
      assert.equal(e.context.key, key);
      assert.equal(e.context.partNumber, 2);
      assert.equal(e.context.status, 500);
      assert.equal(e.context.s3Code, 'InternalError');
      return true;
    });
    assert.equal(partPuts(key).filter((p) => p.partNumber === '2').length, 3, 'three attempts (maxAttempts 3)');
    assert.equal((await head(key)).status, 404);
  } finally {
    srv.setFaults(undefined);
  }
});

test('wrong access key → AUTH_FAILED; missing bucket → STORAGE_NOT_WRITABLE (streamed upload)', async () => {
  const bad = open('s3://lake/wh', 'NOT-A-KEY');
  try {
    const h = bad.createWriteStream('t/auth.parquet');
    // 12 MiB may all be buffered before the 403 arrives: the writer may finish; done() reports.
    const pe = await pipeline(randomSource(12 * MiB).stream, h.stream).catch((e: unknown) => e);
    if (pe !== undefined) assert.equal((pe as DativoError).code, 'AUTH_FAILED');
    await assert.rejects(h.done(), (e: unknown) => {
      assert.ok(isDativoError(e));
      assert.equal(e.code, 'AUTH_FAILED');
      assert.equal(e.context.s3Code, 'InvalidAccessKeyId');
      assert.equal(e.context.operation, 'CreateMultipartUpload');
      assert.match(e.message, /refused the credentials/);
      return true;
    });
  } finally {
    bad.close();
  }
  const nob = open('s3://no-such-bucket/wh');
  try {
    const h = nob.createWriteStream('t/x.bin');
    h.stream.end(Buffer.from('x'));
    await assert.rejects(h.done(), (e: unknown) => {
      assert.ok(isDativoError(e));
      assert.equal(e.code, 'STORAGE_NOT_WRITABLE');
      assert.equal(e.context.bucket, 'no-such-bucket');
      return true;
    });
  } finally {
    nob.close();
  }
});
