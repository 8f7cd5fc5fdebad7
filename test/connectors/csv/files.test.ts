/**
 * Which files the CSV connector reads: globs, missing files, and the
 * file-based incremental (size + mtime in the object's state).
 */
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import type { SourceStream } from '../../../lib/connector.js';
import { DativoError } from '../../../lib/errors.js';
import { silentLogger } from '../../../lib/log.js';
import type { ObjectState } from '../../../lib/types.js';
import { collect, makeCsvCtx, makeCsvPlan } from './helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-csv-files-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function notFound(pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DativoError, String(err));
    assert.equal(err.code, 'SOURCE_NOT_FOUND');
    assert.match(err.message, pattern);
    return true;
  };
}

async function run(files: Record<string, unknown>[], opts: { state?: ObjectState; fullRefresh?: boolean; incremental?: boolean; lookbackDays?: number } = {}) {
  const plan = makeCsvPlan({
    dir,
    files,
    ...(opts.incremental !== undefined ? { incremental: opts.incremental } : {}),
    ...(opts.lookbackDays !== undefined ? { lookbackDays: opts.lookbackDays } : {}),
  });
  const ctx = makeCsvCtx(plan, { ...(opts.state ? { state: opts.state } : {}), ...(opts.fullRefresh ? { fullRefresh: true } : {}) });
  const stream = csv.read(ctx);
  const rows = await collect(stream);
  return { rows, checkpoint: stream.checkpoint!(), rejects: ctx.rejects.items };
}

