/**
 * The Google Sheets source end to end: real `@googleapis/sheets` and
 * `@googleapis/drive` clients against the Sheets fake, through runJobFile
 * into an Iceberg table read back with an independent reader. Typed values
 * (serial dates and date-times, decimals without float noise, booleans),
 * the header by name, windows fetched on demand, blank rows, skipped
 * unchanged spreadsheets, overwrite snapshots, quota retries.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { getConnector } from '../../../connectors/index.js';
import { READ_AHEAD_ROWS } from '../../../connectors/google_sheets/read.js';
import { loadJob } from '../../../lib/config/index.js';
import { silentLogger } from '../../../lib/log.js';
import type { Reject } from '../../../lib/connector.js';
import { fileURLToPath } from 'node:url';
import { formatDateDays, formatTimestampMicros } from '../../../lib/records/time.js';
import { serialOf, sheetDate, SheetsFake, type Cell } from '../../fakes/sheets.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { BUDGET_HEADER, budgetLine, budgetRecord, budgetSheet, sheetsProject, type SheetsProject } from './helpers.js';

const fake = new SheetsFake();
let p: SheetsProject;

const byLine = (rows: Record<string, unknown>[]): Record<string, unknown>[] => [...rows].sort((a, b) => Number(a['line_id']) - Number(b['line_id']));
const strip = byLine;

describe('google_sheets sync', () => {
  before(async () => {
    await fake.start();
    p = await sheetsProject(fake, 'sheets-sync');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  beforeEach(() => fake.reset());

  it('reads typed values by name into the table, skips an unchanged spreadsheet, and replaces the table after an edit', async () => {
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(12) }] });
    const first = await p.run();
    assert.equal(first.summary.exit_code, 0, JSON.stringify(first.summary.error));
    assert.equal(first.summary.objects[0]!.rows_written, 12);
    assert.deepEqual(strip(await p.rows()), Array.from({ length: 12 }, (_, k) => budgetRecord(k + 1)));
    const values = fake.sheetsRequests().filter((r) => r.path.includes('/values'));
    assert.ok(values.length > 0);
    for (const r of values) {
      assert.equal(r.query.get('valueRenderOption'), 'UNFORMATTED_VALUE');
      assert.equal(r.query.get('dateTimeRenderOption'), 'SERIAL_NUMBER');
    }
    const state = await p.state();
    assert.equal(state.objects['budget']?.files?.['budget-1']?.modifiedAt, fake.modifiedTime('budget-1'));

    // Unchanged: Drive's modifiedTime only, no Sheets request, no commit.
    const before = fake.requests.length;
    const second = await p.run();
    assert.equal(second.summary.exit_code, 0);
    assert.equal(second.summary.objects[0]!.rows_written, 0);
    assert.deepEqual(fake.requests.slice(before).map((r) => r.path), ['/drive/v3/files/budget-1']);
    assert.ok(second.logs.some((l) => l['event_type'] === 'sheets_unchanged'));
    assert.equal((await p.rows()).length, 12);

    // An edit (a line changed, one removed, one added): the table is the sheet now.
    const rows = budgetSheet(12);
    rows.splice(3, 1); // line 3 gone
    rows[5] = budgetLine(6, 123_456);
    rows.push(budgetLine(40));
    fake.setRows('budget-1', 'Budget', rows);
    const third = await p.run();
    assert.equal(third.summary.exit_code, 0, JSON.stringify(third.summary.error));
    const want = [...Array.from({ length: 12 }, (_, k) => k + 1).filter((i) => i !== 3), 40].map((i) => (i === 6 ? budgetRecord(6, 123_456) : budgetRecord(i)));
    assert.deepEqual(strip(await p.rows()), byLine(want));
  });

  it('reads large sheets in windows, each fetched only when the stream wants more', async () => {
    const lines = 3000;
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(lines), rowCount: lines + 1, columnCount: 9 }] });
    const connector = await getConnector('google_sheets');
    await p.job({ windowRows: 100, sync: 'full_refresh' });
    const plan = await loadJob(p.p('job.yaml'), { cwd: p.dir });
    const rejects: Reject[] = [];
    const stream = connector.read({
      plan,
      object: plan.source.objects[0]!,
      state: undefined,
      fullRefresh: true,
      runId: 't',
      runStartedAt: new Date(),
      signal: new AbortController().signal,
      log: silentLogger(),
      rejects: { reject: (r) => rejects.push(r), count: 0 },
    });
    const ranges = (): string[] =>
      fake
        .sheetsRequests()
        .filter((r) => r.path.includes('/values'))
        .flatMap((r) => (r.path.endsWith(':batchGet') ? r.query.getAll('ranges') : [decodeURIComponent(r.path.split('/values/')[1]!)]));
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    await new Promise((r) => setTimeout(r, 200));
    // The header and the first window in one batchGet, then windows only up to the stream's read-ahead.
    const early = ranges();
    assert.deepEqual(early.slice(0, 2), ['Budget!A1:I1', 'Budget!A2:I101']);
    const ahead = Math.ceil(READ_AHEAD_ROWS / 100) + 2;
    assert.ok(early.length <= ahead + 1, `${early.length} ranges requested before the consumer read on (read-ahead ${READ_AHEAD_ROWS} rows)`);
    let n = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) n++;
    assert.equal(n, lines);
    const all = ranges();
    assert.equal(all.length, 1 + lines / 100);
    assert.equal(all.at(-1), `Budget!A${lines - 98}:I${lines + 1}`);
    assert.deepEqual(rejects, []);
  });

  it('maps moved columns by name (case and spaces forgiven), skips and counts blank rows, nulls missing trailing cells', async () => {
    // Columns in another order, names with odd case and spaces, an extra column, a blank row in the middle and one across a window edge.
    const header = ['  NOTE ', 'Amount', 'line_id', 'Month', 'Department', 'extra col', 'currency', 'approved', 'updated_at', 'Category'];
    const order = [8, 4, 0, 3, 1, -1, 5, 6, 7, 2];
    const line = (i: number): Cell[] => order.map((k) => (k === -1 ? `x${i}` : budgetLine(i)[k]));
    const rows: Cell[][] = [header, line(1), [], line(2), line(3), [null, null, null, ''], line(4)];
    // Line 5 with its trailing cells left out (the API omits trailing blanks): category null.
    const l5 = line(5);
    l5[9] = null;
    rows.push(l5);
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows, rowCount: 20 }] });
    const { summary, logs } = await p.run({ windowRows: 3, sync: 'full_refresh' });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    const want = [1, 2, 3, 4, 5].map((i) => ({ ...budgetRecord(i), ...(i === 5 ? { category: null } : {}) }));
    assert.deepEqual(strip(await p.rows()), want);
    const read = logs.find((l) => l['event_type'] === 'sheets_read');
    assert.equal(read?.['blank_rows'], 2);
    assert.ok(logs.some((l) => l['event_type'] === 'unknown_column' && l['column'] === 'extra col'));
    assert.ok(logs.some((l) => l['event_type'] === 'columns_moved'));
  });

  it('converts serial numbers exactly: dates, µs date-times in the spreadsheet time zone, decimals without float noise', async () => {
    const header = ['line_id', 'department', 'month', 'amount', 'updated_at'];
    const rows = [
      header,
      // 12:34:56.789012 on 2026-03-29 in Berlin, the day clocks go forward: 10:34:56.789012Z.
      [1, 'A', sheetDate(46_110), 0.1, sheetDate(serialOf('2026-03-29T12:34:56.789012'))],
      [2, 'B', sheetDate(1), 1234567.89, sheetDate(serialOf('2026-01-15T00:00:00.000001'))],
      [3, 'C', 46_110, 12, 46_110.5],
    ];
    fake.create('budget-1', { timeZone: 'Europe/Berlin', sheets: [{ title: 'Budget', rows }] });
    const { summary } = await p.run({ sync: 'full_refresh' });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    // DuckDB reads the run's data file exactly (decimal digits, µs, days).
    const files = summary.objects[0]!.files;
    assert.equal(files.length, 1);
    const duck = await readParquetWithDuckDB(fileURLToPath(files[0]!));
    const got = duck.rows.sort((a, b) => Number(a['line_id']) - Number(b['line_id'])).map((r) => [r['line_id'], formatDateDays(r['month'] as number), r['amount'], formatTimestampMicros(r['updated_at'] as bigint)]);
    assert.deepEqual(got, [
      [1n, '2026-03-29', '0.10', '2026-03-29T10:34:56.789012Z'],
      [2n, '1899-12-31', '1234567.89', '2026-01-14T23:00:00.000001Z'],
      [3n, '2026-03-29', '12.00', '2026-03-29T10:00:00.000000Z'],
    ]);
  });

  it('retries a 429 under our policy, honouring Retry-After', async () => {
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(3) }] });
    fake.fail({ path: '/v4/spreadsheets/budget-1/values', status: 429, times: 2, headers: { 'retry-after': '1' } });
    const t0 = Date.now();
    const { summary, logs } = await p.run({ sync: 'full_refresh' });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    assert.equal(summary.objects[0]!.rows_written, 3);
    // Two waits of Retry-After: 1 s (the policy's own backoff is 0.05–0.2 s).
    assert.ok(Date.now() - t0 >= 1900, `waited ${Date.now() - t0} ms`);
    assert.equal(logs.filter((l) => /retrying in/.test(String(l['msg']))).length, 2);
  });
});
