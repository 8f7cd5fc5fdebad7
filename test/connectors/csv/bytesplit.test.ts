/**
 * The byte splitter (bytesplit.ts) follows split.ts's dialect exactly: both
 * are fed the same awkward inputs, in every chunking, and must give the same
 * records (fields, quoted empties, lines, raw text, invalid UTF-8), the same
 * skips (code, message, line, raw, header or not), the same consumed byte
 * offset after every call and the same end state.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { describe, it } from 'node:test';
import { ByteSplitter, QUOTED } from '../../../connectors/csv/bytesplit.js';
import { Utf8LineCheck, type SkippedRecord } from '../../../connectors/csv/parse.js';
import { CsvSplitter, type SplitOptions } from '../../../connectors/csv/split.js';

interface Out {
  records: { fields: string[]; emptyQuoted: boolean[]; line: number; raw: string; bad: boolean }[];
  skips: SkippedRecord[];
  consumed: number[];
  endsInQuote: boolean;
  heldTail: boolean;
}

type Opts = Omit<SplitOptions, 'utf8'> & { final: boolean };

function chunks(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(Buffer.from(data.subarray(i, i + size))); // copies: no splitter may rely on a shared buffer
  return out;
}

function viaStrings(data: Buffer, size: number, o: Opts): Out {
  const utf8 = o.encoding === 'utf8' ? new Utf8LineCheck() : undefined;
  const out: Out = { records: [], skips: [], consumed: [], endsInQuote: false, heldTail: false };
  const s = new CsvSplitter({ ...o, ...(utf8 ? { utf8 } : {}) }, (k) => out.skips.push(k));
  const take = (recs: ReturnType<CsvSplitter['feed']>): void => {
    for (const r of recs) {
      out.records.push({ fields: r.fields, emptyQuoted: r.fields.map((f, i) => f === '' && r.quoted?.[i] === true), line: r.line, raw: r.raw, bad: r.badUtf8 });
    }
    out.consumed.push(s.consumed);
  };
  for (const c of chunks(data, size)) {
    utf8?.feed(c);
    take(s.feed(c));
  }
  utf8?.end();
  take(s.end(o.final));
  out.endsInQuote = s.endsInQuote;
  out.heldTail = s.heldTail;
  return out;
}

function viaBytes(data: Buffer, size: number, o: Opts): Out {
  const utf8 = o.encoding === 'utf8' ? new Utf8LineCheck() : undefined;
  const out: Out = { records: [], skips: [], consumed: [], endsInQuote: false, heldTail: false };
  const s = new ByteSplitter({ ...o, ...(utf8 ? { utf8 } : {}) }, (k) => out.skips.push(k));
  const take = (b: ReturnType<ByteSplitter['feed']>): void => {
    for (let r = 0; r < b.count; r++) {
      const fields: string[] = [];
      const emptyQuoted: boolean[] = [];
      for (let k = b.firstField[r]!; k < b.firstField[r + 1]!; k++) {
        fields.push(b.text(k, o.encoding, o.quote));
        emptyQuoted.push(b.start[k] === b.end[k] && (b.flags[k]! & QUOTED) !== 0);
      }
      out.records.push({ fields, emptyQuoted, line: b.line[r]!, raw: b.raw(r, o.encoding), bad: b.badUtf8[r] === 1 });
    }
    out.consumed.push(s.consumed);
  };
  for (const c of chunks(data, size)) {
    utf8?.feed(c);
    take(s.feed(c));
  }
  utf8?.end();
  take(s.end(o.final));
  out.endsInQuote = s.endsInQuote;
  out.heldTail = s.heldTail;
  return out;
}

const base: Opts = { delimiter: ',', quote: '"', encoding: 'utf8', maxRecordChars: 1 << 20, stripBom: true, firstLine: 1, recordsBefore: 0, final: true };

/**
 * Both splitters must agree on everything, invalid UTF-8 included (split.ts
 * maps each U+FFFD back to the bytes it replaced). On invalid UTF-8 each
 * record's flag is also checked against its own bytes, not only the other
 * splitter's.
 */
