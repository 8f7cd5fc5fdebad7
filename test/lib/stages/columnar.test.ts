/**
 * ColumnarBuilder (bytes → Arrow columns) against the record path's own
 * parts on the same text: the CSV record as the source makes it, the record
 * coercer, RecordBatchBuilder. Random field texts of every awkward kind for
 * every type; the Arrow columns, the statistics and the refused records
 * (with their errors and lines) must be the same. Also: constraints send
 * every record through the coercer, and a header without a column the
 * asset has reads it as NULL.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tableToIPC, Table } from 'apache-arrow';
import { ByteSplitter } from '../../../connectors/csv/bytesplit.js';
import { RecordBatchBuilder } from '../../../lib/parquet/arrow.js';
import { columnarText, type ColumnarText } from '../../../lib/records/columnar.js';
import { compileAssetCoercer } from '../../../lib/records/coerce.js';
import { ColumnarBuilder } from '../../../lib/stages/columnar.js';
import type { Asset, AssetField, Row } from '../../../lib/types.js';

const fields: AssetField[] = [
  { name: 'id', type: { kind: 'long' }, typeName: 'long', required: true, fieldId: 1 },
  { name: 'n', type: { kind: 'int' }, typeName: 'int', required: false, fieldId: 2 },
  { name: 'flag', type: { kind: 'boolean' }, typeName: 'boolean', required: false, fieldId: 3 },
  { name: 's', type: { kind: 'string' }, typeName: 'string', required: false, fieldId: 4 },
  { name: 'amt', type: { kind: 'decimal', precision: 6, scale: 2 }, typeName: 'decimal(6,2)', required: false, fieldId: 5 },
  { name: 'ts', type: { kind: 'timestamp' }, typeName: 'timestamp', required: false, fieldId: 6 },
  { name: 'day', type: { kind: 'date' }, typeName: 'date', required: false, fieldId: 7 },
  { name: 'x', type: { kind: 'double' }, typeName: 'double', required: false, fieldId: 8 },
  { name: 'wide', type: { kind: 'decimal', precision: 20, scale: 4 }, typeName: 'decimal(20,4)', required: false, fieldId: 10 },
];
const table: AssetField[] = [...fields, { name: '_dativo_run_id', type: { kind: 'string' }, typeName: 'string', required: true, fieldId: 9 }];
const constants = { _dativo_run_id: 'run-1' };
const asset = (raw: Asset['raw'] = {}): Asset => ({ name: 't', version: '1', object: 't', file: 't.yaml', primaryKey: ['id'], fields, raw });

const TEXTS: Record<string, string[]> = {
  id: ['1', '-0', '0', '42', '999999999999999', '1000000000000000', '9223372036854775807', '9223372036854775808', '-9223372036854775808', '+7', ' 8', '1.0', 'x', '', '""', '123456789012345678901'],
  n: ['0', '-0', '2147483647', '2147483648', '-2147483648', '-2147483649', ' 3', '+4', '1e3', '', '""', '99999999999999999'],
  flag: ['true', 'false', 'TRUE', 'False', 't', 'yes', '0', '1', 'on', ' true', 'maybe', '', '""'],
  s: ['a', '', '""', '"x""y"', '"a,b"', '"multi\nline"', 'zoë', '🚀', '\uE000', '\uFFFF', '𝄞', 'A', 'z', '  ', 'NULL', `"${'long ""quoted"" text '.repeat(3)}"`, 'x'.repeat(40)],
  amt: [
    '1', '1.5', '-0.5', '9999.99', '10000.00', '1.005', '.5', '', '""', 'abc', '1e2', ' 2.50 ', '007.5', '0.00', '-0.00', '-0', '+1', '1.', '1.500',
    '-9999.99', '0', '00', '12', '1.2', '-', '-.5', '1.2.3', '99999', '0.001',
  ],
  ts: [
    '2024-01-01T00:00:00Z', '2024-03-10T01:59:59.123456-08:00', '2024-01-01 00:00:00', '2024-13-01T00:00:00Z', '', '""', 'nope', '2024-01-01T00:00:00.1234567Z',
    '2024-02-29T23:59:59.999999+14:00', '2024-01-01T00:00:00-00:30', '1970-01-01T00:00:00Z', '1969-12-31T23:59:59.999999Z', '2300-01-01T00:00:00Z',
    '0001-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00', '9999-12-31T23:59:59.999999Z', '2024-01-01t00:00:00z', '2024-01-01T24:00:00Z', '2024-01-01T00:00:60Z',
    '2024-01-01T00:00:00+24:00', '2024-01-01T00:00:00.Z', '2024-01-01T00:00:00+0530', '2024-01-01T00:00', '2024-02-30T00:00:00Z', '2024-01-01T00:00:00.5',
  ],
  day: ['2024-02-29', '2023-02-29', '0001-01-01', '9999-12-31', '', '""', '24-1-1', '2024-00-10', '2024-04-31', '0000-01-01', '1970-01-01', '2024-1-01x', ' 2024-01-01'],
  x: ['1.5', '-0', 'NaN', 'Infinity', '1e308', '', '""', 'abc', '.5'],
  wide: ['1.2345', '-99999999999.9999', '999999999999.9999', '1234567890123456.0001', '-0.0001', '0', '1.23456', '', '12345678901234567'],
};

function rnd(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % n;
  };
}

/** A CSV of `rows` random records over `header`, split by the product's byte splitter into one ColumnarText. */
function batch(header: string[], rows: string[][]): ColumnarText {
  const text = [header.join(','), ...rows.map((r) => r.join(','))].join('\r\n') + '\n';
  const sp = new ByteSplitter({ delimiter: ',', quote: '"', encoding: 'utf8', maxRecordChars: 1 << 20, stripBom: true, firstLine: 1, recordsBefore: 0 }, (s) => {
    throw new Error(s.message);
  });
  const b = sp.feed(Buffer.from(text));
  const w = header.length;
  assert.equal(b.fields, (rows.length + 1) * w);
  return columnarText({
    columns: header,
    rows: rows.length,
    bytes: b.bytes,
    start: b.start.slice(w, b.fields),
    end: b.end.slice(w, b.fields),
    flags: b.flags.slice(w, b.fields),
    quote: '"',
    file: 'f.csv',
    lines: b.line.slice(1, b.count),
  });
}

