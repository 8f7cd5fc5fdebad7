/**
 * pipelines/acme/google_sheets_budget.yaml runs as shipped against the Sheets
 * fake, its spreadsheet id and key from the environment, its documented
 * `base_url` line uncommented (the one change a test server needs; the copy
 * sits in a temp folder, so its asset path is made absolute): the
 * budget lands typed, an unchanged spreadsheet is skipped, an edit replaces
 * the table.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runJobFile } from '../../../lib/run/file.js';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { SheetsFake } from '../../fakes/sheets.js';
import { repo } from '../../lib/cli/helpers.js';
import { budgetLine, budgetSheet, TEST_KEY } from './helpers.js';
import { fileURLToPath } from 'node:url';

describe('pipelines/acme/google_sheets_budget.yaml runs as documented', () => {
  const fake = new SheetsFake();
  let dir: string;
  before(async () => {
    await fake.start();
    fake.google.apiKeys.add(TEST_KEY);
    dir = await mkdtemp(path.join(tmpdir(), 'dativo-acme-sheets-'));
  });
  after(async () => {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lands the budget, skips it unchanged, replaces it after an edit', async () => {
    const shipped = await readFile(path.join(repo, 'pipelines/acme/google_sheets_budget.yaml'), 'utf8');
    const line = /^(\s*)# base_url: \S+(.*)$/m;
    assert.match(shipped, line, 'the job documents base_url');
    const job = path.join(dir, 'google_sheets_budget.yaml');
    const asset = path.join(repo, 'schemas/google_sheets/v1.0/budget.yaml');
    await writeFile(job, shipped.replace(line, (_m, indent: string) => `${indent}base_url: "\${GOOGLE_BASE_URL}"`).replace('asset_path: ../../schemas/google_sheets/v1.0/budget.yaml', `asset_path: ${asset}`));
    const env = { ...process.env, GOOGLE_API_KEY: TEST_KEY, GOOGLE_BASE_URL: fake.url, ACME_BUDGET_SPREADSHEET_ID: 'acme-budget-2026', DATIVO_WAREHOUSE: path.join(dir, 'wh') };
    fake.create('acme-budget-2026', { title: 'Budget 2026', sheets: [{ title: 'Budget', rows: budgetSheet(40) }, { title: 'Notes', rows: [['free text']] }] });
    const r1 = await runJobFile(job, { env, cwd: dir });
    assert.equal(r1.exit_code, 0, JSON.stringify(r1.objects.map((o) => o.error)));
    assert.equal(r1.objects[0]!.rows_written, 40);
    const duck = await readParquetWithDuckDB(fileURLToPath(r1.objects[0]!.files[0]!));
    assert.equal(duck.types['amount'], 'DECIMAL(14,2)');
    assert.equal(duck.types['month'], 'DATE');
    assert.equal(duck.rows.find((r) => r['line_id'] === 7n)!['amount'], '1000.49');

    const r2 = await runJobFile(job, { env, cwd: dir });
    assert.equal(r2.exit_code, 0);
    assert.equal(r2.objects[0]!.rows_written, 0, 'unchanged: nothing read');

    fake.setRows('acme-budget-2026', 'Budget', [...budgetSheet(3), budgetLine(99)]);
    const r3 = await runJobFile(job, { env, cwd: dir });
    assert.equal(r3.exit_code, 0, JSON.stringify(r3.objects.map((o) => o.error)));
    assert.equal(r3.objects[0]!.rows_written, 4);
  });
});
