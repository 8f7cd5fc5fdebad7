/**
 * Appended CSV files resume where the last run stopped: exactly the new rows,
 * true line numbers, and a whole re-read (with a `csv_file_rewritten`
 * warning) whenever the bytes read before are not provably unchanged.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import { ByteTrail, planFileRead } from '../../../connectors/csv/resume.js';
import type { SourceStream } from '../../../lib/connector.js';
import { DativoError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { locationOf } from '../../../lib/records/location.js';
import type { FileMark, ObjectState, Row } from '../../../lib/types.js';
import { collect, makeCsvCtx, makeCsvPlan, openFdPathsUnder } from './helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-csv-resume-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Log lines (parsed) of one read. */
function captureLog(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', destination }), lines };
}

interface Run {
  rows: Row[];
  state: ObjectState;
  rejects: { line: number; record: string }[];
  warnings: Record<string, unknown>[];
}

async function run(name: string, state?: ObjectState, opts: { fullRefresh?: boolean; options?: Record<string, unknown> } = {}): Promise<Run> {
  const plan = makeCsvPlan({ dir, files: [{ path: name }], ...(opts.options ? { options: opts.options } : {}) });
  const ctx = makeCsvCtx(plan, { ...(state ? { state } : {}), ...(opts.fullRefresh ? { fullRefresh: true } : {}) });
  const { log, lines } = captureLog();
  ctx.log = log;
  const stream = csv.read(ctx);
  const rows = await collect(stream);
  return {
    rows,
    state: { ...(state ?? {}), ...stream.checkpoint!() },
    rejects: ctx.rejects.items.map((r) => ({ line: Number((r.location as { line: number }).line), record: String(r.record ?? '') })),
    warnings: lines.filter((l) => l.event_type === 'csv_file_rewritten'),
  };
}

const ids = (rows: Row[]): unknown[] => rows.map((r) => r.id);
const lineOf = (rows: Row[]): unknown[] => rows.map((r) => locationOf(r)?.line);

describe('csv resume: ByteTrail and planFileRead', () => {
  it('ByteTrail hashes like one sha256 of the whole and counts line breaks as the parser does, across chunk edges', () => {
    const text = Buffer.from('a\r\nb\rc\nd\r\r\ne\r');
    const whole = createHash('sha256').update(text).digest('hex');
    for (let cut = 0; cut <= text.length; cut++) {
      const t = new ByteTrail();
      t.feed(text.subarray(0, cut));
      t.feed(text.subarray(cut));
      assert.equal(t.digest(), whole, `cut ${cut}`);
      // \r\n, \r, \n, \r, \r\n, trailing \r
      assert.equal(t.lines, 6, `cut ${cut}`);
      assert.equal(t.bytes, text.length);
    }
    const crlf = new ByteTrail();
    crlf.feed(Buffer.from('x\r'));
    assert.equal(crlf.endsWith('\r\n'), false);
    crlf.feed(Buffer.from('\n'));
    assert.equal(crlf.endsWith('\r\n'), true);
    assert.equal(crlf.endsWith('\n'), true);
    assert.equal(crlf.endsWith('\r'), false, 'a lone-CR file is never resumed');
    assert.equal(crlf.lines, 1);
    // digest() does not end the hash.
    crlf.feed(Buffer.from('y'));
    assert.equal(crlf.digest(), createHash('sha256').update('x\r\ny').digest('hex'));
  });

  it('planFileRead: skip, verify, or whole (with the reason rows may be written again)', () => {
    const now: FileMark = { size: 100, modifiedAt: 't2' };
    const good: FileMark = { size: 60, modifiedAt: 't1', sha256: 'h', lines: 3, endsWithNewline: true, endsInQuote: false };
    assert.deepEqual(planFileRead(good, now, false), { kind: 'whole' }, 'full refresh / incremental off');
    assert.deepEqual(planFileRead(undefined, now, true), { kind: 'whole' });
    assert.deepEqual(planFileRead({ ...good, size: 100, modifiedAt: 't2' }, now, true), { kind: 'skip' });
    assert.deepEqual(planFileRead(good, now, true), { kind: 'verify', prefix: 60, hash: 'h', grew: true, resumable: true });
    assert.equal(planFileRead({ ...good, size: 100 }, now, true).kind, 'verify', 'same size, new mtime: compare bytes');
    assert.deepEqual(planFileRead({ size: 0, modifiedAt: 't1' }, now, true), { kind: 'whole' }, 'nothing was read before');
    const whole = (m: FileMark): string | undefined => {
      const p = planFileRead(m, now, true);
      return p.kind === 'whole' ? p.rewritten : p.kind === 'verify' && !p.resumable ? p.reason : 'resumable';
    };
    assert.match(whole({ size: 60, modifiedAt: 't1' })!, /no checksum/);
    assert.match(whole({ modifiedAt: 't1' })!, /no checksum/);
    assert.match(whole({ ...good, size: 150 })!, /shrank/);
    assert.match(whole({ ...good, endsWithNewline: false })!, /no line break/);
    assert.match(whole({ ...good, endsInQuote: true })!, /quoted field/);
    assert.match(whole({ ...good, lines: undefined })!, /line count/);
  });
});