/** The record the CSV source makes of a field text: unquoted empty NULL, quotes removed, doubled quotes one. */
function value(t: string): string | null {
  if (t === '') return null;
  if (t.startsWith('"')) return t.slice(1, -1).replaceAll('""', '"');
  return t;
}

function viaRecords(a: Asset, header: string[], rows: string[][]): { ipc: Uint8Array; stats: unknown; rejects: unknown[] } {
  const coerce = compileAssetCoercer(a);
  const b = new RecordBatchBuilder(table, constants, undefined, 16);
  const rejects: unknown[] = [];
  let line = 2;
  rows.forEach((r) => {
    const at = line;
    line += 1 + (r.join(',').match(/\n/g)?.length ?? 0);
    const rec: Row = {};
    header.forEach((h, j) => (rec[h] = value(r[j]!)));
    const res = coerce(rec);
    if (res.ok) b.append(res.row);
    else rejects.push({ record: rec, errors: res.errors, location: { file: 'f.csv', line: at } });
  });
  const built = b.build();
  return { ipc: tableToIPC(new Table(built.batch)), stats: built.stats, rejects };
}

function viaColumns(a: Asset, header: string[], rows: string[][], capacity = 4): { ipc: Uint8Array; stats: unknown; rejects: unknown[] } {
  const c = new ColumnarBuilder(a, table, constants, capacity);
  const rejects = c.add(batch(header, rows));
  const built = c.build();
  return { ipc: tableToIPC(new Table(built.batch)), stats: built.stats, rejects };
}

describe('ColumnarBuilder against the record path', () => {
  it('the same columns, statistics and rejects for random texts of every type', () => {
    const r = rnd(14);
    const header = fields.map((f) => f.name);
    let written = 0;
    for (let round = 0; round < 200; round++) {
      const rows: string[][] = [];
      // Odd rounds mostly from the first (valid) texts, so that many rows are written too.
      const pick = (h: string): string => TEXTS[h]![round % 2 === 1 && r(10) !== 0 ? r(2) : r(TEXTS[h]!.length)]!;
      for (let i = 0; i < 1 + r(40); i++) rows.push(header.map(pick));
      const a = viaRecords(asset(), header, rows);
      const b = viaColumns(asset(), header, rows);
      assert.deepEqual(b.rejects, a.rejects, `round ${round}`);
      assert.deepEqual(b.stats, a.stats, `round ${round}`);
      assert.deepEqual(Buffer.from(b.ipc), Buffer.from(a.ipc), `round ${round}: Arrow bytes`);
      written += rows.length - a.rejects.length;
    }
    assert.ok(written > 100, `rows written: ${written}`);
  });

  it('a shuffled header with an unknown column and one missing; constraints go through the coercer', () => {
    const header = ['s', 'extra', 'id', 'flag', 'n'];
    const rows = [
      ['"a"', 'z', '1', 'true', '5'],
      ['b', 'z', '2', 'false', '-1'],
      ['', 'z', '', 'true', '1'],
    ];
    for (const raw of [{}, { schema: [{ name: 'n', minimum: 0 }] }]) {
      const a = viaRecords(asset(raw), header, rows);
      const b = viaColumns(asset(raw), header, rows);
      assert.deepEqual(b.rejects, a.rejects);
      assert.deepEqual(b.stats, a.stats);
      assert.deepEqual(Buffer.from(b.ipc), Buffer.from(a.ipc));
    }
    const strict = viaColumns(asset({ schema: [{ name: 'n', minimum: 0 }] }), header, rows) as { rejects: { errors: { code: string }[]; location: { line: number } }[] };
    assert.deepEqual(
      strict.rejects.map((x) => [x.location.line, x.errors[0]!.code]),
      [
        [3, 'constraint'],
        [4, 'required'],
      ],
    );
  });
});