describe('csv: files', () => {
  it('a glob reads every match, in sorted order, each with its own state key', async () => {
    await mkdir(join(dir, 'many'));
    const order = Array.from({ length: 40 }, (_, i) => 39 - i); // written newest-name first
    for (const i of order) {
      const n = String(i).padStart(3, '0');
      await writeFile(join(dir, 'many', `part-${n}.csv`), `file,row\n${n},1\n${n},2\n`);
    }
    await writeFile(join(dir, 'many', 'other.txt'), 'not,csv\n');
    const { rows, checkpoint } = await run([{ path: 'many/part-*.csv' }]);
    assert.equal(rows.length, 80);
    assert.deepEqual(
      rows.filter((r) => r.row === '1').map((r) => r.file),
      Array.from({ length: 40 }, (_, i) => String(i).padStart(3, '0')),
    );
    const keys = Object.keys(checkpoint.files!);
    assert.equal(keys.length, 40);
    assert.ok(keys.includes('file_many/part-007.csv'), keys[0]);
  });

  it('a glob matching nothing is SOURCE_NOT_FOUND naming the pattern (read and check)', async () => {
    await assert.rejects(run([{ path: 'nothing/*.csv' }]), notFound(/nothing\/\*\.csv/));
    const plan = makeCsvPlan({ dir, files: [{ path: 'nothing/*.csv' }] });
    await assert.rejects(csv.check!(plan, { signal: new AbortController().signal, log: silentLogger() }), notFound(/nothing/));
  });

  it('a missing plain file is SOURCE_NOT_FOUND (read and check)', async () => {
    await assert.rejects(run([{ path: 'missing.csv' }]), notFound(/missing\.csv/));
    const plan = makeCsvPlan({ dir, files: [{ file: 'missing.csv' }] });
    await assert.rejects(csv.check!(plan, { signal: new AbortController().signal, log: silentLogger() }), notFound(/missing\.csv/));
  });

  it('check() passes on readable files; discover() reports the header columns with sampled types', async () => {
    await writeFile(join(dir, 'disc.csv'), '\uFEFFid,name,amount\n1,a,2\n');
    const plan = makeCsvPlan({ dir, files: [{ path: 'disc.csv', object: 'things' }] });
    const opts = { signal: new AbortController().signal, log: silentLogger() };
    await csv.check!(plan, opts);
    const found = await csv.discover!(plan, opts);
    assert.deepEqual(found, [
      {
        name: 'things',
        primaryKey: [],
        columns: [
          ['id', 'long'],
          ['name', 'string'],
          ['amount', 'long'],
        ].map(([name, type]) => ({ name, type, required: false, description: 'Type guessed from 1 sampled row of the CSV file.' })),
      },
    ]);
  });

  it('entries of other objects are ignored; an entry id names the state key', async () => {
    await writeFile(join(dir, 'x.csv'), 'a\n1\n');
    await writeFile(join(dir, 'y.csv'), 'a\n2\n');
    const plan = makeCsvPlan({ dir, files: [{ path: 'x.csv', object: 'xs', id: 'the-x' }, { path: 'y.csv', object: 'ys' }] });
    const ctx = makeCsvCtx(plan, { index: 1 });
    const stream = csv.read(ctx);
    assert.deepEqual((await collect(stream)).map((r) => r.a), ['2']);
    assert.deepEqual(Object.keys(stream.checkpoint!().files!), ['file_y.csv']);
    const xs = csv.read(makeCsvCtx(plan, { index: 0 }));
    await collect(xs);
    assert.deepEqual(Object.keys(xs.checkpoint!().files!), ['file_the-x']);
  });

  it('state keys use the path relative to the job folder, also when the loader made it absolute', async () => {
    await mkdir(join(dir, 'keys'), { recursive: true });
    await writeFile(join(dir, 'keys', 'k.csv'), 'a\n1\n');
    const outside = await mkdtemp(join(tmpdir(), 'dativo-csv-outside-'));
    try {
      await writeFile(join(outside, 'o.csv'), 'a\n2\n');
      const { checkpoint } = await run([{ path: join(dir, 'keys', 'k.csv') }, { path: join(dir, 'keys', '*.csv') }, { path: join(outside, 'o.csv') }]);
      assert.deepEqual(Object.keys(checkpoint.files!), ['file_keys/k.csv', `file_${join(outside, 'o.csv')}`]);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe('csv: file incremental', () => {
  it('skips unchanged files, resumes an appended one, records size and mtime', async () => {
    await mkdir(join(dir, 'inc'));
    await writeFile(join(dir, 'inc', 'a.csv'), 'id\n1\n2\n');
    await writeFile(join(dir, 'inc', 'b.csv'), 'id\n3\n');
    const files = [{ path: 'inc/*.csv' }];

    const first = await run(files);
    assert.deepEqual(first.rows.map((r) => r.id), ['1', '2', '3']);
    const markA = first.checkpoint.files!['file_inc/a.csv']!;
    const st = await stat(join(dir, 'inc', 'a.csv'), { bigint: true });
    assert.equal(markA.size, Number(st.size));
    assert.equal(new Date(markA.modifiedAt).getTime(), Number(st.mtimeMs));
    assert.match(markA.modifiedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

    const second = await run(files, { state: first.checkpoint });
    assert.deepEqual(second.rows, []);
    assert.deepEqual(second.checkpoint, first.checkpoint, 'skipped files stay in the state');

    await appendFile(join(dir, 'inc', 'b.csv'), '4\n');
    const third = await run(files, { state: second.checkpoint });
    assert.deepEqual(third.rows.map((r) => r.id), ['4'], 'only the appended row');

    // Same size, new mtime, same bytes (touch): nothing new, the new mtime is kept.
    const later = new Date(Date.now() + 5_000);
    await utimes(join(dir, 'inc', 'a.csv'), later, later);
    const fourth = await run(files, { state: third.checkpoint });
    assert.deepEqual(fourth.rows, []);
    assert.notEqual(fourth.checkpoint.files!['file_inc/a.csv']!.modifiedAt, third.checkpoint.files!['file_inc/a.csv']!.modifiedAt);
    assert.equal(fourth.checkpoint.files!['file_inc/a.csv']!.sha256, third.checkpoint.files!['file_inc/a.csv']!.sha256);

    assert.deepEqual((await run(files, { state: fourth.checkpoint })).rows, []);
    assert.equal((await run(files, { state: fourth.checkpoint, fullRefresh: true })).rows.length, 4, 'full refresh reads all');
    assert.equal((await run(files, { state: fourth.checkpoint, incremental: false })).rows.length, 4, 'incremental off reads all');
    assert.equal((await run(files, { state: fourth.checkpoint, lookbackDays: 1 })).rows.length, 4, 'lookback > 0 reads all');
  });

  it('a mark without a size (older tool) does not count as unchanged: SOURCE_REWRITTEN, since which rows are new is unknown', async () => {
    await writeFile(join(dir, 'nosize.csv'), 'id\n1\n');
    const first = await run([{ path: 'nosize.csv' }]);
    const mark = first.checkpoint.files!['file_nosize.csv']!;
    const state = { files: { 'file_nosize.csv': { modifiedAt: mark.modifiedAt } } };
    await assert.rejects(run([{ path: 'nosize.csv' }], { state }), (err: unknown) => err instanceof DativoError && err.code === 'SOURCE_REWRITTEN' && err.exitCode === 3);
  });

  it('a file that grows while being read: only the bytes of the recorded stat are read', async () => {
    const path = join(dir, 'growing.csv');
    await writeFile(path, 'id\n1\n2\n3\n');
    const before = (await stat(path)).size;
    const plan = makeCsvPlan({ dir, files: [{ path: 'growing.csv' }] });
    const stream: SourceStream = csv.read(makeCsvCtx(plan));
    const it = stream[Symbol.asyncIterator]();
    const firstRow = await it.next();
    assert.equal((firstRow.value as { id: string }).id, '1');
    await appendFile(path, '4\n5\n');
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push((r.value as { id: string }).id);
    assert.deepEqual(rest, ['2', '3']);
    const cp = stream.checkpoint!();
    assert.equal(cp.files!['file_growing.csv']!.size, before);
    // The next run reads what was appended meanwhile, and only that.
    const again = await run([{ path: 'growing.csv' }], { state: cp });
    assert.deepEqual(again.rows.map((r) => r.id), ['4', '5']);
    assert.equal(again.checkpoint.files!['file_growing.csv']!.size, (await stat(path)).size);
  });
});