describe('csv resume: appended files', () => {
  it('an appended file yields exactly the new rows, run after run; the mark records hash, lines and the line break', async () => {
    const path = join(dir, 'app.csv');
    await writeFile(path, 'id,v\n1,a\n2,b\n');
    const r1 = await run('app.csv');
    assert.deepEqual(ids(r1.rows), ['1', '2']);
    const m1 = r1.state.files!['file_app.csv']!;
    assert.deepEqual(
      { sha256: m1.sha256, lines: m1.lines, endsWithNewline: m1.endsWithNewline, endsInQuote: m1.endsInQuote },
      { sha256: createHash('sha256').update('id,v\n1,a\n2,b\n').digest('hex'), lines: 3, endsWithNewline: true, endsInQuote: false },
    );

    await appendFile(path, '3,c\n4,d\n');
    const r2 = await run('app.csv', r1.state);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '3', v: 'c' },
      { id: '4', v: 'd' },
    ]);
    assert.deepEqual(lineOf(r2.rows), [4, 5], 'true line numbers');
    assert.deepEqual(r2.warnings, []);
    const m2 = r2.state.files!['file_app.csv']!;
    assert.equal(m2.size, (await stat(path)).size);
    assert.equal(m2.sha256, createHash('sha256').update('id,v\n1,a\n2,b\n3,c\n4,d\n').digest('hex'), 'hash of the whole file, not of the tail');
    assert.equal(m2.lines, 5);

    const r3 = await run('app.csv', r2.state);
    assert.deepEqual(r3.rows, []);
    await appendFile(path, '5,e\n');
    const r4 = await run('app.csv', r3.state);
    assert.deepEqual(ids(r4.rows), ['5']);
    assert.deepEqual(lineOf(r4.rows), [6]);
  });

  it('a header-only file, then rows appended: the rows, with the header read from the start (BOM stripped)', async () => {
    const path = join(dir, 'hdr.csv');
    await writeFile(path, '\uFEFFid,name\n');
    const r1 = await run('hdr.csv');
    assert.deepEqual(r1.rows, []);
    await appendFile(path, '1,x\n');
    const r2 = await run('hdr.csv', r1.state);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [{ id: '1', name: 'x' }]);
  });

  it('CRLF files resume too, quoted CRLF inside a field included', async () => {
    const path = join(dir, 'crlf.csv');
    await writeFile(path, 'id,note\r\n1,"two\r\nlines"\r\n2,b\r\n');
    const r1 = await run('crlf.csv');
    assert.deepEqual(ids(r1.rows), ['1', '2']);
    assert.equal(r1.state.files!['file_crlf.csv']!.endsWithNewline, true);
    await appendFile(path, '3,"x\r\ny"\r\n4,d\r\n');
    const r2 = await run('crlf.csv', r1.state);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '3', note: 'x\r\ny' },
      { id: '4', note: 'd' },
    ]);
    const full = await run('crlf.csv', undefined, { fullRefresh: true });
    assert.deepEqual(lineOf(r2.rows), lineOf(full.rows.slice(2)), 'the same line numbers as a whole read');
    assert.deepEqual(lineOf(r2.rows), [5, 7]);
  });

  it('rejects in the appended part carry the true file line numbers (blank lines and multi-line fields before them)', async () => {
    const path = join(dir, 'rej.csv');
    await writeFile(path, 'id,v\n1,"a\nb\nc"\n\n\n2,b\n');
    const r1 = await run('rej.csv');
    assert.deepEqual(ids(r1.rows), ['1', '2']);
    await appendFile(path, '3,c\nbroken\n\n4,"d\ne"\n5,x"y\n6,f,extra\n7,g\n');
    const r2 = await run('rej.csv', r1.state);
    const full = await run('rej.csv', undefined, { fullRefresh: true });
    assert.deepEqual(ids(r2.rows), ['3', '4', '7']);
    assert.deepEqual(r2.rejects, full.rejects, 'the same rejects and lines as a whole read');
    // Parser rejects come as parsed, field-count rejects as pulled: compare sorted.
    assert.deepEqual(
      r2.rejects.map((r) => r.line).sort((a, b) => a - b),
      [9, 13, 14],
    );
    assert.deepEqual(lineOf(r2.rows), lineOf(full.rows.slice(2)));
    assert.deepEqual(lineOf(r2.rows), [8, 11, 15]);
  });

  it('a file appended while being read: this run reads the stat’ed bytes, the next one exactly the rest', async () => {
    const path = join(dir, 'live.csv');
    const block = (from: number, n: number): string => Array.from({ length: n }, (_, i) => `${from + i},${'v'.repeat(40)}\n`).join('');
    await writeFile(path, `id,v\n${block(0, 3000)}`);
    const r1 = await run('live.csv');
    assert.equal(r1.rows.length, 3000);
    await appendFile(path, block(3000, 3000));
    // Run 2 resumes, and more rows are appended while it reads.
    const plan = makeCsvPlan({ dir, files: [{ path: 'live.csv' }] });
    const stream: SourceStream = csv.read(makeCsvCtx(plan, { state: r1.state }));
    const seen: unknown[] = [];
    let appended = false;
    for await (const row of stream) {
      seen.push((row as Row).id);
      if (!appended) {
        appended = true;
        await appendFile(path, block(6000, 2000));
      }
    }
    const s2 = { ...r1.state, ...stream.checkpoint!() };
    const r3 = await run('live.csv', s2);
    const all = [...ids(r1.rows), ...seen, ...ids(r3.rows)];
    assert.equal(seen[0], '3000');
    assert.deepEqual(all, Array.from({ length: 8000 }, (_, i) => String(i)), 'every row once, in order');
    assert.deepEqual(r3.warnings, []);
    assert.equal(locationOf(r3.rows[0]!)?.line, 6002);
  });
});

