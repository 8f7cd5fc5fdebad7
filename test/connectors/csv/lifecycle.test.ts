/**
 * Resources follow the stream: the file is read only as fast as records are
 * consumed, and destroy / abort / errors close it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import { DativoError } from '../../../lib/errors.js';
import { makeCsvCtx, makeCsvPlan, openFdPathsUnder, openFdsUnder } from './helpers.js';

let dir: string;
const ROWS = 200_000;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-csv-life-'));
  let text = 'id,payload\n';
  const pad = 'x'.repeat(40);
  for (let i = 0; i < ROWS; i++) text += `${i},${pad}\n`;
  await writeFile(join(dir, 'big.csv'), text);
  await writeFile(join(dir, 'small.csv'), 'id\n1\n');
  await writeFile(join(dir, 'dup.txt'), 'id,id\n1,2\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function open(files = [{ path: 'big.csv' }, { path: 'small.csv' }], signal?: AbortSignal) {
  const plan = makeCsvPlan({ dir, files });
  return csv.read(makeCsvCtx(plan, signal ? { signal } : {}));
}

describe('csv: stream lifecycle', () => {
  it('pulls: a slow consumer keeps the file mostly unread (backpressure)', async () => {
    const stream = open();
    const it = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) await it.next();
    await sleep(50);
    const inner = stream as unknown as { fileStream?: { bytesRead: number } };
    const size = ROWS * 47;
    assert.ok(inner.fileStream !== undefined);
    assert.ok(inner.fileStream.bytesRead < size / 4, `read ${inner.fileStream.bytesRead} of ${size} bytes for 10 records`);
    stream.destroy();
    await once(stream, 'close');
  });

  it('destroy mid-read closes the file descriptor', async () => {
    assert.deepEqual(openFdPathsUnder(dir), []);
    const stream = open();
    const it = stream[Symbol.asyncIterator]();
    for (let i = 0; i < 100; i++) await it.next();
    assert.equal(openFdsUnder(dir), 1, 'one file open while reading');
    stream.destroy();
    await once(stream, 'close');
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('an abort signal stops the read with ABORTED and closes the file', async () => {
    const ac = new AbortController();
    const stream = open(undefined, ac.signal);
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of stream) if (++n === 1000) ac.abort();
      })(),
      (err: unknown) => err instanceof DativoError && err.code === 'ABORTED',
    );
    assert.ok(n >= 1000 && n < ROWS);
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('an already aborted signal fails before opening anything', async () => {
    const ac = new AbortController();
    ac.abort();
    const stream = open(undefined, ac.signal);
    const [err] = (await once(stream, 'error')) as [DativoError];
    assert.equal(err.code, 'ABORTED');
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('destroy right after creation (before the first file opened) leaks nothing', async () => {
    for (let i = 0; i < 20; i++) {
      const stream = open();
      stream.resume();
      await sleep(i % 3);
      stream.destroy();
      await once(stream, 'close');
    }
    await sleep(20);
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('an error in a later file fails the stream and closes it', async () => {
    const stream = open([{ path: 'small.csv' }, { path: 'dup.txt' }]);
    await assert.rejects(
      (async () => {
        for await (const _ of stream);
      })(),
      (err: unknown) => err instanceof DativoError && err.code === 'SOURCE_FORMAT',
    );
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('a reject sink that destroys the stream (strict mode) stops it with that error', async () => {
    await writeFile(join(dir, 'strict.txt'), `id,v\n${Array.from({ length: 5000 }, (_, i) => (i === 10 ? `${i}` : `${i},x`)).join('\n')}\n`);
    const plan = makeCsvPlan({ dir, files: [{ path: 'strict.txt' }, { path: 'big.csv' }] });
    const ctx = makeCsvCtx(plan);
    const failure = new DativoError('VALIDATION_FAILED', 'strict');
    const stream = csv.read({
      ...ctx,
      rejects: {
        reject: () => {
          stream.destroy(failure);
        },
        count: 0,
      },
    });
    let rows = 0;
    await assert.rejects(
      (async () => {
        for await (const _ of stream) rows++;
      })(),
      (err: unknown) => err === failure,
    );
    assert.ok(rows <= 10, `rows after the reject were not delivered (${rows})`);
    assert.deepEqual(openFdPathsUnder(dir), []);
  });

  it('reading to the end closes every file', async () => {
    const stream = open([{ path: '*.csv' }]);
    let n = 0;
    for await (const _ of stream) n++;
    assert.equal(n, ROWS + 1);
    assert.deepEqual(openFdPathsUnder(dir), []);
  });
});
