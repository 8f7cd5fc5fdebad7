import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parquetSink } from '../../../lib/stages/parquet-sink.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import type { Row } from '../../../lib/types.js';
import { field } from '../parquet/fixtures.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-sink-err-'));
  await chmod(dir, 0o755);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FIELDS = [field('id', { kind: 'long' }, 1, true)];
const rows = (n: number): Row[] => Array.from({ length: n }, (_, i) => ({ id: BigInt(i) }));

describe('parquetSink storage errors', () => {
  it('a file where the data directory should be fails with STORAGE_NOT_WRITABLE and the path', async () => {
    const root = join(dir, 'wh');
    await mkdir(root);
    await writeFile(join(root, 'tbl'), 'not a directory');
    const sink = parquetSink({ storage: new LocalStorage(root), fields: FIELDS, directory: 'tbl/data', filePrefix: 'p', rowGroupRows: 100 });
    await assert.rejects(pipeline(Readable.from([rows(250), rows(250), rows(250)]), sink), (e: unknown) => {
      const err = e as { code?: string; context: { path?: string } };
      assert.equal(err.code, 'STORAGE_NOT_WRITABLE');
      assert.equal(err.context.path, join(root, 'tbl/data/p-00001.parquet'));
      return true;
    });
    assert.deepEqual(sink.files, []);
  });

  it('a read-only warehouse fails with STORAGE_NOT_WRITABLE', async () => {
    const ro = join(dir, 'readonly');
    await mkdir(ro);
    await chmod(ro, 0o555);
    if (process.getuid?.() !== 0) {
      const sink = parquetSink({ storage: new LocalStorage(ro), fields: FIELDS, directory: 'd', filePrefix: 'p' });
      await assert.rejects(pipeline(Readable.from([rows(10)]), sink), (e: unknown) => (e as { code?: string }).code === 'STORAGE_NOT_WRITABLE');
      return;
    }
    // root ignores permission bits: run the same pipeline as an unprivileged user.
    const lib = (p: string): string => JSON.stringify(new URL(`../../../lib/${p}`, import.meta.url).href);
    const script = `
      import { Readable } from 'node:stream';
      import { pipeline } from 'node:stream/promises';
      import { parquetSink } from ${lib('stages/parquet-sink.ts')};
      import { LocalStorage } from ${lib('storage/local.ts')};
      const sink = parquetSink({ storage: new LocalStorage(${JSON.stringify(ro)}), directory: 'd', filePrefix: 'p',
        fields: [{ name: 'id', type: { kind: 'long' }, typeName: 'long', required: true, fieldId: 1 }] });
      try { await pipeline(Readable.from([[{ id: 1n }]]), sink); console.log('"written"'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, path: e.context?.path })); }`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { code: 'STORAGE_NOT_WRITABLE', path: join(ro, 'd/p-00001.parquet') });
    assert.deepEqual(await readdir(ro), []);
  });
});