function same(data: Buffer, o: Opts, label: string): Out {
  const sizes = [1, 2, 3, 5, 7, 13, 64, 4096, Math.max(1, data.length)];
  const invalid = o.encoding === 'utf8' && !isUtf8(data);
  let first: Out | undefined;
  for (const size of sizes) {
    const a = viaStrings(data, size, o);
    const b = viaBytes(data, size, o);
    assert.deepEqual(b, a, `${label}: chunks of ${size}`);
    if (invalid && !data.includes(13)) {
      for (const r of b.records) {
        const raw = Buffer.from(r.raw, 'utf8');
        if (!r.raw.includes('\uFFFD')) assert.equal(r.bad, false, `${label}: ${JSON.stringify(r.raw)}`);
        else if (!raw.includes(0xef)) assert.equal(r.bad, true, `${label}: ${JSON.stringify(r.raw)}`);
      }
      if (o.final && b.skips.every((k) => k.recoverable)) assert.equal(b.consumed.at(-1), data.length, `${label}: consumed`);
    }
    first ??= a;
  }
  return first!;
}

const awkward: [string, Buffer][] = [
  ['plain', Buffer.from('id,name\n1,a\n2,b\n')],
  ['bom crlf', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('id,name\r\n1,zoë\r\n2,"张伟"\r\n')])],
  ['mixed breaks and blank lines', Buffer.from('a,b\r\n\r\n1,2\r3,4\n\n\r5,6\r')],
  ['quotes', Buffer.from('a,b,c\n"x""y",,""\n"",x,"multi\nline\r\nvalue"\n"a,b","""",z\n')],
  ['bad quotes', Buffer.from('a,b\n1,x"y\n2,"ab"c,d\n3,ok\n4,"unclosed\n5,6\n')],
  ['quote never closed', Buffer.from('a,b\n1,ok\n2,"runs\nto the end\n')],
  ['no final break', Buffer.from('a,b\n1,2\n3,"x"')],
  ['trailing delimiter', Buffer.from('a,b\n1,\n2,')],
  ['invalid utf8', Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from([0xff, 0xfe]), Buffer.from('\n2,é\n3,\uFFFD\n4,'), Buffer.from([0xe2, 0x82]), Buffer.from('\n5,🎉')])],
  ['invalid utf8 in lone-CR lines', Buffer.concat([Buffer.from('a,b\rok,é\r1,'), Buffer.from([0xc3]), Buffer.from('\r2,x\r')])],
  ['utf8 cut at the end', Buffer.concat([Buffer.from('a,b\n1,'), Buffer.from([0xf0, 0x9f, 0x8e])])],
  ['bom only', Buffer.from([0xef, 0xbb, 0xbf])],
  ['half a bom', Buffer.from([0xef, 0xbb])],
  ['empty', Buffer.alloc(0)],
  ['only blank lines', Buffer.from('\n\r\n\r')],
  ['bad header', Buffer.from('a,"b\n1,2\n')],
  ['cr at the very end', Buffer.from('a,b\n1,2\r')],
];

