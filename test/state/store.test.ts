import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DativoError } from '../../lib/errors.js';
import { emptyState, openStateStore, type JobState } from '../../state/index.js';

const ids = { tenant: 'acme', job: 'orders_csv' };
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-state-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function sample(): JobState {
  return {
    ...emptyState(ids),
    objects: {
      orders: {
        cursor: { field: 'order_id', value: '9007199254740993', written: ['9007199254740993\u0000[1]'] },
        runId: 'r1',
      },
      files: { files: { 'file_data/a.csv': { size: 12, modifiedAt: '2026-11-27T02:43:00.123456789Z' } } },
    },
  };
}

async function expectCorrupt(path: string, pattern: RegExp): Promise<void> {
  const store = openStateStore({ kind: 'file', path }, ids);
  await assert.rejects(store.load(), (err: unknown) => {
    assert.ok(err instanceof DativoError);
    assert.equal(err.code, 'STATE_CORRUPT');
    assert.equal(err.context.file, path);
    assert.match(err.message, pattern);
    assert.ok(err.message.includes(path), 'message names the file');
    return true;
  });
}

describe('state store', () => {
  it('a missing file is an empty state (first run)', async () => {
    const store = openStateStore({ kind: 'file', path: join(dir, 'nope', 'state.json') }, ids);
    const s = await store.load();
    assert.deepEqual(s, { version: 1, tenant: 'acme', job: 'orders_csv', objects: {}, updatedAt: '' });
  });

  it('round-trips exactly, keeps big cursor values as strings, creates the directory', async () => {
    const path = join(dir, 'a', 'b', 'orders.state.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    await store.save(sample());
    const loaded = await store.load();
    assert.deepEqual(loaded.objects, sample().objects);
    assert.equal(loaded.objects.orders?.cursor?.value, '9007199254740993');
    assert.match(loaded.updatedAt, /^\d{4}-\d\d-\d\dT/);
    const text = await readFile(path, 'utf8');
    assert.match(text, /"value": "9007199254740993"/);
    // No temp files left behind.
    assert.deepEqual(await readdir(join(dir, 'a', 'b')), ['orders.state.json']);
  });

  it('keeps fields it does not know inside an object state', async () => {
    const path = join(dir, 'extra.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    const s = sample();
    (s.objects.orders as Record<string, unknown>).futureField = { x: 1 };
    await store.save(s);
    const loaded = await store.load();
    assert.deepEqual((loaded.objects.orders as Record<string, unknown>).futureField, { x: 1 });
  });

  it('a save replaces the file atomically (rename: new inode, old content never half-written)', async () => {
    const path = join(dir, 'atomic.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    await store.save(sample());
    const ino1 = (await stat(path)).ino;
    const s = sample();
    s.objects.orders!.runId = 'r2';
    await store.save(s);
    assert.notEqual((await stat(path)).ino, ino1);
    assert.equal((await store.load()).objects.orders?.runId, 'r2');
  });

  it('a file cut in half is STATE_CORRUPT, never an empty state', async () => {
    const path = join(dir, 'cut.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    await store.save(sample());
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.slice(0, Math.floor(text.length / 2)));
    await expectCorrupt(path, /not valid JSON.*truncated/);
  });

  it('an empty file is STATE_CORRUPT', async () => {
    const path = join(dir, 'empty.json');
    await writeFile(path, '');
    await expectCorrupt(path, /empty/);
  });

  it('an unknown version is STATE_CORRUPT naming the version', async () => {
    const path = join(dir, 'v2.json');
    await writeFile(path, JSON.stringify({ ...emptyState(ids), version: 2 }));
    await expectCorrupt(path, /unknown state version 2/);
  });

  it('a Python-format state file (no version) is STATE_CORRUPT', async () => {
    const path = join(dir, 'python.json');
    await writeFile(path, JSON.stringify({ 'file_data/in/people.csv': { last_modified: '2025-11-07T09:33:47', file_id: 'x' } }));
    await expectCorrupt(path, /no "version" field/);
  });

  it('a wrong shape is STATE_CORRUPT naming the path inside the file', async () => {
    const path = join(dir, 'shape.json');
    const bad = { ...emptyState(ids), objects: { orders: { cursor: { field: 'id', value: 9007199254740993, written: [] } } } };
    await writeFile(path, JSON.stringify(bad));
    await expectCorrupt(path, /objects\.orders\.cursor\.value/);
    await writeFile(path, '[1,2]');
    await expectCorrupt(path, /not a JSON object/);
  });

  it("another job's state is STATE_CORRUPT", async () => {
    const path = join(dir, 'other.json');
    await writeFile(path, JSON.stringify({ ...emptyState({ tenant: 'acme', job: 'other' }) }));
    await expectCorrupt(path, /job "other"/);
  });

  it('reset(object) forgets one object; reset() recovers from a corrupt file', async () => {
    const path = join(dir, 'reset.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    await store.save(sample());
    await store.reset('orders');
    assert.deepEqual(Object.keys((await store.load()).objects), ['files']);
    await writeFile(path, '{"version": 1, "tena');
    await assert.rejects(store.reset('files'), { code: 'STATE_CORRUPT' });
    await store.reset();
    assert.deepEqual((await store.load()).objects, {});
  });

  it('an unwritable state location is STORAGE_NOT_WRITABLE and leaves the old file intact', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'a regular file where a directory should be');
    const store = openStateStore({ kind: 'file', path: join(blocker, 'sub', 'state.json') }, ids);
    await assert.rejects(store.save(sample()), (err: unknown) => {
      assert.ok(err instanceof DativoError);
      assert.equal(err.code, 'STORAGE_NOT_WRITABLE');
      assert.equal(err.disposition, 'fatal');
      return true;
    });
    assert.equal(await readFile(blocker, 'utf8'), 'a regular file where a directory should be');
    await assert.rejects(store.load(), { code: 'STORAGE_NOT_WRITABLE' });
  });

  it('refuses to save a state the next load would reject', async () => {
    const path = join(dir, 'invalid-save.json');
    const store = openStateStore({ kind: 'file', path }, ids);
    await store.save(sample());
    const bad = sample();
    (bad.objects.orders!.cursor as unknown as Record<string, unknown>).value = 12;
    await assert.rejects(store.save(bad), { code: 'INTERNAL' });
    assert.equal((await store.load()).objects.orders?.cursor?.value, '9007199254740993');
  });
});