describe('csv resume: the honest fallback', () => {
  it('rewritten with the same prefix length but other bytes: read again whole, with csv_file_rewritten', async () => {
    const path = join(dir, 'rw.csv');
    await writeFile(path, 'id,v\n1,a\n2,b\n');
    const r1 = await run('rw.csv');
    await writeFile(path, 'id,v\n1,A\n2,b\n3,c\n');
    const r2 = await run('rw.csv', r1.state);
    assert.deepEqual(ids(r2.rows), ['1', '2', '3']);
    assert.equal(r2.warnings.length, 1);
    assert.equal(r2.warnings[0]!.level, 'warn');
    assert.match(String(r2.warnings[0]!.msg), /may be written again/);
    assert.match(String(r2.warnings[0]!.reason), /rewritten/);
    // Same size and other bytes (a new mtime): also whole.
    await writeFile(path, 'id,v\n1,a\n2,b\n9,c\n');
    const r3 = await run('rw.csv', r2.state);
    assert.deepEqual(ids(r3.rows), ['1', '2', '9']);
    assert.equal(r3.warnings.length, 1);
  });

  it('truncated or shrunk: read again whole, with the warning', async () => {
    const path = join(dir, 'shrink.csv');
    await writeFile(path, 'id\n1\n2\n3\n');
    const r1 = await run('shrink.csv');
    await truncate(path, 'id\n1\n'.length);
    const r2 = await run('shrink.csv', r1.state);
    assert.deepEqual(ids(r2.rows), ['1']);
    assert.match(String(r2.warnings[0]?.reason), /shrank/);
  });

  it('the old last line had no line break: read again whole, with the warning', async () => {
    const path = join(dir, 'nonl.csv');
    await writeFile(path, 'id,v\n1,a\n2,b');
    const r1 = await run('nonl.csv');
    assert.equal(r1.state.files!['file_nonl.csv']!.endsWithNewline, false);
    // The writer was in the middle of row 2: "2,b" becomes "2,bb".
    await appendFile(path, 'b\n3,c\n');
    const r2 = await run('nonl.csv', r1.state);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '1', v: 'a' },
      { id: '2', v: 'bb' },
      { id: '3', v: 'c' },
    ]);
    assert.match(String(r2.warnings[0]?.reason), /no line break/);
  });

  it('the last read ended inside a quoted field: never resumed', async () => {
    const path = join(dir, 'quote.csv');
    await writeFile(path, 'id,v\n1,a\n2,"open\n');
    const r1 = await run('quote.csv');
    assert.deepEqual(ids(r1.rows), ['1']);
    const m1 = r1.state.files!['file_quote.csv']!;
    assert.deepEqual([m1.endsWithNewline, m1.endsInQuote], [true, true]);
    await appendFile(path, 'closed"\n3,c\n');
    const r2 = await run('quote.csv', r1.state);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '1', v: 'a' },
      { id: '2', v: 'open\nclosed' },
      { id: '3', v: 'c' },
    ]);
    assert.match(String(r2.warnings[0]?.reason), /quoted field/);
  });

  it('a state from before hashes (size + mtime only): read again whole, with the warning; the next append resumes', async () => {
    const path = join(dir, 'legacy.csv');
    await writeFile(path, 'id\n1\n');
    const st = await stat(path);
    const r1 = await run('legacy.csv');
    const old = { files: { 'file_legacy.csv': { size: st.size, modifiedAt: r1.state.files!['file_legacy.csv']!.modifiedAt } } };
    await appendFile(path, '2\n');
    const r2 = await run('legacy.csv', old);
    assert.deepEqual(ids(r2.rows), ['1', '2']);
    assert.match(String(r2.warnings[0]?.reason), /no checksum/);
    await appendFile(path, '3\n');
    assert.deepEqual(ids((await run('legacy.csv', r2.state)).rows), ['3']);
  });

  it('full refresh reads whole without a warning; a file that had no header is read whole without one', async () => {
    const path = join(dir, 'fr.csv');
    await writeFile(path, 'id\n1\n');
    const r1 = await run('fr.csv');
    await appendFile(path, '2\n');
    const full = await run('fr.csv', r1.state, { fullRefresh: true });
    assert.deepEqual([ids(full.rows), full.warnings], [['1', '2'], []]);

    await writeFile(join(dir, 'blank.csv'), '\n\n');
    const b1 = await run('blank.csv');
    await appendFile(join(dir, 'blank.csv'), 'id\n1\n');
    const b2 = await run('blank.csv', b1.state);
    assert.deepEqual([ids(b2.rows), b2.warnings], [['1'], []]);
  });

  it('latin1 and a custom delimiter resume as well', async () => {
    const path = join(dir, 'latin.csv');
    await writeFile(path, Buffer.from('id;name\n1;caf\xe9\n', 'latin1'));
    const options = { encoding: 'latin1', delimiter: ';' };
    const r1 = await run('latin.csv', undefined, { options });
    await appendFile(path, Buffer.from('2;na\xefve\n', 'latin1'));
    const r2 = await run('latin.csv', r1.state, { options });
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [{ id: '2', name: 'naïve' }]);
  });
});

