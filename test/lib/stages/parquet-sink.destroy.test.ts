import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { Row } from '../../../lib/types.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { field } from '../parquet/fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-destroy-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = [field('id', { kind: 'long' }, 1, true), field('text', { kind: 'string' }, 2)];

function batch(start: number, n: number): Row[] {
  return Array.from({ length: n }, (_, i) => ({ id: BigInt(start + i), text: `row ${start + i} ${'.'.repeat((start + i) % 50)}` }));
}

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
}

function waitForTempFile(root: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = async (): Promise<void> => {
      if ((await filesUnder(root)).some((n) => n.endsWith('.inprogress'))) resolve();
      else if (Date.now() - t0 > 5000) reject(new Error('no temp file appeared'));
      else setTimeout(() => void tick(), 5);
    };
    void tick();
  });
}

describe('parquetSink destroy / abort', () => {
  it('destroy(err) mid-file removes the file in progress and keeps the finished ones', async () => {
    const root = join(dir, 'destroy');
    const sink = parquetSink({
      storage: new LocalStorage(root),
      fields: FIELDS,
      directory: 'data',
      filePrefix: 'part-x',
      targetFileSizeBytes: 20_000,
      rowGroupRows: 500,
    });
    let next = 0;
    const write = async (): Promise<void> => {
      if (!sink.write(batch(next, 1000))) await new Promise((r) => sink.once('drain', r));
      next += 1000;
    };
    while (sink.files.length === 0) await write();
    // Start the next file and make sure its temp file exists before destroying.
    await write();
    await waitForTempFile(root);
    const finished = [...sink.files];
    const closed = new Promise((r) => sink.once('close', r));
    sink.on('error', () => {});
    sink.destroy(new Error('boom'));
    await closed;

    const names = await filesUnder(root);
    assert.deepEqual(names.filter((n) => n.endsWith('.inprogress')), [], 'no temp file left');
    assert.deepEqual(names, finished.map((f) => f.relativePath.slice('data/'.length)), 'only finished files at final paths');
    assert.ok(finished.length >= 1);
    for (const f of finished) {
      const back = await readParquetWithDuckDB(join(root, f.relativePath));
      assert.equal(back.rows.length, f.recordCount);
    }
  });

  it('an aborted pipeline (AbortSignal) leaves no temp file and no file of the aborted part', async () => {
    const root = join(dir, 'signal');
    const ac = new AbortController();
    const sink = parquetSink({
      storage: new LocalStorage(root),
      fields: FIELDS,
      directory: 'data',
      filePrefix: 'part-y',
      rowGroupRows: 500,
      signal: ac.signal,
    });
    async function* source(): AsyncGenerator<Row[]> {
      for (let i = 0; ; i++) {
        yield batch(i * 1000, 1000);
        if (i === 5) {
          await waitForTempFile(root);
          ac.abort();
        }
      }
    }
    await assert.rejects(pipeline(Readable.from(source()), sink, { signal: ac.signal }), (e: Error) => e.name === 'AbortError');
    const t0 = Date.now();
    while ((await filesUnder(root)).length > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await filesUnder(root), []);
    assert.deepEqual(sink.files, []);
  });

  it('a row the Arrow builder rejects fails the pipeline and leaves nothing behind', async () => {
    const root = join(dir, 'bad');
    const sink = parquetSink({ storage: new LocalStorage(root), fields: FIELDS, directory: 'data', filePrefix: 'p', rowGroupRows: 100 });
    const bad = [...batch(0, 300), { id: 1.5, text: 'not a long' }];
    await assert.rejects(pipeline(Readable.from([batch(1000, 300), bad]), sink), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'INTERNAL');
      assert.equal((e as { context: { column?: string } }).context.column, 'id');
      return true;
    });
    assert.deepEqual(await filesUnder(root), []);
  });
});
