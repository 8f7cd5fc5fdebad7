/**
 * Appended CSV files resume where the last run stopped: exactly the new rows,
 * true line numbers; an unfinished last record of a file still being written
 * is left for the next run; and a file whose bytes taken before are not
 * provably unchanged fails with SOURCE_REWRITTEN rather than writing its rows
 * twice.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import { ByteTrail, continueAt, isSettled, planFileRead } from '../../../connectors/csv/resume.js';
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
  /** `csv_tail_held` log lines. */
  held: Record<string, unknown>[];
}

interface RunOpts {
  fullRefresh?: boolean;
  options?: Record<string, unknown>;
  /** `source.settle_seconds` (default 0: the file is finished). */
  settleSeconds?: number;
}

async function run(name: string, state?: ObjectState, opts: RunOpts = {}): Promise<Run> {
  const plan = makeCsvPlan({
    dir,
    files: [{ path: name }],
    ...(opts.options ? { options: opts.options } : {}),
    ...(opts.settleSeconds !== undefined ? { settleSeconds: opts.settleSeconds } : {}),
  });
  const ctx = makeCsvCtx(plan, { ...(state ? { state } : {}), ...(opts.fullRefresh ? { fullRefresh: true } : {}) });
  const { log, lines } = captureLog();
  ctx.log = log;
  const stream = csv.read(ctx);
  const rows = await collect(stream);
  return {
    rows,
    state: { ...(state ?? {}), ...stream.checkpoint!() },
    rejects: ctx.rejects.items.map((r) => ({ line: Number((r.location as { line: number }).line), record: String(r.record ?? '') })),
    held: lines.filter((l) => l.event_type === 'csv_tail_held'),
  };
}

/** A run that must fail with SOURCE_REWRITTEN naming the file; returns the message. */
async function rewritten(name: string, state: ObjectState): Promise<string> {
  let message = '';
  await assert.rejects(run(name, state), (err: unknown) => {
    assert.ok(err instanceof DativoError, String(err));
    assert.equal(err.code, 'SOURCE_REWRITTEN');
    assert.equal(err.exitCode, 3);
    assert.equal(err.context.file, join(dir, name));
    message = err.message;
    return true;
  });
  assert.match(message, /full_refresh/);
  assert.match(message, /dativo state reset <job> --object data/);
  assert.doesNotMatch(message, /may be written again/);
  return message;
}

/** Set a file's mtime `seconds` into the past (a file its writer left alone). */
async function age(path: string, seconds: number): Promise<void> {
  const t = new Date(Date.now() - seconds * 1000);
  await utimes(path, t, t);
}

/** Still being written: a settle time no test reaches. */
const LIVE: RunOpts = { settleSeconds: 3600 };

const ids = (rows: Row[]): unknown[] => rows.map((r) => r.id);
const lineOf = (rows: Row[]): unknown[] => rows.map((r) => locationOf(r)?.line);