describe('csv resume: lifecycle', () => {
  /** A 4.5 MB file, plus a mark for its first `rows` rows as a run would have saved it. */
  async function bigFileWithMark(name: string, rows: number, extra: number): Promise<ObjectState> {
    const line = (i: number): string => `${i},${'p'.repeat(40)}\n`;
    const head = `id,payload\n${Array.from({ length: rows }, (_, i) => line(i)).join('')}`;
    await writeFile(join(dir, name), head + Array.from({ length: extra }, (_, i) => line(rows + i)).join(''));
    const bytes = Buffer.from(head);
    const mark: FileMark = {
      size: bytes.length,
      modifiedAt: '2000-01-01T00:00:00.000000000Z',
      sha256: createHash('sha256').update(bytes).digest('hex'),
      lines: rows + 1,
      endsWithNewline: true,
      endsInQuote: false,
    };
    return { files: { [`file_${name}`]: mark } };
  }

  it('a mark as saved by a run resumes the big file after its rows; abort while hashing closes the file', async () => {
    const state = await bigFileWithMark('big.csv', 100_000, 50);
    const r = await run('big.csv', state);
    assert.deepEqual(ids(r.rows), Array.from({ length: 50 }, (_, i) => String(100_000 + i)));
    assert.equal(locationOf(r.rows[0]!)?.line, 100_002);
    assert.equal(r.state.files!['file_big.csv']!.sha256, createHash('sha256').update(await readFile(join(dir, 'big.csv'))).digest('hex'));

    // The abort lands while hashing, reading the header or parsing: wherever
    // it lands, it is ABORTED (or the read had already ended) and no fd is left.
    let aborted = 0;
    for (const delayMs of [0, 1, 2, 4]) {
      const ac = new AbortController();
      const plan = makeCsvPlan({ dir, files: [{ path: 'big.csv' }] });
      const stream = csv.read(makeCsvCtx(plan, { state, signal: ac.signal }));
      setTimeout(() => ac.abort(), delayMs);
      try {
        assert.equal((await collect(stream)).length, 50);
      } catch (err) {
        assert.ok(err instanceof DativoError && err.code === 'ABORTED', String(err));
        aborted++;
      }
      assert.deepEqual(openFdPathsUnder(dir), [], `abort after ${delayMs} ms`);
    }
    assert.ok(aborted > 0, 'at least the immediate abort stopped the read');
  });

  it('destroy after the first resumed row closes the file', async () => {
    const state = await bigFileWithMark('big2.csv', 1000, 20_000);
    const plan = makeCsvPlan({ dir, files: [{ path: 'big2.csv' }] });
    const stream = csv.read(makeCsvCtx(plan, { state }));
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal((first.value as Row).id, '1000');
    stream.destroy();
    await once(stream, 'close');
    assert.deepEqual(openFdPathsUnder(dir), []);
  });
});
