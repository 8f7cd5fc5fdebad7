/** The bounded line splitter of a tap's stdout (connectors/tap/lines.ts): no streams needed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineSplitter, streamNamedIn, typeNamedIn, type Line } from '../../../connectors/tap/lines.js';

const texts = (lines: Line[]): string[] => lines.map((l) => ('text' in l ? l.text : `<${l.bytes} bytes>`));

test('lines across chunk boundaries, CRLF, a last line without a break, multi-byte characters split between chunks', () => {
  const s = new LineSplitter(1024);
  const bytes = Buffer.from('{"a":1}\r\n{"b":"zoë"}\n{"c"');
  const out = [...s.push(bytes.subarray(0, 5)), ...s.push(bytes.subarray(5, 20)), ...s.push(bytes.subarray(20)), ...s.push(Buffer.from(':3}')), ...s.end()];
  assert.deepEqual(texts(out), ['{"a":1}', '{"b":"zoë"}', '{"c":3}']);
  assert.deepEqual(s.end(), [], 'nothing left');
});

test('a line over the limit comes back as its size and first bytes, and the next line is whole again', () => {
  const s = new LineSplitter(100);
  const big = `{"type":"RECORD","stream":"customers","record":{"x":"${'y'.repeat(500)}"}}`;
  const out = [...s.push(Buffer.from(big.slice(0, 60))), ...s.push(Buffer.from(`${big.slice(60)}\n{"ok":true}\n`))];
  assert.equal(out.length, 2);
  const first = out[0]!;
  assert.ok('oversized' in first);
  assert.equal(first.bytes, Buffer.byteLength(big));
  assert.equal(streamNamedIn(first.head), 'customers');
  assert.equal(typeNamedIn(first.head), 'RECORD');
  assert.deepEqual(texts(out.slice(1)), ['{"ok":true}']);
});

test('exactly at the limit is still a line', () => {
  const s = new LineSplitter(10);
  assert.deepEqual(texts(s.push(Buffer.from('0123456789\n01234567890\n'))), ['0123456789', '<11 bytes>']);
});