describe('csv resume: ByteTrail and planFileRead', () => {
  it('ByteTrail hashes like one sha256 of the whole and counts line breaks as the parser does, across chunk edges', () => {
    const text = Buffer.from('a\r\nb\rc\nd\r\r\ne\r');
    const whole = createHash('sha256').update(text).digest('hex');
    for (let cut = 0; cut <= text.length; cut++) {
      const t = new ByteTrail();
      t.feedCommitted(text.subarray(0, cut));
      t.feedCommitted(text.subarray(cut));
      assert.equal(t.digest(), whole, `cut ${cut}`);
      // \r\n, \r, \n, \r, \r\n, trailing \r
      assert.equal(t.lines, 6, `cut ${cut}`);
      assert.equal(t.bytes, text.length);
    }
    const crlf = new ByteTrail();
    crlf.feedCommitted(Buffer.from('x\r'));
    assert.deepEqual([crlf.endsWithBreak, crlf.endsWithCr, crlf.lines], [true, true, 1]);
    crlf.feedCommitted(Buffer.from('\n'));
    assert.deepEqual([crlf.endsWithBreak, crlf.endsWithCr, crlf.lines], [true, false, 1]);
    // digest() does not end the hash.
    crlf.feedCommitted(Buffer.from('y'));
    assert.equal(crlf.endsWithBreak, false);
    assert.equal(crlf.digest(), createHash('sha256').update('x\r\ny').digest('hex'));
  });

  it('ByteTrail counts only committed bytes: an uncommitted tail waits, whatever the chunking', () => {
    const text = Buffer.from('id,v\n1,a\r\n2,"b\nc"\n3,unfinish');
    const upTo = text.indexOf('3,');
    for (let size = 1; size <= text.length; size++) {
      const t = new ByteTrail();
      // Commit at each record end as the parser does: after the chunk holding it.
      for (let i = 0; i < text.length; i += size) {
        t.feed(text.subarray(i, i + size));
        for (const end of [5, 10, upTo]) if (end <= i + size) t.commit(end);
      }
      assert.equal(t.fed, text.length);
      assert.equal(t.bytes, upTo, `chunk ${size}`);
      assert.equal(t.digest(), createHash('sha256').update(text.subarray(0, upTo)).digest('hex'), `chunk ${size}`);
      assert.equal(t.lines, 4, 'line breaks of the committed bytes only (the one inside quotes counts)');
      assert.equal(t.endsWithBreak, true);
    }
  });

  it('isSettled: not modified for the settle time; a future or unreadable time is not settled', () => {
    const now = Date.parse('2026-12-02T08:00:10.000Z');
    assert.equal(isSettled('2026-12-02T08:00:05.000000000Z', now, 5000), true);
    assert.equal(isSettled('2026-12-02T08:00:05.000000001Z', now, 5000), true, 'nanoseconds below the millisecond do not count');
    assert.equal(isSettled('2026-12-02T08:00:05.001000000Z', now, 5000), false);
    assert.equal(isSettled('2026-12-02T08:00:11.000Z', now, 0), false, 'modified in the future (clock skew)');
    assert.equal(isSettled('garbage', now, 0), false);
  });

  it('continueAt: the line the new bytes start on, or why they cannot be new records', () => {
    const trail = (text: string): ByteTrail => {
      const t = new ByteTrail();
      t.feedCommitted(Buffer.from(text));
      return t;
    };
    const m: FileMark = { size: 0, modifiedAt: 't', sha256: 'h', endsWithNewline: true, endsInQuote: false };
    const LFb = 10;
    const CRb = 13;
    const X = 'x'.charCodeAt(0);
    assert.deepEqual(continueAt(m, trail('id\n1\n'), X), { firstLine: 3 });
    assert.deepEqual(continueAt(m, trail('id\r\n1\r'), X), { firstLine: 3 }, 'a lone \r ended line 2');
    assert.deepEqual(continueAt(m, trail('id\r\n1\r'), LFb), { firstLine: 2 }, 'the \n completes line 2’s \r\n (the parser counts it again)');
    const noBreak = { ...m, endsWithNewline: false };
    assert.deepEqual(continueAt(noBreak, trail('id\n1'), LFb), { firstLine: 2 }, 'the line break the last line lacked');
    assert.deepEqual(continueAt(noBreak, trail('id\n1'), CRb), { firstLine: 2 });
    assert.match((continueAt(noBreak, trail('id\n1'), X) as { rewritten: string }).rewritten, /last line.*continued/);
    assert.match((continueAt({ ...m, endsInQuote: true }, trail('id\n1,"a\n'), X) as { rewritten: string }).rewritten, /unclosed quote/);
  });

  it('planFileRead: skip, verify, whole when nothing was taken, or rewritten with the reason', () => {
    const now: FileMark = { size: 100, modifiedAt: 't2' };
    const good: FileMark = { size: 60, modifiedAt: 't1', sha256: 'h', lines: 3, endsWithNewline: true, endsInQuote: false };
    assert.deepEqual(planFileRead(good, now, false), { kind: 'whole' }, 'full refresh / incremental off');
    assert.deepEqual(planFileRead(undefined, now, true), { kind: 'whole' });
    assert.deepEqual(planFileRead({ ...good, size: 100, modifiedAt: 't2' }, now, true), { kind: 'skip' });
    assert.deepEqual(planFileRead(good, now, true), { kind: 'verify', prefix: 60, hash: 'h', grew: true });
    assert.deepEqual(planFileRead({ ...good, size: 100 }, now, true), { kind: 'verify', prefix: 100, hash: 'h', grew: false }, 'same size, new mtime: compare bytes');
    assert.deepEqual(planFileRead({ size: 0, modifiedAt: 't1' }, now, true), { kind: 'whole' }, 'nothing was taken before');
    const reason = (m: FileMark): string => {
      const p = planFileRead(m, now, true);
      assert.equal(p.kind, 'rewritten');
      return p.kind === 'rewritten' ? p.reason : '';
    };
    assert.match(reason({ size: 60, modifiedAt: 't1' }), /no checksum/);
    assert.match(reason({ modifiedAt: 't1' }), /no checksum/);
    assert.match(reason({ ...good, size: 150 }), /shrank/);
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
    assert.equal(locationOf(r3.rows[0]!)?.line, 6002);
  });
});

