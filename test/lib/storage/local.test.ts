import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDativoError } from '../../../lib/errors.js';
import { openStorage } from '../../../lib/storage/index.js';
import { LocalStorage } from '../../../lib/storage/local.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-local-'));
});
after(async () => {
  await chmod(dir, 0o755).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

async function allFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1)).sort();
}

async function waitFor(what: string, cond: () => Promise<boolean>): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tempFileIn = (root: string) => async (): Promise<boolean> =>
  (await allFiles(root).catch(() => [])).some((f) => f.endsWith('.inprogress'));

function codeOf(err: unknown): string | undefined {
  return isDativoError(err) ? err.code : undefined;
}

describe('LocalStorage', () => {
  it('normalises the root URI and builds object URIs', async () => {
    const s = await openStorage(pathToFileURL(join(dir, 'wh')).href);
    assert.ok(s instanceof LocalStorage);
    assert.equal(s.root, pathToFileURL(join(dir, 'wh')).href);
    assert.equal(s.uri('a/b c.parquet'), pathToFileURL(join(dir, 'wh', 'a', 'b c.parquet')).href);
    assert.throws(() => s.uri('../escape'), (e: unknown) => codeOf(e) === 'INTERNAL');
  });

  it('streams to a hidden temp file and shows nothing at the final path until done()', async () => {
    const root = join(dir, 'stream');
    const s = new LocalStorage(pathToFileURL(root).href);
    const h = s.createWriteStream('t/data/part-1.parquet');
    h.stream.write(Buffer.from('hello '));
    await waitFor('temp file', tempFileIn(root));
    const during = await allFiles(root);
    assert.equal(during.length, 1);
    assert.match(during[0]!, /^t\/data\/\.part-1\.parquet\.[0-9a-f-]{36}\.inprogress$/);
    assert.equal(await s.exists('t/data/part-1.parquet'), false);
    assert.deepEqual(await s.list('t/'), []);
    h.stream.write(Buffer.from('world'));
    const res = await h.done();
    assert.deepEqual(res, { uri: s.uri('t/data/part-1.parquet'), size: 11 });
    assert.deepEqual(await allFiles(root), ['t/data/part-1.parquet']);
    assert.equal((await s.read('t/data/part-1.parquet')).toString(), 'hello world');
    // done() is idempotent and abort() after done() keeps the object.
    assert.deepEqual(await h.done(), res);
    await h.abort();
    assert.equal(await s.exists('t/data/part-1.parquet'), true);
  });

  it('abort() removes the temp file and leaves nothing behind', async () => {
    const root = join(dir, 'abort');
    const s = new LocalStorage(root);
    const h = s.createWriteStream('x/y.bin');
    h.stream.write(Buffer.alloc(100_000, 1));
    await waitFor('temp file', tempFileIn(root));
    assert.equal((await allFiles(root)).length, 1);
    await h.abort(new Error('stop'));
    await h.abort();
    assert.deepEqual(await allFiles(root), []);
    await assert.rejects(h.done(), (e: unknown) => codeOf(e) === 'ABORTED');
  });

  it('an AbortSignal aborts the write', async () => {
    const root = join(dir, 'signal');
    const s = new LocalStorage(root);
    const ac = new AbortController();
    const h = s.createWriteStream('y.bin', { signal: ac.signal });
    h.stream.write(Buffer.alloc(10, 1));
    await waitFor('temp file', tempFileIn(root));
    ac.abort();
    await waitFor('temp file removal', async () => (await allFiles(root)).length === 0);
    await assert.rejects(h.done());
  });

  it('writeAtomic replaces, and with ifNotExists exactly one of many racing writers wins', async () => {
    const s = new LocalStorage(join(dir, 'atomic'));
    await s.writeAtomic('m/v1.json', 'one');
    await s.writeAtomic('m/v1.json', new TextEncoder().encode('two'));
    assert.equal((await s.read('m/v1.json')).toString(), 'two');
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => s.writeAtomic('m/v2.json', `writer ${i}`, { ifNotExists: true })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') {
        assert.equal(codeOf(r.reason), 'STORAGE_IO');
        assert.equal((r.reason as { context: { exists?: boolean } }).context.exists, true);
      }
    }
    const winner = results.findIndex((r) => r.status === 'fulfilled');
    assert.equal((await s.read('m/v2.json')).toString(), `writer ${winner}`);
    assert.deepEqual(await allFiles(join(dir, 'atomic')), ['m/v1.json', 'm/v2.json']);
  });

  it('read, exists, list and delete', async () => {
    const s = new LocalStorage(join(dir, 'misc'));
    await s.writeAtomic('a/b/1.txt', '1');
    await s.writeAtomic('a/bc/2.txt', '2');
    await s.writeAtomic('z.txt', 'z');
    assert.deepEqual(await s.list('a/b'), ['a/b/1.txt', 'a/bc/2.txt']);
    assert.deepEqual(await s.list('a/b/'), ['a/b/1.txt']);
    assert.deepEqual(await s.list(''), ['a/b/1.txt', 'a/bc/2.txt', 'z.txt']);
    assert.deepEqual(await s.list('nope/'), []);
    assert.equal(await s.exists('a/b'), false);
    await s.delete('z.txt');
    await s.delete('z.txt');
    assert.equal(await s.exists('z.txt'), false);
    await assert.rejects(s.read('z.txt'), (e: unknown) => codeOf(e) === 'SOURCE_NOT_FOUND');
  });

  it('checkWritable creates the root, leaves no probe behind', async () => {
    const root = join(dir, 'new', 'deep', 'root');
    const s = new LocalStorage(root);
    await s.checkWritable();
    assert.deepEqual(await readdir(root), []);
  });

  it('checkWritable throws STORAGE_NOT_WRITABLE with the path when a file is where a directory should be', async () => {
    await writeFile(join(dir, 'afile'), 'x');
    for (const root of [join(dir, 'afile'), join(dir, 'afile', 'below')]) {
      const s = new LocalStorage(root);
      await assert.rejects(s.checkWritable(), (e: unknown) => {
        assert.equal(codeOf(e), 'STORAGE_NOT_WRITABLE');
        assert.equal((e as { context: { path: string } }).context.path, root);
        return true;
      });
    }
    const h = new LocalStorage(join(dir, 'afile')).createWriteStream('x.bin');
    h.stream.end(Buffer.from('x'));
    await assert.rejects(h.done(), (e: unknown) => codeOf(e) === 'STORAGE_NOT_WRITABLE');
  });

  it('checkWritable throws STORAGE_NOT_WRITABLE on a read-only directory', async () => {
    const ro = join(dir, 'readonly');
    await mkdir(ro);
    await chmod(ro, 0o555);
    await chmod(dir, 0o755);
    const root = join(ro, 'warehouse');
    if (process.getuid?.() === 0) {
      // root ignores permission bits: run the probe as an unprivileged user.
      const script = `
        import { LocalStorage } from ${JSON.stringify(pathToFileURL(fileURLToPath(new URL('../../../lib/storage/local.ts', import.meta.url))).href)};
        try { await new LocalStorage(${JSON.stringify(root)}).checkWritable(); console.log('OK'); }
        catch (e) { console.log(JSON.stringify({ code: e.code, path: e.context?.path })); }`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        uid: 65534,
        gid: 65534,
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout.trim()), { code: 'STORAGE_NOT_WRITABLE', path: ro + '/warehouse' });
    } else {
      await assert.rejects(new LocalStorage(root).checkWritable(), (e: unknown) => codeOf(e) === 'STORAGE_NOT_WRITABLE');
    }
    assert.deepEqual(await readdir(ro), []);
  });
});
