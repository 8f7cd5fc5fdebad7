import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isDativoError } from '../../../lib/errors.js';
import { createRejectWriter } from '../../../lib/stages/rejects.js';

describe('reject writer', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dativo-rejects-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates no file when nothing is rejected', async () => {
    const w = createRejectWriter({ dir, object: 'clean', runId: 'r1' });
    await w.close();
    assert.equal(w.path, undefined);
    assert.equal(w.count, 0);
    assert.equal(existsSync(join(dir, 'clean')), false);
  });

  it('writes every line, in order, across many buffer flushes, with bigints exact', async () => {
    const w = createRejectWriter({ dir, object: 'many', runId: 'r2', bufferBytes: 1024 });
    const n = 5000;
    for (let i = 0; i < n; i++) {
      w.reject({ code: 'type', reason: `bad ${i}`, fields: ['id'], record: { id: BigInt(i) + 9007199254740993n, b: new Uint8Array([i & 255]) } });
    }
    assert.equal(w.count, n);
    await w.close();
    await w.close(); // idempotent
    const text = await readFile(join(dir, 'many', 'r2.ndjson'), 'utf8');
    const lines = text.split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, n);
    assert.match(lines[0]!, /"record":\{"id":9007199254740993,"b":"AA=="\}/);
    const last = JSON.parse(lines[n - 1]!) as Record<string, unknown>;
    assert.equal(last.reason, `bad ${n - 1}`);
    assert.equal(last.run_id, 'r2');
    assert.equal(last.object, 'many');
    assert.equal(last.location, null);
    assert.match(String(last.at), /^\d{4}-\d{2}-\d{2}T/);
  });

  it('keeps the file inside its directory whatever the object name', async () => {
    const w = createRejectWriter({ dir, object: '../../etc/x y', runId: 'r3' });
    w.reject({ code: 'c', reason: 'r' });
    await w.close();
    assert.equal(w.path, join(dir, '__.._etc_x_y', 'r3.ndjson'));
  });

  it('survives a record that cannot be serialised', async () => {
    const w = createRejectWriter({ dir, object: 'cyc', runId: 'r4' });
    const rec: Record<string, unknown> = {};
    rec.self = rec;
    w.reject({ code: 'c', reason: 'cyclic', record: rec });
    await w.close();
    const line = JSON.parse(await readFile(w.path!, 'utf8')) as { record: { unserialisable: string } };
    assert.match(line.record.unserialisable, /cyclic/);
  });

  it('reports an unwritable directory as STORAGE_NOT_WRITABLE or STORAGE_IO', async () => {
    const file = join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    const w = createRejectWriter({ dir: file, object: 'o', runId: 'r' });
    assert.throws(
      () => w.reject({ code: 'c', reason: 'r' }),
      (e) => isDativoError(e) && (e.code === 'STORAGE_NOT_WRITABLE' || e.code === 'STORAGE_IO'),
    );
  });
});