describe('csv resume: a file still being written', () => {
  it('a last line without its line break is held back, not rejected; the next run reads it whole, with its true line', async () => {
    const path = join(dir, 'w1.csv');
    await writeFile(path, 'id,v\n1,a\n2,hal');
    const r1 = await run('w1.csv', undefined, LIVE);
    assert.deepEqual(ids(r1.rows), ['1']);
    assert.deepEqual(r1.rejects, []);
    assert.equal(r1.held.length, 1);
    const m1 = r1.state.files!['file_w1.csv']!;
    assert.equal(m1.size, 'id,v\n1,a\n'.length, 'the mark ends before the unfinished record');
    assert.equal(m1.sha256, createHash('sha256').update('id,v\n1,a\n').digest('hex'));
    // Unchanged and still not settled: held again, nothing new, nothing rejected.
    const again = await run('w1.csv', r1.state, LIVE);
    assert.deepEqual([again.rows, again.rejects, again.state.files!['file_w1.csv']!.size], [[], [], m1.size]);
    await appendFile(path, 'f\n3,c\n');
    const r2 = await run('w1.csv', again.state, LIVE);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '2', v: 'half' },
      { id: '3', v: 'c' },
    ]);
    assert.deepEqual(lineOf(r2.rows), [3, 4]);
    assert.deepEqual([r2.rejects, r2.held], [[], []]);
  });

  it('an open quote at the end (a multi-line field half written) is held back; a bad line before it is still rejected once', async () => {
    const path = join(dir, 'w2.csv');
    await writeFile(path, 'id,v\n1,a\nbroken\n2,"multi\nline so f');
    const r1 = await run('w2.csv', undefined, LIVE);
    assert.deepEqual(ids(r1.rows), ['1']);
    assert.deepEqual(r1.rejects, [{ line: 3, record: 'broken' }], 'the finished bad line is rejected');
    assert.equal(r1.state.files!['file_w2.csv']!.endsInQuote, false);
    await appendFile(path, 'ar"\n3,c\n4,"x');
    const r2 = await run('w2.csv', r1.state, LIVE);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [
      { id: '2', v: 'multi\nline so far' },
      { id: '3', v: 'c' },
    ]);
    assert.deepEqual(lineOf(r2.rows), [4, 6]);
    assert.deepEqual(r2.rejects, [], 'neither the bad line again nor the open quote');
    // The writer stops there: once the file settles, the open quote is a broken record.
    await age(path, 60);
    const r3 = await run('w2.csv', r2.state, { settleSeconds: 30 });
    assert.deepEqual(r3.rows, []);
    assert.deepEqual(r3.rejects, [{ line: 7, record: '4,"x' }]);
  });

  it('a last \\r waits for its \\n; a bad quote whose field has not ended is held until the file settles', async () => {
    const path = join(dir, 'w3.csv');
    await writeFile(path, 'id,v\r\n1,a\r');
    const r1 = await run('w3.csv', undefined, LIVE);
    assert.deepEqual([ids(r1.rows), r1.rejects, r1.held.length], [[], [], 1], 'the \\r may be half of a \\r\\n');
    await appendFile(path, '\n2,"ab"c,d\r\n3,c\r\n');
    const r2 = await run('w3.csv', r1.state, LIVE);
    // csv-parse looks for the bad field's end past the line breaks, up to the
    // end of the file: that record is not finished while the file may grow.
    assert.deepEqual(lineOf(r2.rows), [2]);
    assert.deepEqual([ids(r2.rows), r2.rejects, r2.held.length], [['1'], [], 1]);
    await age(path, 60);
    const r3 = await run('w3.csv', r2.state, { settleSeconds: 30 });
    const full = await run('w3.csv', undefined, { fullRefresh: true });
    assert.deepEqual(full.rejects, [{ line: 3, record: '2,"ab"c,d\r\n3,c' }]);
    assert.deepEqual([r3.rows, r3.rejects], [[], full.rejects], 'settled: the same reject as a whole read, once');
  });

  it('a header still being written: nothing taken, no warning, the next run reads the file whole', async () => {
    const path = join(dir, 'w4.csv');
    await writeFile(path, 'id,na');
    const r1 = await run('w4.csv', undefined, LIVE);
    assert.deepEqual([r1.rows, r1.rejects, r1.state.files!['file_w4.csv']!.size], [[], [], 0]);
    await appendFile(path, 'me\n1,x\n');
    const r2 = await run('w4.csv', r1.state, LIVE);
    assert.deepEqual(r2.rows.map((r) => ({ ...r })), [{ id: '1', name: 'x' }]);
  });

  it('a settled file (mtime older than settle_seconds) without a final line break is read to its end', async () => {
    const path = join(dir, 'quiet.csv');
    await writeFile(path, 'id,v\n1,a\n2,"two\nlines"');
    await age(path, 10);
    const r1 = await run('quiet.csv', undefined, { settleSeconds: 5 });
    assert.deepEqual(r1.rows.map((r) => ({ ...r })), [
      { id: '1', v: 'a' },
      { id: '2', v: 'two\nlines' },
    ]);
    assert.deepEqual([r1.rejects, r1.held], [[], []]);
    assert.equal(r1.state.files!['file_quiet.csv']!.size, (await stat(path)).size);
    assert.deepEqual((await run('quiet.csv', r1.state, { settleSeconds: 5 })).rows, [], 'then skipped');
    // The same bytes, modified just now: not settled, so the last record waits.
    await writeFile(join(dir, 'fresh.csv'), 'id,v\n1,a\n2,"two\nlines"');
    assert.deepEqual(ids((await run('fresh.csv', undefined, { settleSeconds: 5 })).rows), ['1']);
  });
});

