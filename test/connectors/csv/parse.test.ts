/** The pure parts of CSV parsing: quoting, line counting, UTF-8 location. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { LocatedParser, Utf8LineCheck, lineBreaks, quotedFields, recordBody, type CsvRecord, type SkippedRecord } from '../../../connectors/csv/parse.js';

describe('csv parse helpers', () => {
  it('quotedFields tells which fields were quoted', () => {
    assert.deepEqual(quotedFields('a,"",,"x""y","",\n', ',', '"'), [false, true, false, true, true, false]);
    assert.deepEqual(quotedFields('"",""', ',', '"'), [true, true]);
    assert.deepEqual(quotedFields('\n\r\n"a\nb";;""\r', ';', '"'), [true, false, true]);
    assert.deepEqual(quotedFields("'',x", ',', "'"), [true, false]);
    assert.deepEqual(quotedFields('a||""||b', '||', '"'), [false, true, false]);
  });

  it('lineBreaks counts \\n, \\r\\n and lone \\r, and leading blank lines', () => {
    assert.deepEqual(lineBreaks('a,b\n'), { leading: 0, total: 1 });
    assert.deepEqual(lineBreaks('\n\na,"x\r\ny"\r'), { leading: 2, total: 4 });
    assert.deepEqual(lineBreaks('\r\r'), { leading: 2, total: 2 });
    assert.deepEqual(lineBreaks('last'), { leading: 0, total: 0 });
  });

  it('recordBody drops blank lines before and the line break after', () => {
    assert.equal(recordBody('\n\r\n1,"a\nb"\r\n'), '1,"a\nb"');
    assert.equal(recordBody('x'), 'x');
  });

  it('Utf8LineCheck locates bad lines whatever the chunking', () => {
    const good = Buffer.from('ok,zoë,张伟,🎉\n');
    const bad = Buffer.from([0x31, 0x2c, 0xe2, 0x82, 0x0a]); // truncated 3-byte sequence, then \n
    const data = Buffer.concat([good, good, bad, good, Buffer.from([0xf0, 0x9f, 0x8e])]); // last line cut too
    const expected = [good.length * 2, good.length * 3 + bad.length];
    for (const size of [1, 2, 3, 5, 7, 64, data.length]) {
      const check = new Utf8LineCheck();
      for (let i = 0; i < data.length; i += size) check.feed(data.subarray(i, i + size));
      check.end();
      const found: number[] = [];
      for (let o = 0; o < data.length; o++) if (check.hasBadIn(o, o + 1)) found.push(o);
      assert.deepEqual(found, expected, `chunk size ${size}`);
    }
  });

  it('Utf8LineCheck keeps memory bounded on a line without line breaks', () => {
    const check = new Utf8LineCheck();
    const chunk = Buffer.from('é'.repeat(40_000)); // 80 kB, 2-byte chars
    for (let i = 0; i < 30; i++) check.feed(chunk.subarray(1)); // misaligned: every chunk starts mid-character
    check.end();
    assert.equal(check.hasBadIn(0, 1), true, 'the first chunk starts with a stray continuation byte');
  });

  it('LocatedParser: one skip per broken record, with its whole raw text and start line', async () => {
    const skips: SkippedRecord[] = [];
    const parser = new LocatedParser({ delimiter: ',', quote: '"', encoding: 'utf8', maxRecordChars: 1 << 20, chunkSize: 16 }, (s) =>
      skips.push(s),
    );
    const text = 'h1,h2\n1,"a"b"c",x\n2,ok\n';
    const records: CsvRecord[] = [];
    for await (const r of Readable.from([Buffer.from(text)]).pipe(parser)) records.push(r as CsvRecord);
    assert.deepEqual(records.map((r) => [r.fields, r.line]), [
      [['h1', 'h2'], 1],
      [['2', 'ok'], 3],
    ]);
    assert.equal(skips.length, 1, 'several errors inside one record are one skip');
    assert.deepEqual([skips[0]!.line, skips[0]!.raw, skips[0]!.isFirst], [2, '1,"a"b"c",x\n', false]);
  });
});
