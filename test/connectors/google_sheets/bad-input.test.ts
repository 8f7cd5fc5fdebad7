/**
 * Bad input for the Google Sheets source against the Sheets fake: a
 * spreadsheet that does not exist or is not shared, a missing sheet, a header
 * lacking a required column, a duplicated header name, invalid values, two
 * objects in one job, a bad range. Exit codes as DESIGN.md says; data and
 * state untouched by a failed run; the API key never printed.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadJob } from '../../../lib/config/index.js';
import { DativoError } from '../../../lib/errors.js';
import { SheetsFake, sheetDate } from '../../fakes/sheets.js';
import { dativo, snapshot } from '../../lib/cli/helpers.js';
import { BUDGET_HEADER, budgetSheet, sheetsProject, TEST_KEY, type SheetsProject } from './helpers.js';

const fake = new SheetsFake();
let p: SheetsProject;

const errorText = (s: { error?: { message: string }; objects: { error?: { message: string } }[] }): string => [s.error?.message, ...s.objects.map((o) => o.error?.message)].filter(Boolean).join(' | ');

describe('google_sheets: bad input', () => {
  before(async () => {
    await fake.start();
    p = await sheetsProject(fake, 'sheets-bad');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  beforeEach(() => fake.reset());

  it('a spreadsheet that does not exist, or is not shared: exit 3 saying which and with whom to share it; data and state untouched', async () => {
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(5) }] });
    const ok = await p.run();
    assert.equal(ok.summary.exit_code, 0, errorText(ok.summary));
    const wh = await snapshot(p.p('wh'));
    const state = await readFile(p.p('state.json'), 'utf8');

    const missing = await p.run({ sheets: [{ spreadsheet_id: 'no-such-sheet', range: 'Budget' }] });
    assert.equal(missing.summary.exit_code, 3);
    const m = errorText(missing.summary);
    assert.match(m, /spreadsheet no-such-sheet does not exist or is not shared with the public \(API key\): .*anyone with the link.*\(source\.sheets\[0\]\.spreadsheet_id\)/);

    fake.create('private-1', { anyoneWithLink: false, sheets: [{ title: 'Budget', rows: budgetSheet(5) }] });
    const priv = await p.run({ sheets: [{ spreadsheet_id: 'private-1', range: 'Budget' }] });
    assert.equal(priv.summary.exit_code, 3);
    assert.match(errorText(priv.summary), /spreadsheet private-1 does not exist or is not shared with the public \(API key\)/);
    assert.ok(!JSON.stringify(priv).includes(TEST_KEY), 'the key is never printed');

    assert.deepEqual(await snapshot(p.p('wh')), wh, 'no data changed');
    assert.equal(await readFile(p.p('state.json'), 'utf8'), state, 'no state changed');
  });

  it('a service account (key in the secrets folder): not shared names its e-mail; once shared, the sheet is read', async () => {
    const account = fake.google.serviceAccount();
    await p.write('secrets/acme/gsheets.json', JSON.stringify(account.key));
    const file = fake.create('private-2', { anyoneWithLink: false, sheets: [{ title: 'Budget', rows: budgetSheet(4) }] }).file;
    const spec = { key: null, secretsDir: 'secrets', sync: 'full_refresh' as const, sheets: [{ spreadsheet_id: 'private-2', range: 'Budget' }] };
    const denied = await p.run(spec);
    assert.equal(denied.summary.exit_code, 3);
    assert.match(errorText(denied.summary), new RegExp(`spreadsheet private-2 does not exist or is not shared with the service account ${account.email.replace(/[.]/g, '\\.')}: share it with ${account.email.replace(/[.]/g, '\\.')}`));
    assert.ok(!JSON.stringify(denied).includes(account.key['private_key']!.slice(40, 80)), 'the key is never printed');
    file.sharedWith.add(account.email);
    const ok = await p.run(spec);
    assert.equal(ok.summary.exit_code, 0, errorText(ok.summary));
    assert.equal(ok.summary.objects[0]!.rows_written, 4);
    assert.ok(fake.sheetsRequests().every((r) => String(r.headers['authorization']).startsWith('Bearer ')), 'Sheets calls carry the access token');
  });

  it('a sheet the spreadsheet does not have: exit 3 listing its sheets', async () => {
    fake.create('budget-1', { title: 'Plan 2026', sheets: [{ title: 'Budget', rows: budgetSheet(2) }, { title: 'Q1 plan', rows: [] }] });
    const r = await p.run({ sheets: [{ spreadsheet_id: 'budget-1', range: 'Budgett!A1:I' }] });
    assert.equal(r.summary.exit_code, 3);
    assert.match(errorText(r.summary), /no sheet named "Budgett" \(source\.sheets\[0\]\.range\); its sheets: "Budget", "Q1 plan"/);
  });

  it('a header lacking a required column (renamed): exit 3 naming it and the new name; nothing landed', async () => {
    const rows = budgetSheet(4);
    rows[0] = BUDGET_HEADER.map((h) => (h === 'amount' ? 'Amount (EUR)' : h));
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows }] });
    const wh = await snapshot(p.p('wh'));
    const r = await p.run({ sync: 'full_refresh' });
    assert.equal(r.summary.exit_code, 3);
    const m = errorText(r.summary);
    assert.match(m, /lacks the required column "amount" of asset budget; the header has "Amount \(EUR\)", which the asset does not declare \(renamed\?\)/);
    assert.match(m, /the header row \(row 1\) of spreadsheet budget-1 sheet "Budget"/);
    assert.deepEqual(await snapshot(p.p('wh')), wh);
  });

  it('an optional column missing: a warning, its values null', async () => {
    const keep = BUDGET_HEADER.map((_, j) => j).filter((j) => BUDGET_HEADER[j] !== 'note');
    const rows = budgetSheet(3).map((r) => keep.map((j) => r[j]));
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows }] });
    const r = await p.run({ sync: 'full_refresh' });
    assert.equal(r.summary.exit_code, 0, errorText(r.summary));
    assert.ok(r.logs.some((l) => l['event_type'] === 'missing_column' && l['column'] === 'note'));
    assert.deepEqual((await p.rows()).map((x) => x['note']), [null, null, null]);
  });

  it('a duplicated header name (case and spaces aside): exit 3 naming it', async () => {
    const rows = budgetSheet(2);
    rows[0] = [...BUDGET_HEADER, ' Department '];
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows }] });
    const r = await p.run({ sync: 'full_refresh' });
    assert.equal(r.summary.exit_code, 3);
    assert.match(errorText(r.summary), /names "department" more than once/);
  });

  it('invalid values: rejected with the row number and the reason (warn: exit 1, the rest lands; strict: exit 3)', async () => {
    const rows = budgetSheet(6);
    const col = (name: string): number => BUDGET_HEADER.indexOf(name);
    rows[2]![col('amount')] = 'twelve'; // row 3
    rows[4]![col('month')] = sheetDate(46_110.25); // row 5: a date with a time of day
    rows[5]![col('amount')] = '#DIV/0!'; // row 6
    rows[6]![col('line_id')] = 2 ** 53 + 2; // row 7: beyond 2^53 as a JSON number
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows }] });
    const warn = await p.run({ mode: 'warn', sync: 'full_refresh' });
    assert.equal(warn.summary.exit_code, 1, errorText(warn.summary));
    assert.equal(warn.summary.objects[0]!.rows_written, 2);
    assert.equal(warn.summary.objects[0]!.rows_rejected, 4);
    const file = warn.summary.objects[0]!.reject_file!;
    const rejects = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { reason: string; location: { row: number; sheet: string; spreadsheet_id: string } });
    const byRow = new Map(rejects.map((r) => [r.location.row, r.reason]));
    assert.deepEqual([...byRow.keys()].sort(), [3, 5, 6, 7]);
    assert.match(byRow.get(3)!, /amount: "twelve" is not a decimal/);
    assert.match(byRow.get(5)!, /month: serial 46110.25 has a time of day/);
    assert.match(byRow.get(6)!, /amount: the cell holds the error value #DIV\/0!/);
    assert.match(byRow.get(7)!, /line_id: .*beyond 2\^53/);
    assert.equal(rejects[0]!.location.sheet, 'Budget');
    assert.equal(rejects[0]!.location.spreadsheet_id, 'budget-1');

    const strict = await p.run({ mode: 'strict', sync: 'full_refresh' });
    assert.equal(strict.summary.exit_code, 3);
    assert.match(errorText(strict.summary), /row 3/);
  });

  it('config problems at validate time with file and key, exit 3, no request: a bad range, window_rows 0, an unknown time zone; then two objects', async () => {
    await p.job({ sheets: [{ spreadsheet_id: 'budget-1', range: 'Budget' }, { spreadsheet_id: 'budget-2', range: 'Budget!C5:A' }], windowRows: 0, source: ['time_zone: Mars/Olympus'] });
    const before = fake.requests.length;
    const v = await dativo(['validate', 'job.yaml'], { cwd: p.dir });
    assert.equal(v.code, 3, v.stderr);
    for (const k of ['source.sheets[1].range', 'source.window_rows', 'source.time_zone']) assert.ok(v.stderr.includes(k), `${k} in ${v.stderr}`);
    assert.match(v.stderr, /the last column comes before the first/);
    assert.match(v.stderr, /unknown time zone "Mars\/Olympus"/);

    // One job, one table: a second object is a problem naming its key.
    await p.job({ sheets: [{ spreadsheet_id: 'budget-1', range: 'Budget' }, { spreadsheet_id: 'budget-2', object: 'other' }] });
    await assert.rejects(loadJob(p.p('job.yaml'), { cwd: p.dir }), (err: unknown) => {
      assert.ok(err instanceof DativoError && err.code === 'CONFIG_INVALID' && err.exitCode === 3, String(err));
      assert.ok(err.problems.some((x) => x.key === 'source.sheets[1].object' && /put "other" in a job of its own/.test(x.message)), JSON.stringify(err.problems));
      return true;
    });
    assert.equal(fake.requests.length, before, 'no request was made');
  });
});