describe('csv: mixed line endings in one file', () => {
  // As Python's csv module reads it (open(..., newline='')): `\r\n`, `\n`
  // and a lone `\r` each end a record; inside quotes they are data.
  // Python gives the same 9 records (and an empty one for the blank line 8,
  // which we skip); its line_num is where a record ends, ours where it starts:
  // python3 -c "import csv; r = csv.reader(open('mixed.csv', newline='')); print([(r.line_num, x) for x in r])"
  const text = 'id,v\r\n1,a\r\n2,b\n3,c\n4,d\r\n5,e\r6,f\r\n\n7,"x\ry"\r\n8,"p\r\nq\nr"\n9,z\r\n';
  const expected = [
    { id: '1', v: 'a', line: 2 },
    { id: '2', v: 'b', line: 3 },
    { id: '3', v: 'c', line: 4 },
    { id: '4', v: 'd', line: 5 },
    { id: '5', v: 'e', line: 6 },
    { id: '6', v: 'f', line: 7 },
    { id: '7', v: 'x\ry', line: 9 },
    { id: '8', v: 'p\r\nq\nr', line: 11 },
    { id: '9', v: 'z', line: 14 },
  ];
  const shape = (rows: Row[]): unknown[] => rows.map((r) => ({ ...r, line: locationOf(r)?.line }));

  it('every line is its own record, none rejected, lines true (CRLF, LF, lone CR)', async () => {
    await writeFile(join(dir, 'mixed.csv'), text);
    const r = await run('mixed.csv');
    assert.deepEqual(shape(r.rows), expected);
    assert.deepEqual(r.rejects, []);
    // Bad lines among them keep their true line numbers.
    await writeFile(join(dir, 'mixed-bad.csv'), 'id,v\r\n1,a\nbad\r2,b\r\n3,c,x\n4,d\r');
    const b = await run('mixed-bad.csv');
    assert.deepEqual(shape(b.rows), [
      { id: '1', v: 'a', line: 2 },
      { id: '2', v: 'b', line: 4 },
      { id: '4', v: 'd', line: 6 },
    ]);
    assert.deepEqual(b.rejects.map((x) => x.line).sort(), [3, 5]);
  });

  it('resumed at any record end, the rest is the same records at the same lines', async () => {
    const bytes = Buffer.from(text);
    const full = shape((await run('mixed.csv', undefined, { fullRefresh: true })).rows);
    for (let cut = 'id,v\r\n'.length; cut < bytes.length; cut++) {
      const name = `mixed-${cut}.csv`;
      await writeFile(join(dir, name), bytes.subarray(0, cut));
      const first = await run(name, undefined, LIVE);
      await appendFile(join(dir, name), bytes.subarray(cut));
      const second = await run(name, first.state, LIVE);
      assert.deepEqual([...shape(first.rows), ...shape(second.rows)], full, `cut at byte ${cut}`);
      assert.deepEqual([first.rejects, second.rejects], [[], []], `cut at byte ${cut}`);
      await rm(join(dir, name));
    }
  });
});