describe('ByteSplitter against CsvSplitter', () => {
  it('gives the same records, skips and offsets on awkward inputs, in every chunking', () => {
    for (const [label, data] of awkward) {
      for (const final of [true, false]) same(data, { ...base, final }, `${label} final=${final}`);
    }
  });

  it('and what they give is what CSV means (not only the same)', () => {
    const out = same(awkward[3]![1], base, 'quotes');
    assert.deepEqual(
      out.records.map((r) => [r.fields, r.emptyQuoted, r.line]),
      [
        [['a', 'b', 'c'], [false, false, false], 1],
        [['x"y', '', ''], [false, false, true], 2],
        [['', 'x', 'multi\nline\r\nvalue'], [true, false, false], 3],
        [['a,b', '"', 'z'], [false, false, false], 6],
      ],
    );
    const bad = same(awkward[4]![1], base, 'bad quotes');
    assert.deepEqual(
      bad.skips.map((s) => [s.parserCode, s.line]),
      [
        ['CSV_INVALID_OPENING_QUOTE', 2],
        ['CSV_INVALID_CLOSING_QUOTE', 3], // the field goes on to the end: one record of lines 3-6
      ],
    );
    assert.deepEqual(bad.records.map((r) => r.line), [1]);
    assert.deepEqual(same(awkward[5]![1], base, 'unclosed').skips.map((s) => [s.parserCode, s.line]), [['CSV_QUOTE_NOT_CLOSED', 3]]);
    const utf = viaBytes(awkward[8]![1], 5, base);
    assert.deepEqual(utf.records.map((r) => r.bad), [false, true, false, false, true, false]);
    assert.deepEqual(utf.consumed.at(-1), awkward[8]![1].length);
  });

  it('split.ts: records after invalid UTF-8 in the same chunk keep their own validity and byte offsets', () => {
    const data = awkward[8]![1];
    for (const size of [3, 64, data.length]) {
      const strings = viaStrings(data, size, base);
      // Line 4 is a real U+FFFD (EF BF BD): valid; line 5 is a cut E2 82: invalid.
      assert.deepEqual(strings.records.map((r) => r.bad), [false, true, false, false, true, false], `chunks of ${size}`);
      assert.equal(strings.consumed.at(-1), data.length, `chunks of ${size}`);
    }
    // Held back (not final): consumed stops exactly at the byte where the last record starts.
    const held = viaStrings(data, data.length, { ...base, final: false });
    assert.equal(held.consumed.at(-1), data.indexOf('5,🎉'));
    // Every shape of replaced sequence (1, 2 and 3 bytes, a real U+FFFD, a BOM first), one per line.
    const seqs = [[0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x8e], [0xe0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90], [0xef, 0xbf, 0xbd], [0xc0, 0xaf]];
    const lines = seqs.map((q, i) => Buffer.concat([Buffer.from(`${i},`), Buffer.from(q), Buffer.from('é\n'), Buffer.from(`${i}b,ok\n`)]));
    const all = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a,b\n'), ...lines]);
    const out = same(all, base, 'every replaced sequence');
    assert.deepEqual(
      out.records.map((r) => r.bad),
      [false, ...seqs.flatMap((q) => [q.length !== 3 || q[0] !== 0xef, false])],
    );
    const offsets = viaStrings(all, 1 << 20, { ...base, final: false });
    assert.equal(offsets.consumed.at(-1), all.length);
  });

  it('other dialects: a multi-character delimiter, another quote, latin1, a resumed read', () => {
    const text = Buffer.from("h1||h2||h3\n'a||b'||''||x\n1|2||'q''q'||\n'bad'x||1||2\n");
    same(text, { ...base, delimiter: '||', quote: "'" }, 'multi delimiter');
    same(Buffer.from([0x61, 0x3b, 0x62, 0x0a, 0xe9, 0x3b, 0x22, 0xff, 0x22, 0x0a]), { ...base, delimiter: ';', encoding: 'latin1', stripBom: false }, 'latin1');
    same(Buffer.from('7,8\n9,"x\ny"\n'), { ...base, stripBom: false, firstLine: 40, recordsBefore: 1 }, 'resumed');
  });

  it('the record size limit, counted in characters as split.ts does', () => {
    const long = Buffer.from('a,b\n1,' + 'é'.repeat(30) + '\n2,' + 'x'.repeat(10) + '\n3,"' + 'y'.repeat(80) + '\n');
    for (const max of [12, 25, 31, 32, 40, 60]) same(long, { ...base, maxRecordChars: max }, `max ${max}`);
    // A long unfinished record is scanned again only as it doubles: the same as split.ts.
    const big = Buffer.from('a,b\n1,"' + 'z'.repeat(300_000) + '"\n2,3\n');
    for (const size of [65_536, 100_000]) {
      const a = viaStrings(big, size, base);
      assert.deepEqual(viaBytes(big, size, base), a, `long record, chunks of ${size}`);
      assert.equal(a.records.length, 3);
    }
  });

  it('random inputs of the awkward pieces, every chunking, every option', () => {
    let seed = 14;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pieces = ['a', 'bc', ',', ',', '"', '""', '\n', '\n', '\r', '\r\n', 'é', '🎉', '\uFFFD', '1', ';', "'", '||', '|'];
    const bytes = [[0xff], [0xe2, 0x82], [0xc3], [0xef, 0xbb, 0xbf]];
    for (let i = 0; i < 1500; i++) {
      const parts: Buffer[] = [];
      if (rnd(4) === 0) parts.push(Buffer.from([0xef, 0xbb, 0xbf]));
      const len = 1 + rnd(60);
      for (let j = 0; j < len; j++) parts.push(rnd(12) === 0 ? Buffer.from(bytes[rnd(bytes.length)]!) : Buffer.from(pieces[rnd(pieces.length)]!));
      const data = Buffer.concat(parts);
      const o: Opts = {
        ...base,
        delimiter: [',', ';', '||'][rnd(3)]!,
        quote: ['"', "'"][rnd(2)]!,
        encoding: rnd(5) === 0 ? 'latin1' : 'utf8',
        maxRecordChars: rnd(3) === 0 ? 1 + rnd(12) : 1 << 20,
        final: rnd(3) !== 0,
        stripBom: rnd(4) !== 0,
      };
      same(data, o, `random #${i} ${JSON.stringify(data.toString('latin1'))} ${JSON.stringify(o)}`);
    }
  });
});
