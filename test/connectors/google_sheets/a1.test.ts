/** A1 ranges of jobs and windows (connectors/google_sheets/a1.ts): plain functions. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { a1, columnLetters, columnNumber, parseRange, quoteSheetName, windows } from '../../../connectors/google_sheets/a1.js';

it('column letters and numbers round-trip (A, Z, AA, AZ, ZZ, AAA, XFD)', () => {
  for (const [l, n] of [['A', 1], ['Z', 26], ['AA', 27], ['AZ', 52], ['ZZ', 702], ['AAA', 703], ['XFD', 16384]] as const) {
    assert.equal(columnNumber(l), n);
    assert.equal(columnLetters(n), l);
  }
  assert.equal(columnNumber('aa'), 27);
});

it('parses the ranges a job names', () => {
  assert.deepEqual(parseRange('Budget'), { sheet: 'Budget', firstColumn: 1, firstRow: 1 });
  assert.deepEqual(parseRange('Budget!A1:I'), { sheet: 'Budget', firstColumn: 1, firstRow: 1, lastColumn: 9 });
  assert.deepEqual(parseRange("'Q1 plan'!B3:H200"), { sheet: 'Q1 plan', firstColumn: 2, firstRow: 3, lastColumn: 8, lastRow: 200 });
  assert.deepEqual(parseRange("'It''s'!A:C"), { sheet: "It's", firstColumn: 1, firstRow: 1, lastColumn: 3 });
  assert.deepEqual(parseRange('A5:F'), { sheet: undefined, firstColumn: 1, firstRow: 5, lastColumn: 6 });
  assert.deepEqual(parseRange('Data!C'), { sheet: 'Data', firstColumn: 3, firstRow: 1, lastColumn: 3 });
  assert.deepEqual(parseRange("'Q1'"), { sheet: 'Q1', firstColumn: 1, firstRow: 1 });
  assert.deepEqual(parseRange('Q1'), { sheet: undefined, firstColumn: 17, firstRow: 1, lastColumn: 17, lastRow: 1 }, 'looks like a cell: quote a sheet named so');
});

it('refuses what is not a range, with a reason', () => {
  assert.match(String(parseRange('')), /empty/);
  assert.match(String(parseRange("'Open!A1")), /closing quote/);
  assert.match(String(parseRange('Budget!1A:B')), /not an A1 range/);
  assert.match(String(parseRange('Budget!C1:A5')), /last column comes before the first/);
  assert.match(String(parseRange('Budget!A9:C2')), /last row comes before the first/);
  assert.match(String(parseRange('!A1')), /sheet name is empty/);
});

it('writes window ranges, quoting sheet names that need it', () => {
  assert.equal(a1('Budget', 1, 2, 26, 5001), 'Budget!A2:Z5001');
  assert.equal(a1('Q1 plan', 2, 4, 8, 4), "'Q1 plan'!B4:H4");
  assert.equal(quoteSheetName("It's"), "'It''s'");
  assert.equal(quoteSheetName('A1'), "'A1'");
  assert.equal(quoteSheetName('2026'), "'2026'");
  assert.equal(quoteSheetName('Budget_2026'), 'Budget_2026');
});

it('cuts the data rows into windows, the last one short', () => {
  assert.deepEqual([...windows(2, 11, 4)], [{ first: 2, last: 5 }, { first: 6, last: 9 }, { first: 10, last: 11 }]);
  assert.deepEqual([...windows(2, 1, 4)], [], 'a header with no data rows');
  assert.deepEqual([...windows(2, 2, 5000)], [{ first: 2, last: 2 }]);
});