describe('csv resume: a file rewritten after rows were taken from it fails with SOURCE_REWRITTEN', () => {
  it('rewritten with the same prefix length but other bytes, or the same size with other bytes', async () => {
    const path = join(dir, 'rw.csv');
    await writeFile(path, 'id,v\n1,a\n2,b\n');
    const r1 = await run('rw.csv');
    await writeFile(path, 'id,v\n1,A\n2,b\n3,c\n');
    assert.match(await rewritten('rw.csv', r1.state), /first 13 bytes are not those read before/);
    await writeFile(path, 'id,v\n1,a\n2,B\n');
    assert.match(await rewritten('rw.csv', r1.state), /first 13 bytes/);
    // Back to the bytes taken (only the mtime changed): skipped, nothing new.
    await writeFile(path, 'id,v\n1,a\n2,b\n');
    assert.deepEqual((await run('rw.csv', r1.state)).rows, []);
    // A full refresh reads it whole (the table is replaced), and the next append resumes.
    await writeFile(path, 'id,v\n1,A\n2,b\n3,c\n');
    const full = await run('rw.csv', r1.state, { fullRefresh: true });
    assert.deepEqual(ids(full.rows), ['1', '2', '3']);
    await appendFile(path, '4,d\n');
    assert.deepEqual(ids((await run('rw.csv', full.state)).rows), ['4']);
  });

  it('truncated or shrunk, to nothing too', async () => {
    const path = join(dir, 'shrink.csv');
    await writeFile(path, 'id\n1\n2\n3\n');
    const r1 = await run('shrink.csv');
    await truncate(path, 'id\n1\n'.length);
    assert.match(await rewritten('shrink.csv', r1.state), /shrank \(9 → 5 bytes\)/);
    await truncate(path, 0);
    assert.match(await rewritten('shrink.csv', r1.state), /shrank/);
  });

  it('a settled last line without a line break was read; continued afterwards it is a rewrite, a line break after it resumes', async () => {
    const path = join(dir, 'nonl.csv');
    await writeFile(path, 'id,v\n1,a\n2,b');
    const r1 = await run('nonl.csv');
    assert.deepEqual(ids(r1.rows), ['1', '2'], 'a settled file is read to its end');
    assert.equal(r1.state.files!['file_nonl.csv']!.endsWithNewline, false);
    // The writer was in the middle of row 2 after all: "2,b" becomes "2,bb".
    await appendFile(path, 'b\n3,c\n');
    assert.match(await rewritten('nonl.csv', r1.state), /last line, taken without a line break/);
    // A writer that adds the missing line break first: only the new rows, true lines.
    await writeFile(path, 'id,v\n1,a\n2,b');
    const r2 = await run('nonl.csv');
    await appendFile(path, '\r\n3,c\n');
    const r3 = await run('nonl.csv', r2.state);
    assert.deepEqual(r3.rows.map((r) => ({ ...r })), [{ id: '3', v: 'c' }]);
    assert.deepEqual(lineOf(r3.rows), [4]);
  });

  it('a settled file ending inside a quoted field: the rest is one reject; continued afterwards it is a rewrite', async () => {
    const path = join(dir, 'quote.csv');
    await writeFile(path, 'id,v\n1,a\n2,"open\n');
    const r1 = await run('quote.csv');
    assert.deepEqual(ids(r1.rows), ['1']);
    assert.deepEqual(r1.rejects, [{ line: 3, record: '2,"open' }]);
    const m1 = r1.state.files!['file_quote.csv']!;
    assert.deepEqual([m1.endsWithNewline, m1.endsInQuote], [true, true]);
    assert.deepEqual((await run('quote.csv', r1.state)).rows, [], 'unchanged: skipped, not rejected again');
    await appendFile(path, 'closed"\n3,c\n');
    assert.match(await rewritten('quote.csv', r1.state), /unclosed quote/);
  });

  it('a state from before hashes (size + mtime only) cannot tell new rows from old', async () => {
    const path = join(dir, 'legacy.csv');
    await writeFile(path, 'id\n1\n');
    const st = await stat(path);
    const r1 = await run('legacy.csv');
    const old = { files: { 'file_legacy.csv': { size: st.size, modifiedAt: r1.state.files!['file_legacy.csv']!.modifiedAt } } };
    assert.deepEqual((await run('legacy.csv', old)).rows, [], 'unchanged: skipped');
    await appendFile(path, '2\n');
    assert.match(await rewritten('legacy.csv', old), /no checksum/);
  });

  it('a glob: the read fails at the rewritten file, naming it (the engine fails only this object)', async () => {
    await writeFile(join(dir, 'g1.csv'), 'id\n1\n');
    await writeFile(join(dir, 'g2.csv'), 'id\n2\n');
    const plan = makeCsvPlan({ dir, files: [{ path: 'g?.csv' }], settleSeconds: 0 });
    const first = csv.read(makeCsvCtx(plan));
    assert.deepEqual(ids(await collect(first)), ['1', '2']);
    await writeFile(join(dir, 'g1.csv'), 'id\n9\n');
    await appendFile(join(dir, 'g2.csv'), '3\n');
    const second = csv.read(makeCsvCtx(plan, { state: first.checkpoint!() as ObjectState }));
    await assert.rejects(collect(second), (err: unknown) => err instanceof DativoError && err.code === 'SOURCE_REWRITTEN' && err.context.file === join(dir, 'g1.csv'));
  });

  it('full refresh reads whole; a file that had no header is read whole', async () => {
    const path = join(dir, 'fr.csv');
    await writeFile(path, 'id\n1\n');
    const r1 = await run('fr.csv');
    await appendFile(path, '2\n');
    const full = await run('fr.csv', r1.state, { fullRefresh: true });
    assert.deepEqual(ids(full.rows), ['1', '2']);

    await writeFile(join(dir, 'blank.csv'), '\n\n');
    const b1 = await run('blank.csv');
    await appendFile(join(dir, 'blank.csv'), 'id\n1\n');
    const b2 = await run('blank.csv', b1.state);
    assert.deepEqual(ids(b2.rows), ['1']);
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
